"""GET /v1/in-app/messages?userId=…: write-key auth like the tracking endpoints; running
in-app campaigns of the customer's open segments, treatment arm only (assigned on first
sight), in-app consent, rendered; the frequency cap counts impressions reported back
through /v1/track, a dismissal hides the message; unknown ids answer an empty list."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from apikeys.secrets import user_hash
from apikeys.selectors import identity_secret_current, write_key_current
from apikeys.services import identity_secret_rotate, identity_verification_require
from campaigns.models import Assignment
from campaigns.services.campaigns import campaign_create, campaign_launch, campaign_pause
from customers.feedback import ConsentChangeIn, consents_record
from customers.models import Event
from segments import engine
from tests.campaigns.conftest import T0, people, static_segment
from tests.conftest import host_of, membership_of

NOW = T0 + timedelta(days=1)
URL = "/v1/in-app/messages"
CONTENT = {"title": "Hi {{ first_name }}", "body": "Try {{ plan|default:'pro' }} today.", "cta_label": "Upgrade",
           "cta_url": "/billing"}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def key(tenant):
    connection.set_tenant(tenant)
    value = write_key_current().key
    connection.set_schema_to_public()
    return value


def in_app_people(n, *, prefix="p", in_app=True, **fields):
    made = people(n, prefix=prefix, **fields)
    if in_app is not None:
        consents_record(changes=[ConsentChangeIn(customer_id=c.pk, channel="in_app", granted=in_app,
                                                 changed_at=T0 - timedelta(days=30), source="test") for c in made])
    return made


def running(tenant, segment, **extra):
    """An in-app campaign that fires on entry: running at once, nobody assigned yet."""
    admin = membership_of(tenant, "admin@alpha.test")
    campaign = campaign_create(actor=admin, name="Upsell", segment_id=segment.pk, channel="in_app",
                               schedule={"kind": "on_entry"}, content=CONTENT, **extra)
    return campaign_launch(actor=admin, campaign=campaign, now=T0)


def signed(tenant, user_id: str) -> str:
    """What the tenant's backend gives its app: the userId signed with the identity secret."""
    connection.set_tenant(tenant)
    return user_hash(identity_secret_current().secret, user_id)


def fetch(tenant, key, user_id, *, sign: bool = True, **headers):
    params = {"userId": user_id, **({"userHash": signed(tenant, user_id)} if sign else {})}
    response = Client(HTTP_HOST=host_of(tenant)).get(URL, params, HTTP_AUTHORIZATION=f"Bearer {key}", **headers)
    connection.set_tenant(tenant)
    return response


def track(tenant, key, body):
    response = Client(HTTP_HOST=host_of(tenant)).post("/v1/track", json.dumps({"writeKey": key, **body}),
                                                      content_type="application/json")
    connection.set_tenant(tenant)
    return response


def test_a_treatment_member_with_consent_gets_the_rendered_message(tenant, key):
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ada", plan="team")
    bob, = in_app_people(1, prefix="bob", in_app=False)
    cid, = in_app_people(1, prefix="cid", in_app=None)  # never asked
    outsider, = in_app_people(1, prefix="out")
    campaign = running(tenant, static_segment("upsell", [ada, bob, cid]))
    response = fetch(tenant, key, ada.external_id)
    assert response.status_code == 200
    assert response.json() == {"messages": [{
        "id": f"msg_{campaign.pk}_main", "campaign": campaign.pk, "title": "Hi Person0", "body": "Try team today.",
        "cta": {"label": "Upgrade", "url": "/billing"}}]}
    assert Assignment.objects.get(campaign=campaign, customer=ada).group == "treatment"  # assigned on the fly
    for who in (bob, cid, outsider):
        assert fetch(tenant, key, who.external_id).json() == {"messages": []}


def test_an_unknown_user_id_gets_an_empty_list_not_an_error(tenant, key):
    response = fetch(tenant, key, "nobody-here")
    assert (response.status_code, response.json()) == (200, {"messages": []})


