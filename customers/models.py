"""A tenant's end customers and what they do (tenant schema).

Built-in columns follow shared/specs/segment-rules.md so the rule compiler can address
them directly; everything else goes to `traits` (JSONB).
"""

from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import BrinIndex, GinIndex, OpClass
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper


class Customer(models.Model):
    # Built-in traits: NULL is missing (never sent, or cleared with null); "" and an empty
    # tech_stack are values a client sent (shared/specs/segment-rules.md, "Clarified").
    external_id = models.CharField(max_length=255, unique=True)
    anonymous_ids = ArrayField(models.CharField(max_length=255), default=list, blank=True)
    email = models.EmailField(max_length=254, null=True, blank=True)
    name = models.CharField(max_length=255, null=True, blank=True)
    # demographic
    birth_date = models.DateField(null=True, blank=True)
    gender = models.CharField(max_length=32, null=True, blank=True)
    income_band = models.CharField(max_length=32, null=True, blank=True)
    occupation = models.CharField(max_length=128, null=True, blank=True)
    # geographic
    country = models.CharField(max_length=2, null=True, blank=True, help_text="ISO 3166-1 alpha-2")
    region = models.CharField(max_length=128, null=True, blank=True)
    city = models.CharField(max_length=128, null=True, blank=True)
    language = models.CharField(max_length=16, null=True, blank=True)
    timezone = models.CharField(max_length=64, null=True, blank=True)
    # firmographic
    company = models.CharField(max_length=255, null=True, blank=True)
    industry = models.CharField(max_length=128, null=True, blank=True)
    company_size = models.IntegerField(null=True, blank=True)
    annual_revenue = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    # technographic
    device_type = models.CharField(max_length=32, null=True, blank=True)
    os = models.CharField(max_length=64, null=True, blank=True)
    tech_stack = ArrayField(models.CharField(max_length=64), null=True, blank=True)
    # lifecycle
    plan = models.CharField(max_length=64, null=True, blank=True)
    signed_up_at = models.DateTimeField(null=True, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True)
    email_opt_in = models.BooleanField(null=True, blank=True)
    traits = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # trait conditions on the common columns: WHERE country = ANY(%s) …
            models.Index(fields=["country"], name="customer_country_idx"),
            models.Index(fields=["plan"], name="customer_plan_idx"),
            GinIndex(fields=["traits"], name="customer_traits_gin"),
            # the customer list's default order and the API's cursor: ORDER BY created_at DESC, id DESC LIMIT n
            models.Index(fields=["created_at", "id"], name="customer_created_idx"),
            # the list's search, a prefix per keystroke: WHERE UPPER(col::text) LIKE UPPER('ada%')
            # (Django's istartswith); text_pattern_ops makes LIKE 'prefix%' a range scan
            models.Index(OpClass(Upper("external_id"), name="text_pattern_ops"), name="customer_xid_prefix_idx"),
            models.Index(OpClass(Upper("email"), name="text_pattern_ops"), name="customer_email_prefix_idx"),
            models.Index(OpClass(Upper("name"), name="text_pattern_ops"), name="customer_name_prefix_idx"),
            # the live count's estimate reads a fixed hash-sample of ids (segments/selectors/preview.py):
            # WHERE (hashint8(id) & 1023) < k, an index-only range scan
            models.Index(models.Func(F("id"), function="hashint8", output_field=models.BigIntegerField()).bitand(1023),
                         F("id"), name="customer_sample_idx"),
        ]

    def __str__(self) -> str:
        return self.email or self.external_id


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


