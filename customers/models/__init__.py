"""A tenant's end customers and what they do (tenant schema).

Built-in columns follow shared/specs/segment-rules.md so the rule compiler can address
them directly; everything else goes to `traits` (JSONB). One module per kind of fact:
profiles, events, rollups, feedback (surveys, consent) and metrics.
"""

# CSV imports live in their own module (customers/imports/); imported here so Django sees them.
from customers.imports.models import ImportJob, ImportRowError
from customers.models.events import DataRetention, Event, EventDefinition, EventMessage, InboxBatch
from customers.models.feedback import Consent, ConsentChange, Survey, SurveyResponse
from customers.models.metrics import CustomerMetrics, MetricsSettings, MetricsSummary
from customers.models.profiles import Customer, CustomerIdentity, GeneratorTruth, PersonalPropertyKey, TraitDefinition
from customers.models.rollups import (
    EventDay, EventDayValue, EventLifetime, EventTotal, Numeric, RollupEvent, RollupProperty,
)

__all__ = [
    "Consent", "ConsentChange", "Customer", "CustomerIdentity", "CustomerMetrics", "DataRetention", "Event",
    "EventDay", "EventDayValue", "EventDefinition", "EventLifetime", "EventMessage", "EventTotal", "GeneratorTruth",
    "ImportJob", "ImportRowError", "InboxBatch", "MetricsSettings", "MetricsSummary", "Numeric", "PersonalPropertyKey",
    "RollupEvent", "RollupProperty", "Survey", "SurveyResponse", "TraitDefinition",
]
