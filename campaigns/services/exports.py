"""Hashed ad audiences of a segment or of a campaign's treatment arm (data.export)."""

from __future__ import annotations

from datetime import datetime


from audit.services import audit_record
from campaigns.audience import audience_csv
from campaigns.models import Campaign
from campaigns.sending import assign_members
from common.actors import Actor
from common.errors import CampaignCode, Conflict
from segments.models import Segment
from tenants.permissions import ensure_permitted


def audience_export(*, actor: Actor, segment: Segment):
    """CSV chunks of hashed identifiers (data.export); audited when started."""
    ensure_permitted(actor, "data.export")
    ensure_permitted(actor, "segments.view")
    audit_record(actor=actor, action="segment.audience_exported", target=segment, target_label=segment.key)
    return audience_csv(segment=segment)


def campaign_audience_export(*, actor: Actor, campaign: Campaign, now: datetime):
    """CSV chunks of the campaign's treatment members, hashed (data.export); audited.
    Members not assigned yet get their arm now, so the holdout stays out of every upload."""
    ensure_permitted(actor, "data.export")
    ensure_permitted(actor, "segments.view")
    if campaign.segment_id is None:
        raise Conflict.single(path="segment_id", code=CampaignCode.SEGMENT_DELETED,
                              message="The campaign's segment was deleted: there is no audience to export.")
    assign_members(campaign=campaign, now=now)
    audit_record(actor=actor, action="campaign.audience_exported", target=campaign)
    return audience_csv(segment=campaign.segment, campaign=campaign)
