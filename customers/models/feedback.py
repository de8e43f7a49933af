"""What customers tell the tenant: survey answers and consent, with its history."""

from django.db import models
from django.db.models import Q

from customers.models.profiles import Customer


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
