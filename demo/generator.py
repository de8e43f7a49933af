"""Synthetic SaaS customers, events, survey answers and consent, with planted truth.

For the demo tenant, tests and benchmarks. Every customer belongs to one of the personas
in demo/personas.py, which shape its traits and its behaviour; a share of
each persona churns (activity decays exponentially, then stops a month or more before
`now`, paying churners usually with `subscription_cancelled`). What was planted — persona,
churned, churned_at — is written to GeneratorTruth, never to the customer, so segmentation
and clustering cannot read the answer but their tests can.

Deterministic for (seed, now). Runs append: external ids continue after the last one.

Speed: numpy draws everything for a chunk of customers at once; rows are formatted as
COPY text in Python joins (no per-row adaptation) and streamed by a background writer
thread while the next block is formatted, so the Python side overlaps PostgreSQL's index
maintenance. Memory is bounded by the chunk size, not by N or M.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connection
from psycopg.copy import QueuedLibpqWriter

from customers import partitions
from customers.ingest.store import EVENT_REGISTRY_MERGE
from customers.models import Survey, TraitDefinition
from demo import personas as P
from segments.rules.vocabulary import infer_type

CUSTOMER_CHUNK = 20_000  # customers per chunk; part of the determinism (seeds are per chunk)
WRITE_LINES = 50_000  # COPY lines per write() call
DAY = 86_400
WEEK = 7 * DAY
MONTH = 30.4375 * DAY
YEAR = 365.25 * DAY
CHURN_QUIET_DAYS = 30  # churners stop at least this long before `now`
LAST_EVENT_GAP = 60  # no event in the last minute before `now`
NULL = "\\N"  # COPY text format

EVENT_NAMES = ["user_signed_up", *P.RANDOM_EVENTS, "subscription_upgraded", "subscription_cancelled"]
_CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
SIGNUP, LOGIN, PURCHASE = _CODE["user_signed_up"], _CODE["login"], _CODE["purchase"]
UPGRADE, CANCEL = _CODE["subscription_upgraded"], _CODE["subscription_cancelled"]

CUSTOMER_COLUMNS = (
    "id", "external_id", "anonymous_ids", "email", "name", "birth_date", "gender", "income_band",
    "occupation", "country", "region", "city", "language", "timezone", "company", "industry",
    "company_size", "annual_revenue", "device_type", "os", "tech_stack", "plan",
    "signed_up_at", "last_seen_at", "email_opt_in", "traits", "created_at", "updated_at",
)
EVENT_COLUMNS = ("customer_id", "name", "timestamp", "properties", "message_id", "received_at", "source")
SURVEY_COLUMNS = ("customer_id", "survey_id", "question", "score", "comment", "responded_at", "message_id",
                  "created_at")
CONSENT_COLUMNS = ("customer_id", "channel", "granted", "changed_at", "source")
CONSENT_CHANGE_COLUMNS = ("customer_id", "channel", "granted", "changed_at", "source", "created_at")
TRUTH_COLUMNS = ("customer_id", "persona", "churned", "churned_at", "seed", "created_at")

FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas", "Kemi", "Liam",
         "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Victor", "Wen", "Yusuf"]
LAST = ["Silva", "Smith", "Müller", "Dubois", "Khan", "Tanaka", "Okafor", "Novak", "García", "Jensen",
        "Rossi", "Cohen", "Ivanova", "Park", "Nguyen", "Andersson", "Kowalski", "Mensah", "Sato", "Haddad"]
_ASCII = str.maketrans({"ü": "u", "í": "i", "é": "e", "á": "a"})
COMPANY_WORDS = (["Blue", "North", "Bright", "Quiet", "Rapid", "Iron", "Silver", "Green", "Open", "Clear",
                  "Swift", "True", "Red", "Deep", "Bold", "Prime"],
                 ["Harbor", "Pine", "Signal", "Forge", "River", "Peak", "Field", "Stone", "Wave", "Bridge",
                  "Leaf", "Orbit", "Cloud", "Atlas", "Grove", "Spark"])
COMPANY_SUFFIX = [(10, "Studio"), (200, "Labs"), (2000, "Inc."), (10**9, "Group")]
COMMENTS = {  # by NPS band
    "detractor": ["Too expensive for what it does", "Hard to set up", "Missing features we need", ""],
    "passive": ["Does the job", "Good, but the UI could be simpler", "", ""],
    "promoter": ["Love the API", "Saves my team hours every week", "Great support", ""],
}


@dataclass(frozen=True)
class GenerateResult:
    customers: int
    events: int
    survey_responses: int
    consents: int
    consent_changes: int
    seconds: float
    personas: dict[str, int]
    churned: int


Progress = Callable[[str, int], None]


# ------------------------------------------------------------------ tables built once


def _cum(weights, vocabulary: list[str] | None = None) -> np.ndarray:
    """Cumulative probabilities over `vocabulary` (a dict of weights) or a weight list."""
    if vocabulary is not None:
        weights = [weights.get(v, 0.0) for v in vocabulary]
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    width = max(len(r) for r in rows)
    return np.array([np.concatenate([r, np.ones(width - len(r))]) for r in rows])


def _pick(table: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per item, the first category whose cumulative probability (table[row]) exceeds u."""
    return (u[:, None] >= table[rows]).sum(axis=1)


