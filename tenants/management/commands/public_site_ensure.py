from django.core.management.base import BaseCommand

from tenants.services import public_tenant_ensure


class Command(BaseCommand):
    help = "Create the public tenant and its domains (BASE_DOMAIN, PUBLIC_EXTRA_DOMAINS); idempotent."

    def handle(self, *args, **options):
        public = public_tenant_ensure()
        hosts = ", ".join(public.domains.values_list("domain", flat=True))
        self.stdout.write(f"public site served on: {hosts}")
