"""`make run`'s last step: migrate, seed the demo tenant, print how to log in, then run
web + worker + beat under honcho until Ctrl-C."""

import os
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from demo.seed import DEMO_USERS


class Command(BaseCommand):
    help = "Migrate, seed the demo tenant and start web + worker + beat (development)."

    def add_arguments(self, parser):
        parser.add_argument("--no-serve", action="store_true", help="prepare only; do not start processes")

    def handle(self, *args, **options):
        started = time.perf_counter()
        call_command("migrate_schemas", interactive=False, verbosity=0)
        call_command("seed_demo", stdout=self.stdout)
        port = os.environ.get("STRATA_PORT", "8000")
        self.stdout.write(self.style.SUCCESS(
            "\n  Strata is starting (prepared in %.1fs)\n"
            "  Public site:   http://localhost:%s\n"
            "  Demo tenant:   http://acme.localhost:%s\n"
            "  Health:        http://localhost:%s/healthz   (Prometheus: /metrics)\n"
            "  Logins (password %r):\n%s\n"
            "  Ctrl-C stops web, worker and beat.\n" % (
                time.perf_counter() - started, port, port, port, settings.DEMO_PASSWORD,
                "\n".join(f"    {email:<22} {role}" for email, role, _department in DEMO_USERS),
            )
        ))
        if options["no_serve"]:
            return
        self.stdout.flush()
        _empty_metrics(Path(settings.PROMETHEUS_MULTIPROC_DIR))
        procfile = settings.BASE_DIR / "Procfile.dev"
        env = os.environ | {"STRATA_PORT": port, "PYTHONUNBUFFERED": "1"}
        bin_dir = os.path.dirname(sys.executable)
        env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
        sys.exit(subprocess.call([os.path.join(bin_dir, "honcho"), "start", "-f", str(procfile)], env=env))


def _empty_metrics(directory: Path) -> None:
    """Prometheus' multiprocess files hold the counts of processes that have stopped; a new
    run starts its counters from zero (prometheus_client wants the directory emptied)."""
    for stale in directory.glob("*.db"):
        stale.unlink(missing_ok=True)
