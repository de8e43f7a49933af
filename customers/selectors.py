"""Reads of customers (house rule 2): counts, lookups by external id, personal trait keys, the
directory (search, filters, sort, pages) and one profile (traits by category, timeline,
answers, consent, metrics).

Built for a tenant with a million customers and tens of millions of events:

- search matches the *start* of the external id, email or name, case-insensitively, so
  each keystroke is an index range scan (migration 0008's `upper(...) text_pattern_ops`
  indexes). A substring search needs pg_trgm, which the embedded PostgreSQL lacks;
- pages are fetched with LIMIT n+1 ("is there a next page?"), never a count(*) of the
  whole match; the total shown is a planner estimate for the unfiltered table and a count
  capped at `COUNT_CAP` otherwise;
- the timeline pages by keyset on (timestamp, id) over `event_customer_ts_idx`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import connection
from django.db.models import F, Q, QuerySet

from customers.ingest.message import ANON_PREFIX
from customers.models import (
    Consent,
    ConsentChange,
    Customer,
    CustomerIdentity,
    CustomerMetrics,
    Event,
    EventDefinition,
    PersonalPropertyKey,
    SurveyResponse,
    TraitDefinition,
)
from segments.rules.vocabulary import BUILTIN_TRAITS

# Always personal data, whatever the registry says (the `customers.view_pii` permission
# names them); the registry can mark more traits as PII.
PII_BUILTINS = frozenset({"email", "name", "birth_date"})


EXACT_BELOW = 1_000_000  # rows under which the home page's totals are counted exactly


def workspace_counts() -> dict:
    """Customer and event totals for the current tenant, from planner statistics when the
    tables are big (an exact count(*) over 20M events is too slow for a home page)."""
    counts = {}
    with connection.cursor() as cursor:
        for key, table in (("customers", "customers_customer"), ("events", "customers_event")):
            # Summed over the leaves: a partitioned table's own row has no count.
            cursor.execute("SELECT sum(greatest(c.reltuples, 0))::bigint FROM pg_partition_tree(to_regclass(%s)) p "
                           "JOIN pg_class c ON c.oid = p.relid WHERE p.isleaf", [table])
            estimate = (cursor.fetchone() or [0])[0] or 0
            if estimate < EXACT_BELOW:
                cursor.execute(f"SELECT count(*) FROM {table}")
                estimate = cursor.fetchone()[0]
            counts[key] = estimate
    return counts


def customers_list() -> QuerySet[Customer]:
    return Customer.objects.order_by("-created_at", "-id")


def customer_get(*, external_id: str) -> Customer | None:
    """The customer known by `external_id`: their own id, or an id that was merged into
    them (ingestion resolves ids through identities, so lookups do too). "anon:<id>"
    names an anonymous id."""
    customer = Customer.objects.filter(external_id=external_id).first()
    if customer is None:
        kind, value = CustomerIdentity.Kind.USER_ID, external_id
        if external_id.startswith(ANON_PREFIX):
            kind, value = CustomerIdentity.Kind.ANONYMOUS_ID, external_id[len(ANON_PREFIX):]
        identity = CustomerIdentity.objects.select_related("customer").filter(kind=kind, value=value).first()
        customer = identity.customer if identity else None
    return customer


def events_list() -> QuerySet[Event]:
    return Event.objects.select_related("customer").only(
        "id", "name", "timestamp", "properties", "message_id", "received_at", "source", "customer__external_id",
    ).order_by("-timestamp", "-id")


def busiest_events(*, limit: int) -> list[str]:
    """The workspace's event names with the most events (the registry's volumes), busiest first."""
    return list(EventDefinition.objects.order_by("-volume", "name").values_list("name", flat=True)[:limit])


def pii_trait_keys() -> frozenset[str]:
    """Traits only actors with `customers.view_pii` may read: the fixed built-ins plus
    whatever the tenant's registry marks as personal data."""
    marked = TraitDefinition.objects.filter(is_pii=True).values_list("key", flat=True)
    return PII_BUILTINS | frozenset(marked)


