"""What other apps may listen to. `customers_touched` is sent after the data's transaction
has committed; `customers_merged` inside it, before the merged-away profiles are deleted."""

from __future__ import annotations

from collections.abc import Mapping

from django.dispatch import Signal

# Keyword arguments: customer_ids (list[int]); what reached which of them — events (event
# name → customer ids), traits (trait key → ids), surveys (survey key → ids), channels
# (consent channel → ids); merged (ids of customers other profiles were merged into: any of
# their facts may have changed); and `now` (the moment the data was stored, or None). The
# segment engine re-checks, per segment, the customers that data the segment depends on
# reached, and the merged ones for every segment.
customers_touched = Signal()

# Keyword arguments: survivor (int), losers (list[int]) and now. Profiles that turned out to
# be one person are about to become `survivor`: the losers' rows are deleted once the
# receivers return. Each app moves what it keeps per customer (segment stays, campaign
# assignments and sends) onto the survivor, in the merge's transaction — a receiver that
# raises rolls the whole batch back.
customers_merged = Signal()


def announce(*, sender: str, customer_ids, events: Mapping | None = None, traits: Mapping | None = None,
             surveys: Mapping | None = None, channels: Mapping | None = None, merged=(), now=None) -> None:
    """Send `customers_touched` once the current transaction commits (never for a batch
    that rolls back). Each of events, traits, surveys and channels maps a name to the
    customers it reached."""
    from django.db import transaction

    everyone = sorted(set(customer_ids) | set(merged))
    payload = {"customer_ids": everyone, "events": _listed(events), "traits": _listed(traits),
               "surveys": _listed(surveys), "channels": _listed(channels), "merged": sorted(set(merged)), "now": now}
    if everyone:
        transaction.on_commit(lambda: customers_touched.send(sender=sender, **payload))


def _listed(reached: Mapping | None) -> dict[str, list[int]]:
    """JSON-ready for the task the listener queues: sorted id lists, no empty names."""
    return {name: sorted(set(ids)) for name, ids in sorted((reached or {}).items()) if ids}
