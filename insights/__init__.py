"""Intelligence and analysis over customers and segments (read-only on both): the feature
catalogue, clustering into personas with rules, churn and LTV predictions, lookalikes."""
