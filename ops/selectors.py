from ops.models import Heartbeat, TaskRun


def heartbeat_latest(*, source: str = "beat") -> Heartbeat | None:
    return Heartbeat.objects.filter(source=source).first()


def task_run_get(*, run_id: int) -> TaskRun | None:
    return TaskRun.objects.filter(pk=run_id).first()
