"""Segment HTTP tracking API on a tenant host (write-key auth; see customers/ingest/tracking.py)."""

from django.urls import path

from campaigns.views.public import in_app_messages
from customers.views.tracking import tracking

urlpatterns = [
    path("batch", tracking, name="tracking_batch"),
    path("import", tracking, name="tracking_import"),  # Segment's alias of /v1/batch
    *[path(kind, tracking, {"kind": kind}, name=f"tracking_{kind}")
      for kind in ("track", "identify", "page", "screen", "group", "alias")],
    # The customer's in-app messages (GET, same write key); see campaigns/in_app.py.
    path("in-app/messages", in_app_messages, name="tracking_in_app"),
]