def test_the_holdout_never_sees_the_message(tenant, key):
    connection.set_tenant(tenant)
    crowd = in_app_people(40, prefix="crowd")
    campaign = running(tenant, static_segment("crowd", crowd), holdout_percent=50)
    shown = {c.pk for c in crowd if fetch(tenant, key, c.external_id).json()["messages"]}
    arms = dict(Assignment.objects.filter(campaign=campaign).values_list("customer_id", "group"))
    assert len(arms) == 40
    assert shown == {pk for pk, group in arms.items() if group == "treatment"}
    assert 0 < len(shown) < 40


def test_only_running_in_app_campaigns_of_open_memberships_count(tenant, key):
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ada")
    segment = static_segment("upsell", [ada])
    admin = membership_of(tenant, "admin@alpha.test")
    campaign_create(actor=admin, name="Draft", segment_id=segment.pk, channel="in_app",
                    schedule={"kind": "on_entry"}, content=CONTENT)
    campaign_create(actor=admin, name="Mail", segment_id=segment.pk, channel="email", schedule={"kind": "on_entry"},
                    content={"subject": "s", "body": "b"})
    live = running(tenant, segment)
    assert [m["campaign"] for m in fetch(tenant, key, ada.external_id).json()["messages"]] == [live.pk]
    campaign_pause(actor=admin, campaign=live)
    assert fetch(tenant, key, ada.external_id).json()["messages"] == []
    campaign_launch(actor=admin, campaign=live, now=T0)
    engine.members_remove(segment=segment, customer_ids=[ada.pk], now=T0 + timedelta(hours=1))
    assert fetch(tenant, key, ada.external_id).json()["messages"] == []


def test_the_frequency_cap_counts_reported_impressions_and_a_dismissal_hides_it(tenant, key):
    connection.set_tenant(tenant)
    ada, bob = in_app_people(2, prefix="cap")
    campaign = running(tenant, static_segment("capped", [ada, bob]), cap_max_sends=2, cap_days=7)
    message = fetch(tenant, key, ada.external_id).json()["messages"][0]
    properties = {"campaign_id": campaign.pk, "message_id": message["id"]}
    assert track(tenant, key, {"userId": ada.external_id, "event": "in_app_impression",
                               "properties": properties}).status_code == 200
    assert fetch(tenant, key, ada.external_id).json()["messages"]  # one impression of two
    # SDKs may send the id as a string: it counts the same.
    track(tenant, key, {"userId": ada.external_id, "event": "in_app_impression",
                        "properties": {**properties, "campaign_id": str(campaign.pk)}})
    assert fetch(tenant, key, ada.external_id).json()["messages"] == []
    with time_machine.travel(NOW + timedelta(days=8), tick=False):  # the window moved past both
        assert fetch(tenant, key, ada.external_id).json()["messages"]
    track(tenant, key, {"userId": bob.external_id, "event": "in_app_dismissed",
                        "properties": {"campaign_id": campaign.pk, "message_id": message["id"]}})
    assert fetch(tenant, key, bob.external_id).json()["messages"] == []


def test_impressions_clicks_and_dismissals_are_stored_as_events(tenant, key):
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ev")
    campaign = running(tenant, static_segment("ev", [ada]))
    message = fetch(tenant, key, ada.external_id).json()["messages"][0]
    for name in ("in_app_impression", "in_app_clicked", "in_app_dismissed"):
        response = track(tenant, key, {"userId": ada.external_id, "event": name,
                                       "properties": {"campaign_id": campaign.pk, "message_id": message["id"]}})
        assert response.json()["accepted"] == 1
    stored = Event.objects.filter(customer=ada).order_by("name").values_list("name", "properties")
    assert list(stored) == [(name, {"campaign_id": campaign.pk, "message_id": message["id"]})
                            for name in ("in_app_clicked", "in_app_dismissed", "in_app_impression")]


