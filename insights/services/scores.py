"""The one writer of the metric columns the models own (CustomerMetrics.cluster,
churn_risk, predicted_ltv): the metrics refresher owns the rest and leaves these alone,
so both can run in any order. Set-based: one statement per column change."""

from __future__ import annotations

from datetime import datetime

from django.db import connection


def cluster_keys_write(*, run_id: int, key_prefix: str, now: datetime) -> None:
    """Every customer's cluster as of the run: its key for those assigned, missing ("")
    for the rest. A customer without a metrics row gets one (its other metrics missing
    until the next refresh)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE customers_customermetrics m SET cluster = '' WHERE m.cluster <> '' AND NOT EXISTS "
            "(SELECT 1 FROM insights_clusterassignment a WHERE a.run_id = %(run)s AND a.customer_id = m.customer_id)",
            {"run": run_id})
        cursor.execute(
            "INSERT INTO customers_customermetrics (customer_id, cluster, frequency, monetary, rfm_segment, computed_at) "
            "SELECT a.customer_id, %(prefix)s || (a.index + 1), 0, 0, '', %(now)s "
            "FROM insights_clusterassignment a JOIN customers_customer c ON c.id = a.customer_id "
            "WHERE a.run_id = %(run)s ORDER BY a.customer_id "
            "ON CONFLICT (customer_id) DO UPDATE SET cluster = EXCLUDED.cluster",
            {"run": run_id, "prefix": key_prefix, "now": now})
