from __future__ import annotations

from datetime import datetime

from django.db.models import F
from django.db.models.functions import Greatest

from ops.models import Heartbeat


def heartbeat_record(*, source: str, now: datetime) -> Heartbeat:
    """Note that `source` reached this schema at `now`. Idempotent: a replay never moves
    last_seen_at backwards or adds a row."""
    heartbeat, created = Heartbeat.objects.get_or_create(
        source=source, defaults={"first_seen_at": now, "last_seen_at": now}
    )
    if not created:
        Heartbeat.objects.filter(pk=heartbeat.pk).update(last_seen_at=Greatest(F("last_seen_at"), now))
        heartbeat.refresh_from_db()
    return heartbeat
