"""A customer's web page (another origin: a loopback server of its own) gates a feature on
a Strata segment through the membership lookup, as Settings → API keys shows: the page
carries the lookup key and the userId signed by its backend, asks /v1/profiles/<userId>/
segments, and shows the beta feature only to members. Nothing leaves loopback."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone
from django_tenants.utils import schema_context
from playwright.sync_api import expect

from apikeys.secrets import user_hash
from apikeys.selectors import identity_secret_current, lookup_key_current
from customers.models import Customer
from segments.models import Segment
from segments.services import segment_create, static_members_add
from tests.browser.sites import served
from tests.browser.test_browser_sdks import loopback_only
from tests.conftest import host_of, membership_of

# The page a tenant writes: the snippet of Settings → API keys, its values from the query
# string here (a real page has them rendered by its backend).
GATE_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Acme app</title></head>
<body>
  <h1>Dashboard</h1>
  <p id="status">Checking your plan…</p>
  <section id="beta-feature" hidden><h2>Beta: smart reports</h2><p>Only for power users.</p></section>
  <script>
    const given = new URLSearchParams(location.search);
    const userId = given.get("userId"), userHash = given.get("userHash");
    fetch(given.get("api") + "/v1/profiles/" + encodeURIComponent(userId) + "/segments", {
      headers: { Authorization: "Bearer " + given.get("key"), "X-User-Hash": userHash },
    })
      .then((response) => response.ok ? response.json() : { segments: [], refused: response.status })
      .then(({ segments, refused }) => {
        if (segments.includes(given.get("segment"))) document.getElementById("beta-feature").hidden = false;
        document.getElementById("status").textContent = refused ? "Lookup refused: " + refused : "Ready";
      });
  </script>
</body></html>
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("gate")
    (root / "index.html").write_text(GATE_PAGE)
    with served(root) as base:
        yield base


@pytest.fixture
def gated(committed_db):
    from tenants.models import Tenant

    tenant = Tenant.objects.get(slug="alpha")
    prefix = f"gate-{uuid.uuid4().hex[:8]}"
    with schema_context(tenant.schema_name):
        admin = membership_of(tenant, "admin@alpha.test")
        member = Customer.objects.create(external_id=f"{prefix}-member")
        Customer.objects.create(external_id=f"{prefix}-other")
        segment, _ = segment_create(actor=admin, key=f"{prefix}-power", name="Power users", kind="static",
                                    now=timezone.now())
        static_members_add(actor=admin, segment=segment, customer_ids=[member.pk], now=timezone.now())
        world = {"tenant": tenant, "prefix": prefix, "segment": segment.key, "key": lookup_key_current().key,
                 "secret": identity_secret_current().secret}
    yield world
    with schema_context(tenant.schema_name):
        Segment.objects.filter(key=world["segment"]).delete()
        Customer.objects.filter(external_id__startswith=prefix).delete()


def open_page(page, site, api, world, user_id: str, signature: str):
    from urllib.parse import urlencode

    query = urlencode({"api": api, "key": world["key"], "userId": user_id, "userHash": signature,
                       "segment": world["segment"]})
    page.goto(f"{site}/index.html?{query}")


def test_a_page_shows_the_beta_feature_to_the_segments_members_only(strata_server, site, page, gated, screenshot):
    seen = loopback_only(page)
    api = f"http://{host_of(gated['tenant'])}:{strata_server.port}"
    member, other = f"{gated['prefix']}-member", f"{gated['prefix']}-other"

    open_page(page, site, api, gated, member, user_hash(gated["secret"], member))
    expect(page.locator("#status")).to_have_text("Ready")
    expect(page.locator("#beta-feature")).to_be_visible()
    screenshot("lookup-gated-feature")

    open_page(page, site, api, gated, other, user_hash(gated["secret"], other))
    expect(page.locator("#status")).to_have_text("Ready")
    expect(page.locator("#beta-feature")).to_be_hidden()

    # Someone pasting another user's id without their signature learns nothing.
    open_page(page, site, api, gated, member, user_hash(gated["secret"], other))
    expect(page.locator("#status")).to_have_text("Lookup refused: 401")
    expect(page.locator("#beta-feature")).to_be_hidden()
    assert not [line for line in seen if "127.0.0.1" not in line and "localhost" not in line], seen
