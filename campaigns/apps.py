from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from customers.signals import customers_merged

        post_delete.connect(_pause_after_segment_deleted, sender="segments.Segment",
                            dispatch_uid="campaigns.segment_deleted")
        customers_merged.connect(_move_arms_and_sends, dispatch_uid="campaigns.merged")


def _move_arms_and_sends(sender, *, survivor, losers, **_):
    from campaigns.services import customers_merged

    customers_merged(survivor=survivor, losers=losers)


def _pause_after_segment_deleted(sender, **_):
    """A deleted segment pauses its campaigns as soon as the delete commits, not at the
    next dispatcher tick (segments know nothing of campaigns; the FK is already NULL)."""
    from django.db import transaction

    transaction.on_commit(_pause_orphans)


def _pause_orphans() -> None:
    from django.db import transaction
    from django.utils import timezone

    from campaigns.services import campaigns_segment_gone

    with transaction.atomic():  # it locks the campaigns it pauses
        campaigns_segment_gone(now=timezone.now())
