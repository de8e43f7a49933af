from datetime import datetime

from django.utils import timezone

from ops import health
from ops.services import heartbeat_record
from ops.tasking import for_each_tenant, public_task, tenant_task


@tenant_task(name="ops.record_heartbeat", soft_time_limit=30, time_limit=60)
def record_heartbeat(*, now_iso: str, source: str = "beat") -> None:
    heartbeat_record(source=source, now=datetime.fromisoformat(now_iso))


@public_task(name="ops.dispatch_heartbeats", soft_time_limit=60, time_limit=90)
def dispatch_heartbeats() -> int:
    now = timezone.now()
    health.beat_mark(now=now)
    return for_each_tenant(record_heartbeat, now_iso=now.isoformat())
