"""Reads of the event registry that reports and the feature catalogue share."""

from datetime import datetime, timezone

from customers.models import EventDefinition
from customers.selectors import busiest_events

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)


def test_busiest_events_are_the_highest_volumes_first_ties_by_name(in_tenant):
    for name, volume in [("login", 50), ("purchase", 7), ("page_viewed", 50), ("invite_sent", 1)]:
        EventDefinition.objects.create(name=name, first_seen_at=NOW, last_seen_at=NOW, volume=volume)
    assert busiest_events(limit=3) == ["login", "page_viewed", "purchase"]
    assert busiest_events(limit=10) == ["login", "page_viewed", "purchase", "invite_sent"]
    assert busiest_events(limit=0) == []
