from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from customers.signals import customers_merged, customers_touched

        customers_touched.connect(_queue_incremental_check, dispatch_uid="segments.incremental")
        customers_merged.connect(_move_stays, dispatch_uid="segments.merged")


def _move_stays(sender, *, survivor, losers, now, **_):
    from segments.engine import customers_merged

    customers_merged(survivor=survivor, losers=losers, now=now)


def _queue_incremental_check(sender, *, customer_ids, events, traits, surveys, channels, merged, now, **_):
    """New data reached some customers: queue a re-check of them against the segments it
    can change — only when the tenant has a dynamic segment at all.

    TRICKY: the check runs as of when the worker runs it, not as of `now` of the write: an
    event stamped with its arrival time is not yet in the world of an evaluation at that
    same instant (the rules ignore events at or after `now`)."""
    from django.db import connection

    from ops.tasking import send_to_tenant
    from segments.models import Segment
    from segments.tasks import evaluate_touched

    if not Segment.objects.filter(kind=Segment.Kind.DYNAMIC, status=Segment.Status.ACTIVE).exists():
        return
    send_to_tenant(evaluate_touched, schema_name=connection.schema_name, customer_ids=customer_ids,
                   events=events, traits=traits, surveys=surveys, channels=channels, merged=merged)