class CustomerIdentity(models.Model):
    """An id a source knows the customer by: a userId (external id) or an anonymousId.
    Unique per (kind, value), so resolving a batch of messages is one join."""

    class Kind(models.TextChoices):
        USER_ID = "user_id", "User id"
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="identities")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=255)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["kind", "value"]
        constraints = [models.UniqueConstraint(fields=["kind", "value"], name="identity_kind_value_unique")]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class TraitDefinition(models.Model):
    """The tenant's trait registry: built-ins (columns) and custom traits (in `traits`),
    registered on first sight with their inferred type; editable afterwards."""

    class Type(models.TextChoices):
        STRING = "string", "Text"
        NUMBER = "number", "Number"
        BOOLEAN = "boolean", "Yes/no"
        DATETIME = "datetime", "Date/time"
        LIST = "list", "List"

    class Category(models.TextChoices):
        DEMOGRAPHIC = "demographic", "Demographic"
        GEOGRAPHIC = "geographic", "Geographic"
        FIRMOGRAPHIC = "firmographic", "Firmographic"
        TECHNOGRAPHIC = "technographic", "Technographic"
        PSYCHOGRAPHIC = "psychographic", "Psychographic"
        NEEDS = "needs", "Needs"
        BEHAVIORAL = "behavioral", "Behavioral"
        VALUE = "value", "Value"

    key = models.CharField(max_length=64, unique=True)
    type = models.CharField(max_length=16, choices=Type.choices)
    category = models.CharField(max_length=16, choices=Category.choices, default=Category.BEHAVIORAL)
    description = models.CharField(max_length=300, blank=True)
    is_pii = models.BooleanField(default=False)
    is_builtin = models.BooleanField(default=False)
    # Served with the membership lookup (segments.lookup) to the tenant's own product;
    # never a personal trait (trait_exposure_set refuses it).
    exposed = models.BooleanField(default=False, db_default=False)  # raw inserts (ingestion) omit it
    first_seen_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["category", "key"]

    def __str__(self) -> str:
        return f"{self.key} ({self.type})"


class PersonalPropertyKey(models.Model):
    """An event property key the tenant declares personal data (beside the usual names and
    the keys of personal traits: customers.selectors.personal_property_keys). Stored lower-case."""

    key = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.key


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


