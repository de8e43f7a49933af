"""Clustering runs: requested (checked, audited, queued), executed by a worker (features →
preprocess → k by silhouette or given → fit → lifts, persona drafts, proposed rules with
their measured precision/recall → activated), and turned into segments.

A run becomes active only in its last transaction, together with the customers' cluster
keys (CustomerMetrics.cluster, written by `insights.services.scores`); until then the
previous active run stays in force. A failure marks the run failed with its message.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.clock import Clock
from common.errors import Code, DomainError, InsightCode, NotFound, Problem
from insights.features import GROUPS, Feature, catalogue, extract_all
from insights.models import Cluster, ClusterAssignment, ClusteringRun
from insights.models.clustering import Moments, choose_k, fit, lifts, projection
from insights.models.distil import distil
from insights.models.persona import persona_draft
from insights.models.preprocess import Preprocessor
from insights.services import runs
from insights.services.scores import cluster_keys_write
from insights.table import FeatureTable, draw
from ops.models import TaskRun
from ops.services import task_run_create
from ops.tasking import send_to_tenant
from segments.models import Segment
from segments.rules.compile import compile_rule
from segments.rules import Group
from segments.rules.explain import describe
from segments.selectors.members import segment_members
from segments.selectors.rules import reference_ids, rule_context
from segments.services import segment_create
from tenants.permissions import ensure_permitted

MIN_CUSTOMERS = 200
# Who customers are and when they act. How much they act (activity, recency, revenue)
# follows where they are in their lifecycle more than who they are: with it the planted
# personas were recovered at ARI 0.67, without it at 0.91 (bench/insights.py).
DEFAULT_GROUPS = ["traits", "timing"]
K_LIMITS = (2, 20)
KEEP_RUNS = 5  # runs whose assignments are kept (older ones keep their clusters, not the rows)


class TooLittleData(DomainError):
    """The run cannot produce a model worth showing; its message says why."""


def clustering_run_request(*, actor: Actor, now: datetime, algorithm: str = ClusteringRun.Algorithm.KMEANS,
                           k: int | None = None, k_min: int = 2, k_max: int = 8, groups: list | None = None,
                           features: list | None = None, segment: str | None = None,
                           seed: int = 42) -> ClusteringRun:
    """Queue a clustering run of every customer (or a segment's members) as of `now`."""
    ensure_permitted(actor, "insights.run")
    groups, features = groups or [], features or []
    groups = groups if groups or features else list(DEFAULT_GROUPS)
    problems = _settings_problems(algorithm=algorithm, k=k, k_min=k_min, k_max=k_max, groups=groups,
                                  features=features, seed=seed)
    scope = None
    if segment is not None:
        ensure_permitted(actor, "segments.view")
        scope = Segment.objects.filter(key=segment).first() if isinstance(segment, str) else None
        if scope is None:
            problems.append(Problem("segment", Code.UNKNOWN_SEGMENT, f"No segment “{segment}”."))
    if problems:
        raise DomainError(problems=problems)
    with transaction.atomic():
        version = runs.next_version(ClusteringRun)
        task = task_run_create(kind=TaskRun.Kind.CLUSTERING, label=f"Clustering run {version}",
                               created_by_id=getattr(actor, "user_id", None))
        run = ClusteringRun.objects.create(
            version=version, algorithm=algorithm, k_requested=k, k_min=k_min, k_max=k_max, groups=groups,
            features=features, scope_segment=scope, scope_key=scope.key if scope else "", seed=seed, as_of=now,
            task_run=task, created_by_id=getattr(actor, "user_id", None))
        audit_record(actor=actor, action="insights.clustering_requested", target=run,
                     changes={"algorithm": algorithm, "k": k, "k_range": [k_min, k_max], "groups": groups,
                              "features": features, "segment": run.scope_key, "seed": seed})
        schema = connection.schema_name
        transaction.on_commit(lambda: send_to_tenant("insights.run_clustering", schema_name=schema, run_id=run.pk))
    return run


def _settings_problems(*, algorithm, k, k_min, k_max, groups, features, seed) -> list[Problem]:
    problems = []
    if algorithm not in ClusteringRun.Algorithm.values:
        problems.append(Problem("algorithm", Code.INVALID_CHOICE, "Choose kmeans or gmm."))
    low, high = K_LIMITS
    for path, value in (("k", k), ("k_min", k_min), ("k_max", k_max)):
        if value is None and path == "k":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(Problem(path, Code.OUT_OF_RANGE, f"A number of clusters is {low} to {high}."))
    if k is None and isinstance(k_min, int) and isinstance(k_max, int) and k_min > k_max:
        problems.append(Problem("k_max", Code.INVALID_RANGE, "k_max is at least k_min."))
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        problems.append(Problem("seed", Code.OUT_OF_RANGE, "A seed is a whole number from 0 to 2³¹ − 1."))
    if not isinstance(groups, list):
        problems.append(Problem("groups", Code.INVALID_TYPE, "A list of feature groups."))
    else:
        for index, group in enumerate(groups):
            if group not in GROUPS:
                problems.append(Problem(f"groups[{index}]", InsightCode.UNKNOWN_GROUP,
                                        f"Feature groups: {', '.join(GROUPS)}."))
    if not isinstance(features, list):
        problems.append(Problem("features", Code.INVALID_TYPE, "A list of feature names."))
    elif features:
        known = {f.name for f in catalogue()}
        for index, name in enumerate(features):
            if name not in known:
                problems.append(Problem(f"features[{index}]", InsightCode.UNKNOWN_FEATURE,
                                        f"“{name}” is not in the feature catalogue."))
    return problems


# ---------------------------------------------------------------------- execution


def _chosen(run: ClusteringRun, everything: list[Feature]) -> list[Feature]:
    """The features the run clusters on (its list, or its groups, or the default groups)."""
    if run.features:
        wanted = set(run.features)
        return [f for f in everything if f.name in wanted]
    groups = run.groups or DEFAULT_GROUPS
    return [f for f in everything if f.group in groups]


def _scope_ids(run: ClusteringRun) -> np.ndarray | None:
    if not run.scope_key:
        return None
    if run.scope_segment is None:
        raise NotFound.single(path="segment", code=Code.UNKNOWN_SEGMENT,
                              message=f"The segment “{run.scope_key}” was deleted before the run.")
    ids = segment_members(segment=run.scope_segment, at=run.as_of).values_list("id", flat=True)
    return np.fromiter(ids, dtype=np.int64)


def clustering_run_execute(*, run_id: int, clock: Clock) -> ClusteringRun:
    """Run a queued clustering run (a worker's job). A run that finished is left as it is;
    a redelivered one starts again from the features."""
    run = ClusteringRun.objects.get(pk=run_id)

    def work(progress) -> str:
        _execute(run, progress)
        done = ClusteringRun.objects.get(pk=run.pk)
        return f"{done.k} clusters of {done.customers:,} customers"

    return runs.execute(run, clock=clock, work=work)


STEPS = 10  # progress: reading features is 0–6, the model 7–10
SAMPLE = 100_000  # customers the preprocessing, k and the model are fitted on (all, up to it)


def _execute(run: ClusteringRun, progress) -> None:
    """Cluster on the chosen features; describe each cluster — its lifts, persona and rule —
    with every feature of the catalogue (read in the same queries), so a cluster found by
    traits still shows how it behaves. Fitted on a sample, then every customer labelled a
    block at a time from the spilled features: memory holds the sample, not the tenant."""
    everything = catalogue()
    chosen = {f.name for f in _chosen(run, everything)}
    columns = [i for i, f in enumerate(everything) if f.name in chosen]
    features = [everything[i] for i in columns]
    reading = lambda done, total: progress(round(6 * done / total), STEPS, "Reading features")  # noqa: E731
    with FeatureTable.read(everything, now=run.as_of, customer_ids=_scope_ids(run), progress=reading) as table:
        if len(table) < MIN_CUSTOMERS:
            raise TooLittleData.single(path="", code=InsightCode.TOO_LITTLE_DATA,
                                       message=f"Clustering needs at least {MIN_CUSTOMERS} customers; "
                                               f"the scope has {len(table)}.")
        sample = draw(len(table), SAMPLE, seed=run.seed)
        described = table.rows(sample)
        prep = Preprocessor.fit(features, described[:, columns])
        matrix = prep.transform(described[:, columns])
        progress(7, STEPS, "Choosing the number of clusters")
        silhouette = {}
        if run.k_requested:
            k = run.k_requested
        else:
            k, silhouette = choose_k(matrix, range(run.k_min, run.k_max + 1), algorithm=run.algorithm, seed=run.seed)
        progress(8, STEPS, f"Fitting {k} clusters")
        fitted = fit(matrix, k, algorithm=run.algorithm, seed=run.seed)
        labels, moments = _label_everyone(table, columns, prep, fitted, k)
        ids = table.ids
    artifact = runs.save_artifact(f"clustering-{run.version}", {"preprocessor": prep, "fitted": fitted,
                                                               "version": run.version})
    progress(9, STEPS, "Describing clusters and proposing rules")
    clusters = _describe(run, everything, described, labels[sample], moments, ids, labels)
    with transaction.atomic():
        _store_assignments(run, ids, labels)
        Cluster.objects.bulk_create(clusters)
        ClusteringRun.objects.filter(pk=run.pk).update(
            status=ClusteringRun.Status.SUCCEEDED, k=k, customers=len(ids), artifact=artifact,
            silhouette={str(k): v for k, v in silhouette.items()},
            projection=projection(matrix, labels[sample], seed=run.seed),
            features=[f.as_json() for f in features],
            quality=_quality(clusters, silhouette.get(k)))
        _activate(run)
    _forget_old_assignments()


def _label_everyone(table: FeatureTable, columns: list[int], prep: Preprocessor, fitted, k: int):
    """Every customer's cluster, and the moments of every feature per cluster (for lifts)."""
    labels = np.empty(len(table), dtype=np.int16)
    moments = Moments(k, len(table.features))
    for rows, values in table.blocks():
        labels[rows] = fitted.predict(prep.transform(values[:, columns]))
        moments.add(values, labels[rows])
    return labels, moments


def _describe(run, features, sample_values, sample_labels, moments, ids, labels) -> list[Cluster]:
    """Each cluster's lifts (over everyone), persona draft, and the rule a tree distils from
    the sample, measured against the whole cluster."""
    imputed = Preprocessor.fit(features, sample_values).impute(sample_values)
    per_cluster = lifts(moments, [f.name for f in features], top=16)
    clusters, taken = [], set()
    for index in range(moments.count.shape[0]):
        member = labels == index
        persona = persona_draft(per_cluster[index], taken=taken)
        taken.add(persona["name"])
        proposal = distil(imputed, sample_labels == index, features, seed=run.seed)
        cluster = Cluster(run=run, index=index, key=f"r{run.version}c{index + 1}", size=int(member.sum()),
                          share=round(float(member.mean()), 4), lift=per_cluster[index], persona=persona,
                          proposal=proposal)
        if proposal is not None:
            _measure(cluster, proposal, ids, member, run.as_of)
        clusters.append(cluster)
    return clusters


def _measure(cluster: Cluster, proposal: dict, ids: np.ndarray, member: np.ndarray, now: datetime) -> None:
    """Precision and recall of the proposed rule itself, evaluated as the engine would, in scope."""
    parsed = rule_context(definition=proposal)
    sql = compile_rule(parsed.group, now=now, refs=reference_ids(parsed.references), rollups=parsed.rollups(now))
    with connection.cursor() as cursor:
        cursor.execute(sql.text, sql.params)
        selected = np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)
    chosen = np.isin(ids, selected)
    hits = int((chosen & member).sum())
    cluster.matched = int(chosen.sum())
    cluster.precision = round(hits / cluster.matched, 4) if cluster.matched else 0.0
    cluster.recall = round(hits / int(member.sum()), 4)
    cluster.proposal_summary = spelled_out(parsed.group)


