from django.db import connection


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
