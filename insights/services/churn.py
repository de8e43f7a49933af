"""The churn model: trained on a time split, scored on every customer, with predicted LTV.

Time split, as of `now` with the tenant's horizon H (MetricsSettings.churn_inactivity_days,
default 30) and a lead L (15 days): features are computed as of the cutoff now − H − L,
for the customers alive then (an event in the H days before it); the label is "no event
in [now − H, now)". So the model flags churners 45 days before the end of the window that
decides it, and is held-out-tested at 30 and 60 days too (`by_lead`). Scoring reads every
customer's features as of now: churn_risk is the chance of no activity 15–45 days ahead;
a customer already inactive for H days has risk 1 ("already inactive"), one never seen
has none.

Predicted LTV = expected monthly revenue × gross margin × expected paying months over 24
months under the monthly hazard the risk implies. The monthly revenue is a regression
(gradient boosting) of the revenue after the cutoff on the features at it, trained on
the same split — so a new sign-up on a large plan is valued by what customers like it
went on to pay, not by the little it has paid so far; its interval comes from the risk's
uncertainty in its calibration bin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from django.db import connection, transaction

from audit.services import audit_record
from common.actors import Actor
from common.clock import Clock
from common.errors import Code, DomainError, InsightCode, Problem
from customers.models import Customer, MetricsSettings
from insights.features import catalogue, extract_all
from insights.models import ChurnModel
from customers.metrics.ltv import DAYS_PER_MONTH
from insights.models.churn import ArpuRevenue, LearntRevenue, drivers, scores, strongest, train
from insights.models.ltv import ltv_summary, predicted_ltv
from insights.models.preprocess import Preprocessor
from insights.services import runs
from insights.services.scores import churn_scores_write
from insights.table import FeatureTable, draw
from ops.models import TaskRun
from ops.services import task_run_create
from ops.tasking import send_to_tenant
from tenants.permissions import ensure_permitted

MIN_CUSTOMERS = 200  # in the workspace
MIN_ALIVE = 100  # active at the cutoff: the customers a model learns and is tested on
LEAD_DAYS = 15
BY_LEAD = (0, 15, 30)  # lead days tested: features 30, 45 and 60 days before the window's end
TEST_SHARE = 0.25
MIN_PAYERS = 30  # training customers who paid after the cutoff, to learn monthly revenue from
# Customers the model learns from and is tested on, drawn from those alive at the cutoff
# (memory holds these samples, never the tenant; scoring reads everyone a block at a time).
TRAIN_LIMIT = 200_000
TEST_LIMIT = 100_000


class TooLittleData(DomainError):
    pass


def churn_model_request(*, actor: Actor, now: datetime, seed: int = 42) -> ChurnModel:
    ensure_permitted(actor, "insights.run")
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**31:
        raise DomainError(problems=[Problem("seed", Code.OUT_OF_RANGE, "A seed is a whole number from 0 to 2³¹ − 1.")])
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    with transaction.atomic():
        version = runs.next_version(ChurnModel)
        task = task_run_create(kind=TaskRun.Kind.CHURN_MODEL, label=f"Churn model {version}",
                               created_by_id=getattr(actor, "user_id", None))
        model = ChurnModel.objects.create(version=version, as_of=now, horizon_days=settings.churn_inactivity_days,
                                          lead_days=LEAD_DAYS, seed=seed, task_run=task,
                                          created_by_id=getattr(actor, "user_id", None))
        audit_record(actor=actor, action="insights.churn_model_requested", target=model,
                     changes={"horizon_days": model.horizon_days, "lead_days": LEAD_DAYS, "seed": seed})
        schema = connection.schema_name
        transaction.on_commit(lambda: send_to_tenant("insights.train_churn_model", schema_name=schema,
                                                     model_id=model.pk))
    return model


def churn_model_nightly(*, now: datetime, clock: Clock) -> ChurnModel | None:
    """Beat's nightly retraining and rescoring of a tenant with enough customers (smaller
    ones are left alone rather than failing every night)."""
    if Customer.objects.exclude(last_seen_at=None).count() < MIN_CUSTOMERS:
        return None
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    with transaction.atomic():
        version = runs.next_version(ChurnModel)
        task = task_run_create(kind=TaskRun.Kind.CHURN_MODEL, label=f"Nightly churn model {version}")
        model = ChurnModel.objects.create(version=version, as_of=now, horizon_days=settings.churn_inactivity_days,
                                          lead_days=LEAD_DAYS, task_run=task)
        audit_record(actor=None, action="insights.churn_model_requested", target=model,
                     changes={"horizon_days": model.horizon_days, "lead_days": LEAD_DAYS, "nightly": True})
    return churn_model_execute(model_id=model.pk, clock=clock)


def churn_model_execute(*, model_id: int, clock: Clock) -> ChurnModel:
    model = ChurnModel.objects.get(pk=model_id)

    def work(progress) -> str:
        _train_and_score(model, progress)
        done = ChurnModel.objects.get(pk=model.pk)
        return f"AUC {done.metrics['model']['auc']:.2f} on {done.metrics['test_customers']:,} held-out customers"

    return runs.execute(model, clock=clock, work=work)


# ---------------------------------------------------------------------- training


def _active_between(start: datetime, end: datetime) -> np.ndarray:
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT customer_id FROM customers_event WHERE timestamp >= %s AND timestamp < %s",
                       [start, end])
        return np.fromiter((row[0] for row in cursor.fetchall()), dtype=np.int64)


def _alive(values, seen_column: int, horizon: int) -> np.ndarray:
    """Customers seen within the horizon before the features' moment (not churned yet)."""
    seen = values[:, seen_column]
    return ~np.isnan(seen) & (seen < horizon)