def spelled_out(node) -> str:
    """The whole rule in one line: "any of (all of (a; b); c)"."""
    if isinstance(node, Group):
        inner = "; ".join(spelled_out(child) for child in node.conditions)
        return inner if len(node.conditions) == 1 else f"{describe(node)} ({inner})"
    return describe(node)


def _quality(clusters: list[Cluster], silhouette: float | None) -> dict:
    f1s = [c.f1 for c in clusters if c.f1 is not None]
    return {"silhouette": silhouette, "median_rule_f1": round(float(np.median(f1s)), 4) if f1s else None,
            "smallest_cluster_share": min(c.share for c in clusters)}


def _store_assignments(run: ClusteringRun, ids: np.ndarray, labels: np.ndarray) -> None:
    ClusterAssignment.objects.filter(run=run).delete()  # a redelivered run writes them again
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY {ClusterAssignment._meta.db_table} (run_id, customer_id, index) FROM STDIN") as copy:
            for customer_id, label in zip(ids.tolist(), labels.tolist()):
                copy.write_row((run.pk, customer_id, label))


def _activate(run: ClusteringRun) -> None:
    """This run in force: the only active one, its keys in the customers' metrics."""
    ClusteringRun.objects.filter(is_active=True).exclude(pk=run.pk).update(is_active=False)
    ClusteringRun.objects.filter(pk=run.pk).update(is_active=True)
    cluster_keys_write(run_id=run.pk, key_prefix=f"r{run.version}c", now=run.as_of)


