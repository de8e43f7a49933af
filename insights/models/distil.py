"""A cluster → an editable rule: a shallow decision tree (depth ≤ 3) learns "in the
cluster or not" from the features that have a rule-language counterpart, and its positive
leaves become a definition — an ANY of ALL-paths, each split a condition (feature.rule).
The leaves kept are those that raise F1 on the training sample, most precise first. The
proposal's precision and recall are then measured by evaluating the definition itself,
so they say what the rule does, not what the tree believed. Pure."""

from __future__ import annotations

import math

import numpy as np
from sklearn.tree import DecisionTreeClassifier

MAX_DEPTH = 3
TREE_SAMPLE = 60_000


def distil(values: np.ndarray, member: np.ndarray, features, *, seed: int) -> dict | None:
    """A definition selecting (mostly) the rows where `member` is true, or None when the
    tree finds no leaf worth keeping. `values`: imputed raw features, one column per feature."""
    usable = [i for i, f in enumerate(features) if f.rule is not None]
    if not usable or member.sum() == 0 or member.all():
        return None
    rng = np.random.default_rng(seed)
    rows = np.arange(len(values)) if len(values) <= TREE_SAMPLE else rng.choice(len(values), TREE_SAMPLE, replace=False)
    x, y = values[np.ix_(rows, usable)], member[rows]
    tree = DecisionTreeClassifier(max_depth=MAX_DEPTH, class_weight="balanced", random_state=seed,
                                  min_samples_leaf=max(3, len(rows) // 200)).fit(x, y)
    paths = _kept_paths(tree, x, y)
    if not paths:
        return None
    alternatives = [[_condition(features[usable[f]], threshold, above) for f, threshold, above in path]
                    for path in paths]
    if len(alternatives) == 1:
        return {"version": 1, "match": "all", "conditions": alternatives[0]}
    return {"version": 1, "match": "any", "conditions": [{"match": "all", "conditions": c} for c in alternatives]}


def _kept_paths(tree, x: np.ndarray, y: np.ndarray) -> list[list[tuple[int, float, bool]]]:
    """The root-to-leaf paths of the leaves that, taken most precise first, raise F1."""
    t = tree.tree_
    leaf_of = tree.apply(x)
    stats = []
    for leaf in np.unique(leaf_of):
        inside = leaf_of == leaf
        positives = int(y[inside].sum())
        if positives:
            stats.append((positives / int(inside.sum()), positives, int(inside.sum()), leaf))
    stats.sort(key=lambda s: (-s[0], -s[1]))
    total_positive, best_f1, kept, tp, selected = int(y.sum()), 0.0, [], 0, 0
    for precision, positives, size, leaf in stats:
        f1 = 2 * (tp + positives) / (selected + size + total_positive)
        if f1 <= best_f1:
            break
        best_f1, tp, selected = f1, tp + positives, selected + size
        kept.append(leaf)
    parents = {}
    for node in range(t.node_count):
        for child, above in ((t.children_left[node], False), (t.children_right[node], True)):
            if child != -1:
                parents[child] = (node, above)
    kept = _merge_siblings(set(kept), t)
    paths = []
    for leaf in sorted(kept):
        path, node = [], leaf
        while node in parents:
            parent, above = parents[node]
            path.append((int(t.feature[parent]), float(t.threshold[parent]), above))
            node = parent
        paths.append(list(reversed(path)))
    return paths


def _merge_siblings(kept: set, t) -> set:
    """Both children of a split kept: their parent alone says the same, one condition shorter."""
    merged = True
    while merged:
        merged = False
        for node in range(t.node_count):
            left, right = t.children_left[node], t.children_right[node]
            if left != -1 and left in kept and right in kept:
                kept -= {left, right}
                kept.add(node)
                merged = True
    return kept


def _condition(feature, threshold: float, above: bool) -> dict:
    """The rule-language condition for `feature > threshold` (above) or `≤ threshold`."""
    rule = dict(feature.rule)
    kind = rule.pop("type")
    if kind == "event":
        return _event_condition(rule, feature.kind, threshold, above)
    if kind == "last_seen" or (kind == "trait" and feature.kind == "days"):
        # days since ≤ t ⇔ the moment is within the last t days; > t ⇔ more than t days ago.
        field = "last_seen_at" if kind == "last_seen" else rule["field"]
        hours = max(1, round(threshold * 24))
        return {"type": "trait", "field": field, "op": "more_than_ago" if above else "within_last", "value": f"{hours}h"}
    if kind == "consent":
        return {"type": "consent", "channel": rule["channel"], "granted": above}
    if kind == "survey":
        return {"type": "survey", "survey": rule["survey"], "measure": rule["measure"], **_compare(threshold, above)}
    if feature.kind == "flag":  # a one-hot trait or a tech stack item: present, or not
        condition = {"type": "trait", **rule}
        return condition if above else {**condition, "negate": True}
    return {"type": "trait", "field": rule["field"], **_compare(threshold, above)}


def _event_condition(rule: dict, kind: str, threshold: float, above: bool) -> dict:
    measure = rule.pop("measure")
    condition = {"type": "event", **{k: v for k, v in rule.items() if k in ("event", "window", "when")}}
    if measure == "aggregate":
        condition["aggregate"] = {"fn": rule["fn"], "property": rule["property"], **_compare(threshold, above)}
    elif measure == "share":
        condition["share"] = _compare(min(max(threshold, 0.0), 1.0), above, places=3)
    else:  # counts and distinct days are whole numbers: > 2.5 is ≥ 3, ≤ 2.5 is ≤ 2
        whole = math.floor(threshold)
        condition[measure] = {"op": "gte", "value": whole + 1} if above else {"op": "lte", "value": whole}
    return condition


def _compare(threshold: float, above: bool, places: int = 2) -> dict:
    return {"op": "gt" if above else "lte", "value": round(threshold, places)}
