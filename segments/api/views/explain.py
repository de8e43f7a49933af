"""/api/v1/segments/<key>/explain/<customer>/: why a customer is in or out, node by node."""

from __future__ import annotations

from django.http import Http404
from django.utils import timezone
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from common.masking import mask_explain_tree
from customers.models import Customer
from customers.selectors import personal_property_keys, pii_trait_keys
from segments.api import serializers as s
from segments.api.views.common import masks_pii, segment_or_404
from segments.models import Membership, Segment
from segments.rules.explain import explain
from segments.selectors.facts import customer_facts
from segments.selectors.members import memberships_of
from segments.selectors.personal import group_shown
from segments.selectors.preview import compile_definition


class SegmentExplainView(APIView):
    required_permissions = {"GET": "segments.view"}

    @extend_schema(responses=s.ExplainOutput)
    def get(self, request, key: str, customer_id: int):
        """Why the customer is in or out: the rule's tree with each node's truth at now and
        the facts that decided it, and whether the customer has an open membership."""
        segment = segment_or_404(key)
        customer = Customer.objects.filter(pk=customer_id).first()
        if customer is None:
            raise Http404("No such customer.")
        now = timezone.now()
        membership = Membership.objects.filter(segment=segment, customer=customer, exited_at__isnull=True).first()
        tree = matches = None
        if segment.kind == Segment.Kind.DYNAMIC and segment.definition:
            _, group, _ = compile_definition(segment.definition, now=now, self_key=segment.key)
            facts = customer_facts(customer_ids=[customer.pk], now=now,
                                   segment_keys_at={customer.pk: memberships_of(customer_id=customer.pk, now=now)})
            tree = explain(group, facts[customer.pk], now=now, pii_traits=pii_trait_keys(),
                           pii_properties=personal_property_keys(), shown=group_shown(request.actor, group))
            if masks_pii(request.actor):
                tree = mask_explain_tree(tree, other=None)
            matches = tree["result"]
        mask = masks_pii(request.actor)
        return Response(s.ExplainOutput({
            "segment": segment.key, "customer": customer, "now": now, "member": membership is not None,
            "entered_at": membership.entered_at if membership else None, "matches": matches, "tree": tree,
        }, context={"mask_pii": mask}).data)
