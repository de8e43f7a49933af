"""Who the tenant's customers are: profiles, identities, the trait registry, and what the
demo generator planted."""

from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import models
from django.db.models import F
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
