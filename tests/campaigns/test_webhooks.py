"""Webhook destinations: the SSRF guard refuses hostile URLs (traffic only ever goes to a
loopback server), deliveries are signed Standard-Webhooks style and verify with an
independent implementation, failures back off and retry, redirects are re-checked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from datetime import timedelta

import pytest

from campaigns import ssrf, webhooks
from campaigns.models import Assignment, Campaign, WebhookDelivery
from campaigns.services.endpoints import webhook_endpoint_create, webhook_send_test
from common.errors import DomainError
from segments import engine
from tests.campaigns.conftest import T0, as_json, people, static_segment

HOSTILE = [
    ("ftp://example.com/hook", "unsafe_scheme"),
    ("file:///etc/passwd", "unsafe_scheme"),
    ("gopher://example.com/", "unsafe_scheme"),
    ("javascript:alert(1)", "unsafe_scheme"),
    ("http://user:secret@example.com/hook", "credentials_in_url"),
    ("http://@example.com/hook", "credentials_in_url"),
    ("http://127.0.0.1/", "unsafe_address"),
    ("http://127.0.0.1:6379/", "unsafe_address"),
    ("http://localhost/", "unsafe_address"),
    ("http://LOCALHOST./", "unsafe_address"),
    ("http://acme.localhost/", "unsafe_address"),
    ("http://2130706433/", "unsafe_address"),  # decimal 127.0.0.1
    ("http://0177.0.0.1/", "unsafe_address"),  # octal
    ("http://0x7f.0.0.1/", "unsafe_address"),  # hex
    ("http://0x7f000001/", "unsafe_address"),
    ("http://127.1/", "unsafe_address"),  # short form
    ("http://0/", "unsafe_address"),  # 0.0.0.0
    ("http://0.0.0.0/", "unsafe_address"),
    ("http://[::1]/", "unsafe_address"),
    ("http://[::]/", "unsafe_address"),
    ("http://[::ffff:127.0.0.1]/", "unsafe_address"),  # IPv6-mapped IPv4
    ("http://[::ffff:7f00:1]/", "unsafe_address"),
    ("http://[::ffff:169.254.169.254]/", "unsafe_address"),
    ("http://[64:ff9b::a9fe:a9fe]/", "unsafe_address"),  # NAT64 of the metadata address
    ("http://[2002:7f00:1::]/", "unsafe_address"),  # 6to4 of loopback
    ("http://10.0.0.1/", "unsafe_address"),
    ("http://172.16.5.4/", "unsafe_address"),
    ("http://192.168.1.1/", "unsafe_address"),
    ("http://100.64.0.1/", "unsafe_address"),  # carrier-grade NAT
    ("http://169.254.169.254/latest/meta-data/", "unsafe_address"),
    ("http://[fd00:ec2::254]/", "unsafe_address"),
    ("http://100.100.100.200/", "unsafe_address"),
    ("http://[fe80::1]/", "unsafe_address"),
    ("http://224.0.0.1/", "unsafe_address"),
    ("http://[ff02::1]/", "unsafe_address"),
    ("http://240.0.0.1/", "unsafe_address"),  # reserved
    ("http://255.255.255.255/", "unsafe_address"),
    ("http://example.com:99999/", "invalid_url"),
    ("http:///nohost", "invalid_url"),
    ("http://exa mple.com/", "invalid_url"),
]


def no_dns(*args, **kwargs):
    raise AssertionError("this URL must be refused without a DNS lookup")


@pytest.mark.parametrize(("url", "code"), HOSTILE)
def test_hostile_urls_are_refused(url, code):
    with pytest.raises(ssrf.UnsafeURL) as error:
        ssrf.check_url(url, resolver=no_dns, loopback_ok=False)
    assert error.value.code == code


def fake_dns(answers: dict[str, list[str]]):
    """A resolver (only the resolver) answering from a table; HTTP is never faked."""
    def resolve(host, port, type=0, **kwargs):
        if host not in answers:
            raise socket.gaierror("unknown")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in answers[host]]
    return resolve


@pytest.mark.parametrize("addresses", [["10.1.2.3"], ["93.184.215.14", "192.168.0.7"], ["::ffff:10.0.0.1"],
                                       ["169.254.169.254"]])
def test_names_resolving_to_private_addresses_are_refused(addresses):
    with pytest.raises(ssrf.UnsafeURL) as error:
        ssrf.check_url("https://hooks.example.net/x", resolver=fake_dns({"hooks.example.net": addresses}),
                       loopback_ok=False)
    assert error.value.code == "unsafe_address"


def test_a_public_name_passes_and_the_checked_address_is_what_is_connected_to():
    target = ssrf.check_url("https://hooks.example.net:8443/in?x=1",
                            resolver=fake_dns({"hooks.example.net": ["93.184.215.14"]}), loopback_ok=False)
    assert (target.host, target.port, target.path, target.addresses) == (
        "hooks.example.net", 8443, "/in?x=1", ("93.184.215.14",))


def test_allowing_loopback_allows_only_loopback():
    assert ssrf.check_url("http://127.0.0.1:9/", resolver=no_dns, loopback_ok=True).addresses == ("127.0.0.1",)
    for url in ("http://10.0.0.1/", "http://169.254.169.254/", "http://[fd00:ec2::254]/"):
        with pytest.raises(ssrf.UnsafeURL):
            ssrf.check_url(url, resolver=no_dns, loopback_ok=True)
    assert ssrf.address_problem(ipaddress.ip_address("8.8.8.8"), loopback_ok=False) is None


def test_creating_an_endpoint_with_a_hostile_url_is_a_coded_problem_and_stores_nothing(alpha_admin):
    segment = static_segment("vip", [])
    with pytest.raises(DomainError) as error:
        webhook_endpoint_create(actor=alpha_admin, segment_id=segment.pk, url="http://169.254.169.254/", events=["entered"])
    assert [(p.path, p.code) for p in error.value.problems] == [("url", "unsafe_address")]
    assert not segment.webhook_endpoints.exists()


def verify(secret: str, headers: dict, body: bytes, *, now_ts: int, tolerance: int = 300) -> bool:
    """Reference Standard Webhooks verification, written from the spec independently of
    campaigns.webhooks: key = base64 after "whsec_", content = id.timestamp.body,
    any "v1,<sig>" in the space-separated header may match."""
    msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
    if abs(now_ts - int(timestamp)) > tolerance:
        return False
    key = base64.b64decode(secret.split("_", 1)[1])
    expected = base64.b64encode(hmac.new(key, f"{msg_id}.{timestamp}.{body.decode()}".encode(), hashlib.sha256)
                                .digest()).decode()
    return any(hmac.compare_digest(expected, sig.split(",", 1)[1]) for sig in headers["webhook-signature"].split()
               if sig.startswith("v1,"))


def test_signature_matches_the_standard_webhooks_example():
    """The example from the Standard Webhooks spec's reference libraries."""
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    sig = webhooks.sign(secret=secret, msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp=1614265330, body=body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.fixture
def endpoint_on_loopback(alpha_admin, settings, loopback_server):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True
    ada, bo = people(2, consent=None)
    segment = static_segment("vip", [ada])
    endpoint = webhook_endpoint_create(actor=alpha_admin, segment_id=segment.pk, url=f"{loopback_server.url}/hook",
                                       events=["entered", "exited"])
    return endpoint, segment, ada, bo


def test_changes_after_subscribing_are_delivered_signed_and_once(endpoint_on_loopback, loopback_server):
    endpoint, segment, ada, bo = endpoint_on_loopback
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0 + timedelta(minutes=1))
    engine.members_remove(segment=segment, customer_ids=[ada.pk], now=T0 + timedelta(minutes=2))
    now = T0 + timedelta(minutes=3)
    assert webhooks.deliver_due(now=now, clock=lambda: now) == {"delivered": 2}
    assert webhooks.deliver_due(now=now, clock=lambda: now) == {}  # nothing twice
    received = loopback_server.requests
    assert [(as_json(r["body"])["type"], as_json(r["body"])["data"]["customer_id"]) for r in received] == [
        ("segment.entered", "c1"), ("segment.exited", "c0")]  # ada's earlier entry predates the subscription
    for request in received:
        assert verify(endpoint.secret, request["headers"], request["body"], now_ts=int(now.timestamp()))
        assert not verify(endpoint.secret, request["headers"], request["body"] + b" ", now_ts=int(now.timestamp()))
    assert len({r["headers"]["webhook-id"] for r in received}) == 2


