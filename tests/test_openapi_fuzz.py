"""The OpenAPI document tells the truth (issue: hardening, finding 8): schemathesis
generates requests for every operation of /api/v1/schema/ (a fixed seed, a few examples
each) and sends them, as an admin's API key and as a viewer's session, through the real
application (middleware, tenant, database). No answer is a server error, every status is
documented, and every documented response matches its schema.

The operations are walked here rather than with schemathesis' pytest plugin, whose lazy
fixtures do not run under this pytest; each operation is still its own hypothesis run and
a failure names the operation."""

from __future__ import annotations

from contextlib import contextmanager

import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from tests.conftest import host_of, session
from tests.customers.test_customers_api import key_client

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ = settings(max_examples=8, derandomize=True, deadline=None, database=None,
                phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


def operations(tenant):
    document = session(tenant).get("/api/v1/schema/?format=json").json()
    connection.set_schema_to_public()
    return [result.ok() for result in schemathesis.openapi.from_dict(document).get_all_operations()]


def _summary(failure: BaseException) -> str:
    """What went wrong, without the reproduction boilerplate: each distinct failure's title
    and the lines that say what was received."""
    found = [failure]
    while found and isinstance(found[0], BaseExceptionGroup):
        found = [e for group in found for e in getattr(group, "exceptions", [group])]
    return "; ".join(" ".join(str(e).split("\n\n")[:2]).replace("\n", " ")[:400] for e in found)


@contextmanager
def connection_kept():
    """Django closes the database connection when a request ends; inside a test that is
    the test's own transaction (the test client keeps it open the same way)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)


def fuzz(tenant, *, headers: dict, cookies: dict) -> None:
    # TRICKY: read the schema first: the test client reconnects Django's handlers when done.
    found = operations(tenant)
    with connection_kept():
        failures = _fuzz(tenant, found, headers=headers, cookies=cookies)
    assert not failures, "\n\n".join(failures)


def _fuzz(tenant, found, *, headers: dict, cookies: dict) -> list[str]:
    app, base_url, failures = WSGIHandler(), f"http://{host_of(tenant)}", []
    for operation in found:
        @FUZZ
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(base_url=base_url, app=app, headers=headers, cookies=cookies)
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except (Exception, BaseExceptionGroup) as failure:  # every operation is tried; all are reported
            failures.append(f"{operation.label}: {_summary(failure)}")
    return failures


def test_as_an_admin_key_every_operation_answers_as_documented(tenant):
    client = key_client(tenant, ["read", "write", "ingest", "launch", "settings"])
    fuzz(tenant, headers={"Authorization": client.defaults["HTTP_AUTHORIZATION"]}, cookies={})


def test_as_a_viewer_session_every_operation_answers_as_documented(tenant):
    client = session(tenant, "viewer")
    connection.set_schema_to_public()
    fuzz(tenant, headers={}, cookies={"sessionid": client.cookies["sessionid"].value})


def test_the_document_describes_the_batch_bodies_paged_lists_and_errors(tenant):
    """Findings of the review: consents and survey answers take {"consents": […]} and
    {"responses": […]}; hand-paged lists are pages, not arrays; 4xx answers are documented."""
    document = session(tenant).get("/api/v1/schema/?format=json").json()
    paths, schemas = document["paths"], document["components"]["schemas"]

    def body(path: str) -> dict:
        ref = paths[path]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        return schemas[ref.rsplit("/", 1)[1]]

    assert set(body("/api/v1/consents/")["properties"]) == {"consents"}
    assert set(body("/api/v1/surveys/responses/")["properties"]) == {"responses"}
    for path in ("/api/v1/segments/", "/api/v1/plays/", "/api/v1/campaigns/", "/api/v1/webhooks/",
                 "/api/v1/api-keys/", "/api/v1/segments/{key}/members/", "/api/v1/campaigns/{id}/sends/",
                 "/api/v1/webhooks/{id}/deliveries/"):
        page = paths[path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert set(schemas[page.rsplit("/", 1)[1]]["properties"]) == {"next", "previous", "results"}, path
    for path, operations in paths.items():
        for method, operation in operations.items():
            assert {"400", "401", "403", "404"} <= set(operation["responses"]), (method, path)
    assert schemas["ImportOutput"]["properties"]["suggested_mapping"]["nullable"] is True
