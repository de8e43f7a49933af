"""The container setup: Dockerfile, docker-compose.yml and .dockerignore.

No Docker engine is needed. docker-compose.yml is validated against the official Compose
Specification JSON schema (the copy that check-jsonschema ships) and checked against what
the app really needs: the variables production settings refuse to start without, the
Procfile's processes, importable entry points, the depends_on ordering. Where the
`docker compose` plugin exists, `docker compose config -q` runs as well.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from functools import cache
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
PROCFILE = ROOT / "Procfile"
MAKEFILE = ROOT / "Makefile"
PRODUCTION_SETTINGS = ROOT / "config" / "settings" / "production.py"

# check-jsonschema vendors compose-spec/compose-spec's schema/compose-spec.json.
SCHEMA_PACKAGE = "check_jsonschema.builtin_schemas.vendor"
SCHEMA_FILE = "compose-spec.json"

STORES = ("postgres", "redis")
WORKERS = ("worker", "worker-freshness", "worker-sends", "worker-batch")  # one per kind of work
APP_SERVICES = ("migrate", "web", *WORKERS, "beat")  # everything that runs the app image
LONG_RUNNING = ("web", *WORKERS, "beat")
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
INTERPOLATION = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<op>:?[-?+])?(?P<arg>[^}]*)\}")


# --------------------------------------------------------------------------- helpers
@cache
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict:
    return compose()["services"]


def interpolate(value):
    """What compose substitutes when the variables are unset: every default."""
    if isinstance(value, dict):
        return {key: interpolate(item) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item) for item in value]
    if not isinstance(value, str):
        return value

    def default(match: re.Match) -> str:
        if match["op"] not in (":-", "-"):
            pytest.fail(f"{match[0]} has no default: compose would need it set", pytrace=False)
        return match["arg"]

    return INTERPOLATION.sub(default, value.replace("$$", "\0")).replace("\0", "$")


def app_env() -> dict[str, str]:
    return {key: str(value) for key, value in interpolate(services()["web"]["environment"]).items()}


def command_tokens(service: str) -> list[str]:
    command = services()[service]["command"]
    return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]


def required_production_env() -> set[str]:
    """Names production.py reads with `env("NAME")` / `env.<cast>("NAME")` and no default."""
    tree = ast.parse(PRODUCTION_SETTINGS.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        reads_env = (isinstance(func, ast.Name) and func.id == "env") or (
            isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "env"
        )
        if not reads_env or not node.args:
            continue
        first = node.args[0]
        has_default = len(node.args) > 1 or any(kw.arg == "default" for kw in node.keywords)
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and not has_default:
            names.add(first.value)
    return names


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, buffer = [], ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not buffer):
            continue
        if line.endswith("\\"):
            buffer += line[:-1].strip() + " "
            continue
        buffer += line
        keyword, _, rest = buffer.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        buffer = ""
    return instructions


def dockerfile_stages() -> list[dict]:
    stages = []
    for keyword, args in dockerfile_instructions():
        if keyword == "FROM":
            words = [word for word in args.split() if not word.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            stages.append({"base": words[0], "name": name, "instructions": []})
        elif stages:
            stages[-1]["instructions"].append((keyword, args))
    return stages


def stage_env(stage: dict) -> dict[str, str]:
    env = {}
    for keyword, args in stage["instructions"]:
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(args) if "=" in word)
    return env


def runs(stage: dict) -> list[str]:
    return [args for keyword, args in stage["instructions"] if keyword == "RUN"]


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"use the exec (JSON array) form: {args}"
    return value


def healthcheck_disabled(service: dict) -> bool:
    check = service.get("healthcheck") or {}
    return check.get("disable") is True or check.get("test") in (["NONE"], "NONE")


def has_healthcheck(name: str) -> bool:
    service = services()[name]
    if healthcheck_disabled(service):
        return False
    if (service.get("healthcheck") or {}).get("test"):
        return True
    # Otherwise the image's own HEALTHCHECK applies, if it is ours and has one.
    return "build" in service and any(keyword == "HEALTHCHECK" for keyword, _ in dockerfile_instructions())


def procfile() -> dict[str, str]:
    processes = {}
    for line in PROCFILE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def leading_words(tokens: list[str]) -> list[str]:
    """The program and its positional words, up to the first long option."""
    for index, token in enumerate(tokens):
        if token.startswith("--"):
            return tokens[:index]
    return tokens


# --------------------------------------------------------------------------- the Compose Specification
def docker_compose_unavailable() -> str | None:
    docker = shutil.which("docker")
    if docker is None:
        return "no docker executable on PATH"
    try:
        result = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker compose version` failed: {exc}"
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
        return f"the docker compose plugin is not available: {said[0][:200]}"
    return None


def test_docker_compose_config_accepts_the_file():
    reason = docker_compose_unavailable()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr or result.stdout


@pytest.fixture(scope="module")
def compose_schema() -> dict:
    try:
        text = resources.files(SCHEMA_PACKAGE).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        pytest.fail(
            "check-jsonschema is not installed: it ships the Compose Specification schema "
            f"({SCHEMA_PACKAGE}/{SCHEMA_FILE}). Add it to the dev dependency group and run `make install`.",
            pytrace=False,
        )
    schema = json.loads(text)
    assert schema.get("title") == "Compose Specification" and "services" in schema["properties"]
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


def schema_errors(schema: dict, document: dict) -> list[str]:
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(document), key=lambda error: list(error.absolute_path))
    return [f"/{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def test_compose_file_matches_the_compose_specification(compose_schema):
    errors = schema_errors(compose_schema, compose())
    assert not errors, "docker-compose.yml breaks the Compose Specification:\n" + "\n".join(errors)
    # Compose validates after substituting variables; the defaults must keep it valid.
    errors = schema_errors(compose_schema, interpolate(compose()))
    assert not errors, "docker-compose.yml with its defaults substituted:\n" + "\n".join(errors)


@pytest.mark.parametrize(
    "break_it",
    [
        pytest.param(lambda doc: doc["services"]["web"].update(comand="gunicorn"), id="unknown-service-key"),
        pytest.param(
            lambda doc: doc["services"]["web"]["depends_on"]["migrate"].update(condition="service_done"),
            id="unknown-depends-on-condition",
        ),
        pytest.param(lambda doc: doc["services"]["web"].update(ports="8000:8000"), id="ports-not-a-list"),
        pytest.param(lambda doc: doc.update(servces={}), id="unknown-top-level-key"),
    ],
)
def test_the_schema_check_catches_mistakes(compose_schema, break_it):
    """A control: the vendored schema is strict enough to notice a broken file."""
    document = copy.deepcopy(compose())
    break_it(document)
    assert schema_errors(compose_schema, document)


def test_variables_in_the_compose_file_all_have_defaults():
    """`docker compose up` must work without a .env file (SECRET_KEY can still be set)."""
    text = COMPOSE_FILE.read_text(encoding="utf-8").replace("$$", "")
    for match in INTERPOLATION.finditer(text):
        assert match["op"] in (":-", "-"), f"{match[0]} needs a default"
    assert "$" not in INTERPOLATION.sub("", text), "use ${NAME:-default}; a bare $NAME has no default"


# --------------------------------------------------------------------------- services
def test_services_and_images():
    assert "version" not in compose(), "`version` is obsolete in the Compose Specification"
    assert set(STORES + APP_SERVICES) <= set(services())
    assert services()["postgres"]["image"] == "postgres:16"
    assert services()["redis"]["image"].startswith("redis:7")


def test_stores_have_healthchecks_and_postgres_keeps_its_data():
    postgres, redis = services()["postgres"], services()["redis"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    volumes = [volume.split(":") for volume in postgres["volumes"]]
    assert ["postgres-data", "/var/lib/postgresql/data"] in volumes
    assert "postgres-data" in compose()["volumes"], "a named volume must be declared at the top level"


def test_app_services_run_our_image_with_one_shared_environment():
    first = services()[APP_SERVICES[0]]
    for name in APP_SERVICES:
        service = services()[name]
        assert service.get("build") in (".", {"context": "."}), f"{name} must build this repository"
        assert service.get("image") == first.get("image"), f"{name} must share the app image tag"
        assert isinstance(service["environment"], dict)
        assert service["environment"] == first["environment"], f"{name} has its own environment"
    env = first["environment"]
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY"} <= set(env)
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:-"), "SECRET_KEY must be overridable from the shell or .env"


def test_app_environment_sets_every_variable_production_requires():
    required = required_production_env()
    # Guards the AST scan itself: these are known to have no default.
    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "BASE_DOMAIN"} <= required
    env = app_env()
    missing = sorted(name for name in required if not env.get(name))
    assert not missing, f"production settings refuse to start without: {missing}"


def test_database_and_redis_urls_point_at_the_compose_services():
    env, postgres = app_env(), services()["postgres"]["environment"]
    database = urlsplit(env["DATABASE_URL"])
    assert database.scheme in ("postgres", "postgresql")
    assert (database.hostname, database.port) == ("postgres", 5432)
    assert database.username == postgres["POSTGRES_USER"]
    assert database.password == postgres["POSTGRES_PASSWORD"]
    assert database.path.lstrip("/") == postgres["POSTGRES_DB"]
    redis = urlsplit(env["REDIS_URL"])
    assert (redis.scheme, redis.hostname, redis.port) == ("redis", "redis", 6379)


def test_production_settings_load_from_the_compose_environment():
    """Import the settings, the WSGI app and the Celery app as the containers would.

    A fresh interpreter: this one already runs the test settings. Nothing here connects
    to the database or Redis (the compose host names do not resolve on this machine).
    """
    script = """
