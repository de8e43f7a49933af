"""Identity merges: the memberships of profiles that became one person."""

from __future__ import annotations

from datetime import datetime

from django.db import connection

# Per segment, the membership the merged person keeps: the survivor's open one, else the lowest
# loser's, which moves to the survivor below. The others close. For consumers keyed by
# customer id (campaigns, webhooks) each loser id exits and, where a loser's membership moves,
# the survivor enters.
_MERGE_MEMBERSHIPS_SQL = """
WITH open AS (
    SELECT id, segment_id, customer_id,
           row_number() OVER (PARTITION BY segment_id ORDER BY customer_id = %(survivor)s DESC, customer_id) AS rank
    FROM segments_membership WHERE customer_id = ANY(%(everyone)s) AND exited_at IS NULL
),
closed AS (
    UPDATE segments_membership m SET exited_at = GREATEST(%(now)s, m.entered_at)
    FROM open o WHERE m.id = o.id AND o.rank > 1
    RETURNING m.segment_id, m.customer_id
),
moved AS (SELECT segment_id, customer_id FROM open WHERE rank = 1 AND customer_id <> %(survivor)s),
sized AS (
    UPDATE segments_segment s SET size = GREATEST(s.size - c.n, 0)
    FROM (SELECT segment_id, count(*) AS n FROM closed GROUP BY segment_id) c WHERE s.id = c.segment_id
)
INSERT INTO segments_membershipchange (segment_id, customer_id, change, at, created_at)
SELECT segment_id, customer_id, 'exited', %(now)s, %(now)s FROM closed
UNION ALL SELECT segment_id, customer_id, 'exited', %(now)s, %(now)s FROM moved
UNION ALL SELECT segment_id, %(survivor)s, 'entered', %(now)s, %(now)s FROM moved
"""


def customers_merged(*, survivor: int, losers: list[int], now: datetime) -> None:
    """customers.touch's merge handler (settings.CUSTOMER_MERGE_HANDLERS): profiles that are
    one person became `survivor` (an identity merge; the losers are deleted next). Their
    memberships, open and closed, become the survivor's history, one open membership per
    segment. Dynamic segments then re-check the survivor with the batch's other
    customers, as for any new data."""
    params = {"survivor": survivor, "losers": list(losers), "everyone": [survivor, *losers], "now": now}
    with connection.cursor() as cursor:
        # Evaluations of these segments write their open memberships holding the segment row: wait
        # for them, and keep the next out, so no one opens a membership that this move would clash
        # with (one open membership per customer and segment). In id order, as the engine locks.
        cursor.execute("SELECT id FROM segments_segment WHERE id IN (SELECT segment_id FROM segments_membership "
                       "WHERE customer_id = ANY(%(losers)s) AND exited_at IS NULL) ORDER BY id FOR UPDATE", params)
        cursor.execute(_MERGE_MEMBERSHIPS_SQL, params)
        cursor.execute("UPDATE segments_membership SET customer_id = %(survivor)s WHERE customer_id = ANY(%(losers)s)",
                       params)
