"""Synthetic customers and events for the demo tenant, tests and benchmarks.

Deterministic for a given seed and `now`. Written with COPY in chunks so it scales to
1M customers / 20M events on a 2-core machine without holding everything in memory.
Customers differ in activity (log-normal), and a share of them churn: their events stop
at a point between sign-up and `now`, so recency, frequency and churn have signal.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
from django.db import connection

CUSTOMER_CHUNK = 20_000
EVENT_CHUNK = 200_000

COUNTRIES = (["US", "GB", "DE", "FR", "CA", "NL", "ES", "BR", "IN", "JP", "AU", "SE"],
             [0.30, 0.12, 0.10, 0.08, 0.07, 0.05, 0.05, 0.06, 0.07, 0.04, 0.04, 0.02])
LANGUAGE = {"US": "en", "GB": "en", "CA": "en", "AU": "en", "IN": "en", "DE": "de", "FR": "fr",
            "NL": "nl", "ES": "es", "BR": "pt", "JP": "ja", "SE": "sv"}
PLANS = (["free", "starter", "pro", "enterprise"], [0.50, 0.25, 0.18, 0.07])
PLAN_PRICE = {"free": 0.0, "starter": 19.0, "pro": 79.0, "enterprise": 499.0}
INDUSTRIES = ["software", "retail", "finance", "healthcare", "education", "media", "manufacturing"]
OCCUPATIONS = ["engineer", "marketer", "designer", "founder", "analyst", "sales", "support", "student"]
INCOME_BANDS = ["<25k", "25-50k", "50-100k", "100-200k", ">200k"]
GENDERS = (["female", "male", "nonbinary", ""], [0.46, 0.46, 0.03, 0.05])
DEVICES = (["desktop", "mobile", "tablet"], [0.55, 0.38, 0.07])
OSES = {"desktop": ["macOS", "Windows", "Linux"], "mobile": ["iOS", "Android"], "tablet": ["iPadOS", "Android"]}
TECH = ["react", "vue", "django", "rails", "node", "aws", "gcp", "azure", "snowflake", "segment",
        "hubspot", "salesforce", "stripe", "shopify"]
FIRST = ["Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas",
         "Kemi", "Liam", "Maya", "Noor", "Omar", "Priya", "Quinn", "Rosa", "Sven", "Tara"]
LAST = ["Silva", "Smith", "Müller", "Dubois", "Khan", "Tanaka", "Okafor", "Novak", "Garcia",
        "Jensen", "Rossi", "Cohen", "Ivanova", "Park", "Nguyen"]
# (name, weight) — a SaaS product's event vocabulary; user_signed_up is added once each.
EVENTS = ([
    "page_viewed", "feature_x_used", "project_created", "report_exported", "invite_sent",
    "order_completed", "subscription_upgraded", "subscription_cancelled", "support_ticket_opened",
], [0.46, 0.18, 0.10, 0.07, 0.06, 0.07, 0.025, 0.01, 0.035])
PAGES = ["/", "/pricing", "/docs", "/dashboard", "/settings", "/blog", "/integrations"]
FEATURES = ["export", "dashboards", "alerts", "api", "sso", "ai_assist"]

CUSTOMER_COLUMNS = (
    "external_id", "anonymous_ids", "email", "name", "birth_date", "gender", "income_band",
    "occupation", "country", "region", "city", "language", "timezone", "company", "industry",
    "company_size", "annual_revenue", "device_type", "os", "tech_stack", "plan",
    "signed_up_at", "last_seen_at", "email_opt_in", "traits", "created_at", "updated_at",
)
EVENT_COLUMNS = ("customer_id", "name", "timestamp", "properties", "message_id", "received_at", "source")


@dataclass(frozen=True)
class GenerateResult:
    customers: int
    events: int
    seconds: float


Progress = Callable[[str, int], None]


def _choice(rng: np.random.Generator, options: tuple[list, list], size: int) -> np.ndarray:
    values, weights = options
    return rng.choice(np.array(values, dtype=object), size=size, p=np.array(weights) / sum(weights))


def customer_rows(rng: np.random.Generator, *, start: int, count: int, now: datetime,
                  prefix: str) -> Iterator[tuple]:
    countries = _choice(rng, COUNTRIES, count)
    plans = _choice(rng, PLANS, count)
    genders = _choice(rng, GENDERS, count)
    devices = _choice(rng, DEVICES, count)
    age_days = rng.integers(1, 730, size=count)
    churned = rng.random(count) < 0.3
    active_share = np.where(churned, rng.random(count), 1.0)
    company_size = rng.lognormal(3.5, 1.5, size=count).astype(int) + 1
    ltv_index = rng.gamma(2.0, 1.0, size=count)
    for i in range(count):
        n = start + i
        signed_up = now - timedelta(days=int(age_days[i]), seconds=int(rng.integers(0, 86400)))
        last_seen = signed_up + (now - signed_up) * float(active_share[i])
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        country, device, plan = countries[i], devices[i], plans[i]
        stack = sorted(set(rng.choice(TECH, size=int(rng.integers(0, 5)), replace=False).tolist()))
        traits = {
            "nps_last": int(rng.integers(0, 11)),
            "persona_hint": ["builder", "evaluator", "champion", "bargain_hunter"][n % 4],
            "needs": ["automation", "insights", "collaboration", "cost"][int(ltv_index[i] * 7) % 4],
            "lifetime_value": round(float(ltv_index[i]) * PLAN_PRICE[plan] * 6, 2),
        }
        yield (
            f"{prefix}{n:08d}", [], f"{first.lower()}.{last.lower()}{n}@example.com".replace("ü", "u"),
            f"{first} {last}", (now - timedelta(days=int(rng.integers(18 * 365, 70 * 365)))).date(),
            genders[i], INCOME_BANDS[n % len(INCOME_BANDS)], OCCUPATIONS[n % len(OCCUPATIONS)],
            country, "", "", LANGUAGE[country], "UTC", f"Company {n % 5000}",
            INDUSTRIES[n % len(INDUSTRIES)], int(company_size[i]),
            round(float(company_size[i]) * 85_000.0, 2), device,
            OSES[device][n % len(OSES[device])], stack, plan, signed_up, last_seen,
            bool(n % 3), json.dumps(traits), now, now,
        )


def _properties(name: str, rng_value: float, index: int) -> str:
    if name == "order_completed":
        return json.dumps({"amount": round(10 + rng_value * 290, 2), "currency": "USD"})
    if name == "page_viewed":
        return json.dumps({"path": PAGES[index % len(PAGES)]})
    if name == "feature_x_used":
        return json.dumps({"feature": FEATURES[index % len(FEATURES)]})
    if name == "subscription_upgraded":
        return json.dumps({"to_plan": ["starter", "pro", "enterprise"][index % 3]})
    return "{}"


def event_rows(rng: np.random.Generator, *, customer_ids: np.ndarray, signed_up: np.ndarray,
               last_seen: np.ndarray, count: int, now: datetime) -> Iterator[tuple]:
    """`count` events spread over customers by activity; each inside [signed_up, last_seen]."""
    activity = rng.lognormal(0.0, 1.0, size=len(customer_ids))
    activity /= activity.sum()
    names, weights = EVENTS
    p = np.array(weights) / sum(weights)
    produced = 0
    while produced < count:
        size = min(EVENT_CHUNK, count - produced)
        who = rng.choice(len(customer_ids), size=size, p=activity)
        start, end = signed_up[who], last_seen[who]
        stamps = start + ((end - start) * rng.random(size)).astype("timedelta64[s]")
        kinds = rng.choice(len(names), size=size, p=p)
        values = rng.random(size)
        text_stamps = np.datetime_as_string(stamps, unit="s")
        for j in range(size):
            name = names[kinds[j]]
            yield (int(customer_ids[who[j]]), name, text_stamps[j] + "+00:00",
                   _properties(name, float(values[j]), j), None, now, "generator")
        produced += size


def generate(*, customers: int, events: int, now: datetime, seed: int = 42,
             prefix: str = "gen-", progress: Progress | None = None) -> GenerateResult:
    """Append `customers` customers and `events` events to the current tenant's schema.

    Each customer also gets one `user_signed_up` event (counted in `events`).
    """
    import time

    started = time.perf_counter()
    rng = np.random.default_rng(seed)
    tick = progress or (lambda stage, n: None)
    offset = _next_index(prefix)
    # TRICKY: a Django cursor, not the raw connection's, so django-tenants has set the
    # tenant's search_path before COPY runs.
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY customers_customer ({', '.join(CUSTOMER_COLUMNS)}) FROM STDIN") as copy:
            for chunk_start in range(0, customers, CUSTOMER_CHUNK):
                n = min(CUSTOMER_CHUNK, customers - chunk_start)
                for row in customer_rows(rng, start=offset + chunk_start, count=n, now=now, prefix=prefix):
                    copy.write_row(row)
                tick("customers", n)
        # Generated customers are known to sources by their external id, like any other.
        cursor.execute(
            "INSERT INTO customers_customeridentity (customer_id, kind, value, created_at) "
            "SELECT id, 'user_id', external_id, now() FROM customers_customer "
            "WHERE external_id >= %s AND external_id < %s ON CONFLICT DO NOTHING",
            [f"{prefix}{offset:08d}", f"{prefix}{offset + customers:08d}"],
        )
        cursor.execute(
            "SELECT id, signed_up_at, last_seen_at FROM customers_customer "
            "WHERE external_id >= %s AND external_id < %s ORDER BY id",
            [f"{prefix}{offset:08d}", f"{prefix}{offset + customers:08d}"],
        )
        fetched = cursor.fetchall()
        ids = np.array([r[0] for r in fetched], dtype=np.int64)
        signed = np.array([r[1].replace(tzinfo=None) for r in fetched], dtype="datetime64[s]")
        last = np.array([r[2].replace(tzinfo=None) for r in fetched], dtype="datetime64[s]")
        signups = min(len(ids), events)
        with cursor.copy(f"COPY customers_event ({', '.join(EVENT_COLUMNS)}) FROM STDIN") as copy:
            for k in range(signups):
                copy.write_row((int(ids[k]), "user_signed_up",
                                str(signed[k]) + "+00:00", '{"source": "web"}', None, now, "generator"))
            tick("events", signups)
            written = 0
            for row in event_rows(rng, customer_ids=ids, signed_up=signed, last_seen=last,
                                  count=events - signups, now=now):
                copy.write_row(row)
                written += 1
                if written % EVENT_CHUNK == 0:
                    tick("events", EVENT_CHUNK)
            tick("events", written % EVENT_CHUNK)
    return GenerateResult(customers=customers, events=events, seconds=time.perf_counter() - started)


def _next_index(prefix: str) -> int:
    """Generated external ids continue after the last generated one, so reruns append."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT max(external_id) FROM customers_customer WHERE external_id LIKE %s", [prefix + "%"]
        )
        (last,) = cursor.fetchone()
    return int(last.removeprefix(prefix)) + 1 if last else 0
