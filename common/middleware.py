"""Request bodies sent with `Transfer-Encoding: chunked`.

A WSGI server that decodes chunked bodies (gunicorn does) hands them over without a
Content-Length, and Django and DRF then read an empty body: an SDK that streams its batch
would get a 400 for a body it sent. This reads the body (up to the largest any endpoint
takes, plus one byte, so an over-long body still meets the endpoint's own limit) and
states its length, as if the client had sent it. Django's development server does not
decode chunked bodies; use gunicorn (the Procfile's server) for clients that send them."""

from __future__ import annotations

import io

from django.conf import settings
from django.core.handlers.wsgi import LimitedStream


def chunked_body_middleware(get_response):
    limit = settings.MAX_CHUNKED_BODY_BYTES

    def middleware(request):
        meta = request.META
        if "chunked" in meta.get("HTTP_TRANSFER_ENCODING", "").lower() and not meta.get("CONTENT_LENGTH") \
                and "wsgi.input" in meta:
            body = meta["wsgi.input"].read(limit + 1)
            request._stream = LimitedStream(io.BytesIO(body), len(body))
            meta["CONTENT_LENGTH"] = str(len(body))
        return get_response(request)

    return middleware
