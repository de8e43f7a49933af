"""Segment HTTP tracking API on a tenant host (write-key auth; see customers/tracking.py)."""

from django.urls import path

from customers.views_tracking import tracking

urlpatterns = [
    path("batch", tracking, name="tracking_batch"),
    path("import", tracking, name="tracking_import"),  # Segment's alias of /v1/batch
    *[path(kind, tracking, {"kind": kind}, name=f"tracking_{kind}")
      for kind in ("track", "identify", "page", "screen", "group", "alias")],
]
