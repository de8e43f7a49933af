"""What other apps may listen to. `customers_touched` is sent after the data's transaction
has committed; `customers_merged` inside it, before the merged-away profiles are deleted."""

from django.dispatch import Signal

# Keyword arguments: customer_ids (list[int]) and what reached them — event_names,
# trait_keys, surveys (survey keys), channels (consent channels) — and `now` (the moment
# the data was stored, or None). The segment engine re-checks those customers against
# the segments such data can change.
customers_touched = Signal()

# Keyword arguments: survivor (int), losers (list[int]) and now. Profiles that turned out to
# be one person are about to become `survivor`: the losers' rows are deleted once the
# receivers return. Each app moves what it keeps per customer (segment stays, campaign
# assignments and sends) onto the survivor, in the merge's transaction — a receiver that
# raises rolls the whole batch back.
customers_merged = Signal()


def announce(*, sender: str, customer_ids, event_names=(), trait_keys=(), surveys=(), channels=(), now=None) -> None:
    """Send `customers_touched` once the current transaction commits (never for a batch
    that rolls back)."""
    from django.db import transaction

    payload = {"customer_ids": sorted(set(customer_ids)), "event_names": sorted(set(event_names)),
               "trait_keys": sorted(set(trait_keys)), "surveys": sorted(set(surveys)),
               "channels": sorted(set(channels)), "now": now}
    if payload["customer_ids"]:
        transaction.on_commit(lambda: customers_touched.send(sender=sender, **payload))
