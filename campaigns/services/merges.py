"""customers.touch's merge handler for campaigns: arms and sends follow the person."""

from __future__ import annotations

from datetime import datetime

from django.db import connection



# Per campaign the person keeps one arm: the survivor's, else the lowest loser's.
_MERGE_ASSIGNMENTS_SQL = """
WITH ranked AS (
    SELECT id, row_number() OVER (PARTITION BY campaign_id ORDER BY customer_id = %(survivor)s DESC, customer_id) AS rank
    FROM campaigns_assignment WHERE customer_id = ANY(%(everyone)s)
)
DELETE FROM campaigns_assignment a USING ranked r WHERE a.id = r.id AND r.rank > 1
"""

# Every send stays in the log. One whose occasion the survivor (or a lower loser) also has
# keeps its own under a marked occasion, so (campaign, customer, occasion) stays unique and
# the survivor is still known to have had that occasion.
_MERGE_SENDS_SQL = """
UPDATE campaigns_send s SET occasion = left(s.occasion, 32) || ' (merged ' || s.customer_id || ')'
WHERE s.customer_id = ANY(%(losers)s) AND EXISTS (
    SELECT 1 FROM campaigns_send k WHERE k.campaign_id = s.campaign_id AND k.occasion = s.occasion
      AND k.customer_id = ANY(%(everyone)s) AND (k.customer_id = %(survivor)s OR k.customer_id < s.customer_id))
"""


def customers_merged(*, survivor: int, losers: list[int], now: datetime) -> None:
    """customers.touch's merge handler (settings.CUSTOMER_MERGE_HANDLERS): profiles that are
    one person became `survivor` (an identity merge; the losers are deleted next): their arms and sends become the survivor's, so holdout results count the
    person once and frequency caps and "once" occasions see everything they were sent."""
    params = {"survivor": survivor, "losers": list(losers), "everyone": [survivor, *losers]}
    with connection.cursor() as cursor:
        cursor.execute(_MERGE_ASSIGNMENTS_SQL, params)
        cursor.execute(_MERGE_SENDS_SQL, params)
        for table in ("campaigns_assignment", "campaigns_send"):
            cursor.execute(f"UPDATE {table} SET customer_id = %(survivor)s WHERE customer_id = ANY(%(losers)s)",
                           params)
