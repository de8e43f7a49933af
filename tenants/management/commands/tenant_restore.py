import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from tenants.backup import BackupError, backup_read
from tenants.backup.restore import tenant_restore
from tenants.selectors import tenant_url


class Command(BaseCommand):
    help = "Restore a tenant backup as a NEW tenant (new slug and schema), migrated to the current code."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="source", required=True, help="the backup tar (tenant_backup)")
        parser.add_argument("--slug", required=True, help="the new tenant's slug (must be free)")
        parser.add_argument("--name", help="the new tenant's name (default: the backed-up name)")
        parser.add_argument("--domain", help="its host (default: <slug>.BASE_DOMAIN)")
        parser.add_argument("--suspended", action="store_true",
                            help="restore it suspended: no pages, tracking or scheduled work (campaign sends) "
                                 "until an operator activates it")

    def handle(self, *args, **options):
        path = Path(options["source"])
        started = time.perf_counter()
        try:
            total = backup_read(path=path).manifest["dump"]["bytes"]
            with tqdm(total=total, desc="load", unit="B", unit_scale=True, disable=None) as bar:
                result = tenant_restore(path=path, slug=options["slug"], name=options["name"],
                                        domain=options["domain"], suspended=options["suspended"],
                                        progress=bar.update)
        except BackupError as error:
            raise CommandError(str(error)) from None
        tenant = result.tenant
        self.stdout.write(
            f"restored {result.source_slug} as {tenant.slug} (schema {tenant.schema_name}, {tenant.status}) "
            f"in {time.perf_counter() - started:.1f}s at {tenant_url(tenant)}; "
            f"{len(result.restored)} memberships recreated"
        )
        if result.skipped:
            self.stdout.write(f"skipped (no such user or role here): {', '.join(result.skipped)}")
