"""The generator's vocabulary and the per-persona probability tables it draws from, built
once per process; COPY text helpers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

from demo import personas as P

DAY = 86_400
WEEK = 7 * DAY
MONTH = 30.4375 * DAY
YEAR = 365.25 * DAY
CHURN_QUIET_DAYS = 30  # churners stop at least this long before `now`
LAST_EVENT_GAP = 60  # no event in the last minute before `now`
NULL = "\\N"  # COPY text format

EVENT_NAMES = ["user_signed_up", *P.RANDOM_EVENTS, "subscription_upgraded", "subscription_cancelled"]
CODE = {name: i for i, name in enumerate(EVENT_NAMES)}
SIGNUP, LOGIN, PURCHASE = CODE["user_signed_up"], CODE["login"], CODE["purchase"]
UPGRADE, CANCEL = CODE["subscription_upgraded"], CODE["subscription_cancelled"]

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
ASCII = str.maketrans({"ü": "u", "í": "i", "é": "e", "á": "a"})
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


def cumulative(weights, vocabulary: list[str] | None = None) -> np.ndarray:
    """Cumulative probabilities over `vocabulary` (a dict of weights) or a weight list."""
    if vocabulary is not None:
        weights = [weights.get(v, 0.0) for v in vocabulary]
    w = np.asarray(weights, dtype=np.float64)
    c = np.cumsum(w / w.sum())
    c[-1] = 1.0
    return c


def pick(table: np.ndarray, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Per item, the first category whose cumulative probability (table[row]) exceeds u."""
    return (u[:, None] >= table[rows]).sum(axis=1)


@lru_cache(maxsize=1)
def tables() -> dict:
    ps = P.PERSONAS
    t: dict = {"persona_cum": cumulative([p.share for p in ps])}
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
        t[name] = np.array([cumulative(getattr(p, attr), vocab if isinstance(getattr(p, attr), dict) else None)
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
        offsets[CODE[name]] = len(props)
        props += texts
        for k, p in enumerate(ps):
            cum[k, CODE[name], : len(texts)] = cumulative(weight(p) if weight else [1.0] * len(texts))
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


def obj(values: list[str]) -> np.ndarray:
    return np.array(values, dtype=object)


def ts_text(seconds: np.ndarray) -> np.ndarray:
    """Epoch seconds → 'YYYY-MM-DD HH:MM:SS+00' (object array of str)."""
    text = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s").astype(object)
    return text + "+00"
