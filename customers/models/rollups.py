"""Rollups the statement triggers keep beside the events, so rules read days and lifetimes
instead of every event; and which events and properties are rolled up."""

from django.db import models

from customers.models.profiles import Customer


class Numeric(models.DecimalField):
    """PostgreSQL's unconstrained `numeric`: sums of JSON numbers kept exactly as the events'
    own `(properties -> p)::numeric` would give them, whatever their scale."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_digits", 1000)
        kwargs.setdefault("decimal_places", 0)
        super().__init__(*args, **kwargs)

    def db_type(self, connection) -> str:
        return "numeric"

    def get_db_prep_value(self, value, connection, prepared=False):
        return value  # no quantising to decimal_places: the column keeps any scale

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("max_digits", None)
        kwargs.pop("decimal_places", None)
        return name, path, args, kwargs


class EventDay(models.Model):
    """Per customer, event name (of RollupEvent) and UTC day: how many events, the first
    and the last. Kept by triggers on customers_event in the writing transaction, whatever
    writes (ingest, imports, merges, erasure, deletes; migrations 0019, 0020), so rules read
    whole days from here and only a window's partial edge days from the events
    (segments/rules/compile/events.py)."""

    pk = models.CompositePrimaryKey("customer", "name", "day")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    day = models.DateField()
    events = models.IntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        indexes = [
            # a rule over everyone: WHERE name = %s AND day >= %s AND day < %s, summed per customer
            models.Index(fields=["name", "day", "customer"], name="eventday_name_day_idx", include=["events"]),
        ]


class EventLifetime(models.Model):
    """Per customer and event name (of RollupEvent): how many events in all, the first and
    the last. The same triggers keep it, after the day rows (a recount sums the customer's
    days), so a rule without a window start reads one row per customer instead of probing
    every month's events ("did X ever", "never did Y", first/last time, counts)."""

    pk = models.CompositePrimaryKey("customer", "name")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    events = models.IntegerField()
    first_at = models.DateTimeField()
    last_at = models.DateTimeField()

    class Meta:
        indexes = [
            # a rule over everyone: WHERE name = %s AND first_at < %s. Without the counts and
            # times in the index an ingest's upsert may be a HOT update (~4 µs less an event
            # rolled up); reading the rows from the table costs a rule over everyone ~0.1 s at
            # 1M customers (bench/segments.py did_x_never_y).
            models.Index(fields=["name", "customer"], name="eventlifetime_name_idx"),
        ]


class EventDayValue(models.Model):
    """Per customer, event name, UTC day and numeric property: how many events carried it
    as a JSON number, their sum, least and greatest. Only for the (event, property) pairs in
    RollupProperty; the same triggers keep it."""

    pk = models.CompositePrimaryKey("customer", "name", "day", "property")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    day = models.DateField()
    property = models.CharField(max_length=200)
    n = models.IntegerField()
    total = Numeric()
    low = Numeric()
    high = Numeric()

    class Meta:
        indexes = [
            models.Index(fields=["name", "property", "day", "customer"], name="eventdayvalue_lookup_idx",
                         include=["n", "total", "low", "high"]),
        ]


class EventTotal(models.Model):
    """Per customer, event name and numeric property of RollupProperty: the lifetime
    count, sum, least and greatest of the values, and the latest event's time. A rule
    without a window start reads one row per customer here where the customer's latest
    event is before the window's end; the rest from the daily values (segments/rules/
    compile/events.py). The same triggers keep it."""

    pk = models.CompositePrimaryKey("customer", "name", "property")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+", db_index=False)
    name = models.CharField(max_length=200)
    property = models.CharField(max_length=200)
    n = models.IntegerField()
    total = Numeric()
    low = Numeric()
    high = Numeric()
    latest = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["name", "property", "customer"], name="eventtotal_lookup_idx",
                         include=["latest", "n", "total", "low", "high"]),
            # the few customers whose latest value is at or after a window's end
            models.Index(fields=["name", "property", "latest"], name="eventtotal_latest_idx"),
        ]


class RollupEvent(models.Model):
    """An event name saved rules count, measure distinct days or first/last of: its day rows
    (EventDay) are kept from when it is requested; rules read them once `ready_at` is set
    (the back-fill finished) and the day rows are markedly fewer than the events."""

    name = models.CharField(max_length=200, unique=True)
    requested_at = models.DateTimeField()
    ready_at = models.DateTimeField(null=True, blank=True)
    days_per_event = models.FloatField(null=True, blank=True, help_text="day rows ÷ events, at the back-fill")

    def __str__(self) -> str:
        return self.name


class RollupProperty(models.Model):
    """A numeric event property a saved rule aggregates: rolled up per day from when it is
    requested; rules read the rollup once `ready_at` is set (the back-fill of the events
    stored before it finished)."""

    event = models.CharField(max_length=200)
    property = models.CharField(max_length=200)
    requested_at = models.DateTimeField()
    ready_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "property"], name="rollup_property_unique")]

    def __str__(self) -> str:
        return f"{self.event}.{self.property}"
