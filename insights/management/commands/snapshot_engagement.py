from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone as django_timezone
from django_tenants.utils import schema_context
from tqdm import tqdm

from insights.reports.snapshots import engagement_snapshot_take, snapshot_moments
from tenants.models import Tenant

MAX_DAYS = 730


class Command(BaseCommand):
    help = ("Take engagement snapshots for each of the last N UTC days (as of each day's end; today's as of now), "
            "so KPI trends show engagement before the nightly snapshots began. A day already taken is replaced.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--days", type=int, default=30, help=f"how many days back, today included (1..{MAX_DAYS})")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).exclude(schema_name="public").first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {options['tenant']!r}")
        if not 1 <= options["days"] <= MAX_DAYS:
            raise CommandError(f"--days is from 1 to {MAX_DAYS}")
        moments = snapshot_moments(now=django_timezone.now(), days=options["days"])
        with schema_context(tenant.schema_name):
            for moment in tqdm(moments, desc="days", unit="day", disable=None):
                engagement_snapshot_take(now=moment)
        self.stderr.write(f"{len(moments)} engagement snapshot(s) taken for {tenant.slug}")

