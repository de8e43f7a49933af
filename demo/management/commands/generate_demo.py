import resource

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context
from tqdm import tqdm

from demo.generator import generate
from tenants.models import Tenant


class Command(BaseCommand):
    help = ("Append generated SaaS customers (planted personas and churners), events, survey answers and "
            "consent to a tenant (COPY; scales to 1M / 20M). True labels go to GeneratorTruth.")

    def add_arguments(self, parser):
        parser.add_argument("--tenant", default="acme", help="tenant slug")
        parser.add_argument("--customers", type=int, default=1000)
        parser.add_argument("--events", type=int, default=20000, help="exact total, one user_signed_up each included")
        parser.add_argument("--seed", type=int, default=42)

    def handle(self, *args, **options):
        if options["customers"] < 1 or options["events"] < 0:
            raise CommandError("--customers must be ≥ 1 and --events ≥ 0")
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None or tenant.is_public:
            raise CommandError(f"no tenant with slug {options['tenant']!r}")
        bars = {
            "customers": tqdm(total=options["customers"], desc="customers", unit="row", disable=None),
            "events": tqdm(total=options["events"], desc="events", unit="row", disable=None),
        }
        with schema_context(tenant.schema_name):
            result = generate(
                customers=options["customers"], events=options["events"], now=timezone.now(),
                seed=options["seed"], progress=lambda stage, n: bars[stage].update(n),
            )
        for bar in bars.values():
            bar.close()
        seconds = max(result.seconds, 1e-9)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        self.stdout.write(
            f"{tenant.slug}: +{result.customers:,} customers, +{result.events:,} events, "
            f"+{result.survey_responses:,} survey answers, +{result.consents:,} consents "
            f"({result.consent_changes:,} changes) in {result.seconds:.1f}s — "
            f"{result.customers / seconds:,.0f} customers/s, {result.events / seconds:,.0f} events/s; "
            f"peak memory {peak_mib:,.0f} MiB"
        )
        personas = ", ".join(f"{key} {count:,}" for key, count in result.personas.items())
        self.stdout.write(f"  personas: {personas}; churners: {result.churned:,} (labels in GeneratorTruth)")