def test_a_failing_receiver_is_retried_with_backoff(endpoint_on_loopback, loopback_server):
    endpoint, segment, ada, bo = endpoint_on_loopback
    loopback_server.responses = [(500, {}), (503, {})]
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0)
    assert webhooks.deliver_due(now=T0, clock=lambda: T0) == {"pending": 1}
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert (delivery.attempts, delivery.response_code, delivery.next_attempt_at) == (1, 500, T0 + timedelta(seconds=30))
    early = T0 + timedelta(seconds=10)
    assert webhooks.deliver_due(now=early, clock=lambda: early) == {}
    second = T0 + timedelta(seconds=31)
    webhooks.deliver_due(now=second, clock=lambda: second)
    delivery.refresh_from_db()
    assert delivery.next_attempt_at == second + timedelta(minutes=2)
    third = second + timedelta(minutes=2)
    webhooks.deliver_due(now=third, clock=lambda: third)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_code) == ("delivered", 3, 200)
    # the same message each time: the receiver can deduplicate by webhook-id
    assert len({r["headers"]["webhook-id"] for r in loopback_server.requests}) == 1


def test_a_redirect_to_a_private_address_is_refused_without_following(endpoint_on_loopback, loopback_server):
    endpoint, segment, ada, bo = endpoint_on_loopback
    loopback_server.responses = [(307, {"Location": "http://169.254.169.254/latest/meta-data/"})]
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0)
    webhooks.deliver_due(now=T0, clock=lambda: T0)
    delivery = WebhookDelivery.objects.get(endpoint=endpoint)
    assert delivery.status == "pending" and delivery.error.startswith("refused: unsafe_address")
    assert len(loopback_server.requests) == 1