import json
import django
from django.conf import settings
from django.http.request import validate_host

django.setup()
import config.wsgi
from config.celery import app

hosts = ["127.0.0.1", settings.BASE_DOMAIN, "acme." + settings.BASE_DOMAIN]
print(json.dumps({
    "debug": settings.DEBUG,
    "database_host": settings.DATABASES["default"]["HOST"],
    "hosts_allowed": {host: validate_host(host, settings.ALLOWED_HOSTS) for host in hosts},
    "public_extra_domains": settings.PUBLIC_EXTRA_DOMAINS,
    "session_cookie_secure": settings.SESSION_COOKIE_SECURE,
    "public_scheme": settings.PUBLIC_SCHEME,
    "queue": settings.CELERY_TASK_DEFAULT_QUEUE,
    "routed_queues": sorted(settings.TASK_QUEUES),
    "wsgi_callable": callable(config.wsgi.application),
    "celery_app": app.main,
}))
"""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **app_env()}
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["debug"] is False
    assert loaded["database_host"] == "postgres"
    assert all(loaded["hosts_allowed"].values()), loaded["hosts_allowed"]
    # The image's HEALTHCHECK asks 127.0.0.1 for /healthz: that host must serve the public site.
    assert "127.0.0.1" in loaded["public_extra_domains"]
    assert loaded["public_scheme"] == "http" and loaded["session_cookie_secure"] is False
    assert loaded["wsgi_callable"] and loaded["celery_app"] == "strata"
    consumed = set()
    for name in services():
        if name.startswith("worker"):
            tokens = command_tokens(name)
            consumed |= set(next(t for t in tokens if t.startswith("--queues=")).removeprefix("--queues=").split(","))
    assert loaded["queue"] in consumed, "a worker must consume the default task queue"
    assert set(loaded["routed_queues"]) <= consumed, "every routed queue needs a worker"


def test_commands_use_real_entry_points():
    web = command_tokens("web")
    assert leading_words(web) == ["gunicorn", "config.wsgi:application"]
    assert "0.0.0.0:8000" in web
    assert "8000:8000" in [str(port) for port in services()["web"]["ports"]]
    assert leading_words(command_tokens("worker")) == ["celery", "-A", "config", "worker"]
    beat = command_tokens("beat")
    assert leading_words(beat) == ["celery", "-A", "config", "beat"]
    # The app runs as a non-root user that cannot write under /app.
    schedule = beat[beat.index("--schedule") + 1]
    assert schedule.startswith("/tmp/")
    assert (ROOT / "config" / "wsgi.py").is_file() and (ROOT / "config" / "celery.py").is_file()


def test_migrate_is_a_one_shot_that_migrates_and_creates_the_public_tenant():
    from django.core.management import get_commands

    migrate = services()["migrate"]
    command = " ".join(command_tokens("migrate"))
    assert "python manage.py migrate_schemas --noinput" in command
    # /healthz and the public site route by Host: without the public tenant's domains
    # every request is a 404.
    assert "python manage.py public_site_ensure" in command
    assert get_commands()["public_site_ensure"] == "tenants"
    assert str(migrate.get("restart", "no")) in ("no", "on-failure"), "a one-shot must not restart forever"


def test_depends_on_orders_the_start():
    for name, service in services().items():
        depends_on = service.get("depends_on") or {}
        assert isinstance(depends_on, dict), f"{name}: use the long form to give conditions"
        for target, spec in depends_on.items():
            assert target in services(), f"{name} depends on unknown service {target}"
            condition = spec.get("condition", "service_started")
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert has_healthcheck(target), f"{name} waits for {target} to be healthy; it has no healthcheck"
            if condition == "service_completed_successfully":
                assert str(services()[target].get("restart", "no")) in ("no", "on-failure")
    expected = {
        "postgres": "service_healthy",
        "redis": "service_healthy",
        "migrate": "service_completed_successfully",
    }
    for name in LONG_RUNNING:
        conditions = {target: spec["condition"] for target, spec in services()[name]["depends_on"].items()}
        assert conditions == expected, name
    migrate = {target: spec["condition"] for target, spec in services()["migrate"]["depends_on"].items()}
    assert migrate == {"postgres": "service_healthy", "redis": "service_healthy"}


def test_only_web_inherits_the_images_http_healthcheck():
    """The image's HEALTHCHECK probes gunicorn on :8000; other processes must replace it."""
    assert not healthcheck_disabled(services()["web"])
    assert "healthcheck" not in services()["web"] or not services()["web"]["healthcheck"].get("test")
    for name in ("migrate", *WORKERS, "beat"):
        check = services()[name].get("healthcheck") or {}
        assert check.get("disable") is True or check.get("test"), f"{name} would probe a port nothing listens on"


