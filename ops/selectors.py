from ops.models import Heartbeat


def heartbeat_latest(*, source: str = "beat") -> Heartbeat | None:
    return Heartbeat.objects.filter(source=source).first()
