"""Campaign pages a customer (not a member) reaches: the unsubscribe link of an email, and
the in-app messages endpoint their app calls with the workspace's write key.

Both are open without login (tenants.middleware.OPEN_PREFIXES: /unsubscribe/ and /v1/).
"""

from __future__ import annotations

from django.http import JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_GET, require_http_methods

from apikeys.selectors import identity_required, identity_verified, write_key_valid
from campaigns.in_app import messages_for
from campaigns.sending import unsubscribe_read
from campaigns.services.unsubscribe import unsubscribe_apply
from common.errors import DomainError
from customers.models import Consent, Customer
from customers.ingest.tracking import write_key_from

MAX_USER_ID = 255


def _error(status: int, path: str, code: str, message: str) -> JsonResponse:
    return JsonResponse({"errors": [{"path": path, "code": code, "message": message}]}, status=status)


# ------------------------------------------------------------------------------ unsubscribe


def _unsubscribe_page(request, *, state: str, status: int = 200, message: str = "", token: str = ""):
    return render(request, "campaigns/unsubscribe.html", {"state": state, "message": message, "token": token},
                  status=status)


@csrf_protect
def _unsubscribe_get(request, token: str):
    """The confirmation page. A GET never unsubscribes: mail scanners prefetch links."""
    data = unsubscribe_read(token)
    customer = Customer.objects.filter(pk=data["u"]).first() if data else None
    if customer is None:
        return _unsubscribe_page(request, state="invalid", status=400,
                                 message="This unsubscribe link is not valid. It may have been cut short when it "
                                         "was copied: open it again from the email.")
    already = Consent.objects.filter(customer=customer, channel=Consent.Channel.EMAIL, granted=False).exists()
    return _unsubscribe_page(request, state="done" if already else "confirm", token=token)


@never_cache
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_view(request, token: str):
    if request.method == "GET":
        return _unsubscribe_get(request, token)
    # TRICKY: POST is exempt from CSRF on purpose. RFC 8058 one-click unsubscribe is a POST
    # from the mail provider's servers (body `List-Unsubscribe=One-Click`) with no cookie
    # and no CSRF token; the signed token in the URL is the credential, and a forged POST
    # can only do what the link's owner asked for: withdraw email consent (idempotent).
    try:
        unsubscribe_apply(token=token, now=timezone.now())
    except DomainError as error:
        return _unsubscribe_page(request, state="invalid", status=400,
                                 message=error.problems[0].message + " Nothing was changed.")
    return _unsubscribe_page(request, state="done")


# ------------------------------------------------------------------------------ in-app messages


@never_cache
@require_GET
def in_app_messages(request):
    """The customer's active in-app messages. Authenticated like the tracking endpoints:
    the write key as HTTP Basic user or Bearer token (or `?writeKey=`, the GET form of the
    body field). `userHash` (or the X-User-Hash header) is the userId signed by the tenant's
    backend: without it the messages come impersonal, or 401 where the tenant requires it.
    An unknown userId is an empty list: the answer never says who exists."""
    key = write_key_from({"writeKey": request.GET.get("writeKey")}, request.META.get("HTTP_AUTHORIZATION", ""))
    if not write_key_valid(key):
        return _error(401, "writeKey", "invalid_write_key", "Unknown or revoked write key.")
    user_id = request.GET.get("userId", "").strip()
    if not user_id:
        return _error(400, "userId", "required", "Send the customer's userId.")
    if len(user_id) > MAX_USER_ID:
        return _error(400, "userId", "too_long", f"A userId has at most {MAX_USER_ID} characters.")
    given = request.GET.get("userHash") or request.META.get("HTTP_X_USER_HASH", "")
    verified = identity_verified(user_id, given)
    if not verified and identity_required():
        return _error(401, "userHash", "invalid_user_hash",
                      "Send userHash: the userId signed with the workspace's identity secret (HMAC-SHA256, hex).")
    return JsonResponse({"messages": messages_for(user_id=user_id, now=timezone.now(), verified=verified)})