def personal_property_keys() -> frozenset[str]:
    """Event property keys (lower-case) whose values are personal data: the usual personal
    names and the key of every personal trait (a tenant marks a trait personal in the
    registry, and the same key in event properties follows)."""
    declared = PersonalPropertyKey.objects.values_list("key", flat=True)
    return frozenset(key.lower() for key in PII_PROPERTY_KEYS | pii_trait_keys() | set(declared))


def customers_by_external_ids(external_ids: set[str]) -> dict[str, int]:
    """{external id: customer id} for the ids that name a customer, directly or through an
    identity merged into them. Two queries whatever the count."""
    found = dict(Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))
    missing = external_ids - set(found)
    if missing:
        found.update(CustomerIdentity.objects.filter(kind=CustomerIdentity.Kind.USER_ID, value__in=missing)
                     .values_list("value", "customer_id"))
    return found


PAGE_SIZE = 50
EVENTS_PAGE_SIZE = 25
COUNT_CAP = 1000
ESTIMATE_ABOVE = 100_000  # below this an exact count of the whole table is cheap

# Keys that name a person wherever they appear in event properties (case-insensitive),
# in addition to the traits the registry marks as PII.
PII_PROPERTY_KEYS = frozenset({
    "email", "e-mail", "email_address", "name", "full_name", "first_name", "firstname", "last_name", "lastname",
    "phone", "phone_number", "mobile", "address", "street", "birthday", "birth_date", "ip", "ip_address",
})

# sort key → (column, nulls) ; "-key" sorts descending. Only columns an index can serve
# (or whose few values an incremental sort handles): no sort by name or email, which would
# also reveal the order of masked values.
SORTS = {
    "external_id": "external_id",
    "country": "country",
    "plan": "plan",
    "last_seen": "last_seen_at",
    "created": "created_at",
}
DEFAULT_SORT = "-created"


@dataclass(frozen=True)
class DirectoryQuery:
    """What the customer list was asked for, already validated."""

    search: str = ""
    country: str = ""
    plan: str = ""
    industry: str = ""
    rfm_segment: str = ""
    seen_within_days: int | None = None
    sort: str = DEFAULT_SORT

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.country or self.plan or self.industry or self.rfm_segment
                    or self.seen_within_days is not None)


def customer_directory(*, query: DirectoryQuery, can_see_pii: bool, now: datetime) -> QuerySet[Customer]:
    """Customers matching `query`, sorted, with a unique tie-breaker so pages are stable.

    Without `can_see_pii` the search matches the external id only: matching on email or
    name would let someone probe for an address one keystroke at a time, masked or not."""
    qs = Customer.objects.only(
        "id", "external_id", "email", "name", "country", "plan", "company", "industry", "last_seen_at", "created_at",
    )
    if query.search:
        term = query.search
        condition = Q(external_id__istartswith=term)
        if can_see_pii:
            condition |= Q(email__istartswith=term) | Q(name__istartswith=term)
        qs = qs.filter(condition)
    if query.country:
        qs = qs.filter(country=query.country)
    if query.plan:
        qs = qs.filter(plan=query.plan)
    if query.industry:
        qs = qs.filter(industry__iexact=query.industry)
    if query.rfm_segment:
        qs = qs.filter(metrics__rfm_segment=query.rfm_segment)
    if query.seen_within_days is not None:
        qs = qs.filter(last_seen_at__gte=now - timedelta(days=query.seen_within_days))
    descending = query.sort.startswith("-")
    column = SORTS[query.sort.lstrip("-")]
    if column == "last_seen_at":
        # Never seen sorts as the oldest: DESC NULLS LAST / ASC NULLS FIRST, one index order.
        order = F(column).desc(nulls_last=True) if descending else F(column).asc(nulls_first=True)
    else:
        order = F(column).desc() if descending else F(column).asc()
    tie = F("id").desc() if descending else F("id").asc()
    return qs.order_by(order, tie)