@lru_cache(maxsize=1)
def _tables() -> dict:
    ps = P.PERSONAS
    t: dict = {"persona_cum": _cum([p.share for p in ps])}
    for name, vocab, attr in [
        ("gender", P.GENDERS, "gender"), ("income", P.INCOME_BANDS, "income"),
        ("occupation", P.OCCUPATIONS, "occupation"), ("country", list(P.COUNTRIES), "country"),
        ("industry", P.INDUSTRIES, "industry"), ("device", P.DEVICES, "device"),
        ("desktop_os", P.OSES["desktop"], "desktop_os"), ("values", P.VALUES_PRIORITY, "values_priority"),
        ("risk", P.RISK_ATTITUDES, "risk_attitude"), ("need", P.PRIMARY_NEEDS, "primary_need"),
        ("use_case", P.USE_CASES, "use_case"), ("plan", P.PLANS, "plan"), ("mix", P.RANDOM_EVENTS, "mix"),
        ("signup_source", P.SIGNUP_SOURCES, "signup_source"), ("cancel_reason", P.CANCEL_REASONS, "cancel_reason"),
        ("login", P.LOGIN_METHODS, "login"),
    ]:
        t[name] = np.array([_cum(getattr(p, attr), vocab if isinstance(getattr(p, attr), dict) else None)
                            for p in ps])
    for attr in ["annual_share", "upgraded_share", "churn", "decay", "cancel_share", "price_sensitivity",
                 "nps_rate", "csat_rate", "revenue_per_employee", "weekend"]:
        t[attr] = np.array([getattr(p, attr) for p in ps], dtype=np.float64)
    for attr in ["age", "company_size", "seats", "signup_age", "rate", "one_off_amount", "nps", "csat"]:
        t[attr] = np.array([getattr(p, attr) for p in ps], dtype=np.float64)
    t["tech"] = np.array([[p.tech.get(x, 0.0) for x in P.TECH] for p in ps])
    t["consent"] = np.array([p.consent for p in ps], dtype=np.float64)  # (persona, channel, [ask, grant])

    # Properties of the randomly drawn events: every variant's JSON text precomputed once;
    # an event's properties are PROPS[offset[name] + variant]. Purchases are formatted
    # per row (their amounts vary). TRICKY: COPY text format — no tab, newline or backslash.
    def weights(vocab, attr):
        return lambda p: [getattr(p, attr).get(x, 0.0) for x in vocab]

    variants: dict[str, tuple[list[str], Callable | None]] = {
        "login": ([f'{{"method": "{m}"}}' for m in P.LOGIN_METHODS], lambda p: p.login),
        "page_viewed": ([f'{{"path": "{x}"}}' for x in P.PAGES], weights(P.PAGES, "pages")),
        "project_created": ([f'{{"template": "{x}"}}' for x in P.PROJECT_TEMPLATES], None),
        "api_key_generated": (['{"scope": "read"}', '{"scope": "write"}'], None),
        "feature_x_used": ([f'{{"feature": "{x}"}}' for x in P.FEATURES], weights(P.FEATURES, "features")),
        "invite_sent": (['{"role": "member"}', '{"role": "admin"}'], None),
        "report_exported": ([f'{{"format": "{x}"}}' for x in P.EXPORT_FORMATS], None),
        "support_ticket_opened": ([f'{{"topic": "{x}"}}' for x in P.TICKET_TOPICS],
                                  weights(P.TICKET_TOPICS, "tickets")),
        "purchase": (["{}"], None),
    }
    props: list[str] = []
    offsets = np.zeros(len(EVENT_NAMES), dtype=np.int64)
    width = max(len(texts) for texts, _ in variants.values())
    cum = np.ones((len(ps), len(EVENT_NAMES), width))
    for name in P.RANDOM_EVENTS:
        texts, weight = variants[name]
        offsets[_CODE[name]] = len(props)
        props += texts
        for k, p in enumerate(ps):
            cum[k, _CODE[name], : len(texts)] = _cum(weight(p) if weight else [1.0] * len(texts))
    t["variant_cum"], t["prop_offset"] = cum, offsets
    t["variant_count"] = np.array([len(variants[n][0]) if n in variants else 1 for n in EVENT_NAMES])
    # lifecycle events' variants
    offsets[SIGNUP] = len(props)
    props += [f'{{"source": "{s}"}}' for s in P.SIGNUP_SOURCES]
    offsets[UPGRADE] = len(props)
    props += [f'{{"from_plan": "free", "to_plan": "{plan}"}}' for plan in P.PLANS]
    offsets[CANCEL] = len(props)
    props += [f'{{"plan": "{plan}", "reason": "{r}"}}' for plan in P.PLANS for r in P.CANCEL_REASONS]
    t["props"] = np.array(props, dtype=object)
    t["names"] = np.array(EVENT_NAMES, dtype=object)

    # tech_stack as a PostgreSQL array literal for every subset of TECH (bit mask → text)
    order = sorted(range(len(P.TECH)), key=lambda i: P.TECH[i])
    t["stack_text"] = np.array(
        ["{" + ",".join(P.TECH[i] for i in order if mask >> i & 1) + "}" for mask in range(1 << len(P.TECH))],
        dtype=object)
    cities = [(c, region, city) for c, (_lang, _tz, places) in P.COUNTRIES.items() for region, city in places]
    t["region"] = np.array([r for _c, r, _ in cities], dtype=object)
    t["city"] = np.array([x for _c, _r, x in cities], dtype=object)
    countries = list(P.COUNTRIES)
    t["city_offset"] = np.array([next(i for i, c in enumerate(cities) if c[0] == k) for k in countries])
    t["city_count"] = np.array([len(P.COUNTRIES[k][2]) for k in countries])
    t["countries"] = np.array(countries, dtype=object)
    t["language"] = np.array([P.COUNTRIES[k][0] for k in countries], dtype=object)
    t["timezone"] = np.array([P.COUNTRIES[k][1] for k in countries], dtype=object)
    # Standard-time offsets, enough to place the weekend persona's events on its local weekend.
    t["utc_offset"] = np.array([int(ZoneInfo(P.COUNTRIES[k][1]).utcoffset(datetime(2026, 1, 15)).total_seconds())
                                for k in countries], dtype=np.int64)
    t["plan_price"] = np.array([P.PLAN_PRICE[x] for x in P.PLANS])
    t["plans"] = np.array(P.PLANS, dtype=object)
    return t


