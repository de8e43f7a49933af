"""Webhook destination pages: create (the secret shown once), bad input coded at its field
with nothing stored, edit and switch off, "Send test" (a delivery, an HTTP error, an SSRF
refusal with its code), the delivery log's pages, permissions and tenant isolation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.db import connection

from campaigns.models import WebhookDelivery, WebhookEndpoint
from campaigns.services.endpoints import webhook_endpoint_create
from tests.campaigns.conftest import T0, people, send, session, static_segment
from tests.conftest import membership_of


def problems_in(html: str) -> set[tuple[str, str]]:
    return set(re.findall(r'data-testid="field-error" data-path="([^"]*)" data-code="([^"]*)"', html))


@pytest.fixture
def loopback_ok(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


@pytest.fixture
def endpoint(alpha, loopback_ok, loopback_server):
    segment = static_segment("vip", people(1))
    return webhook_endpoint_create(actor=membership_of(alpha, "admin@alpha.test"), segment_id=segment.pk,
                                   url=f"{loopback_server.url}/hook", events=["entered"])


def test_creating_a_destination_shows_its_secret_once(alpha, loopback_ok, loopback_server):
    segment = static_segment("vip", people(1))
    marketer = session(alpha, "marketer")
    response = send(marketer, "post", "/campaigns/-/webhooks/new/",
                    {"url": f"{loopback_server.url}/in", "segment": segment.pk, "events": ["entered", "exited"]},
                    tenant=alpha)
    assert response.status_code == 201
    endpoint = WebhookEndpoint.objects.get()
    assert (endpoint.segment, endpoint.events) == (segment, ["entered", "exited"])
    assert endpoint.secret.startswith("whsec_") and endpoint.secret in response.content.decode()
    detail = send(marketer, "get", f"/campaigns/-/webhooks/{endpoint.pk}/", tenant=alpha).content.decode()
    assert endpoint.secret not in detail and endpoint.secret[:10] + "…" in detail
    listing = send(marketer, "get", "/campaigns/-/webhooks/", tenant=alpha).content.decode()
    assert listing.count('data-testid="webhook-row"') == 1 and endpoint.secret not in listing


@pytest.mark.parametrize("body,expected", [
    ({"url": "http://169.254.169.254/latest", "events": ["entered"]}, ("url", "unsafe_address")),
    ({"url": "ftp://files.example.com/", "events": ["entered"]}, ("url", "unsafe_scheme")),
    ({"url": "https://user:pw@hooks.example.com/", "events": ["entered"]}, ("url", "credentials_in_url")),
    ({"url": "http://127.0.0.1:9/x", "events": []}, ("events", "invalid_choice")),
    ({"url": "http://127.0.0.1:9/x", "events": ["entered"], "segment": ""}, ("segment_id", "required")),
    ({"url": "https://hooks.example.com/\x00", "events": ["entered"]}, ("url", "null_characters_not_allowed")),
])
def test_bad_input_is_coded_at_its_field_and_nothing_is_stored(alpha, body, expected):
    segment = static_segment("vip", people(1))
    response = send(session(alpha), "post", "/campaigns/-/webhooks/new/", {"segment": segment.pk} | body, tenant=alpha)
    assert response.status_code == 400
    assert expected in problems_in(response.content.decode())
    assert not WebhookEndpoint.objects.exists()


def test_editing_changes_events_and_a_refused_url_changes_nothing(alpha, endpoint):
    admin = session(alpha)
    url = f"/campaigns/-/webhooks/{endpoint.pk}/edit/"
    assert send(admin, "post", url, {"url": endpoint.url, "events": ["entered", "exited"]},
                tenant=alpha).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.events == ["entered", "exited"]
    refused = send(admin, "post", url, {"url": "http://10.0.0.8/hook", "events": ["exited"]}, tenant=alpha)
    assert refused.status_code == 400 and ("url", "unsafe_address") in problems_in(refused.content.decode())
    endpoint.refresh_from_db()
    assert endpoint.events == ["entered", "exited"] and endpoint.url.endswith("/hook")


def test_a_destination_is_switched_off_and_on(alpha, endpoint):
    admin = session(alpha)
    url = f"/campaigns/-/webhooks/{endpoint.pk}/edit/"
    send(admin, "post", url, {"active": "0"}, tenant=alpha)
    endpoint.refresh_from_db()
    assert (endpoint.active, endpoint.disabled_reason) == (False, "Disabled by hand.")
    send(admin, "post", url, {"active": "1"}, tenant=alpha)
    endpoint.refresh_from_db()
    assert endpoint.active


def test_send_test_posts_a_signed_message_and_shows_the_answer(alpha, endpoint, loopback_server):
    admin = session(alpha)
    url = f"/campaigns/-/webhooks/{endpoint.pk}/test/"
    ok = send(admin, "post", url, tenant=alpha, HTTP_HX_REQUEST="true")
    assert ok.status_code == 200 and 'data-ok="true"' in ok.content.decode() and "HTTP 200" in ok.content.decode()
    assert loopback_server.requests[-1]["headers"]["webhook-signature"].startswith("v1,")
    loopback_server.responses.append((500, {}))
    failed = send(admin, "post", url, tenant=alpha, HTTP_HX_REQUEST="true").content.decode()
    assert 'data-ok="false"' in failed and "HTTP 500" in failed
    assert not WebhookDelivery.objects.exists()  # a test is not a delivery


def test_send_test_to_a_refused_address_shows_the_guards_code(alpha, settings):
    segment = static_segment("vip", people(1))
    endpoint = WebhookEndpoint.objects.create(segment=segment, segment_label="Vip", url="http://127.0.0.1:9/hook",
                                              secret="whsec_dGVzdA==", events=["entered"])
    settings.WEBHOOKS_ALLOW_LOOPBACK = False
    response = send(session(alpha, "marketer"), "post", f"/campaigns/-/webhooks/{endpoint.pk}/test/", tenant=alpha)
    html = response.content.decode()
    assert response.status_code == 200 and 'data-code="unsafe_address"' in html and "Not sent" in html


def test_the_delivery_log_pages_newest_first(alpha, endpoint):
    WebhookDelivery.objects.bulk_create([
        WebhookDelivery(endpoint=endpoint, change_id=i, payload={"type": "segment.entered", "data": {"customer_id": f"c{i}"}},
                        status="failed" if i < 3 else "pending", attempts=8 if i < 3 else 1, response_code=503,
                        next_attempt_at=T0 + timedelta(minutes=i)) for i in range(60)])
    admin = session(alpha)
    url = f"/campaigns/-/webhooks/{endpoint.pk}/"
    first = send(admin, "get", url, tenant=alpha).content.decode()
    assert first.count('data-testid="delivery-row"') == 50 and "c59" in first and "HTTP 503" in first
    older = re.search(r'href="\?before=(\d+)" data-testid="log-older"', first).group(1)
    second = send(admin, "get", url, {"before": older}, tenant=alpha).content.decode()
    assert second.count('data-testid="delivery-row"') == 10 and "c0<" in second
    failed = send(admin, "get", url, {"status": "failed"}, tenant=alpha).content.decode()
    assert failed.count('data-testid="delivery-row"') == 3
    bad = send(admin, "get", url, {"status": "lost"}, tenant=alpha)
    assert bad.status_code == 400 and 'data-code="invalid_choice"' in bad.content.decode()


def test_viewers_read_destinations_but_cannot_change_or_test_them(alpha, endpoint, loopback_server):
    viewer = session(alpha, "viewer")
    html = send(viewer, "get", f"/campaigns/-/webhooks/{endpoint.pk}/", tenant=alpha).content.decode()
    assert 'data-testid="webhook-url"' in html and 'data-testid="send-test"' not in html and "whsec_" not in html
    assert send(viewer, "post", f"/campaigns/-/webhooks/{endpoint.pk}/test/", tenant=alpha).status_code == 403
    assert send(viewer, "post", f"/campaigns/-/webhooks/{endpoint.pk}/edit/", {"active": "0"},
                tenant=alpha).status_code == 403
    assert loopback_server.requests == []
    endpoint.refresh_from_db()
    assert endpoint.active


def test_another_workspaces_destination_is_not_found(alpha, other_tenant):
    connection.set_tenant(other_tenant)
    segment = static_segment("beta-vip", people(1, prefix="b"))
    WebhookEndpoint.objects.create(pk=876_543, segment=segment, segment_label="Beta", url="http://127.0.0.1:9/",
                                   secret="whsec_dGVzdA==", events=["entered"])
    connection.set_tenant(alpha)
    admin = session(alpha)
    for method, path in (("get", ""), ("post", "edit/"), ("post", "test/")):
        assert send(admin, method, f"/campaigns/-/webhooks/876543/{path}", {"active": "0"},
                    tenant=alpha).status_code == 404
    connection.set_tenant(other_tenant)
    assert WebhookEndpoint.objects.get(pk=876_543).active


def test_any_text_in_the_webhook_form_or_a_log_filter_is_answered_never_a_500(alpha, endpoint):
    from hypothesis import HealthCheck, given, settings, strategies as st

    admin = session(alpha)
    texts = st.one_of(st.text(max_size=60), st.sampled_from(["http://[::1]/", "http://0x7f.1/", "https://é.example/",
                                                              "99999999999999999999", "a\x00b", "-1"]))

    @settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(field=st.sampled_from(["url", "segment", "events", "active", "status", "before"]), value=texts)
    def check(field, value):
        body = {"url": "http://127.0.0.1:9/x", "segment": str(endpoint.segment_id), "events": ["entered"], field: value}
        answers = [send(admin, "post", "/campaigns/-/webhooks/new/", body, tenant=alpha).status_code,
                   send(admin, "post", f"/campaigns/-/webhooks/{endpoint.pk}/edit/", body, tenant=alpha).status_code,
                   send(admin, "get", f"/campaigns/-/webhooks/{endpoint.pk}/", {field: value}, tenant=alpha).status_code,
                   send(admin, "get", "/campaigns/", {"status" if field == "url" else field: value},
                        tenant=alpha).status_code]
        assert all(status in (200, 201, 302, 400) for status in answers), (field, value, answers)

    check()
