"""The rooms of shared/DESIGN.md hold: import-linter's contracts pass, and they do catch a
bad import when one is planted."""

from __future__ import annotations

import ast
import pathlib
import re
import shutil
import subprocess
import sys
import tomllib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
LINT_IMPORTS = pathlib.Path(sys.executable).with_name("lint-imports")
CODE = re.compile(r"[a-z][a-z0-9_]*")  # what a code looks like (a path or a message does not)


def _root_packages() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["root_packages"]


def _lint(cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo"], cwd=cwd, capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(cwd)}, timeout=120)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory) -> pathlib.Path:
    """The project's packages and contracts, copied so that a test may plant imports."""
    copy = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / "pyproject.toml", copy)
    for package in _root_packages():
        shutil.copytree(ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    return copy


def test_the_tree_keeps_its_contracts():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout[-4000:]


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("common/planted.py", "import customers.models", "common imports no app"),
    ("segments/rules/planted.py", "from django.db import connection", "The rule language is pure"),
    ("segments/rules/planted.py", "from common.api import StrictInput", "The rule language is pure"),
    ("customers/planted.py", "from segments.models import Segment", "Rooms import only the rooms below them"),
    ("tenants/planted.py", "from customers.models import Customer", "Rooms import only the rooms below them"),
    # The audit log lives in each tenant's schema: tenants reaches it through settings only.
    ("tenants/planted.py", "from audit.services import audit_record", "Rooms import only the rooms below them"),
    ("segments/planted.py", "from campaigns.models import Campaign", "Rooms import only the rooms below them"),
    ("segments/planted.py", "from demo.seed import DEMO_USERS", "Nothing imports demo"),
    ("config/celery.py", "import segments.models", "Only config's URL confs import the apps"),
    # segments.selectors imports the rule package: a rule module importing it back is a cycle.
    ("segments/rules/vocabulary.py", "import segments.selectors", "No import cycles"),
])
def test_a_planted_bad_import_is_caught(tree_copy, module, line, contract):
    """Each contract fails, naming itself, when a module of the tree breaks it."""
    planted = tree_copy / module
    original = planted.read_text() if planted.exists() else None
    planted.write_text((original or "") + f"\n{line}\n")
    try:
        result = _lint(tree_copy)
    finally:
        if original is None:
            planted.unlink()
        else:
            planted.write_text(original)
    assert result.returncode == 1, result.stdout[-4000:]
    assert contract in result.stdout and "BROKEN" in result.stdout


def test_every_csv_is_written_by_the_one_safe_writer():
    """Only common/csv.py makes a csv.writer: every export neutralises formula cells."""
    writers = []
    for package in _root_packages():
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if (isinstance(node, ast.Attribute) and node.attr in ("writer", "DictWriter")
                        and isinstance(node.value, ast.Name) and node.value.id == "csv"):
                    writers.append(str(path.relative_to(ROOT)))
    assert set(writers) == {"common/csv.py"}


def _first_party_imports_inside_functions() -> list[str]:
    roots = tuple(_root_packages())
    found = []
    for package in roots:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            lines = source.split("\n")
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").split(".")[0] in roots:
                        names = [inner.module]
                    elif isinstance(inner, ast.Import):
                        names = [alias.name for alias in inner.names if alias.name.split(".")[0] in roots]
                    else:
                        continue
                    marked = "# TRICKY:" in lines[inner.lineno - 1] or "# TRICKY:" in lines[inner.lineno - 2]
                    if names and not marked:
                        found.append(f"{path.relative_to(ROOT)}:{inner.lineno}")
    return found


def test_definitions_are_parsed_against_the_tenant_in_one_place():
    """Outside the rule package only segments/selectors/rules.py (rule_context,
    condition_context) calls the parser: one registry read, one path convention."""
    callers = []
    for package in _root_packages():
        for path in (ROOT / package).rglob("*.py"):
            relative = str(path.relative_to(ROOT))
            if relative.startswith("segments/rules/") or relative == "segments/selectors/rules.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("segments.rules.parse")
                        and any(alias.name in ("parse", "RuleParser") for alias in node.names)):
                    callers.append(relative)
    assert callers == []


MAX_MODULE_LINES = 400
# A module may pass MAX_MODULE_LINES only when one cohesive class needs the room: its path
# and why. A module grown past it is split into a package (shared/DESIGN.md, Layout).
LONG_MODULES: dict[str, str] = {}


def test_modules_stay_under_the_line_limit():
    """A module that grows past ~400 lines becomes a package, one module per part."""
    long = {}
    for package in _root_packages():
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            lines = len(path.read_text().splitlines())
            if lines > MAX_MODULE_LINES:
                long[str(path.relative_to(ROOT))] = lines
    assert set(long) <= set(LONG_MODULES), long


def test_imports_sit_at_the_top_of_their_module():
    """An import inside a function hides a dependency (usually a cycle): each one that must
    stay says why in a `# TRICKY:` comment."""
    assert _first_party_imports_inside_functions() == []


def test_error_codes_are_enum_members_not_string_literals():
    """Services, views and the rule language name a problem's code by its enum
    (common/errors.py), so a code cannot be misspelt in one place."""
    calls = {"single", "Problem", "problem", "ValueProblem", "CellProblem", "ErrorDetail", "_bad"}
    literals = []
    for package in _root_packages():
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
                if name not in calls:
                    continue
                candidates = [kw.value for kw in node.keywords if kw.arg == "code"]
                if name in ("ValueProblem", "CellProblem", "ErrorDetail") or (name == "problem" and len(node.args) == 2):
                    candidates += node.args[:1] if name != "ErrorDetail" else []
                elif name in ("Problem", "problem", "_bad"):
                    candidates += node.args[1:2]
                for code in candidates:
                    if isinstance(code, ast.Constant) and isinstance(code.value, str) and CODE.fullmatch(code.value):
                        literals.append(f"{path.relative_to(ROOT)}:{node.lineno} {code.value}")
    assert literals == []
