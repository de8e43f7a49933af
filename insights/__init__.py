"""Intelligence and analysis over customers and segments (read-only on both): the feature
catalogue, clustering into personas with rules, churn and LTV predictions, lookalikes, and the
reports (KPIs, trends, funnels, retention, paths, journeys, STP scores, the maturity ladder).
Imports segments and everything below; never campaigns (import-linter: `layers`)."""
