"""What other apps may listen to. Sent after the data's transaction has committed."""

from django.dispatch import Signal

# Keyword arguments: customer_ids (list[int]) and what reached them — event_names,
# trait_keys, surveys (survey keys), channels (consent channels) — and `now` (the moment
# the data was stored, or None). The segment engine re-checks those customers against
# the segments such data can change.
customers_touched = Signal()


def announce(*, sender: str, customer_ids, event_names=(), trait_keys=(), surveys=(), channels=(), now=None) -> None:
    """Send `customers_touched` once the current transaction commits (never for a batch
    that rolls back)."""
    from django.db import transaction

    payload = {"customer_ids": sorted(set(customer_ids)), "event_names": sorted(set(event_names)),
               "trait_keys": sorted(set(trait_keys)), "surveys": sorted(set(surveys)),
               "channels": sorted(set(channels)), "now": now}
    if payload["customer_ids"]:
        transaction.on_commit(lambda: customers_touched.send(sender=sender, **payload))
