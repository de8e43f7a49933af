"""The feature catalogue: what the models know of each customer, computed set-based in SQL
per tenant as of a `now`, in ranges of customer ids so memory stays bounded.

Every feature has a name, a group, the source it is read from, a description, a kind
(count, amount, days, share, score, number, flag) and a missing policy: a count is never
missing (no events is a true zero), a share without events, a survey never answered or a
trait never sent is missing (NaN here; `models.preprocess` imputes it and adds an
indicator, so "missing" never silently becomes 0). Where a feature has an exact
counterpart in the rule language it carries it (`rule`), so a decision tree over the
features distils into a definition that means what the tree learnt (`models.distil`).

The catalogue depends on the tenant (its busiest events, its traits' categories and most
common values), so it is built per tenant (`catalogue`) and stored with each model run;
`extract` reads exactly those columns, today or as of a past cutoff (the churn model's
time split).
"""

from insights.features.catalogue import GROUPS, Feature, catalogue
from insights.features.extraction import FeatureBlock, extract, extract_all, id_ranges

__all__ = ["GROUPS", "Feature", "FeatureBlock", "catalogue", "extract", "extract_all", "id_ranges"]
