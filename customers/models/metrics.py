"""Per-customer metrics (RFM, ARPU, LTV, churn) and the workspace's metric settings."""

from decimal import Decimal

from django.db import models

from customers.models.profiles import Customer


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
