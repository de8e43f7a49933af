"""The customer pages: the list (search, filters, sort, pages, htmx table), the profile
(traits by category, timeline pages, answers, consent, metrics), the navigation, PII
masking per role, bad input and tenant isolation."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.urls import resolve, reverse

from customers import selectors
from customers.models import Customer, CustomerMetrics, Event
from tenants.services import role_create
from tests.conftest import host_of, make_member, membership_of
from tests.customers.customer_data import EMAIL, EVENTS, NAME, NOW, PHONE, client_as, make_ada, plain_customer

LIST = "/customers/"
TABLE = "/customers/-/table/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def ada(tenant):
    customer = make_ada(tenant)
    connection.set_schema_to_public()
    return customer


@pytest.fixture
def directory(tenant):
    """Five customers with distinct traits, plus nobody else (the test's transaction)."""
    connection.set_tenant(tenant)
    made = {
        "c-001": plain_customer("c-001", email="zoe@north.test", name="Zoe North", country="DE", plan="pro",
                                industry="Software", company="Nordwerk", last_seen_at=NOW - timedelta(days=1)),
        "c-002": plain_customer("c-002", email="yann@west.test", name="Yann West", country="FR", plan="free",
                                industry="Retail", company="Ouest", last_seen_at=NOW - timedelta(days=20)),
        "c-003": plain_customer("c-003", email="xena@south.test", name="Xena South", country="DE", plan="free",
                                industry="software", company="Süd AG", last_seen_at=None),
        "d-004": plain_customer("d-004", email="will@east.test", name="Will East", country="GB", plan="team",
                                industry="Media", company="Eastside", last_seen_at=NOW - timedelta(days=100)),
        "d-005": plain_customer("d-005", email="vera@deep.test", name="Vera Deep", country="US", plan="pro",
                                industry="Software", company="Deepco", last_seen_at=NOW - timedelta(hours=2)),
    }
    # created_at follows the order above (oldest first) so the default sort is predictable.
    for i, external_id in enumerate(made):
        Customer.objects.filter(external_id=external_id).update(created_at=NOW - timedelta(days=50 - i))
    CustomerMetrics.objects.create(customer=made["c-001"], rfm_segment="champions", computed_at=NOW)
    CustomerMetrics.objects.create(customer=made["d-004"], rfm_segment="at_risk", computed_at=NOW)
    connection.set_schema_to_public()
    return made


def listed(response) -> list[str]:
    """External ids in the table, in order."""
    assert response.status_code in (200, 400), response.status_code
    return re.findall(r'<td class="whitespace-nowrap font-mono text-xs text-slate-600">([^<]+)</td>',
                      response.content.decode())


def html(response) -> str:
    return response.content.decode()


# ----------------------------------------------------------------------------- navigation


def test_main_nav_shows_customers_and_marks_the_current_section(tenant, directory):
    """Every built-in role sees Customers in the main nav; it is marked current on the
    customer pages only; the Settings link stays for admins."""
    viewer = client_as(tenant, "viewer")
    home = html(viewer.get("/"))
    nav = re.search(r'<ul [^>]*data-testid="main-nav".*?</ul>', home, re.S).group(0)
    assert ">Customers</a>" in nav and 'aria-current="page"' not in nav
    page = html(viewer.get(LIST))
    nav = re.search(r'<ul [^>]*data-testid="main-nav".*?</ul>', page, re.S).group(0)
    assert 'aria-current="page">Customers</a>' in nav
    assert ">Settings</a>" not in page
    admin_page = html(client_as(tenant, "admin").get("/customers/c-001/"))
    assert 'aria-current="page">Customers</a>' in admin_page and ">Settings</a>" in admin_page


def test_a_role_without_customers_view_has_no_customers_link_and_gets_403(tenant):
    connection.set_tenant(tenant)
    role = role_create(actor=membership_of(tenant, "admin@alpha.test"), name="Reporter", permissions=["reports.view"])
    connection.set_schema_to_public()
    user = make_member(tenant, "reporter@alpha.test", "viewer")
    membership = user.memberships.get(tenant=tenant)
    membership.role = role
    membership.save()
    client = client_as(tenant, "viewer")
    client.force_login(user)
    assert ">Customers</a>" not in html(client.get("/"))
    assert client.get(LIST).status_code == 403
    assert client.get(TABLE).status_code == 403


# ----------------------------------------------------------------------------- list


def test_list_shows_the_columns_and_newest_first(tenant, directory):
    response = client_as(tenant, "marketer").get(LIST)
    assert response.status_code == 200
    assert listed(response) == ["d-005", "d-004", "c-003", "c-002", "c-001"]
    body = html(response)
    for text in ("Vera Deep", "vera@deep.test", "US", "pro", "Deepco", "Never", ">2\xa0hours ago<", ">3\xa0months ago<"):
        assert text in body, text
    summary = re.search(r'data-testid="result-summary">(.*?)</p>', body, re.S).group(1)
    assert re.search(r">5</span>\s*customers", summary) and "Showing" not in summary


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_list_masks_names_and_emails_without_view_pii(tenant, directory, role):
    """No email address or name of any customer appears anywhere in the HTML."""
    body = html(client_as(tenant, role).get(LIST))
    for customer in directory.values():
        assert customer.email not in body and customer.name not in body
        local = customer.email.split("@")[0]
        assert local not in body
    assert "Z***" in body and "z***@north.test" in body
    assert 'data-testid="pii-note"' in body


def test_search_matches_the_start_of_external_id_email_or_name_with_view_pii(tenant, directory):
    marketer = client_as(tenant, "marketer")
    assert listed(marketer.get(LIST, {"q": "c-00"})) == ["c-003", "c-002", "c-001"]
    assert listed(marketer.get(LIST, {"q": "D-0"})) == ["d-005", "d-004"]  # case-insensitive
    assert listed(marketer.get(LIST, {"q": "yann@"})) == ["c-002"]
    assert listed(marketer.get(LIST, {"q": "xena s"})) == ["c-003"]
    assert listed(marketer.get(LIST, {"q": "100%"})) == []  # LIKE wildcards are literal
    assert listed(marketer.get(LIST, {"q": "c_00"})) == []


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_search_without_view_pii_never_matches_email_or_name(tenant, directory, role):
    """Matching on what the member cannot read would let them probe for an address."""
    client = client_as(tenant, role)
    assert listed(client.get(LIST, {"q": "c-001"})) == ["c-001"]
    assert listed(client.get(LIST, {"q": "zoe"})) == []
    assert listed(client.get(LIST, {"q": "Zoe North"})) == []
    response = client.get(LIST, {"q": "zoe@north.test"})
    assert listed(response) == []
    assert "cannot search by email address" in html(response)
    assert "External id, email or name" not in html(client.get(LIST))


def test_filters_country_plan_industry_rfm_and_last_seen(tenant, directory):
    client = client_as(tenant, "viewer")
    assert listed(client.get(LIST, {"country": "DE"})) == ["c-003", "c-001"]
    assert listed(client.get(LIST, {"country": "de"})) == ["c-003", "c-001"]
    assert listed(client.get(LIST, {"plan": "pro"})) == ["d-005", "c-001"]
    assert listed(client.get(LIST, {"industry": "SOFTWARE"})) == ["d-005", "c-003", "c-001"]
    assert listed(client.get(LIST, {"rfm": "champions"})) == ["c-001"]
    assert listed(client.get(LIST, {"seen": "7"})) == ["d-005", "c-001"]
    assert listed(client.get(LIST, {"seen": "30"})) == ["d-005", "c-002", "c-001"]
    assert listed(client.get(LIST, {"country": "DE", "plan": "free", "q": "c-"})) == ["c-003"]
    empty = client.get(LIST, {"country": "JP"})
    assert listed(empty) == [] and "No customers match these filters" in html(empty)
    body = html(client.get(LIST))
    # The dropdowns offer what exists.
    for value in ("DE", "FR", "GB", "US", "free", "pro", "team", "Champions", "At_Risk"):
        assert f">{value}</option>" in body


def test_an_rfm_value_from_the_url_stays_selected_even_if_nobody_has_it(tenant, directory):
    body = html(client_as(tenant, "viewer").get(LIST, {"rfm": "hibernating"}))
    assert '<option value="hibernating" selected>' in body


def test_sort_by_columns_both_ways(tenant, directory):
    client = client_as(tenant, "viewer")
    assert listed(client.get(LIST, {"sort": "external_id"})) == ["c-001", "c-002", "c-003", "d-004", "d-005"]
    assert listed(client.get(LIST, {"sort": "-external_id"})) == ["d-005", "d-004", "c-003", "c-002", "c-001"]
    # Never seen counts as the oldest.
    assert listed(client.get(LIST, {"sort": "-last_seen"})) == ["d-005", "c-001", "c-002", "d-004", "c-003"]
    assert listed(client.get(LIST, {"sort": "last_seen"})) == ["c-003", "d-004", "c-002", "c-001", "d-005"]
    assert listed(client.get(LIST, {"sort": "created"})) == ["c-001", "c-002", "c-003", "d-004", "d-005"]
    assert listed(client.get(LIST, {"sort": "country"}))[:2] == ["c-001", "c-003"]  # DE first, ties by id
    assert listed(client.get(LIST, {"sort": "-plan"}))[0] == "d-004"  # team
    body = html(client.get(LIST, {"sort": "external_id", "country": "DE"}))
    # The header links keep the filters and flip the direction of the current sort.
    assert 'aria-sort="ascending"' in body
    assert "?country=DE&amp;sort=-external_id" in body


def test_pages_without_counting_the_whole_table(tenant, monkeypatch):
    """55 customers: 50 on page 1 with a Next link, 5 on page 2 with Previous; a filtered
    total is counted only up to the cap."""
    connection.set_tenant(tenant)
    for i in range(55):
        plain_customer(f"p-{i:03}", country="NL")
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    first = client.get(LIST, {"sort": "external_id"})
    ids = listed(first)
    assert len(ids) == 50 and ids[0] == "p-000"
    assert 'rel="next"' in html(first) and 'rel="prev"' not in html(first)
    assert "?page=2&amp;sort=external_id" in html(first)
    second = client.get(LIST, {"sort": "external_id", "page": "2"})
    assert listed(second) == [f"p-{i:03}" for i in range(50, 55)]
    assert 'rel="prev"' in html(second) and 'rel="next"' not in html(second)
    assert "51–55" in html(second)

    monkeypatch.setattr(selectors, "COUNT_CAP", 20)
    capped = html(client.get(LIST, {"country": "NL"}))
    assert re.search(r"of\s*<span[^>]*>20\+</span>\s*matching", capped)
    beyond = client.get(LIST, {"page": "9"})
    assert beyond.status_code == 200 and listed(beyond) == [] and "Back to the first page" in html(beyond)


def test_the_unfiltered_total_is_the_planner_estimate_on_big_tables(tenant, monkeypatch):
    """Above ESTIMATE_ABOVE rows the total of more than a page comes from pg_class, shown as "about"."""
    connection.set_tenant(tenant)
    Customer.objects.bulk_create([Customer(external_id=f"b-{i}") for i in range(60)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE customers_customer")
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    exact = re.search(r'data-testid="result-summary">(.*?)</p>', html(client.get(LIST)), re.S).group(1)
    assert "about" not in exact and re.search(r"of\s*<span[^>]*>60</span>", exact)
    monkeypatch.setattr(selectors, "ESTIMATE_ABOVE", 0)
    estimated = re.search(r'data-testid="result-summary">(.*?)</p>', html(client.get(LIST)), re.S).group(1)
    assert re.search(r"of\s*<span[^>]*>about 60</span>", estimated)


@pytest.mark.parametrize("params,message", [
    ({"country": "Germany"}, "two-letter country code"),
    ({"seen": "soon"}, "Last seen"),
    ({"seen": "0"}, "Last seen"),
    ({"sort": "email"}, "Sort"),
    ({"page": "0"}, "Page"),
    ({"page": "abc"}, "Page"),
    ({"page": "1000000"}, "Page"),
    ({"q": "x" * 300}, "Search"),
])
def test_bad_filter_values_render_the_page_with_a_message(tenant, directory, params, message):
    """Never a 500: a 400 page that says what was wrong and lists customers without that filter."""
    response = client_as(tenant, "viewer").get(LIST, params)
    assert response.status_code == 400
    body = html(response)
    assert 'role="alert"' in body and message in body and "This filter was left out." in body
    assert len(listed(response)) == 5
    table = client_as(tenant, "viewer").get(TABLE, params)
    assert table.status_code == 400 and message in html(table)


def test_the_table_partial_is_the_table_alone_and_pushes_the_list_url(tenant, directory):
    client = client_as(tenant, "viewer")
    response = client.get(TABLE, {"q": "c-", "country": "DE", "sort": "external_id", "page": "1"},
                          HTTP_HX_REQUEST="true", HTTP_HX_TARGET="customers-table")
    assert response.status_code == 200
    body = html(response)
    assert "<html" not in body and body.lstrip().startswith('<div id="customers-table"')
    assert listed(response) == ["c-001", "c-003"]
    assert response["HX-Push-Url"] == "/customers/?country=DE&q=c-&sort=external_id"
    assert 'id="sort-input" value="external_id" hx-swap-oob="true"' in body
    paged = client.get(TABLE, {"page": "2"}, HTTP_HX_REQUEST="true")
    assert paged["HX-Push-Url"] == "/customers/?page=2"
    # The full page wires the form to the partial with a debounce.
    page = html(client.get(LIST))
    assert f'hx-get="{TABLE}"' in page and "delay:300ms" in page and 'hx-target="#customers-table"' in page


def test_empty_workspace_says_how_customers_arrive(tenant):
    body = html(client_as(tenant, "viewer").get(LIST))
    assert "No customers yet." in body and "/api/v1/docs/" in body
    assert "Settings → API keys" not in body  # a viewer cannot open it
    assert "Settings → API keys" in html(client_as(tenant, "admin").get(LIST))


# ----------------------------------------------------------------------------- profile


def test_profile_shows_traits_by_category_identities_answers_consent_and_metrics(tenant, ada):
    response = client_as(tenant, "marketer").get("/customers/ada-1/")
    assert response.status_code == 200
    body = html(response)
    assert NAME in body and EMAIL in body

    def group(category: str) -> str:
        return re.search(rf'data-testid="trait-group-{category}">(.*?)</dl>', body, re.S).group(1)

    assert "1815-12-10" in group("demographic") and PHONE in group("demographic")
    assert "London" in group("geographic") and "GB" in group("geographic")
    assert "Analytical Engines" in group("firmographic") and "Software" in group("firmographic")
    assert "python, django" in group("technographic")
    assert "teal" in group("psychographic")  # a custom trait, in the category the registry gives it
    assert "pro" in group("value")
    assert 'data-testid="trait-group-needs"' not in body  # no empty categories
    identities = re.search(r'data-testid="identities">(.*?)</section>', body, re.S).group(1)
    assert "ada-1" in identities and "anon-device-7" in identities and "Anonymous id" in identities
    surveys = re.search(r'data-testid="surveys">(.*?)</section>', body, re.S).group(1)
    assert "Net Promoter" in surveys or "nps" in surveys.lower()
    assert f"Call me, {NAME}" in surveys and ">9<" in surveys and ">2<" in surveys
    consents = re.search(r'data-testid="consents">(.*?)</section>', body, re.S).group(1)
    email_row = re.search(r"Email</span>(.*?)SMS</span>", consents, re.S).group(1)
    assert "Withdrawn" in email_row and "preferences" in email_row and "History (2 changes)" in email_row
    assert "signup" in email_row
    assert "Granted" in re.search(r"SMS</span>(.*?)</li>", consents, re.S).group(1)
    assert "Not asked" in re.search(r"Push</span>(.*?)</li>", consents, re.S).group(1)
    metrics = re.search(r'data-testid="metrics">(.*?)</section>', body, re.S).group(1)
    for text in ("Loyal", "1,234.50", "102.88", "1,728.40", "0.82", "15 orders", ">5<", ">4<", ">3<"):
        assert text in metrics, text
    assert f">{EVENTS}<" in body  # event count
    # The segments panel: this customer is in none yet, and says so.
    panel = re.search(r'data-testid="memberships">(.*?)</section>', body, re.S).group(1)
    assert 'data-testid="membership"' not in panel


def test_profile_without_metrics_or_answers_says_what_happens_next(tenant, directory):
    body = html(client_as(tenant, "viewer").get("/customers/c-002/"))
    assert 'data-testid="metrics-empty"' in body and "Not computed yet" in body
    assert "No survey answers yet" in body and "No events yet" in body
    assert "Not asked" in body


def test_timeline_pages_with_a_keyset_cursor_until_the_first_event(tenant, ada):
    """25 latest events on the profile, then "Load older" fetches the rest, no repeats,
    newest first; the last page says it reached the start."""
    client = client_as(tenant, "viewer")
    body = html(client.get("/customers/ada-1/"))
    first = re.findall(r"/page/(\d+)", body)
    assert first == [str(i) for i in range(EVENTS - 1, EVENTS - 26, -1)]
    more = re.search(r'hx-get="(/customers/ada-1/events/\?before=[^"]+)"', body).group(1).replace("&amp;", "&")
    response = client.get(more, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    rest = html(response)
    assert "<html" not in rest
    assert re.findall(r"/page/(\d+)", rest) == [str(i) for i in range(EVENTS - 26, -1, -1)]
    assert 'data-testid="timeline-start"' in rest and "load-older" not in rest


def test_events_with_the_same_timestamp_are_neither_skipped_nor_repeated(tenant):
    connection.set_tenant(tenant)
    customer = plain_customer("same-time")
    Event.objects.bulk_create([Event(customer=customer, name=f"e{i}", timestamp=NOW, properties={"i": i})
                               for i in range(60)])
    connection.set_schema_to_public()
    client = client_as(tenant, "viewer")
    seen, url = [], "/customers/same-time/events/"
    while url:
        body = html(client.get(url))
        seen += re.findall(r'<p class="font-medium text-slate-900">(e\d+)</p>', body)
        found = re.search(r'hx-get="(/customers/same-time/events/\?before=[^"]+)"', body)
        url = found.group(1).replace("&amp;", "&") if found else None
    assert sorted(seen, key=lambda n: -int(n[1:])) == seen and len(seen) == len(set(seen)) == 60


@pytest.mark.parametrize("cursor", ["garbage", "2026-01-01T00:00:00_x", "2026-01-01T00:00:00_12", "nope_12"])
def test_a_bad_timeline_cursor_is_a_400_with_a_message(tenant, ada, cursor):
    response = client_as(tenant, "viewer").get("/customers/ada-1/events/", {"before": cursor})
    assert response.status_code == 400 and "not valid any more" in html(response)


def test_event_properties_are_viewable_and_personal_keys_masked_without_view_pii(tenant, ada):
    marketer = html(client_as(tenant, "marketer").get("/customers/ada-1/events/",
                                                      {"before": f"{(NOW + timedelta(days=1)).isoformat()}_999999999"}))
    assert "&quot;seats&quot;: 29" in marketer and "properties" in marketer
    older = client_as(tenant, "marketer").get("/customers/ada-1/events/", {"before": f"{(NOW - timedelta(days=29, hours=12)).isoformat()}_999999999"})
    assert EMAIL in html(older) and PHONE in html(older)
    viewer = html(client_as(tenant, "viewer").get("/customers/ada-1/events/", {"before": f"{(NOW - timedelta(days=29, hours=12)).isoformat()}_999999999"}))
    assert EMAIL not in viewer and PHONE not in viewer and NAME not in viewer
    assert "&quot;Email&quot;: &quot;hidden&quot;" in viewer and "&quot;city&quot;: &quot;London&quot;" in viewer


@pytest.mark.parametrize("role", ["viewer", "analyst"])
def test_profile_masks_personal_data_without_view_pii(tenant, ada, role):
    """No email, name, birth date, PII-marked trait or survey comment anywhere in the page."""
    body = html(client_as(tenant, role).get("/customers/ada-1/"))
    for secret in (EMAIL, NAME, "Lovelace", "1815-12-10", PHONE, "Call me"):
        assert secret not in body, secret
    assert "A***" in body and "a***@example.test" in body and "Hidden" in body
    assert "Comment hidden for your role" in body
    assert "teal" in body and "Analytical Engines" in body  # other traits stay visible


def test_privacy_actions_are_shown_only_to_members_who_may_use_them(tenant, ada):
    admin = html(client_as(tenant, "admin").get("/customers/ada-1/"))
    assert "Export JSON" in admin and 'data-testid="anonymise-dialog"' in admin and 'data-testid="delete-dialog"' in admin
    assert 'name="confirm"' in admin and 'Type <span class="font-mono text-slate-900">ada-1</span> to confirm' in admin
    for role in ("viewer", "analyst", "marketer"):
        body = html(client_as(tenant, role).get("/customers/ada-1/"))
        assert "Export JSON" not in body and "anonymise-dialog" not in body and "delete-dialog" not in body, role


def test_a_merged_id_redirects_to_the_profile(tenant, ada):
    response = client_as(tenant, "viewer").get("/customers/anon:anon-device-7/")
    assert response.status_code == 302 and response["Location"] == "/customers/ada-1/"


# ----------------------------------------------------------------------------- not found, isolation


CUSTOMER_ROUTES = [
    ("get", "customer_detail"), ("get", "customer_events"), ("post", "customer_export"),
    ("post", "customer_anonymise"), ("post", "customer_delete"),
]


@pytest.mark.parametrize("method,name", CUSTOMER_ROUTES)
def test_an_unknown_customer_is_a_404_on_every_route(tenant, method, name):
    client = client_as(tenant, "admin")
    url = reverse(name, urlconf="config.urls_tenant", kwargs={"external_id": "nobody"})
    assert getattr(client, method)(url, {"confirm": "nobody"}).status_code == 404


@pytest.mark.parametrize("method,name", CUSTOMER_ROUTES + [("get", "api_customer_export"),
                                                           ("post", "api_customer_anonymise")])
def test_another_tenants_customer_is_a_404_on_every_route(tenant, other_tenant, method, name):
    """beta's customer, asked for on alpha's host by alpha's admin: 404, beta's data untouched."""
    make_ada(other_tenant, "beta-only")
    connection.set_schema_to_public()
    client = client_as(tenant, "admin")
    url = reverse(name, urlconf="config.urls_tenant", kwargs={"external_id": "beta-only"})
    assert getattr(client, method)(url, {"confirm": "beta-only"}).status_code == 404
    assert "beta-only" not in html(client.get(LIST, {"q": "beta"}))
    connection.set_tenant(other_tenant)
    assert Customer.objects.filter(external_id="beta-only", email=EMAIL).exists()


def test_customer_routes_do_not_swallow_other_routes_under_customers(tenant):
    """Fixed routes under /customers/ (CSV imports, …) resolve to themselves, not to a profile."""
    from tests.test_permission_matrix import named_patterns

    mine = {"customers_list", "customers_table", "customer_detail", "customer_events", "customer_export",
            "customer_anonymise", "customer_delete"}
    for name, route in named_patterns("config.urls_tenant").items():
        if route.startswith("customers/") and name not in mine and "<" not in route:
            assert resolve("/" + route, urlconf="config.urls_tenant").url_name == name
    assert resolve(TABLE, urlconf="config.urls_tenant").url_name == "customers_table"


def test_host_header_decides_the_tenant(tenant, other_tenant, ada):
    """ada exists in alpha only: beta's admin on beta's host gets a 404."""
    from django.test import Client

    client = Client(HTTP_HOST=host_of(other_tenant))
    client.force_login(membership_of(other_tenant, "admin@beta.test").user)
    assert client.get("/customers/ada-1/").status_code == 404


def test_search_and_default_order_can_use_the_indexes_of_migration_0008(tenant, directory):
    """The SQL Django writes for the search (UPPER(col::text) LIKE UPPER('x%')) matches the
    expression indexes, and the default order reads customer_created_idx: with sequential
    scans ruled out, the plan names them (at 1M rows the planner picks them by itself)."""
    connection.set_tenant(tenant)
    query = selectors.DirectoryQuery(search="zoe")
    searched = selectors.customer_directory(query=query, can_see_pii=True, now=NOW)[:51]
    newest = selectors.customer_directory(query=selectors.DirectoryQuery(), can_see_pii=True, now=NOW)[:51]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = searched.explain()
        cursor.execute("SET LOCAL enable_sort = off")
        order_plan = newest.explain()
    for index in ("customer_xid_prefix_idx", "customer_email_prefix_idx", "customer_name_prefix_idx"):
        assert index in plan, plan
    assert "customer_created_idx" in order_plan, order_plan


def test_the_segments_panel_shows_only_to_a_role_that_may_see_segments(tenant, ada):
    """The profile's segments panel (a segments template tag) is left out for a role with
    customers.view but not segments.view."""
    viewer = html(client_as(tenant, "viewer").get("/customers/ada-1/"))
    assert 'data-testid="memberships"' in viewer
    connection.set_tenant(tenant)
    role = role_create(actor=membership_of(tenant, "admin@alpha.test"), name="Support", permissions=["customers.view"])
    connection.set_schema_to_public()
    user = make_member(tenant, "support@alpha.test", "viewer")
    membership = user.memberships.get(tenant=tenant)
    membership.role = role
    membership.save()
    client = client_as(tenant, "viewer")
    client.force_login(user)
    response = client.get("/customers/ada-1/")
    assert response.status_code == 200 and 'data-testid="memberships"' not in html(response)