def _split(ids: np.ndarray, y: np.ndarray, seed: int) -> np.ndarray:
    """Held-out customers: in each class (churned or not), the quarter with the lowest
    seeded hash of the id — stratified, so a small workspace's held-out part has churners
    and stayers whatever its ids, and a customer keeps its side across runs of a seed."""
    mixed = (ids.astype(np.uint64) * np.uint64(2654435761) + np.uint64(seed)) % np.uint64(2**32)
    test = np.zeros(len(ids), dtype=bool)
    for label in (0, 1):
        members = np.flatnonzero(y == label)
        if len(members) >= 2:
            lowest = members[np.argsort(mixed[members], kind="stable")]
            test[lowest[:max(1, round(TEST_SHARE * len(members)))]] = True
    return test


@dataclass
class Split:
    """The customers alive at the cutoff, sampled into training and held-out rows."""

    train_ids: np.ndarray
    train_values: np.ndarray
    y_train: np.ndarray
    test_ids: np.ndarray
    test_values: np.ndarray
    y_test: np.ndarray


def _time_split(features, cutoff, returned, horizon, seed, progress) -> Split:
    """Features at the cutoff (spilled: only the samples stay in memory), the label from
    `returned`; at most TRAIN_LIMIT training and TEST_LIMIT held-out customers."""
    reading = lambda done, total: progress(round(3 * done / total), 10, "Reading features at the cutoff")  # noqa: E731
    with FeatureTable.read(features, now=cutoff, progress=reading) as table:
        seen = table.column("days_since_last_seen")
        alive = np.concatenate([np.flatnonzero(_alive(values, seen, horizon)) + rows.start
                                for rows, values in table.blocks()] or [np.array([], dtype=np.int64)])
        ids = table.ids[alive]
        y = (~np.isin(ids, returned)).astype(int)
        _check_data(len(ids), y)
        test = _split(ids, y, seed)
        train_at, test_at = draw(np.flatnonzero(~test), TRAIN_LIMIT, seed=seed), \
            draw(np.flatnonzero(test), TEST_LIMIT, seed=seed + 1)
        for part in (y[train_at], y[test_at]):
            if not len(part) or part.min() == part.max():
                raise TooLittleData.single(
                    path="", code=InsightCode.TOO_LITTLE_DATA,
                    message="Both the training and the held-out customers need churners and stayers.")
        return Split(ids[train_at], table.rows(alive[train_at]), y[train_at],
                     ids[test_at], table.rows(alive[test_at]), y[test_at])


def _train_and_score(model: ChurnModel, progress) -> None:
    features, horizon, now = catalogue(), model.horizon_days, model.as_of
    label_start = now - timedelta(days=horizon)
    cutoff = label_start - timedelta(days=model.lead_days)
    _check_size()
    progress(0, 10, "Reading features at the cutoff")
    returned = _active_between(label_start, now)
    split = _time_split(features, cutoff, returned, horizon, model.seed, progress)
    prep = Preprocessor.fit(features, split.train_values)
    progress(4, 10, "Training the model and its baseline")
    trained = train(split.train_values, prep.transform(split.train_values), split.y_train,
                    split.test_values, prep.transform(split.test_values), split.y_test, seed=model.seed)
    revenue = _revenue_model(split.train_ids, split.train_values, features, cutoff, now, model.seed)
    progress(6, 10, "Testing how early churners are flagged")
    by_lead = _by_lead(trained.model, features, split, model, returned)
    del split
    progress(7, 10, "Scoring every customer")
    scored = _score(trained, prep, features, now, horizon, revenue,
                    lambda done, total: progress(7 + round(2 * done / total), 10, "Scoring every customer"))
    artifact = _save(model, trained, revenue, features)
    progress(9, 10, "Writing the scores")
    with transaction.atomic():
        churn_scores_write(model_id=model.pk, rows=scored.rows(horizon), now=now)
        ChurnModel.objects.filter(is_active=True).exclude(pk=model.pk).update(is_active=False)
        ChurnModel.objects.filter(pk=model.pk).update(
            status=ChurnModel.Status.SUCCEEDED, is_active=True, features=[f.as_json() for f in features],
            metrics=trained.metrics, calibration=trained.calibration, by_lead=by_lead, artifact=artifact,
            customers=len(scored.ids), ltv=scored.ltv_summary, importance=scored.importance())