def test_a_redirect_to_a_safe_url_is_followed_and_checked(endpoint_on_loopback, loopback_server):
    endpoint, segment, ada, bo = endpoint_on_loopback
    loopback_server.responses = [(308, {"Location": "/moved"})]
    result = webhook_send_test(actor=alpha_admin_of(endpoint), endpoint=endpoint, now=T0)
    assert result == {"ok": True, "status": 200, "error": ""}
    assert [r["path"] for r in loopback_server.requests] == ["/hook", "/moved"]
    assert as_json(loopback_server.requests[1]["body"])["type"] == "webhook.test"


def alpha_admin_of(endpoint):
    from django.db import connection

    from tests.conftest import membership_of

    return membership_of(connection.tenant, "admin@alpha.test")


def test_a_running_webhook_campaign_keeps_its_holdout_out_of_the_deliveries(endpoint_on_loopback):
    """Finding 7 of the hardening issue: the receiver acts on what it is sent, so the
    customers a webhook campaign holds out are not sent; they get their arm on entry."""
    endpoint, segment, ada, bo = endpoint_on_loopback
    campaign = Campaign.objects.create(name="Sync", segment=segment, channel="webhook", status="running",
                                       schedule_kind="on_entry", content={"endpoint_id": endpoint.pk},
                                       holdout_percent=50, salt="fixed-salt")
    crowd = people(40, prefix="w", consent=None)
    entered = T0 + timedelta(minutes=1)
    engine.members_add(segment=segment, customer_ids=[c.pk for c in crowd], now=entered)
    engine.members_remove(segment=segment, customer_ids=[c.pk for c in crowd[:10]], now=entered + timedelta(minutes=1))
    webhooks.deliveries_enqueue(endpoint_id=endpoint.pk)

    arms = dict(Assignment.objects.filter(campaign=campaign).values_list("customer_id", "group"))
    assert set(arms) == {c.pk for c in crowd} and set(arms.values()) == {"treatment", "holdout"}
    assert Assignment.objects.filter(campaign=campaign).values_list("assigned_at", flat=True).distinct().get() == entered
    delivered = {(d.payload["data"]["customer_id"], d.payload["data"]["change"])
                 for d in WebhookDelivery.objects.filter(endpoint=endpoint)}
    by_external = {c.external_id: c.pk for c in crowd}
    assert delivered == ({(e, "entered") for e, pk in by_external.items() if arms[pk] == "treatment"}
                         | {(c.external_id, "exited") for c in crowd[:10] if arms[c.pk] == "treatment"})


def test_without_a_running_campaign_an_endpoint_delivers_every_change(endpoint_on_loopback):
    endpoint, segment, ada, bo = endpoint_on_loopback
    Campaign.objects.create(name="Sync", segment=segment, channel="webhook", status="paused",
                            content={"endpoint_id": endpoint.pk}, holdout_percent=50, salt="fixed-salt")
    engine.members_add(segment=segment, customer_ids=[bo.pk], now=T0 + timedelta(minutes=1))
    assert webhooks.deliveries_enqueue(endpoint_id=endpoint.pk) == 1
