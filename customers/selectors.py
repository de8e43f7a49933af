from django.db import connection
from django.db.models import QuerySet

from customers.ingest.message import ANON_PREFIX
from customers.models import Customer, CustomerIdentity, Event, TraitDefinition

# Always personal data, whatever the registry says (the `customers.view_pii` permission
# names them); the registry can mark more traits as PII.
PII_BUILTINS = frozenset({"email", "name", "birth_date"})


def workspace_counts() -> dict:
    """Customer and event totals for the current tenant, from planner statistics when the
    tables are big (an exact count(*) over 20M events is too slow for a home page)."""
    counts = {}
    with connection.cursor() as cursor:
        for key, table in (("customers", "customers_customer"), ("events", "customers_event")):
            cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", [table])
            estimate = (cursor.fetchone() or [0])[0] or 0
            if estimate < 1_000_000:
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


def pii_trait_keys() -> frozenset[str]:
    """Traits only actors with `customers.view_pii` may read: the fixed built-ins plus
    whatever the tenant's registry marks as personal data."""
    marked = TraitDefinition.objects.filter(is_pii=True).values_list("key", flat=True)
    return PII_BUILTINS | frozenset(marked)


def customers_by_external_ids(external_ids: set[str]) -> dict[str, int]:
    """{external id: customer id} for the ids that name a customer, directly or through an
    identity merged into them. Two queries whatever the count."""
    found = dict(Customer.objects.filter(external_id__in=external_ids).values_list("external_id", "id"))
    missing = external_ids - set(found)
    if missing:
        found.update(CustomerIdentity.objects.filter(kind=CustomerIdentity.Kind.USER_ID, value__in=missing)
                     .values_list("value", "customer_id"))
    return found