def _check_size() -> None:
    customers = Customer.objects.count()
    if customers < MIN_CUSTOMERS:
        raise TooLittleData.single(path="", code=InsightCode.TOO_LITTLE_DATA,
                                   message=f"A churn model needs at least {MIN_CUSTOMERS} customers; "
                                           f"the workspace has {customers}.")


def _check_data(customers: int, y: np.ndarray) -> None:
    if customers < MIN_ALIVE:
        raise TooLittleData.single(path="", code=InsightCode.TOO_LITTLE_DATA,
                                   message=f"A churn model learns from customers active at the cutoff (45 days ago): "
                                           f"it needs at least {MIN_ALIVE}; there were {customers}.")
    if y.sum() == 0 or y.sum() == len(y):
        which = "no customer churned" if y.sum() == 0 else "every customer churned"
        raise TooLittleData.single(path="", code=InsightCode.TOO_LITTLE_DATA,
                                   message=f"Nothing to learn from: {which} in the horizon.")


def _by_lead(churn, features, split: Split, model: ChurnModel, returned) -> list[dict]:
    """The trained model on the held-out customers, with features further from the horizon
    (the model's own lead reuses the held-out rows it was tested on)."""
    out = []
    for lead in BY_LEAD:
        if lead == model.lead_days:
            values, y = split.test_values, split.y_test
        else:
            cutoff = model.as_of - timedelta(days=model.horizon_days + lead)
            blocks = list(extract_all(features, now=cutoff, customer_ids=split.test_ids))
            ids = np.concatenate([b.ids for b in blocks])
            values = np.vstack([b.values for b in blocks])
            alive = _alive(values, [f.name for f in features].index("days_since_last_seen"), model.horizon_days)
            values, y = values[alive], (~np.isin(ids[alive], returned)).astype(int)
        if len(y) < 20 or y.min() == y.max():
            continue
        risk = churn.predict_proba(values)[:, 1]
        flagged = risk >= np.quantile(risk, 0.8)
        out.append({"days_ahead": model.horizon_days + lead, "auc": scores(y, risk)["auc"],
                    "customers": int(len(y)), "churners": int(y.sum()),
                    "churners_in_top_fifth": round(float(y[flagged].sum() / y.sum()), 4)})
    return out


# ---------------------------------------------------------------------- scoring


def _revenue_model(ids, values, features, cutoff, now, seed):
    """Monthly revenue: learnt — what customers paid after the cutoff, from their features
    at it — when at least MIN_PAYERS of the training customers paid; else each customer's
    own ARPU so far (the tenant's where it has paid nothing)."""
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT customer_id, sum((properties ->> %(prop)s)::numeric)::float8 FROM customers_event "
            "WHERE name = %(event)s AND timestamp >= %(cutoff)s AND timestamp < %(now)s AND customer_id = ANY(%(ids)s) "
            "AND jsonb_typeof(properties -> %(prop)s) = 'number' GROUP BY customer_id",
            {"prop": settings.revenue_property, "event": settings.revenue_event, "cutoff": cutoff, "now": now,
             "ids": ids.tolist()})
        paid = {customer: amount for customer, amount in cursor.fetchall() if amount > 0}
    names = [f.name for f in features]
    if len(paid) < MIN_PAYERS:
        return ArpuRevenue.fit(values, revenue=names.index("revenue_total"), tenure=names.index("tenure_days"),
                               payers=len(paid))
    months = (now - cutoff).days / DAYS_PER_MONTH
    target = np.array([paid.get(i, 0.0) for i in ids.tolist()]) / months
    return LearntRevenue(HistGradientBoostingRegressor(random_state=seed, max_iter=200, loss="squared_error")
                         .fit(values, target), payers=len(paid))


