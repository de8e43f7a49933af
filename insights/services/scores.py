"""The one writer of the metric columns the models own (CustomerMetrics.cluster,
churn_risk, predicted_ltv): the metrics refresher owns the rest and leaves these alone,
so both can run in any order. Set-based: one statement per column change."""

from __future__ import annotations

import json
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


def churn_scores_write(*, model_id: int, rows, now: datetime) -> None:
    """Replace every customer's scores with those of the model (rows: customer id, risk,
    drivers, predicted LTV, low, high, high potential), and put risk and predicted LTV in
    the customers' metrics; a customer the model did not score has neither."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM insights_customerscore")
        with cursor.copy("COPY insights_customerscore (customer_id, model_id, churn_risk, drivers, predicted_ltv, "
                         "ltv_low, ltv_high, high_potential, scored_at) FROM STDIN") as copy:
            for customer_id, risk, drivers, ltv, low, high, potential in rows:
                copy.write_row((customer_id, model_id, risk, json.dumps(drivers), ltv, low, high, potential, now))
        cursor.execute(
            "UPDATE customers_customermetrics m SET churn_risk = NULL, predicted_ltv = NULL "
            "WHERE (m.churn_risk IS NOT NULL OR m.predicted_ltv IS NOT NULL) "
            "AND NOT EXISTS (SELECT 1 FROM insights_customerscore s WHERE s.customer_id = m.customer_id)")
        cursor.execute(
            "INSERT INTO customers_customermetrics (customer_id, churn_risk, predicted_ltv, cluster, frequency, "
            "monetary, rfm_segment, computed_at) "
            "SELECT s.customer_id, s.churn_risk, s.predicted_ltv, '', 0, 0, '', %(now)s FROM insights_customerscore s "
            "JOIN customers_customer c ON c.id = s.customer_id ORDER BY s.customer_id "
            "ON CONFLICT (customer_id) DO UPDATE SET churn_risk = EXCLUDED.churn_risk, "
            "predicted_ltv = EXCLUDED.predicted_ltv", {"now": now})