def _forget_old_assignments() -> None:
    old = ClusteringRun.objects.filter(is_active=False).order_by("-version").values_list("pk", flat=True)[KEEP_RUNS:]
    ClusterAssignment.objects.filter(run_id__in=list(old)).delete()


def clustering_reassign(*, now: datetime) -> int:
    """Every customer into the active run's clusters as of `now` (its fitted model, its
    features): new customers get a cluster, moved ones change; the keys stay the run's, so
    rules on `metric cluster` keep their meaning. Returns the customers assigned."""
    run = ClusteringRun.objects.filter(is_active=True).first()
    if run is None or not run.artifact:
        return 0
    saved = runs.load_artifact(run.artifact)
    features = [Feature(**f) for f in run.features]
    ids, labels = [], []
    for block in extract_all(features, now=now):
        ids.append(block.ids)
        labels.append(saved["fitted"].predict(saved["preprocessor"].transform(block.values)))
    if not ids:
        return 0
    ids, labels = np.concatenate(ids), np.concatenate(labels)
    with transaction.atomic():
        _store_assignments(run, ids, labels)
        cluster_keys_write(run_id=run.pk, key_prefix=f"r{run.version}c", now=now)
        ClusteringRun.objects.filter(pk=run.pk).update(reassigned_at=now)
    return len(ids)