class Survey(models.Model):
    """NPS and CSAT exist in every tenant; custom surveys add their own questions."""

    class Kind(models.TextChoices):
        NPS = "nps", "Net Promoter Score (0–10)"
        CSAT = "csat", "Customer satisfaction (1–5)"
        CUSTOM = "custom", "Custom"

    key = models.SlugField(max_length=64, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    name = models.CharField(max_length=200)
    # [{"key": "q1", "text": "…", "min": 0, "max": 10}] for custom surveys.
    questions = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["key"]

    def __str__(self) -> str:
        return self.name


class SurveyResponse(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="survey_responses")
    survey = models.ForeignKey(Survey, on_delete=models.PROTECT, related_name="responses")
    question = models.CharField(max_length=64, blank=True)
    score = models.DecimalField(max_digits=8, decimal_places=2, null=True, blank=True)
    comment = models.TextField(blank=True)
    responded_at = models.DateTimeField()
    message_id = models.CharField(max_length=255, null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-responded_at", "-id"]
        indexes = [
            # survey conditions: latest/average/count per customer for one survey (and question)
            models.Index(fields=["survey", "question", "customer", "-responded_at"], name="survey_resp_lookup_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["message_id"], condition=Q(message_id__isnull=False),
                                    name="survey_response_message_id_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.survey.key}: {self.score}"


class Consent(models.Model):
    """The current answer per channel; every change is also kept in ConsentChange."""

    class Channel(models.TextChoices):
        EMAIL = "email", "Email"
        SMS = "sms", "SMS"
        PUSH = "push", "Push"
        IN_APP = "in_app", "In-app"
        ADS = "ads", "Advertising"

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    granted = models.BooleanField()
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["channel"]
        constraints = [models.UniqueConstraint(fields=["customer", "channel"], name="consent_customer_channel_unique")]

    def __str__(self) -> str:
        return f"{self.channel}: {'granted' if self.granted else 'withdrawn'}"


class ConsentChange(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consent_history")
    channel = models.CharField(max_length=16, choices=Consent.Channel.choices)
    granted = models.BooleanField()
    changed_at = models.DateTimeField()
    source = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "-changed_at"], name="consent_history_idx")]


class MetricsSettings(models.Model):
    """How the tenant's metrics are computed (one row per tenant schema, made on first use)."""

    class Period(models.TextChoices):
        WEEK = "week", "Week"
        MONTH = "month", "Month"
        QUARTER = "quarter", "Quarter"

    revenue_event = models.CharField(max_length=200, default="purchase",
                                     help_text="The event whose property carries revenue")
    revenue_property = models.CharField(max_length=200, default="amount")
    gross_margin = models.DecimalField(max_digits=5, decimal_places=4, default=Decimal("0.7"),
                                       help_text="Share of revenue kept after direct costs, 0–1")
    expected_lifespan_months = models.DecimalField(max_digits=7, decimal_places=2, default=Decimal("24"),
                                                   help_text="How long a customer stays, for LTV = ARPU × margin × lifespan")
    churn_period = models.CharField(max_length=16, choices=Period.choices, default=Period.MONTH)
    churn_inactivity_days = models.PositiveIntegerField(
        default=30, help_text="A customer with no event for this long counts as churned")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "metrics settings"

    def __str__(self) -> str:
        return f"revenue from {self.revenue_event}.{self.revenue_property}"


class CustomerMetrics(models.Model):
    """Computed values per customer, written in bulk by the metrics refresher and read by
    metric conditions of the rule language (shared/specs/segment-rules.md). A value a
    customer lacks is NULL ("missing" to the rules)."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True, related_name="metrics")
    recency_days = models.FloatField(null=True, blank=True, help_text="Days since the last event")
    frequency = models.IntegerField(default=0, help_text="Revenue events (orders), all time")
    monetary = models.DecimalField(max_digits=16, decimal_places=2, default=0, help_text="Revenue, all time")
    r_score = models.SmallIntegerField(null=True, blank=True)
    f_score = models.SmallIntegerField(null=True, blank=True)
    m_score = models.SmallIntegerField(null=True, blank=True)
    rfm_segment = models.CharField(max_length=32, blank=True)
    arpu = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True,
                               help_text="Revenue per churn period of tenure")
    ltv = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    churn_risk = models.FloatField(null=True, blank=True)
    predicted_ltv = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    cluster = models.CharField(max_length=64, blank=True)
    engagement_score = models.FloatField(null=True, blank=True)
    computed_at = models.DateTimeField()

    class Meta:
        ordering = ["customer_id"]
        indexes = [
            # metric conditions: WHERE rfm_segment = %s / r_score >= %s (semi-join on customer_id)
            models.Index(fields=["rfm_segment"], name="metrics_rfm_segment_idx"),
        ]

    def __str__(self) -> str:
        return f"metrics of customer {self.customer_id}"


class MetricsSummary(models.Model):
    """The tenant-wide figures of one refresh: kept per refresh for trend charts."""

    computed_at = models.DateTimeField()
    customers = models.IntegerField()
    paying_customers = models.IntegerField()
    revenue = models.DecimalField(max_digits=18, decimal_places=2)
    arpu = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    churn_rate = models.FloatField(null=True, blank=True, help_text="Of the last complete period")
    ltv_lifespan = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    ltv_churn = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    # [{"period": "2026-10-01", "active": n, "churned": n, "rate": r}, …]
    churn_by_period = models.JSONField(default=list, blank=True)
    rfm_groups = models.JSONField(default=dict, blank=True, help_text="group → customers")
    settings = models.JSONField(default=dict, blank=True, help_text="the settings the figures used")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-computed_at", "-id"]

    def __str__(self) -> str:
        return f"metrics at {self.computed_at:%Y-%m-%d %H:%M}"


class GeneratorTruth(models.Model):
    """What demo/generator/ planted for a generated customer: its persona and whether
    and when it churned (churned_at = its last event). Kept out of Customer and its traits
    so segments and clustering features cannot read the answer; their tests compare with it."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, primary_key=True,
                                    related_name="generator_truth")
    persona = models.CharField(max_length=32)
    churned = models.BooleanField()
    churned_at = models.DateTimeField(null=True, blank=True)
    seed = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["customer_id"]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.persona}{' (churned)' if self.churned else ''}"


# CSV imports live in their own module (customers/imports/); imported here so Django sees them.
from customers.imports.models import ImportJob, ImportRowError  # noqa: E402,F401