def test_every_procfile_process_has_a_compose_service():
    processes = procfile()
    assert {"web", "worker", "beat"} <= set(processes)
    for name, command in processes.items():
        assert name in services(), f"Procfile process {name!r} has no compose service"
        assert leading_words(command_tokens(name)) == leading_words(shlex.split(command)), name


# --------------------------------------------------------------------------- Dockerfile
def test_dockerfile_builds_assets_in_a_node_stage():
    stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage: assets, then the Python runtime"
    node = stages[0]
    assert node["base"].startswith("node:20") and node["name"]
    commands = " && ".join(runs(node))
    assert "npm ci" in commands and "npm run build" in commands
    assert commands.index("npm ci") < commands.index("npm run build")


def test_dockerfile_runtime_stage():
    stages = dockerfile_stages()
    node, runtime = stages[0], stages[-1]
    assert runtime["base"] == "python:3.11-slim"
    instructions = runtime["instructions"]
    run_lines = runs(runtime)

    uv_version = re.search(r"^UV_VERSION\s*:?=\s*(\S+)", MAKEFILE.read_text(encoding="utf-8"), re.M)[1]
    assert f"pip install uv=={uv_version}" in " ".join(run_lines), "use the Makefile's uv"
    sync = next(line for line in run_lines if "uv sync" in line)
    assert {"--frozen", "--no-dev", "--no-install-project"} <= set(sync.split())

    env = stage_env(runtime)
    workdir = [args for keyword, args in instructions if keyword == "WORKDIR"][0]
    venv = env.get("UV_PROJECT_ENVIRONMENT", f"{workdir.rstrip('/')}/.venv")
    assert env["PATH"].split(":")[0] == f"{venv}/bin", "the venv must come first on PATH"

    copies = [args for keyword, args in instructions if keyword == "COPY"]
    from_node = [args for args in copies if args.startswith(f"--from={node['name']} ")]
    assert any("static/dist" in args for args in from_node)

    collect = next(line for line in run_lines if "collectstatic" in line)
    assert "--noinput" in collect
    settings_module = env.get("DJANGO_SETTINGS_MODULE")
    assert settings_module == "config.settings.production" or "DJANGO_SETTINGS_MODULE=config.settings.production" in collect
    unset = sorted(name for name in required_production_env() if f"{name}=" not in collect and name not in env)
    assert not unset, f"collectstatic needs placeholder values for {unset}"
    positions = {args: index for index, (_, args) in enumerate(instructions)}
    assert positions[from_node[0]] < positions[collect], "collect static/dist after copying it in"


