"""Every value in a definition is one PostgreSQL can hold: a value it cannot is a 400 with a
code and the path of the value, on create, update and preview, never a 500, and a segment
that existed keeps its definition (issue: hardening, finding 4)."""

import json
from datetime import datetime, timezone

import pytest
import time_machine
from django_tenants.utils import schema_context

from segments.models import Segment
from segments.rules.nodes import RuleError
from segments.rules.parse import parse
from tests.conftest import session

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
URL = "/api/v1/segments/"


@pytest.fixture(autouse=True)
def _frozen_clock():
    with time_machine.travel(NOW, tick=False):
        yield


def definition(*conditions: dict) -> dict:
    return {"version": 1, "match": "all", "conditions": list(conditions)}


HOSTILE = {
    "nul_value": ({"type": "trait", "field": "plan", "op": "eq", "value": "\x00"},
                  "conditions[0].value", "null_characters_not_allowed"),
    "surrogate_value": ({"type": "trait", "field": "plan", "op": "eq", "value": "\ud800"},
                        "conditions[0].value", "surrogate_characters_not_allowed"),
    "nul_in_a_list": ({"type": "trait", "field": "plan", "op": "in", "value": ["pro", "a\x00"]},
                      "conditions[0].value[1]", "null_characters_not_allowed"),
    "nul_event_name": ({"type": "event", "event": "log\x00in"}, "conditions[0].event", "null_characters_not_allowed"),
    "far_future_date": ({"type": "event", "event": "login", "last_occurred": {"op": "after", "value": "9999-12-31"}},
                        "conditions[0].last_occurred.value", "out_of_range"),
    "offset_past_year_9999": ({"type": "trait", "field": "signed_up_at", "op": "gt",
                               "value": "9999-12-31T23:59:59-12:00"}, "conditions[0].value", "out_of_range"),
    "year_one": ({"type": "trait", "field": "signed_up_at", "op": "lt", "value": "0001-01-01T00:00:00+14:00"},
                 "conditions[0].value", "out_of_range"),
    "nan": ({"type": "trait", "field": "company_size", "op": "gt", "value": float("nan")},
            "conditions[0].value", "invalid_value"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_parser_names_the_value_postgres_cannot_hold(case):
    condition, path, code = HOSTILE[case]
    with pytest.raises(RuleError) as caught:
        parse(definition(condition))
    assert (path, code) in {(p.path, p.code) for p in caught.value.problems}


def send(client, method: str, url: str, body: dict):
    raw = json.dumps(body).encode("utf-8", "surrogatepass")  # NaN and lone surrogates as JSON writes them
    return getattr(client, method)(url, raw, content_type="application/json")


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_create_update_and_preview_answer_400_with_the_path(tenant, case):
    condition, path, code = HOSTILE[case]
    client = session(tenant)
    good = definition({"type": "trait", "field": "plan", "op": "eq", "value": "pro"})
    assert send(client, "post", URL, {"key": "pros", "name": "Pros", "definition": good}).status_code == 201
    for method, url, body in [
        ("post", URL, {"key": "bad", "name": "Bad", "definition": definition(condition)}),
        ("patch", f"{URL}pros/", {"definition": definition(condition)}),
        ("post", f"{URL}preview/", {"definition": definition(condition)}),
        ("post", f"{URL}pros/preview/", {"definition": definition(condition)}),
    ]:
        response = send(client, method, url, body)
        assert response.status_code == 400, (method, url, response.content)
        assert (f"definition.{path}", code) in {(e["path"], e["code"]) for e in response.json()["errors"]}
    with schema_context(tenant.schema_name):
        assert list(Segment.objects.values_list("key", "definition")) == [("pros", good)]
