"""The maturity ladder (insights/reports/maturity.py) over the live segments, with the
practices handed in by whoever assesses them (campaigns, in the product)."""

from django.utils import timezone

from insights.reports.maturity import Practice, live_segments, maturity_report
from segments.models import Segment
from segments.services import segment_create
from tests.conftest import make_member

COUNTRY = {"type": "trait", "field": "country", "op": "eq", "value": "FR"}
STEPS = {"shipped": ("Ship it.", "segments_list", "Open segments"), "tidy": ("Tidy up.", "segments_list", "Tidy")}


def test_the_ladder_reads_live_segments_and_the_handed_practices(in_tenant, tenant):
    admin = make_member(tenant, "ladder-admin@alpha.test", "admin").memberships.get(tenant=tenant)
    now = timezone.now()
    segment_create(actor=admin, key="french", name="French",
                   definition={"version": 1, "match": "all", "conditions": [COUNTRY]}, now=now)
    gone, _ = segment_create(actor=admin, key="gone", name="Gone",
                             definition={"version": 1, "match": "all", "conditions": [COUNTRY]}, now=now)
    Segment.objects.filter(pk=gone.pk).update(status=Segment.Status.ARCHIVED)
    practices = [Practice("shipped", "Shipped", False, "nothing shipped"), Practice("tidy", "Tidy", True, "tidy")]
    report = maturity_report(now=now, live=live_segments(), practices=practices, practice_steps=STEPS)
    assert (report.level, report.segments, report.types["geographic"]) == (1, 1, ["french"])
    assert [(step["kind"], step["url_name"]) for step in report.next_steps] == [
        ("rung", "segments_new"), ("shipped", "segments_list")]
    assert report.as_dict()["practices"][0] == {"key": "shipped", "label": "Shipped", "met": False,
                                                "detail": "nothing shipped"}
