"""What customers do: events, their message ids, retention, the event registry and the
tracking inbox."""

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from customers.models.profiles import Customer


class Event(models.Model):
    # No index of its own: event_customer_ts_idx (customer, timestamp) serves every lookup by
    # customer (and the cascade), and one fewer index is one fewer write per event ingested.
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events", db_index=False)
    name = models.CharField(max_length=200)
    timestamp = models.DateTimeField()
    properties = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255, null=True, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)
    source = models.CharField(max_length=32, default="api")

    class Meta:
        ordering = ["-timestamp", "-id"]
        indexes = [
            # event conditions: SELECT customer_id … WHERE name = %s AND timestamp >= %s
            #   GROUP BY customer_id HAVING count(*) …  (semi-join per customer)
            models.Index(fields=["name", "timestamp", "customer"], name="event_name_ts_customer_idx"),
            # one customer's timeline and explain(): WHERE customer_id = %s ORDER BY timestamp
            models.Index(fields=["customer", "timestamp"], name="event_customer_ts_idx"),
            # incremental evaluation (a rule on the customers an ingest batch touched) and sequence
            # steps: WHERE customer_id = ANY(%s) AND name = %s AND timestamp < %s — only the
            # events of that name are read from the heap, not every event of those customers
            # (bench/segments.py incremental_<n> on purchase_sum reads a fifth of the rows).
            models.Index(fields=["customer", "name", "timestamp"], name="event_customer_name_ts_idx"),
            # warehouse export's increments: WHERE received_at > %s AND received_at <= %s. Events
            # arrive in received_at order, so a block range index answers it for almost nothing
            # at ingest (a B-tree would be one more index to update per event).
            BrinIndex(fields=["received_at"], name="event_received_brin"),
        ]
        # TRICKY: the table is partitioned by month of `timestamp` (migration 0026,
        # customers/partitions.py); its key in the database is (id, timestamp). Retries are
        # deduplicated through EventMessage: a unique index over all partitions cannot
        # leave out the partition key.

    def __str__(self) -> str:
        return f"{self.name} @ {self.timestamp:%Y-%m-%d %H:%M}"


class EventMessage(models.Model):
    """A stored event's message id: ingestion inserts here first and stores only the events
    whose id was new (how a retried batch is stored once). Forgotten with its event when
    retention removes the event's month."""

    message_id = models.CharField(max_length=255, primary_key=True)
    timestamp = models.DateTimeField(help_text="The event's time: the id is forgotten with the event")

    class Meta:
        ordering = ["message_id"]

    def __str__(self) -> str:
        return self.message_id


class DataRetention(models.Model):
    """How long the workspace keeps events (one row per tenant schema, made on first use)."""

    event_months = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="Keep events for at least this many whole months; empty keeps every event")
    pruned_before = models.DateTimeField(null=True, blank=True,
                                         help_text="Events before this time were removed by the last upkeep")
    maintained_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "data retention"

    def __str__(self) -> str:
        return f"events kept {self.event_months} months" if self.event_months else "events kept"


class InboxBatch(models.Model):
    """A tracking request's valid items, stored as sent (normalised messages as JSON) and
    acknowledged once committed; a merge moves them into customers and events
    (customers/ingest/inbox.py). A batch the merge cannot store keeps `failed_at` and the
    error and is left aside, so it cannot hold up the ones behind it."""

    received_at = models.DateTimeField()
    items = models.PositiveIntegerField()
    messages = models.TextField()
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")


class EventDefinition(models.Model):
    """What the builder's autocomplete knows about an event name; kept up to date set-wise
    by ingestion (one upsert per batch and name)."""

    name = models.CharField(max_length=200, unique=True)
    first_seen_at = models.DateTimeField()
    last_seen_at = models.DateTimeField()
    volume = models.BigIntegerField(default=0)
    properties = models.JSONField(default=dict, blank=True, help_text="property name → JSON type")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
