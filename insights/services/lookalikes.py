"""Lookalikes of a seed segment: requested (audited, queued), scored by a worker (every
customer's features as of `now`, a classifier of seed against the rest, the held-out
precision), and turned into a static segment of the top N or of those above a score."""

from __future__ import annotations

from datetime import datetime

import numpy as np
from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.clock import Clock
from common.errors import Code, DomainError, InsightCode, NotFound, Problem
from insights.features import catalogue
from insights.models import LookalikeRun, LookalikeScore
from insights.models.lookalike import fit_and_score
from insights.services import runs
from insights.table import FeatureTable
from ops.models import TaskRun
from ops.services import task_run_create
from ops.tasking import send_to_tenant
from segments.models import Segment
from segments.selectors.members import segment_members
from segments.services import segment_create, static_members_add
from tenants.permissions import ensure_permitted

MIN_SEED = 20
MIN_CUSTOMERS = 200
MAX_SEGMENT = 100_000
KEEP_RUNS = 3


class TooLittleData(DomainError):
    pass


def lookalike_run_request(*, actor: Actor, segment: str, now: datetime, seed: int = 42) -> LookalikeRun:
    ensure_permitted(actor, "insights.run")
    ensure_permitted(actor, "segments.view")
    found = Segment.objects.filter(key=segment).first() if isinstance(segment, str) else None
    problems = []
    if found is None:
        problems.append(Problem("segment", Code.UNKNOWN_SEGMENT, f"No segment “{segment}”."))
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        problems.append(Problem("seed", Code.OUT_OF_RANGE, "A seed is a whole number from 0 to 2³¹ − 1."))
    if problems:
        raise DomainError(problems=problems)
    with transaction.atomic():
        version = runs.next_version(LookalikeRun)
        task = task_run_create(kind=TaskRun.Kind.LOOKALIKES, label=f"Lookalikes of {found.name}",
                               created_by_id=getattr(actor, "user_id", None))
        run = LookalikeRun.objects.create(version=version, seed_segment=found, seed_key=found.key, seed=seed,
                                          as_of=now, task_run=task, created_by_id=getattr(actor, "user_id", None))
        audit_record(actor=actor, action="insights.lookalikes_requested", target=run,
                     changes={"segment": found.key, "seed": seed})
        schema = connection.schema_name
        transaction.on_commit(lambda: send_to_tenant("insights.score_lookalikes", schema_name=schema, run_id=run.pk))
    return run


def lookalike_run_execute(*, run_id: int, clock: Clock) -> LookalikeRun:
    run = LookalikeRun.objects.get(pk=run_id)

    def work(progress) -> str:
        _score(run, progress)
        done = LookalikeRun.objects.get(pk=run.pk)
        return f"Top {done.metrics.get('held_out', 0):,}: precision {done.metrics.get('precision_at_n', 0):.0%}"

    return runs.execute(run, clock=clock, work=work)


def _score(run: LookalikeRun, progress) -> None:
    if run.seed_segment is None:
        raise NotFound.single(path="segment", code=Code.UNKNOWN_SEGMENT,
                              message=f"The segment “{run.seed_key}” was deleted before the run.")
    features = catalogue()
    members = np.fromiter(segment_members(segment=run.seed_segment, at=run.as_of).values_list("id", flat=True),
                          dtype=np.int64)
    reading = lambda done, total: progress(round(7 * done / total), 10, "Reading features")  # noqa: E731
    with FeatureTable.read(features, now=run.as_of, progress=reading) as table:
        ids = table.ids
        seed_mask = np.isin(ids, members)
        if seed_mask.sum() < MIN_SEED or len(ids) - seed_mask.sum() < MIN_CUSTOMERS:
            raise TooLittleData.single(
                path="", code=InsightCode.TOO_LITTLE_DATA,
                message=f"Lookalikes need a seed of at least {MIN_SEED} customers and {MIN_CUSTOMERS} others to "
                        f"rank; the seed has {int(seed_mask.sum())}, the others {int(len(ids) - seed_mask.sum())}.")
        progress(8, 10, "Learning the seed")
        found = fit_and_score(table, seed_mask, seed=run.seed)
    outside = ~seed_mask
    counts, _ = np.histogram(found.scores[outside], bins=10, range=(0, 1))
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM insights_lookalikescore WHERE run_id = %s", [run.pk])
            with cursor.copy("COPY insights_lookalikescore (run_id, customer_id, score) FROM STDIN") as copy:
                for customer_id, score in zip(ids[outside].tolist(), found.scores[outside].tolist()):
                    copy.write_row((run.pk, customer_id, round(score, 5)))
        LookalikeRun.objects.filter(pk=run.pk).update(
            status=LookalikeRun.Status.SUCCEEDED, seed_size=int(seed_mask.sum()), customers=len(ids),
            metrics=found.metrics,
            histogram=[{"from": i / 10, "to": (i + 1) / 10, "customers": int(c)} for i, c in enumerate(counts)])
    old = LookalikeRun.objects.order_by("-version").values_list("pk", flat=True)[KEEP_RUNS:]
    LookalikeScore.objects.filter(run_id__in=list(old)).delete()


def lookalike_segment_create(*, actor: Actor, run: LookalikeRun, key: str, name: str, now: datetime,
                             top: int | None = None, min_score: float | None = None) -> Segment:
    """A static segment of the run's most seed-like customers outside the seed: the top
    `top`, or every one scoring at least `min_score`."""
    ensure_permitted(actor, "segments.edit")
    problems = []
    if run.status != LookalikeRun.Status.SUCCEEDED:
        problems.append(Problem("run", InsightCode.NOT_FINISHED, "The lookalike run has not finished."))
    if (top is None) == (min_score is None):
        problems.append(Problem("top", Code.INVALID_VALUE, "Give the top N or a minimum score, not both."))
    elif top is not None and (not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_SEGMENT):
        problems.append(Problem("top", Code.OUT_OF_RANGE, f"Top N is 1 to {MAX_SEGMENT:,}."))
    elif min_score is not None and (not isinstance(min_score, (int, float)) or not 0 < min_score < 1):
        problems.append(Problem("min_score", Code.OUT_OF_RANGE, "A score between 0 and 1."))
    if problems:
        raise DomainError(problems=problems)
    scores = LookalikeScore.objects.filter(run=run).order_by("-score", "customer_id")
    chosen = scores[:top] if top is not None else scores.filter(score__gte=min_score)[:MAX_SEGMENT]
    customer_ids = list(chosen.values_list("customer_id", flat=True))
    with transaction.atomic():
        segment, _ = segment_create(
            actor=actor, key=key, name=name, kind=Segment.Kind.STATIC, now=now,
            description=f"Lookalikes of {run.seed_key} (run {run.version}): "
                        + (f"the top {top:,}" if top is not None else f"score ≥ {min_score}")
                        + f"; held-out precision {run.metrics.get('precision_at_n', 0):.0%}, "
                          f"{run.metrics.get('lift', 0)}× the base rate.")
        static_members_add(actor=actor, segment=segment, customer_ids=customer_ids, now=now)
        audit_record(actor=actor, action="insights.lookalike_segment_created", target=segment,
                     changes={"run": run.version, "seed": run.seed_key, "top": top, "min_score": min_score,
                              "customers": len(customer_ids)})
    return segment