# ---------------------------------------------------------------------- reads and actions


def clustering_run_get(*, version: int) -> ClusteringRun:
    run = ClusteringRun.objects.filter(version=version).first()
    if run is None:
        raise NotFound.single(path="", code=Code.NOT_FOUND, message=f"No clustering run {version}.")
    return run


def segment_from_cluster(*, actor: Actor, cluster: Cluster, key: str, name: str | None = None,
                         now: datetime) -> Segment:
    """A dynamic segment from the cluster's proposed rule, its persona card filled in from
    the draft (both editable afterwards like any segment)."""
    ensure_permitted(actor, "segments.edit")
    if cluster.proposal is None:
        raise DomainError.single(path="cluster", code=InsightCode.NO_PROPOSAL,
                                 message="This cluster has no proposed rule to build a segment from.")
    persona = {field: value for field, value in cluster.persona.items() if value and value != "—"}
    segment, _ = segment_create(
        actor=actor, key=key, name=name or persona.get("name") or cluster.key, definition=cluster.proposal,
        description=f"From clustering run {cluster.run.version}, cluster {cluster.key} "
                    f"(precision {cluster.precision:.0%}, recall {cluster.recall:.0%}).",
        persona=persona, note=f"Proposed by clustering run {cluster.run.version}", now=now)
    Cluster.objects.filter(pk=cluster.pk).update(segment=segment)
    audit_record(actor=actor, action="insights.segment_from_cluster", target=segment,
                 changes={"run": cluster.run.version, "cluster": cluster.key})
    return segment
