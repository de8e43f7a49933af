from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from demo.seed import DEMO_USERS, demo_seed
from tenants.selectors import tenant_url


class Command(BaseCommand):
    help = "Create or complete the demo tenant `acme` with one user per role."

    def add_arguments(self, parser):
        parser.add_argument("--customers", type=int, default=500)
        parser.add_argument("--events", type=int, default=15_000)

    def handle(self, *args, **options):
        result = demo_seed(
            password=settings.DEMO_PASSWORD, now=timezone.now(),
            customers=options["customers"], events=options["events"],
        )
        state = "created" if result.created else "ready"
        self.stdout.write(f"demo tenant {result.tenant.slug} {state} at {tenant_url(result.tenant)}")
        if result.customers_added:
            self.stdout.write(f"  generated {result.customers_added} customers, {result.events_added} events")
        for email, role, _department in DEMO_USERS:
            self.stdout.write(f"  {role:<9} {email}")
