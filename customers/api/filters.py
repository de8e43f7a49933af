import django_filters
from django.db.models import Q

from common.filters import Moment
from customers.models import Customer, Event


class CustomerFilter(django_filters.FilterSet):
    country = django_filters.CharFilter(help_text="ISO 3166-1 alpha-2, exact")
    plan = django_filters.CharFilter()
    industry = django_filters.CharFilter()
    device_type = django_filters.CharFilter()
    signed_up_after = Moment(field_name="signed_up_at", lookup_expr="gte")
    signed_up_before = Moment(field_name="signed_up_at", lookup_expr="lt")
    last_seen_after = Moment(field_name="last_seen_at", lookup_expr="gte")
    last_seen_before = Moment(field_name="last_seen_at", lookup_expr="lt")
    external_id = django_filters.CharFilter(help_text="Exact external id (a lookup)")
    search = django_filters.CharFilter(
        method="filter_search",
        help_text="Case-insensitive part of the external id, email or name (email and name only with "
                  "the customers.view_pii permission)")

    class Meta:
        model = Customer
        fields = ["country", "plan", "industry", "device_type", "signed_up_after", "signed_up_before",
                  "last_seen_after", "last_seen_before", "external_id", "search"]

    def filter_search(self, queryset, name, value):
        condition = Q(external_id__icontains=value)
        # Matching on fields the actor may not read would let them probe for an email
        # address one request at a time, masked output or not.
        actor = getattr(self.request, "actor", None)
        if actor is not None and actor.has("customers.view_pii"):
            condition |= Q(email__icontains=value) | Q(name__icontains=value)
        return queryset.filter(condition)


class EventFilter(django_filters.FilterSet):
    name = django_filters.CharFilter()
    customer = django_filters.CharFilter(field_name="customer__external_id", help_text="The customer's external id")
    since = Moment(field_name="timestamp", lookup_expr="gte")
    until = Moment(field_name="timestamp", lookup_expr="lt")

    class Meta:
        model = Event
        fields = ["name", "customer", "since", "until"]
