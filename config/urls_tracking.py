"""/v1/ on a tenant host: the Segment HTTP tracking API (write-key auth; see
customers/ingest/tracking.py), in-app messages and the membership lookup."""

from django.urls import path

from campaigns.views.public import in_app_messages
from customers.views.tracking import sdk_metrics, tracking
from segments.views.lookup import profile_segment, profile_segments

KINDS = ("track", "identify", "page", "screen", "group", "alias")

urlpatterns = [
    path("batch", tracking, name="tracking_batch"),
    path("import", tracking, name="tracking_import"),  # Segment's alias of /v1/batch
    *[path(kind, tracking, {"kind": kind}, name=f"tracking_{kind}") for kind in KINDS],
    # analytics.js (@segment/analytics-next) posts to one-letter paths: /v1/t, /v1/i, /v1/p,
    # /v1/s, /v1/g, /v1/a, its batching dispatcher to /v1/b, and its own metrics to /v1/m.
    path("b", tracking, name="tracking_b"),
    *[path(kind[0], tracking, {"kind": kind}, name=f"tracking_{kind[0]}") for kind in KINDS],
    path("m", sdk_metrics, name="tracking_metrics"),
    # The customer's in-app messages (GET, same write key); see campaigns/in_app.py.
    path("in-app/messages", in_app_messages, name="tracking_in_app"),
    # The membership lookup (segments/views/lookup.py; lookup key + signed id, or an API key).
    # The query form (?userId= / ?anonymousId=) first: any id, slashes included.
    path("profiles/segments", profile_segments, name="lookup_segments"),
    path("profiles/segments/<str:key>", profile_segment, name="lookup_segment"),
    path("profiles/<str:user_id>/segments", profile_segments, name="lookup_user_segments"),
    path("profiles/<str:user_id>/segments/<str:key>", profile_segment, name="lookup_user_segment"),
]
