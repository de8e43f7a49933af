"""The campaign pages: list and filters, the editor (errors at their fields, nothing saved),
the preview, launch / pause / cancel with their refusals, results, permissions and tenant
isolation. Webhook destination pages are in test_pages_webhooks.py."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from campaigns.models import Assignment, Campaign, Send
from campaigns.services.campaigns import campaign_create, campaign_launch, campaigns_segment_gone
from customers.models import Event
from tests.campaigns.conftest import T0, people, send, session, static_segment
from tests.conftest import host_of, make_member, membership_of

NOW = T0 + timedelta(days=2)
EMAIL = {"subject": "Hi {{ first_name }}", "body": "Hello {{ first_name }}"}


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def admin_of(tenant):
    return membership_of(tenant, f"admin@{tenant.slug}.test")


def make_campaign(tenant, segment, **extra) -> Campaign:
    fields = {"name": "Welcome", "segment_id": segment.pk, "channel": "email",
              "schedule": {"kind": "once", "at": (NOW + timedelta(days=3)).isoformat()}, "content": EMAIL} | extra
    return campaign_create(actor=admin_of(tenant), **fields)


def editor_post(segment, **extra) -> dict:
    return {"name": "Spring upgrade", "segment": str(segment.pk), "channel": "email", "schedule_kind": "once",
            "schedule_at": "2026-06-10T09:30", "email_subject": "Hi {{ first_name }}", "email_format": "text",
            "email_body": "Hello {{ first_name }}, try Pro.", "holdout_percent": "10", "cap_max_sends": "2",
            "cap_days": "7", "goal_event": "upgraded", "goal_days": "14", "variants_present": "1"} | extra


def field_errors(response) -> set[tuple[str, str]]:
    html = response.content.decode()
    return set(re.findall(r'data-testid="field-error" data-path="([^"]*)" data-code="([^"]*)"', html))


# ------------------------------------------------------------------------------ list


def test_the_list_shows_each_campaign_with_segment_channel_status_schedule_and_sends(alpha):
    """Rows carry the segment, channel, status badge, schedule in words and the sent count."""
    crowd = people(3)
    segment = static_segment("trial", crowd)
    welcome = make_campaign(alpha, segment)
    make_campaign(alpha, segment, name="Nudge", channel="in_app", content={"title": "Hey", "body": "Try it"},
                  schedule={"kind": "on_entry"})
    Send.objects.bulk_create([Send(campaign=welcome, customer=c, occasion="once", channel="email", status="sent",
                                   claimed_at=NOW, sent_at=NOW) for c in crowd[:2]])
    response = send(session(alpha, "viewer"), "get", "/campaigns/", tenant=alpha)
    assert response.status_code == 200
    html = response.content.decode()
    assert html.count('data-testid="campaign-row"') == 2
    assert "Trial" in html and "In-app" in html and "When a customer enters the segment" in html
    assert "Once, 6 Jun 2026, 12:00 UTC" in html
    assert re.search(r'data-testid="sent-count">2<', html)
    assert 'data-testid="new-campaign"' not in html  # viewers read only


def test_an_in_app_campaign_lists_its_assigned_customers_not_sends(alpha):
    """In-app messages are pulled by the app: nothing is 'sent', so the list shows who was
    assigned (both arms) instead of a send count that would always read 0."""
    from campaigns import sending
    from campaigns.services.campaigns import campaign_launch

    segment = static_segment("trial", people(3))
    nudge = make_campaign(alpha, segment, name="Nudge", channel="in_app", content={"title": "Hey", "body": "Try it"},
                          schedule={"kind": "on_entry"})
    campaign_launch(actor=admin_of(alpha), campaign=nudge, now=NOW)
    sending.assign_members(campaign=nudge, now=NOW)
    html = send(session(alpha, "viewer"), "get", "/campaigns/", tenant=alpha).content.decode()
    assert "In the app · 3 assigned" in html and f"/campaigns/{nudge.pk}/results/" in html
    assert not re.search(r'data-testid="sent-count">0<', html)


def test_the_list_filters_by_status_channel_and_segment(alpha):
    one, two = static_segment("one", people(1, prefix="a")), static_segment("two", people(1, prefix="b"))
    make_campaign(alpha, one, name="Email to one")
    make_campaign(alpha, two, name="In-app to two", channel="in_app", content={"title": "T", "body": "B"})
    admin = session(alpha)
    by_channel = send(admin, "get", "/campaigns/", {"channel": "in_app"}, tenant=alpha).content.decode()
    assert "In-app to two" in by_channel and "Email to one" not in by_channel
    by_segment = send(admin, "get", "/campaigns/", {"segment": one.pk}, tenant=alpha).content.decode()
    assert "Email to one" in by_segment and "In-app to two" not in by_segment
    assert 'data-testid="campaigns-empty"' in send(admin, "get", "/campaigns/", {"status": "running"},
                                                   tenant=alpha).content.decode()
    assert 'data-testid="new-campaign"' in by_channel


def test_a_bad_filter_is_a_coded_400_and_is_left_out(alpha):
    make_campaign(alpha, static_segment("s", people(1)))
    response = send(session(alpha), "get", "/campaigns/", {"status": "exploded", "segment": "x"}, tenant=alpha)
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-code="invalid_choice" data-path="status"' in html and 'data-code="invalid_value" data-path="segment"' in html
    assert html.count('data-testid="campaign-row"') == 1


# ------------------------------------------------------------------------------ editor


def test_the_editor_creates_a_campaign_from_its_fields(alpha):
    """Every field of the form reaches the service: schedule in UTC, content, variants, limits, goal."""
    segment = static_segment("trial", people(2))
    body = editor_post(segment, variant_0_key="segmented", variant_0_weight="50", variant_1_key="generic",
                       variant_1_weight="50", variant_1_subject="News from us", variant_1_body="Hello there.")
    response = send(session(alpha, "marketer"), "post", "/campaigns/new/", body, tenant=alpha)
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Spring upgrade")
    assert response["Location"] == f"/campaigns/{campaign.pk}/"
    assert campaign.status == "draft" and campaign.segment == segment and campaign.channel == "email"
    assert campaign.schedule == {"kind": "once", "at": "2026-06-10T09:30:00+00:00"}
    assert campaign.content == {"subject": "Hi {{ first_name }}", "body": "Hello {{ first_name }}, try Pro.",
                                "format": "text"}
    assert campaign.variants == [{"key": "segmented", "weight": 50, "content": {}},
                                 {"key": "generic", "weight": 50,
                                  "content": {"subject": "News from us", "body": "Hello there."}}]
    assert (campaign.holdout_percent, campaign.cap_max_sends, campaign.cap_days) == (10, 2, 7)
    assert (campaign.goal_event, campaign.goal_days) == ("upgraded", 14)


def test_a_recurring_weekly_schedule_is_built_from_its_fields(alpha):
    segment = static_segment("trial", people(1))
    body = editor_post(segment, schedule_kind="recurring", schedule_every="weekly", schedule_time="08:15",
                       schedule_weekday="2", schedule_until="2026-09-01T00:00")
    assert send(session(alpha), "post", "/campaigns/new/", body, tenant=alpha).status_code == 302
    assert Campaign.objects.get().schedule == {"kind": "recurring", "every": "weekly", "time": "08:15", "weekday": 2,
                                               "until": "2026-09-01T00:00:00+00:00"}


def test_bad_input_is_a_400_with_each_problem_at_its_field_and_nothing_saved(alpha):
    segment = static_segment("trial", people(1))
    body = editor_post(segment, name="", schedule_at="next tuesday", email_subject="Hi {{ first_name|nope }}",
                       holdout_percent="80", cap_days="", variant_0_key="", variant_0_weight="0",
                       variant_0_body="x")
    audits = AuditEvent.objects.count()
    response = send(session(alpha), "post", "/campaigns/new/", body, tenant=alpha)
    assert response.status_code == 400
    errors = field_errors(response)
    assert {("name", "required"), ("schedule.at", "invalid_datetime"), ("content.subject", "template_syntax"),
            ("holdout_percent", "invalid_range"), ("cap_days", "incomplete_cap"), ("variants[0].key", "invalid_value"),
            ("variants[0].weight", "invalid_range")} <= errors
    html = response.content.decode()
    assert 'value="next tuesday"' in html  # what was typed comes back to be fixed
    assert Campaign.objects.count() == 0 and AuditEvent.objects.count() == audits


def test_a_segment_the_member_may_not_see_is_neither_offered_nor_accepted(alpha):
    """A custom role that edits campaigns but cannot see segments: empty choice, unknown_segment."""
    from tenants.services import role_create

    segment = static_segment("secret", people(1))
    role = role_create(actor=admin_of(alpha), name="Campaign clerk", permissions=["campaigns.view", "campaigns.edit"])
    connection.set_tenant(alpha)
    client = Client(HTTP_HOST=host_of(alpha))
    client.force_login(make_member(alpha, "clerk@alpha.test", role.key))
    page = send(client, "get", "/campaigns/new/", tenant=alpha).content.decode()
    assert f'<option value="{segment.pk}"' not in page
    response = send(client, "post", "/campaigns/new/", editor_post(segment), tenant=alpha)
    assert response.status_code == 400 and ("segment_id", "unknown_segment") in field_errors(response)
    assert not Campaign.objects.exists()


def test_editing_changes_the_campaign_and_shows_saved_values(alpha):
    segment = static_segment("trial", people(1))
    campaign = make_campaign(alpha, segment, holdout_percent=15, goal_event="upgraded")
    admin = session(alpha)
    page = send(admin, "get", f"/campaigns/{campaign.pk}/edit/", tenant=alpha).content.decode()
    assert 'value="Welcome"' in page and 'value="15"' in page and 'value="2026-06-06T12:00"' in page
    response = send(admin, "post", f"/campaigns/{campaign.pk}/edit/",
                    editor_post(segment, name="Welcome back", holdout_percent="20"), tenant=alpha)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.holdout_percent, campaign.goal_days) == ("Welcome back", 20, 14)


def test_after_launch_locked_fields_are_disabled_and_a_changed_one_is_refused(alpha):
    segment = static_segment("trial", people(1))
    campaign = campaign_launch(actor=admin_of(alpha), campaign=make_campaign(alpha, segment, holdout_percent=10),
                               now=NOW)
    admin = session(alpha)
    page = send(admin, "get", f"/campaigns/{campaign.pk}/edit/", tenant=alpha).content.decode()
    assert 'data-testid="locked-note"' in page and re.search(r'name="holdout_percent"[^>]*disabled', page)
    # The disabled fields are not sent: the rest of the form saves.
    unlocked = {k: v for k, v in editor_post(segment, name="Renamed").items()
                if k not in ("segment", "channel", "schedule_kind", "schedule_at", "holdout_percent",
                             "variants_present")}
    assert send(admin, "post", f"/campaigns/{campaign.pk}/edit/", unlocked, tenant=alpha).status_code == 302
    campaign.refresh_from_db()
    assert campaign.name == "Renamed"
    # A hand-made POST that changes the holdout is refused at its field, nothing saved.
    response = send(admin, "post", f"/campaigns/{campaign.pk}/edit/", {**unlocked, "name": "Again",
                                                                      "holdout_percent": "30"}, tenant=alpha)
    assert response.status_code == 400 and ("holdout_percent", "locked_after_launch") in field_errors(response)
    campaign.refresh_from_db()
    assert (campaign.name, campaign.holdout_percent) == ("Renamed", 10)


def test_viewers_and_analysts_cannot_open_the_editor(alpha):
    campaign = make_campaign(alpha, static_segment("s", people(1)))
    for role in ("viewer", "analyst"):
        client = session(alpha, role)
        assert send(client, "get", "/campaigns/new/", tenant=alpha).status_code == 403
        assert send(client, "post", f"/campaigns/{campaign.pk}/edit/", {"name": "x"}, tenant=alpha).status_code == 403
    campaign.refresh_from_db()
    assert campaign.name == "Welcome"


# ------------------------------------------------------------------------------ preview


def test_the_preview_renders_the_draft_for_a_member_of_the_segment(alpha):
    ada, bo = people(2)
    segment = static_segment("trial", [ada, bo])
    body = editor_post(segment, email_subject="Hi {{ first_name }}, about {{ plan|default:'your plan' }}",
                       preview_draft="1", preview_customer=str(bo.pk))
    response = send(session(alpha, "marketer"), "post", "/campaigns/-/preview/", body, tenant=alpha)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Hi Person1, about your plan" in html and "Unsubscribe:" in html
    assert f'<option value="{ada.pk}"' in html and f'<option value="{bo.pk}" selected' in html


def test_the_preview_finds_a_customer_by_external_id_and_escapes_their_data(alpha):
    (ada,) = people(1)
    ada.name = "<script>alert(1)</script> Ada"
    ada.save()
    campaign = make_campaign(alpha, static_segment("trial", []), content={
        "subject": "For {{ name }}", "body": "<p>Hello {{ name }}</p>", "format": "html"})
    response = send(session(alpha, "marketer"), "post", "/campaigns/-/preview/",
                    {"campaign": campaign.pk, "preview_external_id": "c0"}, tenant=alpha)
    html = response.content.decode()
    assert response.status_code == 200 and "<script>alert(1)" not in html
    assert 'sandbox=""' in html and "&lt;p&gt;Hello &amp;lt;script&amp;gt;" in html  # escaped twice: HTML in srcdoc


def test_a_viewer_previews_with_a_sample_customer_not_personal_data(alpha):
    (ada,) = people(1)
    campaign = make_campaign(alpha, static_segment("trial", [ada]))
    html = send(session(alpha, "viewer"), "post", "/campaigns/-/preview/", {"campaign": campaign.pk},
                tenant=alpha).content.decode()
    assert "Hi Ada" in html and "Person0" not in html


def test_preview_problems_are_coded_400s(alpha):
    campaign = make_campaign(alpha, static_segment("trial", people(1)))
    admin = session(alpha)
    unknown = send(admin, "post", "/campaigns/-/preview/", {"campaign": campaign.pk, "preview_external_id": "nobody"},
                   tenant=alpha)
    assert unknown.status_code == 400 and 'data-code="unknown_customer"' in unknown.content.decode()
    draft = send(admin, "post", "/campaigns/-/preview/",
                 {"preview_draft": "1", "channel": "email", "email_subject": "{% if %}", "email_body": ""}, tenant=alpha)
    assert draft.status_code == 400
    assert {'data-path="content.subject" data-code="template_syntax"', 'data-path="content.body" data-code="required"'} \
        <= set(re.findall(r'data-path="[^"]*" data-code="[^"]*"', draft.content.decode()))
    variant = send(admin, "post", "/campaigns/-/preview/", {"campaign": campaign.pk, "preview_variant": "zzz"},
                   tenant=alpha)
    assert variant.status_code == 400 and 'data-code="unknown_variant"' in variant.content.decode()


# ------------------------------------------------------------------------------ detail and transitions


def test_launch_pause_and_cancel_go_through_the_audited_services(alpha):
    campaign = make_campaign(alpha, static_segment("trial", people(1)))
    marketer = session(alpha, "marketer")
    assert send(marketer, "post", f"/campaigns/{campaign.pk}/launch/", tenant=alpha).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "scheduled"
    assert send(marketer, "post", f"/campaigns/{campaign.pk}/pause/", {"reason": "Copy review"},
                tenant=alpha).status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == ("paused", "Copy review")
    page = send(marketer, "get", f"/campaigns/{campaign.pk}/", tenant=alpha).content.decode()
    assert 'data-testid="pause-reason"' in page and "Copy review" in page
    assert page.count('data-action="campaign.') == 3  # created, launched, paused
    assert send(marketer, "post", f"/campaigns/{campaign.pk}/cancel/", tenant=alpha).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == "cancelled"
    assert list(AuditEvent.objects.filter(target_id=str(campaign.pk)).order_by("id").values_list("action", flat=True)) \
        == ["campaign.created", "campaign.launched", "campaign.paused", "campaign.cancelled"]


def test_a_refused_transition_shows_its_409_and_code_and_changes_nothing(alpha):
    campaign = make_campaign(alpha, static_segment("trial", people(1)))
    admin = session(alpha)
    send(admin, "post", f"/campaigns/{campaign.pk}/cancel/", tenant=alpha)
    audits = AuditEvent.objects.count()
    for action in ("launch", "pause", "cancel"):
        response = send(admin, "post", f"/campaigns/{campaign.pk}/{action}/", tenant=alpha)
        assert response.status_code == 409
        html = response.content.decode()
        assert 'data-testid="action-error" data-status="409"' in html and "invalid_transition" in html
    campaign.refresh_from_db()
    assert campaign.status == "cancelled" and AuditEvent.objects.count() == audits


def test_a_campaign_paused_because_its_segment_was_deleted_says_so(alpha):
    segment = static_segment("doomed", people(1))
    campaign = campaign_launch(actor=admin_of(alpha), campaign=make_campaign(alpha, segment), now=NOW)
    segment.delete()
    campaigns_segment_gone(now=NOW)
    html = send(session(alpha), "get", f"/campaigns/{campaign.pk}/", tenant=alpha).content.decode()
    assert "Paused because its segment was deleted" in html and "“Doomed” was deleted" in html
    assert 'data-testid="launch"' not in html  # it cannot be launched again
    response = send(session(alpha), "post", f"/campaigns/{campaign.pk}/launch/", tenant=alpha)
    assert response.status_code == 409 and "segment_deleted" in response.content.decode()


def test_viewers_see_the_campaign_without_its_controls_and_cannot_transition_it(alpha):
    campaign = make_campaign(alpha, static_segment("trial", people(1)))
    viewer = session(alpha, "viewer")
    html = send(viewer, "get", f"/campaigns/{campaign.pk}/", tenant=alpha).content.decode()
    assert 'data-testid="campaign-title"' in html
    assert not re.search(r'data-testid="(launch|pause|cancel|edit-campaign)"', html)
    assert send(viewer, "post", f"/campaigns/{campaign.pk}/launch/", tenant=alpha).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == "draft"


def test_another_workspaces_campaign_is_not_found(alpha, other_tenant):
    connection.set_tenant(other_tenant)
    foreign = make_campaign(other_tenant, static_segment("beta-seg", people(1, prefix="b")))
    Campaign.objects.filter(pk=foreign.pk).update(id=987_654)
    connection.set_tenant(alpha)
    assert not Campaign.objects.filter(pk=987_654).exists()
    admin = session(alpha)
    for method, url in (("get", "/campaigns/987654/"), ("get", "/campaigns/987654/edit/"),
                        ("get", "/campaigns/987654/results/"), ("post", "/campaigns/987654/launch/"),
                        ("post", "/campaigns/987654/cancel/")):
        assert send(admin, method, url, tenant=alpha).status_code == 404, url
    assert send(admin, "post", "/campaigns/-/preview/", {"campaign": "987654"}, tenant=alpha).status_code == 404
    connection.set_tenant(other_tenant)
    assert Campaign.objects.get(pk=987_654).status == "draft"
    assert send(session(other_tenant), "get", "/campaigns/987654/", tenant=other_tenant).status_code == 200


# ------------------------------------------------------------------------------ results


def _arms(campaign, treated, held, *, converted_treated, converted_held):
    Assignment.objects.bulk_create(
        [Assignment(campaign=campaign, customer=c, group="treatment", variant="", assigned_at=NOW - timedelta(days=1))
         for c in treated] + [Assignment(campaign=campaign, customer=c, group="holdout", assigned_at=NOW - timedelta(days=1))
                              for c in held])
    Event.objects.bulk_create([Event(customer=c, name="upgraded", timestamp=NOW - timedelta(hours=2))
                               for c in treated[:converted_treated] + held[:converted_held]])


def test_results_show_both_groups_lift_with_its_interval_and_a_plain_verdict(alpha):
    crowd = people(60)
    campaign = make_campaign(alpha, static_segment("trial", crowd), holdout_percent=50, goal_event="upgraded")
    _arms(campaign, crowd[:30], crowd[30:], converted_treated=9, converted_held=6)
    response = send(session(alpha, "analyst"), "get", f"/campaigns/{campaign.pk}/results/", tenant=alpha)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.search(r'data-testid="treatment-rate">30.00%<', html) and re.search(r'data-testid="holdout-rate">20.00%<', html)
    assert re.search(r'data-testid="absolute-lift">\+10.00 pp<', html) and "+50.0%" in html
    assert "Not yet significant — need more data" in html and "95% CI" in html
    assert 'data-testid="rate-chart"' in html and 'data-testid="lift-chart"' in html and "boxplot" in html


def test_results_say_when_there_is_no_holdout_or_no_goal(alpha):
    crowd = people(4)
    segment = static_segment("trial", crowd)
    no_goal = make_campaign(alpha, segment)
    no_holdout = make_campaign(alpha, segment, name="All in", goal_event="upgraded")
    _arms(no_holdout, crowd, [], converted_treated=1, converted_held=0)
    admin = session(alpha)
    assert "No conversion goal yet" in send(admin, "get", f"/campaigns/{no_goal.pk}/results/",
                                            tenant=alpha).content.decode()
    assert "No holdout — lift cannot be measured" in send(admin, "get", f"/campaigns/{no_holdout.pk}/results/",
                                                          tenant=alpha).content.decode()


def test_the_send_log_pages_newest_first_and_filters_by_status(alpha):
    crowd = people(55)
    campaign = make_campaign(alpha, static_segment("trial", crowd))
    Send.objects.bulk_create([Send(campaign=campaign, customer=c, occasion="once", channel="email",
                                   status="failed" if i % 5 == 0 else "sent", claimed_at=NOW)
                              for i, c in enumerate(crowd)])
    admin = session(alpha)
    first = send(admin, "get", f"/campaigns/{campaign.pk}/results/", tenant=alpha).content.decode()
    assert first.count('data-testid="send-row"') == 50 and "Failed · 11" in first and "Sent · 44" in first
    older = re.search(r'href="\?before=(\d+)" data-testid="log-older"', first).group(1)
    second = send(admin, "get", f"/campaigns/{campaign.pk}/results/", {"before": older}, tenant=alpha).content.decode()
    assert second.count('data-testid="send-row"') == 5 and 'data-testid="log-older"' not in second
    failed = send(admin, "get", f"/campaigns/{campaign.pk}/results/", {"status": "failed"}, tenant=alpha)
    assert failed.content.decode().count('data-testid="send-row"') == 11
    bad = send(admin, "get", f"/campaigns/{campaign.pk}/results/", {"status": "lost"}, tenant=alpha)
    assert bad.status_code == 400 and 'data-code="invalid_choice" data-path="status"' in bad.content.decode()


def test_ad_audience_campaigns_link_their_export_for_members_who_may_export(alpha):
    campaign = make_campaign(alpha, static_segment("trial", people(1)), channel="ad_audience", content={})
    export = f'href="/api/v1/campaigns/{campaign.pk}/audience.csv"'
    assert export in send(session(alpha, "analyst"), "get", f"/campaigns/{campaign.pk}/results/",
                          tenant=alpha).content.decode()
    assert export not in send(session(alpha, "marketer"), "get", f"/campaigns/{campaign.pk}/results/",
                              tenant=alpha).content.decode()


def test_an_in_app_campaign_is_written_and_previewed_as_a_card(alpha):
    """In-app fields become title, body and call to action; a variant overrides the title."""
    (ada,) = people(1)
    segment = static_segment("trial", [ada])
    body = editor_post(segment, channel="in_app", schedule_kind="on_entry", email_subject="", email_body="",
                       inapp_title="Hi {{ first_name }}", inapp_body="Projects are waiting.", inapp_cta_label="Open",
                       inapp_cta_url="/projects", variant_0_key="short", variant_0_weight="100",
                       variant_0_title="Psst, {{ first_name }}")
    admin = session(alpha)
    assert send(admin, "post", "/campaigns/new/", body, tenant=alpha).status_code == 302
    campaign = Campaign.objects.get()
    assert campaign.content == {"title": "Hi {{ first_name }}", "body": "Projects are waiting.", "cta_label": "Open",
                                "cta_url": "/projects"}
    assert campaign.variants == [{"key": "short", "weight": 100, "content": {"title": "Psst, {{ first_name }}"}}]
    html = send(admin, "post", "/campaigns/-/preview/", {"campaign": campaign.pk, "preview_variant": "short"},
                tenant=alpha).content.decode()
    assert 'data-testid="preview-in-app"' in html and "Psst, Person0" in html and "Projects are waiting." in html


def test_a_tampered_play_field_is_an_unknown_play_not_an_error(alpha):
    segment = static_segment("trial", people(1))
    response = send(session(alpha), "post", "/campaigns/new/", editor_post(segment, play="drop table"), tenant=alpha)
    assert response.status_code == 400 and ("play_id", "unknown_play") in field_errors(response)
    assert not Campaign.objects.exists()


EDITOR_FIELDS = ("name", "play", "segment", "channel", "schedule_kind", "schedule_at", "schedule_every",
                 "schedule_time", "schedule_weekday", "schedule_hours", "schedule_start", "schedule_until",
                 "email_subject", "email_body", "email_format", "holdout_percent", "cap_max_sends", "cap_days",
                 "goal_event", "goal_days", "variant_0_key", "variant_0_weight", "variant_0_subject",
                 "preview_customer", "preview_external_id", "preview_variant")


def test_any_text_in_any_editor_field_is_answered_never_a_500(alpha):
    """Typed or tampered values reach the services, which answer with coded problems."""
    from hypothesis import HealthCheck, given, settings, strategies as st

    segment = static_segment("trial", people(1))
    admin = session(alpha)
    texts = st.one_of(st.text(max_size=40), st.sampled_from(["-1", "0", "99999999999999999999", "1e400", "NaN",
                                                              "recurring", "hours", "2026-02-30T25:61", "{% if %}",
                                                              "a\x00b"]))

    @settings(max_examples=80, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(field=st.sampled_from(EDITOR_FIELDS), value=texts)
    def check(field, value):
        body = {**editor_post(segment), field: value, "schedule_every": "hours" if value == "hours" else "daily"}
        for url in ("/campaigns/new/", "/campaigns/-/preview/"):
            status = send(admin, "post", url, body, tenant=alpha).status_code
            assert status in (200, 302, 400), (url, field, value, status)

    check()


def test_a_nul_character_is_refused_at_its_field_not_stored(alpha):
    """PostgreSQL cannot store NUL: each write path answers a coded 400 instead of failing."""
    segment = static_segment("trial", people(1))
    admin = session(alpha)
    response = send(admin, "post", "/campaigns/new/", editor_post(segment, name="Sale\x00"), tenant=alpha)
    assert response.status_code == 400 and ("name", "null_characters_not_allowed") in field_errors(response)
    preview = send(admin, "post", "/campaigns/-/preview/", {"preview_external_id": "c\x000"}, tenant=alpha)
    assert preview.status_code == 400 and 'data-code="null_characters_not_allowed"' in preview.content.decode()
    assert not Campaign.objects.exists()


def test_a_cancelled_campaign_cannot_be_edited(alpha):
    segment = static_segment("trial", people(1))
    campaign = make_campaign(alpha, segment)
    admin = session(alpha)
    send(admin, "post", f"/campaigns/{campaign.pk}/cancel/", tenant=alpha)
    page = send(admin, "get", f"/campaigns/{campaign.pk}/edit/", tenant=alpha).content.decode()
    assert re.search(r'data-testid="save-campaign"\s+disabled', page)
    response = send(admin, "post", f"/campaigns/{campaign.pk}/edit/", editor_post(segment, name="Revived"), tenant=alpha)
    assert response.status_code == 400 and ("", "finished") in field_errors(response)
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Welcome", "cancelled")


def test_a_member_who_may_not_see_segments_previews_without_the_member_list(alpha):
    from tenants.services import role_create

    (ada,) = people(1)
    campaign = make_campaign(alpha, static_segment("secret", [ada]))
    role = role_create(actor=admin_of(alpha), name="Campaign reader", permissions=["campaigns.view"])
    connection.set_tenant(alpha)
    client = Client(HTTP_HOST=host_of(alpha))
    client.force_login(make_member(alpha, "reader@alpha.test", role.key))
    html = send(client, "post", "/campaigns/-/preview/", {"campaign": campaign.pk}, tenant=alpha).content.decode()
    assert 'data-testid="preview-email"' in html and f'<option value="{ada.pk}"' not in html
