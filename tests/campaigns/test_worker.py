"""With a real Celery worker on the real Redis broker: launching a one-off email campaign
sends it through the tick → send_occasion tasks, and a duplicate delivery of the send task
(what acks_late redelivery after a lost worker looks like) sends nobody twice."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone
from django_tenants.utils import schema_context

from campaigns.models import Campaign, Send
from campaigns.services.campaigns import campaign_create, campaign_launch
from campaigns.tasks import send_occasion
from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Customer
from ops.tasking import send_to_tenant
from segments import engine
from segments.models import Segment
from tests.conftest import membership_of
from tests.threads import wait_for

pytestmark = pytest.mark.worker


def test_a_launched_campaign_is_sent_by_the_worker_and_a_redelivered_task_sends_nobody_twice(alpha_committed, celery_worker):
    tenant, tag = alpha_committed
    now = timezone.now()
    with schema_context(tenant.schema_name):
        people = [Customer.objects.create(external_id=f"{tag}-{i}", email=f"{tag}-{i}@example.com") for i in range(3)]
        consents_record(changes=[ConsentChangeIn(customer_id=c.pk, channel="email", granted=True,
                                                 changed_at=now - timedelta(days=1)) for c in people])
        segment = Segment.objects.create(key=f"{tag}-seg", name="Worker segment", kind="static")
        engine.members_add(segment=segment, customer_ids=[c.pk for c in people], now=now)
        admin = membership_of(tenant, "admin@alpha.test")
        campaign = campaign_create(actor=admin, name=f"{tag}-once", segment_id=segment.pk, channel="email",
                                   schedule={"kind": "once", "at": (now - timedelta(minutes=1)).isoformat()},
                                   content={"subject": "Hi", "body": "Hello {{ first_name|default:'there' }}"})
        campaign_launch(actor=admin, campaign=campaign, now=now)  # enqueues the tick after commit

    mine = lambda: [m for m in mail.outbox if m.to[0].startswith(f"{tag}-")]  # noqa: E731

    def completed() -> bool:
        with schema_context(tenant.schema_name):
            return Campaign.objects.get(pk=campaign.pk).status == "completed"

    assert wait_for(completed), "the worker never completed the campaign"
    assert sorted(m.to[0] for m in mine()) == sorted(c.email for c in people)
    # The same send task delivered again (a redelivery after a lost ack): nothing more goes out.
    with schema_context(tenant.schema_name):
        Campaign.objects.filter(pk=campaign.pk).update(status="running")
    result = send_to_tenant(send_occasion, schema_name=tenant.schema_name, campaign_id=campaign.pk, occasion="once",
                            now_iso=now.isoformat())
    assert result.get(timeout=30)["sent"] == 0
    assert len(mine()) == 3
    with schema_context(tenant.schema_name):
        assert Send.objects.filter(campaign=campaign, status="sent").count() == 3