@dataclass
class Scored:
    """Every customer's scores, kept compact (a few numbers each) until they are written."""

    ids: np.ndarray
    risk: np.ndarray
    gone: np.ndarray
    ltv: np.ndarray
    low: np.ndarray
    high: np.ndarray
    high_potential: np.ndarray
    groups: list[str]
    top_groups: np.ndarray  # customers × 3 group indices, strongest first
    top_values: np.ndarray  # their contributions
    contribution_sums: np.ndarray  # Σ |contribution| per group over the scored customers
    ltv_summary: dict

    def importance(self) -> list[dict]:
        scored = max(int((~np.isnan(self.risk) & ~self.gone).sum()), 1)
        return sorted(({"group": g, "mean_abs_contribution": round(float(v / scored), 4)}
                       for g, v in zip(self.groups, self.contribution_sums)),
                      key=lambda row: -row["mean_abs_contribution"])

    def rows(self, horizon: int):
        for i, customer_id in enumerate(self.ids.tolist()):
            risk = self.risk[i]
            if np.isnan(risk):
                continue
            if self.gone[i]:
                reasons = [{"group": "recency", "contribution": 1.0, "note": f"No activity for {horizon}+ days"}]
            else:
                reasons = [{"group": self.groups[j], "contribution": round(float(v), 4)}
                           for j, v in zip(self.top_groups[i].tolist(), self.top_values[i].tolist()) if v > 0.005]
            yield (customer_id, round(float(risk), 4), reasons, _money(self.ltv[i]), _money(self.low[i]),
                   _money(self.high[i]), bool(self.high_potential[i]))


def _money(value) -> float | None:
    return None if np.isnan(value) else round(float(value), 2)


def _score(trained, prep, features, now, horizon, revenue, progress) -> Scored:
    """Risk, drivers and predicted LTV of every customer as of now, a block at a time."""
    seen_column = [f.name for f in features].index("days_since_last_seen")
    tenure_column = [f.name for f in features].index("tenure_days")
    groups = [f.group for f in features]
    names = sorted(set(groups))
    parts = {key: [] for key in ("ids", "risk", "gone", "monthly", "tenure", "top_groups", "top_values")}
    sums = np.zeros(len(names))
    for block in extract_all(features, now=now, progress=progress):
        values, seen = block.values, block.values[:, seen_column]
        known = ~np.isnan(seen)
        gone, alive = known & (seen >= horizon), known & (seen < horizon)
        risk = np.full(len(values), np.nan)
        risk[gone] = 1.0
        contributions = np.zeros((len(values), len(names)), dtype=np.float32)
        if alive.any():
            risk[alive] = trained.model.predict_proba(values[alive])[:, 1]
            _, contributions[alive] = drivers(trained.model, values[alive], groups, prep.medians, risk[alive])
        sums += np.abs(contributions[alive]).sum(axis=0)
        top_groups, top_values = strongest(contributions)
        for key, part in (("ids", block.ids), ("risk", risk), ("gone", gone), ("tenure", values[:, tenure_column]),
                          ("monthly", np.maximum(revenue.predict(values), 0)), ("top_groups", top_groups),
                          ("top_values", top_values)):
            parts[key].append(part)
    if not parts["ids"]:
        none = np.array([])
        return Scored(np.array([], dtype=np.int64), none, none.astype(bool), none, none, none, none.astype(bool),
                      names, np.empty((0, 3), dtype=np.int8), np.empty((0, 3), dtype=np.float32), sums, {})
    ids, risk, gone, tenure, monthly = (np.concatenate(parts[key]) for key in ("ids", "risk", "gone", "tenure",
                                                                               "monthly"))
    ltv, low, high = _predicted_ltv(monthly, risk, trained.calibration, horizon)
    low[gone], high[gone] = ltv[gone], ltv[gone]  # already inactive: nothing uncertain about the risk
    scored_ltv = ltv[~np.isnan(ltv)]
    threshold = float(np.quantile(scored_ltv, 0.9)) if len(scored_ltv) else np.inf
    high_potential = (tenure <= 30) & ~np.isnan(ltv) & (ltv >= threshold) & (ltv > 0)
    return Scored(ids=ids, risk=risk, gone=gone, ltv=ltv, low=low, high=high, high_potential=high_potential,
                  groups=names, top_groups=np.concatenate(parts["top_groups"]),
                  top_values=np.concatenate(parts["top_values"]), contribution_sums=sums,
                  ltv_summary={**ltv_summary(scored_ltv, threshold, int(high_potential.sum())),
                               **revenue.basis()})


def _predicted_ltv(monthly_revenue, risk, calibration, horizon):
    settings = MetricsSettings.objects.order_by("id").first() or MetricsSettings()
    return predicted_ltv(monthly_revenue * float(settings.gross_margin), risk, calibration, LEAD_DAYS + horizon)


def _save(model: ChurnModel, trained, revenue, features) -> str:
    return runs.save_artifact(f"churn-{model.version}", {
        "churn": trained.model, "revenue": revenue, "features": [f.name for f in features], "version": model.version})
