"""Insights at scale, each measurement beside its baseline in the same process, and the
goals of issue 22 measured on the generator's planted truth (which no feature reads).

Data set: the generator's `benchdata-<customers>-<events>` tenant, as bench/segments.py
(1M customers / 20M events by default, 10k / 200k with --quick), `now` pinned after its
last event.

1. clustering: `clustering_run_execute` of a run with k given (the catalogue's features for
   every customer, preprocessing, the fit, assignments and cluster keys written, clusters
   described with lifts, personas and proposed rules measured by evaluating them) against
   the same feature SQL alone plus the bare fit on the same arrays (issue target ≤ 2).
   Peak resident memory of the process is printed.
2. personas: adjusted Rand index of that run against the planted personas, beside the ARI
   of a supervised classifier on the same features (cross-validated on a sample of at most
   `--ceiling-sample` customers: the ceiling); goal ARI ≥ 0.9 × ceiling and ≥ 0.8. The
   median F1 of the proposed rules against their clusters (goal ≥ 0.85), and whether the
   weekend persona's cluster is proposed with `when`/`share`.
3. churn: `churn_model_execute` (training on the time split, held-out tests 30/45/60 days
   ahead, scoring every customer) — held-out AUC (goal ≥ 0.85 at 45 days) and ECE (goal ≤
   0.05), against training alone as the time baseline.
4. lookalikes: seeded with half of the planted enterprise buyers, precision of the top N
   on the held-out seed against the base rate (goal ≥ 3×).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from collections import Counter

from bench import Result

DEFAULT_CUSTOMERS, DEFAULT_EVENTS = 1_000_000, 20_000_000
QUICK_CUSTOMERS, QUICK_EVENTS = 10_000, 200_000
K = 7


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ceiling-sample", type=int, default=100_000,
                        help="customers the supervised ceiling is cross-validated on (default 100k)")


def _reset_peak() -> None:
    """Start a new high-water mark of resident memory (Linux: clear_refs 5), so each run's
    peak is its own and not the baseline's, which holds every customer's features at once."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def _peak_mb() -> float:
    """Peak resident memory since the last reset (VmHWM), else of the whole process."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _actor(tenant):
    from tenants.models import TenantMembership

    return TenantMembership.objects.filter(tenant=tenant, role__key="admin").first()


def _clustering(actor, now) -> tuple[list[Result], object]:
    import numpy as np

    from insights.features import catalogue, extract_all
    from insights.models.clustering import fit
    from insights.models.preprocess import Preprocessor
    from insights.services.clustering import DEFAULT_GROUPS, clustering_run_execute, clustering_run_request

    # The run reads the whole catalogue (it describes clusters with every feature) and fits
    # on the default groups' columns: the baseline does exactly that much SQL and fitting.
    everything = catalogue()
    columns = [i for i, f in enumerate(everything) if f.group in DEFAULT_GROUPS]
    features = [everything[i] for i in columns]
    started = time.perf_counter()
    blocks = list(extract_all(everything, now=now))
    values = np.vstack([b.values for b in blocks])[:, columns]
    sql_s = time.perf_counter() - started
    started = time.perf_counter()
    fit(Preprocessor.fit(features, values).transform(values), K, algorithm="kmeans", seed=42)
    fit_s = time.perf_counter() - started
    baseline_peak = _peak_mb()
    del values, blocks
    _reset_peak()
    started = time.perf_counter()
    run = clustering_run_request(actor=actor, now=now, k=K, seed=42)
    run = clustering_run_execute(run_id=run.pk, clock=lambda: now)
    run_s = time.perf_counter() - started
    if run.status != "succeeded":
        raise SystemExit(f"bench insights: the clustering run failed: {run.error}")
    return [Result("insights_clustering", round(run_s / (sql_s + fit_s), 2),
                   {"run_s": round(run_s, 2), "feature_sql_s": round(sql_s, 2), "bare_fit_s": round(fit_s, 2),
                    "customers": run.customers, "peak_rss_mb": round(_peak_mb()),
                    "baseline_peak_rss_mb": round(baseline_peak)},
                   "clustering run end to end / (feature SQL + bare fit on the same arrays)")], run


def _personas(run, ceiling_sample: int) -> list[Result]:
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import adjusted_rand_score
    from sklearn.model_selection import cross_val_predict

    from customers.models import GeneratorTruth
    from insights.features import Feature, extract_all
    from insights.models import ClusterAssignment
    from insights.models.preprocess import Preprocessor

    truth = dict(GeneratorTruth.objects.values_list("customer_id", "persona"))
    found = dict(ClusterAssignment.objects.filter(run=run).values_list("customer_id", "index"))
    ids = sorted(set(truth) & set(found))
    ari = adjusted_rand_score([truth[i] for i in ids], [found[i] for i in ids])
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(ids, min(ceiling_sample, len(ids)), replace=False))
    features = [Feature(**f) for f in run.features]
    blocks = list(extract_all(features, now=run.as_of, customer_ids=sample))
    sample_ids = np.concatenate([b.ids for b in blocks])
    values = Preprocessor.fit(features, np.vstack([b.values for b in blocks])).impute(np.vstack([b.values for b in blocks]))
    labels = np.array([truth[i] for i in sample_ids.tolist()])
    ceiling = adjusted_rand_score(labels, cross_val_predict(HistGradientBoostingClassifier(random_state=0), values,
                                                            labels, cv=3))
    weekend = [c for c in run.clusters.all()
               if Counter(truth[i] for i in ids if found[i] == c.index).most_common(1)[0][0] == "weekend_power_user"]
    uses_time = any('"share"' in json.dumps(c.proposal) and '"when"' in json.dumps(c.proposal) for c in weekend)
    named = [f"{c.key} “{c.persona['name']}” {c.share:.0%} F1 {c.f1 or 0:.2f}: mostly "
             + Counter(truth[i] for i in ids if found[i] == c.index).most_common(1)[0][0]
             for c in run.clusters.order_by("index")]
    return [
        Result("insights_persona_recovery", round(ari / ceiling, 3),
               {"ari": round(ari, 4), "ceiling_ari": round(ceiling, 4), "k": run.k},
               "ARI of the clustering / ARI of a supervised classifier on the same features (higher is better)",
               notes=(f"weekend persona's cluster proposed with when/share: {'yes' if uses_time else 'no'}",)),
        Result("insights_rule_f1", round(run.quality["median_rule_f1"] or 0, 4),
               {"clusters": run.k}, "median F1 of the proposed rules against their clusters (higher is better)",
               notes=tuple(named)),
    ]


def _churn(actor, now) -> list[Result]:
    from insights.services.churn import churn_model_execute, churn_model_request

    _reset_peak()
    started = time.perf_counter()
    model = churn_model_execute(model_id=churn_model_request(actor=actor, now=now).pk, clock=lambda: now)
    total_s = time.perf_counter() - started
    if model.status != "succeeded":
        raise SystemExit(f"bench insights: the churn model failed: {model.error}")
    m = model.metrics
    return [Result("insights_churn_auc", m["model"]["auc"],
                   {"ece": m["model"]["ece"], "pr_auc": m["model"]["pr_auc"], "baseline_auc": m["baseline"]["auc"],
                    "test_customers": m["test_customers"], "run_s": round(total_s, 1), "peak_rss_mb": round(_peak_mb()),
                    **{f"auc_{row['days_ahead']}d": row["auc"] for row in model.by_lead}},
                   "held-out ROC AUC with features 45 days before the label window ends (higher is better)")]


def _lookalikes(actor, now) -> list[Result]:
    from customers.models import GeneratorTruth
    from insights.services.lookalikes import lookalike_run_execute, lookalike_run_request
    from segments.models import Segment
    from segments.services import segment_create, static_members_add

    Segment.objects.filter(key="bench-insights-seed").delete()
    buyers = sorted(GeneratorTruth.objects.filter(persona="enterprise_buyer").values_list("customer_id", flat=True))
    segment, _ = segment_create(actor=actor, key="bench-insights-seed", name="Bench seed", kind="static", now=now)
    static_members_add(actor=actor, segment=segment, customer_ids=buyers[::2], now=now)
    try:
        _reset_peak()
        started = time.perf_counter()
        run = lookalike_run_execute(run_id=lookalike_run_request(actor=actor, segment=segment.key, now=now).pk,
                                    clock=lambda: now)
        run_s = time.perf_counter() - started
    finally:
        segment.delete()
    if run.status != "succeeded":
        raise SystemExit(f"bench insights: the lookalike run failed: {run.error}")
    return [Result("insights_lookalike_lift", run.metrics["lift"],
                   {"precision_at_n": run.metrics["precision_at_n"], "base_rate": run.metrics["base_rate"],
                    "n": run.metrics["held_out"], "run_s": round(run_s, 1),
                    "peak_rss_mb": round(_peak_mb())},
                   "precision of the top N on the held-out seed / base rate (higher is better)")]


def run(args: argparse.Namespace) -> list[Result]:
    from bench.support import kept_dataset

    with kept_dataset(args, default=(DEFAULT_CUSTOMERS, DEFAULT_EVENTS), quick=(QUICK_CUSTOMERS, QUICK_EVENTS)) \
            as (tenant, now, note):
        actor = _actor(tenant)
        results, clustering = _clustering(actor, now)
        results += _personas(clustering, getattr(args, "ceiling_sample", 100_000))
        results += _churn(actor, now)
        results += _lookalikes(actor, now)
    first = results[0]
    results[0] = Result(first.name, first.ratio, first.measurements, first.ratio_means, notes=(*first.notes, note))
    return results