def test_dockerfile_runs_as_non_root_and_serves_on_8000():
    runtime = dockerfile_stages()[-1]
    keywords = [keyword for keyword, _ in runtime["instructions"]]
    users = [args for keyword, args in runtime["instructions"] if keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    exposed = [args.split() for keyword, args in runtime["instructions"] if keyword == "EXPOSE"]
    assert any(port in ("8000", "8000/tcp") for ports in exposed for port in ports)

    healthcheck = next(args for keyword, args in runtime["instructions"] if keyword == "HEALTHCHECK")
    assert "http://127.0.0.1:8000/healthz" in healthcheck and "urllib" in healthcheck
    probe = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert probe[0] == "python", "python-slim has no curl: probe with Python"

    cmd = exec_form(next(args for keyword, args in runtime["instructions"] if keyword == "CMD"))
    assert cmd == command_tokens("web"), "the image's default CMD and compose's web command should agree"


def test_dockerfile_copies_files_that_exist_and_are_not_ignored():
    patterns = [line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()]
    patterns = [pattern for pattern in patterns if pattern and not pattern.startswith("#")]

    def ignored(path: str) -> bool:
        for pattern in patterns:
            bare = pattern.removeprefix("**/")
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, bare) or path.startswith(bare + "/"):
                return True
        return False

    for keyword, args in dockerfile_instructions():
        if keyword != "COPY" or args.startswith("--from"):
            continue
        words = [word for word in args.split() if not word.startswith("--")]
        for source in words[:-1]:
            if source == ".":
                continue
            assert (ROOT / source).exists(), f"COPY {source}: no such file"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    for needed in ("manage.py", "config/settings/production.py", "templates", "frontend/src/main.css"):
        assert not ignored(needed), f"{needed} must reach the image"


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    entries = {line.strip() for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()}
    for path in (".venv", ".data", "node_modules", "frontend/node_modules", "static/dist",
                 "staticfiles", ".git", "__pycache__", "test-results"):
        assert path in entries or f"**/{path}" in entries, f".dockerignore must exclude {path}"