def test_the_write_key_is_read_like_the_tracking_endpoints(tenant, other_tenant, key):
    connection.set_tenant(other_tenant)
    beta_key = write_key_current().key
    connection.set_schema_to_public()
    client = Client(HTTP_HOST=host_of(tenant))
    basic = "Basic " + base64.b64encode(f"{key}:".encode()).decode()
    assert client.get(URL, {"userId": "x"}, HTTP_AUTHORIZATION=basic).status_code == 200
    assert client.get(URL, {"userId": "x", "writeKey": key}).status_code == 200
    for headers, params in (({}, {"userId": "x"}), ({"HTTP_AUTHORIZATION": f"Bearer {beta_key}"}, {"userId": "x"}),
                            ({"HTTP_AUTHORIZATION": "Bearer wk_nope"}, {"userId": "x"})):
        response = client.get(URL, params, **headers)
        assert response.status_code == 401
        assert response.json()["errors"] == [{"path": "writeKey", "code": "invalid_write_key",
                                              "message": "Unknown or revoked write key."}]
    missing = client.get(URL, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert (missing.status_code, missing.json()["errors"][0]["path"], missing.json()["errors"][0]["code"]) == (
        400, "userId", "required")
    assert client.post(URL, {"userId": "x"}, HTTP_AUTHORIZATION=f"Bearer {key}").status_code == 405


# ------------------------------------------------------------------------------ identity verification


def test_an_unsigned_request_gets_impersonal_content_and_stores_no_arm(tenant, key):
    """Anyone can guess a userId and the write key is public: without the backend's
    signature the message carries none of the customer's data and no arm is stored, so an
    outsider can neither read a first name nor skew the holdout."""
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ada", plan="team")
    campaign = running(tenant, static_segment("upsell", [ada]))
    for response in (fetch(tenant, key, ada.external_id, sign=False),
                     fetch(tenant, key, ada.external_id, sign=False, HTTP_X_USER_HASH="0" * 64),
                     Client(HTTP_HOST=host_of(tenant)).get(URL, {"userId": ada.external_id,
                                                                 "userHash": signed(tenant, "someone-else")},
                                                           HTTP_AUTHORIZATION=f"Bearer {key}")):
        connection.set_tenant(tenant)
        [message] = response.json()["messages"]
        assert (message["title"], message["body"]) == ("Hi", "Try pro today.")  # the template's defaults only
    assert not Assignment.objects.filter(campaign=campaign).exists()
    [message] = fetch(tenant, key, ada.external_id, HTTP_X_USER_HASH="ignored").json()["messages"]
    assert message["title"] == "Hi Person0"  # signed (as userHash): personalised, and the arm is stored
    assert Assignment.objects.filter(campaign=campaign, customer=ada).exists()


def test_the_signature_may_come_as_a_header(tenant, key):
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ada")
    running(tenant, static_segment("upsell", [ada]))
    response = fetch(tenant, key, ada.external_id, sign=False, HTTP_X_USER_HASH=signed(tenant, ada.external_id))
    assert response.json()["messages"][0]["title"] == "Hi Person0"


def test_a_workspace_that_requires_signatures_refuses_unsigned_requests(tenant, key):
    connection.set_tenant(tenant)
    ada, = in_app_people(1, prefix="ada")
    campaign = running(tenant, static_segment("upsell", [ada]))
    admin = membership_of(tenant, "admin@alpha.test")
    identity_verification_require(actor=admin, required=True)
    refused = fetch(tenant, key, ada.external_id, sign=False)
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == "invalid_user_hash"
    assert not Assignment.objects.filter(campaign=campaign).exists()
    assert fetch(tenant, key, ada.external_id).status_code == 200
    old = signed(tenant, ada.external_id)
    rotated = identity_secret_rotate(actor=admin, now=NOW)
    assert rotated.required is True  # the setting carries over
    stale = Client(HTTP_HOST=host_of(tenant)).get(URL, {"userId": ada.external_id, "userHash": old},
                                                  HTTP_AUTHORIZATION=f"Bearer {key}")
    assert stale.status_code == 401  # signatures made with the old secret stop verifying