def _obj(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def _ts_text(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds → 'YYYY-MM-DD HH:MM:SS+00' (object array of str)."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object)
    return text + "+00"


# ------------------------------------------------------------------ the planted skeleton


def _skeleton(seed: int, chunk: int, n: int, now_s: int) -> dict[str, np.ndarray]:
    """Who each customer of the chunk is and how long and how much it is active: persona,
    plan, sign-up, churn, billing. Cheap, so the event budget can be split over all
    customers (a first pass) before anything is written."""
    t = _tables()
    rng = np.random.default_rng([seed, 1, chunk])
    persona = np.searchsorted(t["persona_cum"], rng.random(n), side="right")
    # The country is drawn here (its own stream), as the weekend persona's events need the local clock.
    country = _pick(t["country"], persona, np.random.default_rng([seed, 3, chunk]).random(n))
    a, b = t["signup_age"][persona].T
    signup = now_s - 3600 - (rng.beta(a, b) * (P.HISTORY_DAYS * DAY - 3600)).astype(np.int64)
    plan = _pick(t["plan"], persona, rng.random(n))
    paid = plan > 0
    annual = paid & (rng.random(n) < t["annual_share"][persona])
    upgraded = paid & (rng.random(n) < t["upgraded_share"][persona])
    open_end = now_s - LAST_EVENT_GAP
    room = open_end - signup - CHURN_QUIET_DAYS * DAY
    churner = (rng.random(n) < t["churn"][persona]) & (room > 14 * DAY)
    churn_at = signup + (np.maximum(room, 0) * (0.05 + 0.95 * rng.random(n) ** 1.5)).astype(np.int64)
    end = np.where(churner, churn_at, open_end)
    life = np.maximum(end - signup, 1)
    upgrade_at = signup + (np.where(upgraded, rng.random(n) * 0.5, 0.0) * life).astype(np.int64)
    period = np.where(annual, YEAR, MONTH)
    billed = np.where(paid, np.floor((end - upgrade_at) / period).astype(np.int64) + 1, 0)
    mu, sigma = t["rate"][persona].T
    rate = rng.lognormal(mu, sigma)  # random events per active day
    k = t["decay"][persona]
    # churners' rate falls as e^(-k·x) over their life x ∈ [0, 1]: expected events ∝ (1 - e^-k)/k
    expected = rate * life / DAY * np.where(churner, (1 - np.exp(-k)) / k, 1.0)
    cancels = churner & paid & (rng.random(n) < t["cancel_share"][persona])
    fixed = churner + upgraded + billed  # lifecycle events: the last one, the upgrade, invoices
    return {"persona": persona, "country": country, "signup": signup, "plan": plan, "paid": paid, "annual": annual,
            "upgraded": upgraded, "churner": churner, "end": end, "life": life, "upgrade_at": upgrade_at,
            "period": period, "billed": billed, "cancels": cancels, "fixed": fixed,
            "expected": expected}


# ------------------------------------------------------------------ one chunk, as COPY text


def _allocate(rng, budget: int, fixed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Split `budget` events over items: the lifecycle events (`fixed`) first, the rest in
    proportion to the expected random activity; when the budget cannot even pay for the
    lifecycle events, those are thinned in proportion instead."""
    total = int(fixed.sum())
    if budget <= total:
        return rng.multinomial(budget, fixed / total) if budget else np.zeros(len(fixed), dtype=np.int64)
    return fixed + rng.multinomial(budget - total, expected / expected.sum())


WEEKEND_START = 4 * DAY + 18 * 3600  # Friday 18:00, from Monday 00:00
WEEKEND_LENGTH = 46 * 3600  # until Sunday 16:00
EPOCH_MONDAY = 4 * DAY  # 1970-01-05, the first Monday after the epoch


def _weekend_moves(t, sk: dict, owner: np.ndarray, stamp: np.ndarray, rng) -> np.ndarray:
    """Moves a persona's `weekend` share of random events into its customers' local
    Friday-evening-to-Sunday-afternoon of the same week (a week earlier or later when that
    falls outside the customer's life), so the pattern is planted, not the event count."""
    moving = rng.random(len(owner)) < t["weekend"][sk["persona"][owner]]
    if not moving.any():
        return stamp
    who = owner[moving]
    offset = t["utc_offset"][sk["country"][who]]
    local = stamp[moving] + offset
    monday = (local - EPOCH_MONDAY) // WEEK * WEEK + EPOCH_MONDAY
    moved = monday + WEEKEND_START + (rng.random(len(who)) * WEEKEND_LENGTH).astype(np.int64) - offset
    start, end = sk["signup"][who] + 1, sk["end"][who]
    moved = np.where(moved > end, moved - WEEK, moved)
    moved = np.where(moved < start, moved + WEEK, moved)
    out = stamp.copy()
    out[moving] = np.clip(moved, start, end)
    return out


def _events(rng, t, sk: dict, budget: int, has_signup: np.ndarray, seats: np.ndarray,
            weekend_rng) -> dict[str, np.ndarray]:
    """The chunk's events: owner (chunk index), name code, epoch seconds, property text."""
    n = len(sk["persona"])
    persona = sk["persona"]
    k = _allocate(rng, budget, sk["fixed"].astype(np.int64), sk["expected"])
    # TRICKY: a small budget is spent in this order: the churner's last event, the upgrade,
    # the invoices (evenly thinned), then the random events.
    n_final = np.minimum(sk["churner"].astype(np.int64), k)
    rest = k - n_final
    n_upgrade = np.minimum(sk["upgraded"].astype(np.int64), rest)
    rest -= n_upgrade
    n_invoice = np.minimum(sk["billed"], rest)
    n_random = rest - n_invoice
    idx = np.arange(n)
    parts = []  # (owner, name code, ts, prop code)

    owner = idx[has_signup]
    source = _pick(t["signup_source"], persona[owner], rng.random(len(owner)))
    parts.append((owner, np.full(len(owner), SIGNUP), sk["signup"][owner], t["prop_offset"][SIGNUP] + source))

    owner = idx[n_final > 0]
    cancel = sk["cancels"][owner]
    reason = _pick(t["cancel_reason"], persona[owner], rng.random(len(owner)))
    method = _pick(t["login"], persona[owner], rng.random(len(owner)))
    parts.append((owner, np.where(cancel, CANCEL, LOGIN), sk["end"][owner],
                  np.where(cancel, t["prop_offset"][CANCEL] + sk["plan"][owner] * len(P.CANCEL_REASONS) + reason,
                           t["prop_offset"][LOGIN] + method)))

    owner = idx[n_upgrade > 0]
    parts.append((owner, np.full(len(owner), UPGRADE), sk["upgrade_at"][owner],
                  t["prop_offset"][UPGRADE] + sk["plan"][owner]))

    owner = np.repeat(idx, n_invoice)
    nth = np.arange(len(owner)) - np.repeat(np.cumsum(n_invoice) - n_invoice, n_invoice)
    month = (nth * sk["billed"][owner]) // np.maximum(n_invoice[owner], 1)
    stamp = np.minimum(sk["upgrade_at"][owner] + (month * sk["period"][owner]).astype(np.int64), sk["end"][owner])
    parts.append((owner, np.full(len(owner), PURCHASE), stamp, np.full(len(owner), -1)))
    invoices = len(owner)

    owner = np.repeat(idx, n_random)
    pers = persona[owner]
    u = rng.random(len(owner))
    decay = t["decay"][pers]
    churned = sk["churner"][owner]
    # inverse CDF of a density ∝ e^(-decay·x) on [0, 1] for churners, uniform otherwise
    x = np.where(churned, -np.log1p(-u * (1 - np.exp(-decay))) / decay, u)
    start, life = sk["signup"][owner], sk["life"][owner]
    stamp = np.minimum(start + 1 + (x * (life - 1)).astype(np.int64), sk["end"][owner])
    stamp = _weekend_moves(t, sk, owner, stamp, weekend_rng)
    name = 1 + _pick(t["mix"], pers, rng.random(len(owner)))  # RANDOM_EVENTS follow user_signed_up
    cum = t["variant_cum"][pers, name]
    variant = np.minimum((rng.random(len(owner))[:, None] >= cum).sum(axis=1), t["variant_count"][name] - 1)
    prop = np.where(name == PURCHASE, -1, t["prop_offset"][name] + variant)
    parts.append((owner, name, stamp, prop))

    owner, name, stamp, prop = (np.concatenate(c) for c in zip(*parts))
    text = t["props"][np.maximum(prop, 0)]
    # Purchases: invoices of the plan (team plans per seat, annual = 10 months) and one-offs.
    buys = np.flatnonzero(prop < 0)
    who = owner[buys]
    plan = sk["plan"][who]
    is_invoice = np.zeros(len(buys), dtype=bool)
    is_invoice[:invoices] = True  # invoices come first among the purchases (parts order)
    price = t["plan_price"][plan] * np.where(plan == P.PLANS.index("team"), seats[who], 1)
    price = price * np.where(sk["annual"][who], P.ANNUAL_DISCOUNT, 1.0)
    mu, sigma = t["one_off_amount"][persona[who]].T
    one_off = np.maximum(np.round(rng.lognormal(mu, sigma), 2), 1.0)
    amount = np.where(is_invoice, price, one_off)
    plans = t["plans"][plan]
    interval = np.where(sk["annual"][who], "year", "month")
    text[buys] = [
        f'{{"amount": {a:.2f}, "currency": "USD", "kind": "subscription", "plan": "{p}", "interval": "{i}"}}'
        if inv else f'{{"amount": {a:.2f}, "currency": "USD", "kind": "one_off"}}'
        for a, p, i, inv in zip(amount.tolist(), plans.tolist(), interval.tolist(), is_invoice.tolist())
    ]
    # TRICKY: rows go to COPY ordered by (name, timestamp): the (name, timestamp, customer)
    # index then takes each chunk as a few sorted runs instead of random inserts.
    order = np.lexsort((stamp, name))
    return {"owner": owner[order], "name": name[order], "ts": stamp[order], "props": text[order]}


def _customers(rng, t, sk: dict, *, ids: np.ndarray, numbers: np.ndarray, prefix: str, now_s: int,
               last_seen: np.ndarray, email_opt_in: np.ndarray, seats: np.ndarray) -> list[str]:
    """COPY text lines of the chunk's customers (columns as CUSTOMER_COLUMNS)."""
    n = len(ids)
    persona = sk["persona"]
    mean, sd = t["age"][persona].T
    age_days = (np.clip(rng.normal(mean, sd), 18, 75) * 365.25).astype(np.int64)
    birth = np.datetime_as_string(np.datetime64(now_s, "s").astype("datetime64[D]") - age_days, unit="D")
    gender = _obj(P.GENDERS)[_pick(t["gender"], persona, rng.random(n))]
    income = _obj(P.INCOME_BANDS)[_pick(t["income"], persona, rng.random(n))]
    occupation = _obj(P.OCCUPATIONS)[_pick(t["occupation"], persona, rng.random(n))]
    rng.random(n)  # the country's draw moved to the skeleton; kept so the later draws stay as they were
    country = sk["country"]
    place = t["city_offset"][country] + (rng.random(n) * t["city_count"][country]).astype(np.int64)
    mu, sigma, low, high = t["company_size"][persona].T
    size = np.clip(rng.lognormal(mu, sigma), low, high).astype(np.int64)
    revenue = size * t["revenue_per_employee"][persona] * rng.lognormal(0.0, 0.4, n)
    words = rng.integers(0, len(COMPANY_WORDS[0]), (n, 2))
    suffix = np.searchsorted([limit for limit, _ in COMPANY_SUFFIX], size, side="right")
    company = (_obj(COMPANY_WORDS[0])[words[:, 0]] + " " + _obj(COMPANY_WORDS[1])[words[:, 1]] + " "
               + _obj([s for _, s in COMPANY_SUFFIX])[suffix])
    industry = _obj(P.INDUSTRIES)[_pick(t["industry"], persona, rng.random(n))]
    device = _pick(t["device"], persona, rng.random(n))
    desktop_os = _obj(P.OSES["desktop"])[_pick(t["desktop_os"], persona, rng.random(n))]
    handheld = rng.random(n) < 0.5
    os_name = np.where(device == 0, desktop_os,
                       np.where(device == 1, np.where(handheld, "iOS", "Android"),
                                np.where(handheld, "iPadOS", "Android"))).astype(object)
    bits = rng.random((n, len(P.TECH))) < t["tech"][persona]
    stack = t["stack_text"][bits @ (1 << np.arange(len(P.TECH)))]
    values = _obj(P.VALUES_PRIORITY)[_pick(t["values"], persona, rng.random(n))]
    risk = _obj(P.RISK_ATTITUDES)[_pick(t["risk"], persona, rng.random(n))]
    sensitivity = np.clip(np.rint(rng.normal(t["price_sensitivity"][persona], 0.8)), 1, 5).astype(np.int64)
    need = _obj(P.PRIMARY_NEEDS)[_pick(t["need"], persona, rng.random(n))]
    use_case = _obj(P.USE_CASES)[_pick(t["use_case"], persona, rng.random(n))]
    cycle = np.where(sk["paid"], np.where(sk["annual"], "annual", "monthly"), "none")
    first = rng.integers(0, len(FIRST), n)
    last = rng.integers(0, len(LAST), n)
    full_name = _obj(FIRST)[first] + " " + _obj(LAST)[last]
    email_local = _obj([f.lower() for f in FIRST])[first] + "." + _obj([s.lower().translate(_ASCII) for s in LAST])[last]
    seen = np.where(last_seen >= 0, _ts_text(np.maximum(last_seen, 0)), "\\N")
    stamp = _ts_text(np.array([now_s]))[0]
    columns = zip(
        ids.tolist(), numbers.tolist(), email_local.tolist(), full_name.tolist(), birth.tolist(),
        gender.tolist(), income.tolist(), occupation.tolist(), t["countries"][country].tolist(),
        t["region"][place].tolist(), t["city"][place].tolist(), t["language"][country].tolist(),
        t["timezone"][country].tolist(), company.tolist(), industry.tolist(), size.tolist(), revenue.tolist(),
        _obj(P.DEVICES)[device].tolist(), os_name.tolist(), stack.tolist(), t["plans"][sk["plan"]].tolist(),
        _ts_text(sk["signup"]).tolist(), seen.tolist(), email_opt_in.tolist(), values.tolist(), risk.tolist(),
        sensitivity.tolist(), need.tolist(), use_case.tolist(), seats.tolist(), cycle.tolist(),
    )
    return [
        f"{cid}\t{prefix}{num:08d}\t{{}}\t{local}{num}@example.com\t{name}\t{bd}\t{g}\t{inc}\t{occ}\t{c}\t{reg}\t"
        f"{city}\t{lang}\t{tz}\t{comp}\t{ind}\t{sz}\t{rev:.2f}\t{dev}\t{osn}\t{stk}\t{plan}\t{su}\t{ls}\t"
        f"{'t' if opt else 'f'}\t"
        f'{{"values_priority": "{v}", "risk_attitude": "{r}", "price_sensitivity": {ps}, '
        f'"primary_need": "{nd}", "use_case": "{uc}", "seats": {st}, "billing_cycle": "{cy}"}}\t{stamp}\t{stamp}'
        for (cid, num, local, name, bd, g, inc, occ, c, reg, city, lang, tz, comp, ind, sz, rev, dev, osn, stk,
             plan, su, ls, opt, v, r, ps, nd, uc, st, cy) in columns
    ]


def _surveys(rng, t, sk: dict, *, ids: np.ndarray, last_seen: np.ndarray, survey_ids: dict[str, int],
             stamp: str) -> list[str]:
    """NPS (0–10) and CSAT (1–5) answers inside each customer's active life; scores by
    persona, lower for churners (they turn into detractors before they leave)."""
    persona, churner = sk["persona"], sk["churner"]
    lines: list[str] = []
    for key, rate, table, low, high, penalty in [
        ("nps", t["nps_rate"], t["nps"], 0, 10, 2.5), ("csat", t["csat_rate"], t["csat"], 1, 5, 1.0),
    ]:
        asked = (rng.random(len(ids)) < rate[persona]) & (last_seen >= 0)
        times = 1 + (rng.random(len(ids)) < 0.3).astype(np.int64) + (rng.random(len(ids)) < 0.1)
        owner = np.repeat(np.flatnonzero(asked), times[asked])
        mean, sd = table[persona[owner]].T
        score = np.clip(np.rint(rng.normal(mean - penalty * churner[owner], sd)), low, high).astype(np.int64)
        start = sk["signup"][owner]
        when = start + (rng.random(len(owner)) * (last_seen[owner] - start)).astype(np.int64)
        band = np.where(score >= (9 if key == "nps" else 5), 2, np.where(score <= (6 if key == "nps" else 2), 0, 1))
        comment = np.array([_obj(COMMENTS[b]) for b in ("detractor", "passive", "promoter")])[
            band, rng.integers(0, 4, len(owner))]
        survey = survey_ids[key]
        lines += [f"{cid}\t{survey}\t\t{s}\t{c}\t{w}\t\\N\t{stamp}"
                  for cid, s, c, w in zip(ids[owner].tolist(), score.tolist(), comment.tolist(),
                                          _ts_text(when).tolist())]
    return lines


def _consents(rng, t, sk: dict, *, ids: np.ndarray, last_seen: np.ndarray,
              stamp: str) -> tuple[list[str], list[str], np.ndarray]:
    """Per channel asked at sign-up (granted or not, by persona); some change their mind
    later (churners withdraw more). Returns Consent lines, ConsentChange lines, email opt-in."""
    persona, churner, signup = sk["persona"], sk["churner"], sk["signup"]
    n = len(ids)
    current, history = [], []
    email_opt_in = np.zeros(n, dtype=bool)
    until = np.maximum(last_seen, signup)
    for c, channel in enumerate(P.CHANNELS):
        ask, grant = t["consent"][persona, c].T
        asked = rng.random(n) < ask
        granted = rng.random(n) < grant
        flips = rng.random(n) < np.where(granted, np.where(churner, 0.35, 0.06), 0.05)
        flip_at = signup + (rng.random(n) * (until - signup)).astype(np.int64)
        flips &= asked & (flip_at > signup)
        final = granted ^ flips
        changed = np.where(flips, flip_at, signup)
        if channel == "email":
            email_opt_in = asked & final
        who = np.flatnonzero(asked)
        signup_text = _ts_text(signup[who]).tolist()
        history += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\tsignup_form\t{stamp}"
                    for cid, g, w in zip(ids[who].tolist(), granted[who].tolist(), signup_text)]
        later = np.flatnonzero(flips)
        history += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\tpreference_center\t{stamp}"
                    for cid, g, w in zip(ids[later].tolist(), final[later].tolist(),
                                         _ts_text(flip_at[later]).tolist())]
        current += [f"{cid}\t{channel}\t{'t' if g else 'f'}\t{w}\t{s}"
                    for cid, g, w, s in zip(ids[who].tolist(), final[who].tolist(),
                                            _ts_text(changed[who]).tolist(),
                                            np.where(flips[who], "preference_center", "signup_form").tolist())]
    return current, history, email_opt_in


# ------------------------------------------------------------------ writing


def _copy(cursor, table: str, columns: tuple[str, ...], lines: list[str], tick: Callable[[int], None] | None = None):
    """One COPY of pre-formatted text lines, written in blocks by a background thread."""
    if not lines:
        return
    raw = cursor.cursor  # TRICKY: the psycopg cursor under Django's wrapper (search_path already set)
    with raw.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN", writer=QueuedLibpqWriter(raw)) as copy:
        for start in range(0, len(lines), WRITE_LINES):
            block = lines[start:start + WRITE_LINES]
            copy.write("\n".join(block) + "\n")
            if tick:
                tick(len(block))


def register_traits(*, now: datetime) -> None:
    """The generator's custom traits in the tenant's registry, with their categories
    (an existing definition is left as the tenant edited it)."""
    for key, type_, category, description in P.CUSTOM_TRAITS:
        TraitDefinition.objects.get_or_create(key=key, defaults={
            "type": type_, "category": category, "description": description, "first_seen_at": now})


def generate(*, customers: int, events: int, now: datetime, seed: int = 42,
             prefix: str = "gen-", progress: Progress | None = None) -> GenerateResult:
    """Append `customers` customers and exactly `events` events to the current tenant.

    Each customer's first event is one `user_signed_up` at its sign-up (counted in
    `events`; with fewer events than customers only the first `events` customers get one).
    """
    started = time.perf_counter()
    tick = progress or (lambda stage, n: None)
    now_s = math.floor(now.timestamp())
    stamp = _ts_text(np.array([now_s]))[0]
    offset = _next_index(prefix)
    register_traits(now=now)
    # Every month of the run's history gets its partition first: COPY then writes each row
    # once, into its month (not into the default partition for the upkeep to move).
    partitions.ensure_months(partitions.months_between(now - timedelta(days=P.HISTORY_DAYS + 1),
                                                       partitions.add_months(partitions.month_of(now), 1)))
    survey_ids = {key: Survey.objects.get_or_create(key=key, defaults={"kind": key, "name": name})[0].id
                  for key, name in [("nps", "Net Promoter Score"), ("csat", "Customer satisfaction")]}

    chunks = [(c, min(CUSTOMER_CHUNK, customers - c * CUSTOMER_CHUNK))
              for c in range(math.ceil(customers / CUSTOMER_CHUNK))]
    signups = min(customers, events)
    # First pass: split the event budget over the chunks by their customers' weights, so
    # the total is exact without holding every customer in memory.
    if not chunks:
        return GenerateResult(customers=0, events=0, survey_responses=0, consents=0, consent_changes=0,
                              seconds=time.perf_counter() - started, personas={}, churned=0)
    skeletons = (_skeleton(seed, c, n, now_s) for c, n in chunks)
    sums = np.array([(sk["fixed"].sum(), sk["expected"].sum()) for sk in skeletons])
    budgets = _allocate(np.random.default_rng([seed, 0]), events - signups, sums[:, 0].astype(np.int64), sums[:, 1])
    counts = {"events": 0, "surveys": 0, "consents": 0, "changes": 0, "churned": 0}
    personas = np.zeros(len(P.PERSONAS), dtype=np.int64)
    context = {"seed": seed, "now_s": now_s, "stamp": stamp, "prefix": prefix, "offset": offset,
               "signups": signups, "survey_ids": survey_ids}

    def reserve(cursor, n: int) -> np.ndarray:
        cursor.execute("SELECT nextval(pg_get_serial_sequence('customers_customer', 'id')) "
                       "FROM generate_series(1, %s)", [n])
        return np.array([row[0] for row in cursor.fetchall()], dtype=np.int64)

    # TRICKY: chunk c + 1 is drawn and formatted in a worker thread while chunk c is being
    # COPYed (PostgreSQL's index upkeep is the slow side; COPY waits release the GIL). Only
    # the main thread touches the connection; ids are reserved before a chunk is handed over.
    with connection.cursor() as cursor, ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(_chunk, context, *chunks[0], budgets[0], reserve(cursor, chunks[0][1]))
        for i in range(len(chunks)):
            chunk = pending.result()
            if i + 1 < len(chunks):
                c, n = chunks[i + 1]
                pending = pool.submit(_chunk, context, c, n, budgets[i + 1], reserve(cursor, n))
            _copy(cursor, "customers_customer", CUSTOMER_COLUMNS, chunk.customers)
            # Generated customers are known to sources by their external id, like any other.
            cursor.execute(
                "INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) "
                "SELECT id, 'user_id', external_id, now() FROM customers_customer "
                "WHERE external_id >= %s AND external_id < %s ON CONFLICT DO NOTHING", chunk.external_range)
            _copy(cursor, "customers_generatortruth", TRUTH_COLUMNS, chunk.truth)
            tick("customers", len(chunk.customers))
            _copy(cursor, "customers_event", EVENT_COLUMNS, chunk.events, tick=lambda k: tick("events", k))
            _copy(cursor, "customers_surveyresponse", SURVEY_COLUMNS, chunk.surveys)
            _copy(cursor, "customers_consent", CONSENT_COLUMNS, chunk.consents)
            _copy(cursor, "customers_consentchange", CONSENT_CHANGE_COLUMNS, chunk.changes)
            counts["events"] += len(chunk.events)
            counts["surveys"] += len(chunk.surveys)
            counts["consents"] += len(chunk.consents)
            counts["changes"] += len(chunk.changes)
            counts["churned"] += chunk.churned
            personas += chunk.personas
            del chunk
        # This run's customers: external ids offset … offset + customers - 1 (see _chunk).
        _register_events(cursor, [f"{prefix}{offset:08d}", f"{prefix}{offset + customers:08d}"], now)
        # A bulk load leaves the planner's statistics behind (autovacuum sees the rows only
        # after commit, and never inside a test's transaction): with tables it believes
        # empty, the feature queries chose nested loops and took 28 s for 200 customers.
        cursor.execute("ANALYZE customers_customer, customers_event, customers_surveyresponse, customers_consent, "
                       "customers_generatortruth")
    return GenerateResult(
        customers=customers, events=counts["events"], survey_responses=counts["surveys"],
        consents=counts["consents"], consent_changes=counts["changes"], seconds=time.perf_counter() - started,
        personas=dict(zip(P.PERSONA_KEYS, personas.tolist())), churned=counts["churned"],
    )


# The builder's autocomplete and the parser's unknown-event warnings read the event
# registry, which ingestion keeps up to date batch by batch; generated events arrive by
# COPY, so the run registers its own, set-wise: one aggregate over the run's events (its
# customers' external id range) merged as ingestion merges (volumes add, first/last seen
# widen), property types from a few events of each name (the generator's property shapes
# are few and fixed per name).
_RUN_EVENTS = """
SELECT e.name, min(e.timestamp), max(e.timestamp), count(*)
FROM customers_event e JOIN customers_customer c ON c.id = e.customer_id
WHERE c.external_id >= %s AND c.external_id < %s
GROUP BY e.name ORDER BY e.name
"""
_REGISTER_EVENT = """
INSERT INTO customers_eventdefinition (name, first_seen_at, last_seen_at, volume, properties, created_at, updated_at)
VALUES (%s, %s, %s, %s, %s::jsonb, %s, %s)
""" + EVENT_REGISTRY_MERGE
_TYPE_SAMPLE = 50  # events per name whose properties give the registered types


def _register_events(cursor, external_range: list[str], now: datetime) -> None:
    cursor.execute(_RUN_EVENTS, external_range)
    rows = []
    for name, first, last, volume in cursor.fetchall():
        cursor.execute("SELECT properties FROM customers_event WHERE name = %s LIMIT %s", [name, _TYPE_SAMPLE])
        types: dict[str, str] = {}
        for (properties,) in cursor.fetchall():
            if isinstance(properties, str):  # Django's cursors read jsonb as text
                properties = json.loads(properties)
            for key, value in (properties or {}).items():
                inferred = infer_type(value)
                if key not in types and inferred is not None:
                    types[key] = inferred.value
        rows.append((name, first, last, volume, json.dumps(types), now, now))
    cursor.executemany(_REGISTER_EVENT, rows)


@dataclass
class _Chunk:
    customers: list[str]
    truth: list[str]
    events: list[str]
    surveys: list[str]
    consents: list[str]
    changes: list[str]
    external_range: list[str]
    churned: int
    personas: np.ndarray


def _chunk(context: dict, c: int, n: int, budget: int, ids: np.ndarray) -> _Chunk:
    """Chunk c's rows as COPY text (no database access: runs in the worker thread)."""
    t = _tables()
    seed, now_s, stamp, prefix = context["seed"], context["now_s"], context["stamp"], context["prefix"]
    sk = _skeleton(seed, c, n, now_s)
    rng = np.random.default_rng([seed, 2, c])
    first = c * CUSTOMER_CHUNK
    has_signup = np.arange(first, first + n) < context["signups"]
    mu, sigma = t["seats"][sk["persona"]].T
    seats = np.maximum(np.rint(rng.lognormal(mu, sigma)), 1).astype(np.int64)
    ev = _events(rng, t, sk, budget, has_signup, seats, np.random.default_rng([seed, 4, c]))
    last_seen = np.full(n, -1, dtype=np.int64)
    np.maximum.at(last_seen, ev["owner"], ev["ts"])
    numbers = np.arange(context["offset"] + first, context["offset"] + first + n)
    consents, changes, opt_in = _consents(rng, t, sk, ids=ids, last_seen=last_seen, stamp=stamp)
    surveys = _surveys(rng, t, sk, ids=ids, last_seen=last_seen, survey_ids=context["survey_ids"], stamp=stamp)
    customers = _customers(rng, t, sk, ids=ids, numbers=numbers, prefix=prefix, now_s=now_s,
                           last_seen=last_seen, email_opt_in=opt_in, seats=seats)
    churned_at = np.where(sk["churner"] & (last_seen >= 0), last_seen, -1)
    truth = [f"{cid}\t{P.PERSONA_KEYS[p]}\t{'t' if ch >= 0 else 'f'}\t{w if ch >= 0 else NULL}\t{seed}\t{stamp}"
             for cid, p, ch, w in zip(ids.tolist(), sk["persona"].tolist(), churned_at.tolist(),
                                      _ts_text(np.maximum(churned_at, 0)).tolist())]
    names, cids, stamps = t["names"][ev["name"]], ids[ev["owner"]], _ts_text(ev["ts"])
    tail = f"\t\\N\t{stamp}\tgenerator"
    events = [f"{cid}\t{name}\t{ts}\t{props}{tail}"
              for cid, name, ts, props in zip(cids.tolist(), names.tolist(), stamps.tolist(), ev["props"].tolist())]
    return _Chunk(
        customers=customers, truth=truth, events=events, surveys=surveys, consents=consents, changes=changes,
        external_range=[f"{prefix}{numbers[0]:08d}", f"{prefix}{numbers[-1] + 1:08d}"],
        churned=int((churned_at >= 0).sum()), personas=np.bincount(sk["persona"], minlength=len(P.PERSONAS)),
    )


def _next_index(prefix: str) -> int:
    """Generated external ids continue after the last generated one, so reruns append."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(external_id) FROM customers_customer WHERE external_id LIKE %s", [prefix + "%"]
        )
        (last,) = cursor.fetchone()
    return int(last.removeprefix(prefix)) + 1 if last else 0
