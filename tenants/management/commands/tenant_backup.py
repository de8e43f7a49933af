import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from tenants.backup import BackupError, tenant_backup
from tenants.models import Tenant


class Command(BaseCommand):
    help = "Back up one tenant: a pg_dump of its schema and its public-schema facts, in one tar."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the tenant's slug")
        parser.add_argument("--out", required=True, help="the tar file to write")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"no tenant with slug “{options['tenant']}”")
        out = Path(options["out"])
        started = time.perf_counter()
        with tqdm(desc="dump", unit="B", unit_scale=True, disable=None) as bar:
            try:
                size = tenant_backup(tenant=tenant, out=out, now=timezone.now(), progress=bar.update)
            except BackupError as error:
                raise CommandError(str(error)) from None
        self.stdout.write(f"backed up {tenant.slug} (schema {tenant.schema_name}) to {out}: "
                          f"{size / 2**20:.1f} MB in {time.perf_counter() - started:.1f}s")
