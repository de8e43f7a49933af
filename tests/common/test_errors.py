"""Domain errors say what kind of failure they are; HTTP is decided in one place."""

from __future__ import annotations

import pytest

from common.errors import Conflict, DomainError, Forbidden, Gone, NotFound, Problem, TooLarge, Unauthenticated
from common.http import http_status
from common.pages import page_status


@pytest.mark.parametrize(("kind", "status"), [
    (DomainError, 400), (Unauthenticated, 401), (Forbidden, 403), (NotFound, 404), (Conflict, 409), (Gone, 410),
    (TooLarge, 413),
])
def test_each_kind_has_its_status(kind, status):
    """An error's class, not a number it carries, decides its HTTP status."""
    error = kind.single(path="x", code="c", message="m")
    assert http_status(error) == status
    assert error.as_payload() == {"errors": [{"path": "x", "code": "c", "message": "m"}]}


def test_a_page_answers_400_where_the_api_would_ask_for_a_login():
    """Pages already sent the visitor to log in; a 401 there is a plain bad request."""
    assert page_status(Unauthenticated.single(path="", code="c", message="m")) == 400
    assert page_status(Conflict.single(path="", code="c", message="m")) == 409


def test_prefixed_keeps_the_kind_and_nests_every_path():
    """A service that hands an argument to a parser names the argument in each path."""
    error = Conflict(problems=[Problem("conditions[0]", "a", "m"), Problem("", "b", "m")]).prefixed("definition")
    assert isinstance(error, Conflict)
    assert [p.path for p in error.problems] == ["definition.conditions[0]", "definition"]


def test_errors_module_needs_no_django():
    """The rule language raises these errors, and it may not import Django."""
    import ast
    import pathlib

    import common.errors

    tree = ast.parse(pathlib.Path(common.errors.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(name.split(".")[0] == "django" or name.startswith("rest_framework") for name in imported)


def test_messages_lists_every_problem_for_a_page():
    error = DomainError(problems=[Problem("a", "x", "First."), Problem("b", "y", "Second.")])
    assert error.messages == ["First.", "Second."]


def test_every_code_is_its_enum_name_in_lower_case_and_means_one_thing():
    """A code is written once, as an enum member; no two domains define the same code."""
    from common.errors import CampaignCode, Code, CustomerCode, InsightCode, SegmentCode, TenantCode

    seen: dict[str, str] = {}
    for enum in (Code, TenantCode, CustomerCode, SegmentCode, InsightCode, CampaignCode):
        for member in enum:
            assert member.value == member.name.lower()
            assert member.value not in seen, f"{member.value} is in {seen.get(member.value)} and {enum.__name__}"
            seen[member.value] = enum.__name__