@dataclass
class DirectoryPage:
    customers: list[Customer]
    number: int
    has_next: bool
    total: int | None          # exact or estimated number of matches
    total_is_estimate: bool = False
    total_is_capped: bool = False  # "COUNT_CAP or more"

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def start_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + 1 if self.customers else 0

    @property
    def end_index(self) -> int:
        return (self.number - 1) * PAGE_SIZE + len(self.customers)


def directory_page(*, queryset: QuerySet[Customer], number: int, filtered: bool) -> DirectoryPage:
    """One page of the directory: LIMIT PAGE_SIZE + 1 tells whether another page follows."""
    offset = (number - 1) * PAGE_SIZE
    rows = list(queryset[offset:offset + PAGE_SIZE + 1])
    page = DirectoryPage(customers=rows[:PAGE_SIZE], number=number, has_next=len(rows) > PAGE_SIZE, total=None)
    if number == 1 and not page.has_next:
        page.total = len(page.customers)  # everything is on this page: no query needed
    elif not filtered:
        page.total, page.total_is_estimate = _customer_total()
    else:
        # Bounded work whatever the table size: count at most COUNT_CAP + 1 matches.
        capped = queryset.order_by()[:COUNT_CAP + 1].count()
        page.total, page.total_is_capped = min(capped, COUNT_CAP), capped > COUNT_CAP
    return page