def test_the_citus_profile_shards_tenant_schemas_over_workers():
    """`docker compose --profile citus`: a coordinator that distributes every new schema, a
    scalable worker, a one-shot that registers them; nothing of it starts without the profile,
    and the app reaches it by DATABASE_URL alone."""
    citus = {name: service for name, service in services().items() if "citus" in (service.get("profiles") or [])}
    assert set(citus) == {"citus", "citus-worker", "citus-setup"}
    assert all(service["image"] == "citusdata/citus:12.1" for service in citus.values())
    coordinator = " ".join(services()["citus"]["command"])
    assert "citus.enable_schema_based_sharding=on" in coordinator
    setup = services()["citus-setup"]
    assert {target: spec["condition"] for target, spec in setup["depends_on"].items()} == {
        "citus": "service_healthy", "citus-worker": "service_healthy"}
    script = " ".join(setup["command"])
    assert "citus_set_coordinator_host('citus', 5432)" in script and "citus_add_node(" in script
    assert "getent ahostsv4 citus-worker" in script  # every replica of the scaled worker
    assert services()["web"]["environment"]["DATABASE_URL"].startswith("${DATABASE_URL:-")
    for name in ("citus", "citus-worker"):
        assert has_healthcheck(name) and "pg_isready" in " ".join(services()[name]["healthcheck"]["test"])
    assert "citus-data" in compose()["volumes"]


def test_the_replica_profile_streams_from_postgres():
    """`docker compose --profile replica`: a hot standby copied from postgres by
    pg_basebackup -R; the primary lets it replicate (its init script) and the app reaches it
    by DATABASE_REPLICA_URL alone (empty by default: no replica)."""
    replica = services()["postgres-replica"]
    assert replica["profiles"] == ["replica"] and replica["image"] == services()["postgres"]["image"]
    script = " ".join(replica["command"])
    assert "pg_basebackup -h postgres" in script and " -R " in script and "hot_standby=on" in script
    assert replica["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert ["replica-data", "/var/lib/postgresql/data"] in [v.split(":") for v in replica["volumes"]]
    assert "replica-data" in compose()["volumes"]
    init = [v.split(":") for v in services()["postgres"]["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert init and (ROOT / init[0][0]).is_file()
    assert "host replication all all" in (ROOT / init[0][0]).read_text()
    assert services()["web"]["environment"]["DATABASE_REPLICA_URL"] == "${DATABASE_REPLICA_URL:-}"