def _customer_total() -> tuple[int, bool]:
    """(total, is_estimate) for the whole table: the planner's estimate when it is big."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass('customers_customer')")
        estimate = (cursor.fetchone() or [0])[0] or 0
    if estimate >= ESTIMATE_ABOVE:
        return estimate, True
    return Customer.objects.count(), False


def directory_choices() -> dict[str, list[str]]:
    """Values the filter dropdowns offer. Index-only skip scans would be nicer; a recursive
    CTE over each index gives the distinct values without reading the table."""
    return {
        "country": _distinct_values("customers_customer", "country"),
        "plan": _distinct_values("customers_customer", "plan"),
        "rfm_segment": _distinct_values("customers_customermetrics", "rfm_segment"),
    }


def _distinct_values(table: str, column: str, limit: int = 200) -> list[str]:
    # "Loose index scan": each step jumps to the next larger value through the column's
    # index, so 250 countries cost 250 index probes, not a scan of a million rows.
    sql = (
        f"WITH RECURSIVE v(value) AS ("
        f"  (SELECT {column} FROM {table} WHERE {column} > '' ORDER BY {column} LIMIT 1)"
        f"  UNION ALL"
        f"  SELECT (SELECT {column} FROM {table} WHERE {column} > v.value ORDER BY {column} LIMIT 1)"
        f"  FROM v WHERE v.value IS NOT NULL"
        f") SELECT value FROM v WHERE value IS NOT NULL LIMIT %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [limit])
        return [row[0] for row in cursor.fetchall()]


# ----------------------------------------------------------------------------- profile


@dataclass(frozen=True)
class TraitRow:
    key: str
    label: str
    value: Any
    type: str
    is_pii: bool
    is_builtin: bool
    description: str = ""


@dataclass
class TraitGroup:
    category: str
    label: str
    traits: list[TraitRow] = field(default_factory=list)


def customer_traits_by_category(*, customer: Customer) -> list[TraitGroup]:
    """The customer's traits that have a value, grouped by the registry's segmentation
    categories (in the registry's category order). A custom trait the registry does not
    know (registered later, or by an older import) goes under Behavioral, the default."""
    definitions = {d.key: d for d in TraitDefinition.objects.all()}
    groups = {value: TraitGroup(value, label) for value, label in TraitDefinition.Category.choices}
    default = TraitDefinition.Category.BEHAVIORAL
    values: dict[str, Any] = {key: getattr(customer, key) for key in BUILTIN_TRAITS}
    values.update((key, value) for key, value in (customer.traits or {}).items() if key not in BUILTIN_TRAITS)
    for key, value in values.items():
        if value in (None, "", []):
            continue
        definition = definitions.get(key)
        builtin = BUILTIN_TRAITS.get(key)
        category = definition.category if definition else (builtin.category.value if builtin else default)
        groups.setdefault(category, TraitGroup(category, category.title())).traits.append(TraitRow(
            key=key, label=key.replace("_", " ").replace(".", " · ").capitalize(), value=value,
            type=definition.type if definition else (builtin.type.value if builtin else "string"),
            is_pii=bool((definition and definition.is_pii) or (builtin and builtin.is_pii)),
            is_builtin=key in BUILTIN_TRAITS,
            description=(definition.description if definition else (builtin.description if builtin else "")),
        ))
    for group in groups.values():
        group.traits.sort(key=lambda t: (not t.is_builtin, t.key))
    return [group for group in groups.values() if group.traits]


def customer_identities(*, customer: Customer) -> QuerySet[CustomerIdentity]:
    return CustomerIdentity.objects.filter(customer=customer).order_by("kind", "value")


@dataclass
class EventsPage:
    events: list[Event]
    next_cursor: str | None  # pass as `before` for the next (older) page


def customer_events_page(*, customer: Customer, before: tuple[datetime, int] | None = None,
                         limit: int = EVENTS_PAGE_SIZE) -> EventsPage:
    """The customer's events, latest first, `limit` at a time: a keyset on (timestamp, id)
    walks `event_customer_ts_idx` without OFFSET, however long the history."""
    qs = Event.objects.filter(customer=customer).only("id", "name", "timestamp", "properties", "source", "received_at")
    if before is not None:
        ts, event_id = before
        qs = qs.filter(Q(timestamp__lt=ts) | Q(timestamp=ts, id__lt=event_id))
    rows = list(qs.order_by("-timestamp", "-id")[:limit + 1])
    events = rows[:limit]
    next_cursor = encode_cursor(events[-1]) if len(rows) > limit else None
    return EventsPage(events=events, next_cursor=next_cursor)


def encode_cursor(event: Event) -> str:
    return f"{event.timestamp.isoformat()}_{event.id}"


def decode_cursor(raw: str) -> tuple[datetime, int] | None:
    """(timestamp, id) of a cursor made by `encode_cursor`; None when it is not one."""
    stamp, sep, event_id = raw.rpartition("_")
    if not sep or not event_id.isdigit():
        return None
    try:
        ts = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if ts.tzinfo is None:
        return None
    return ts, int(event_id)


def customer_event_count(*, customer: Customer) -> int:
    # One customer's rows through the (customer, timestamp) index: cheap even for heavy users.
    return Event.objects.filter(customer=customer).count()


def customer_survey_responses(*, customer: Customer) -> QuerySet[SurveyResponse]:
    return SurveyResponse.objects.filter(customer=customer).select_related("survey").order_by("-responded_at", "-id")


@dataclass
class ConsentChannel:
    channel: str
    label: str
    current: Consent | None
    history: list[ConsentChange]


def customer_consents(*, customer: Customer) -> list[ConsentChannel]:
    """Every channel, with the current answer (None: never asked) and its history."""
    current = {c.channel: c for c in Consent.objects.filter(customer=customer)}
    history: dict[str, list[ConsentChange]] = {}
    for change in ConsentChange.objects.filter(customer=customer).order_by("-changed_at", "-id"):
        history.setdefault(change.channel, []).append(change)
    return [ConsentChannel(value, label, current.get(value), history.get(value, []))
            for value, label in Consent.Channel.choices]


def customer_metrics(*, customer: Customer) -> CustomerMetrics | None:
    return CustomerMetrics.objects.filter(customer=customer).first()
