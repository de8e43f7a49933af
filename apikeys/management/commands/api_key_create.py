from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from apikeys.services import api_key_create
from common.errors import DomainError
from tenants.models import Tenant, User
from tenants.selectors import membership_for


class Command(BaseCommand):
    help = "Create an API key for scripts and print it (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="tenant slug")
        parser.add_argument("--email", required=True, help="the member the key acts for")
        parser.add_argument("--scopes", default="read", help="comma-separated: read,write,ingest,launch,settings")
        parser.add_argument("--name", default="script")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).exclude(schema_name="public").first()
        if tenant is None:
            raise CommandError(f"no tenant with slug {options['tenant']!r}")
        user = User.objects.filter(email__iexact=options["email"]).first()
        membership = membership_for(user=user, tenant=tenant) if user else None
        if membership is None:
            raise CommandError(f"{options['email']} is not a member of {tenant.slug}")
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        with schema_context(tenant.schema_name):
            try:
                key, plain = api_key_create(actor=membership, name=options["name"], scopes=scopes, now=timezone.now())
            except DomainError as error:
                raise CommandError("; ".join(f"{p.path}: {p.message} [{p.code}]" for p in error.problems)) from None
        self.stdout.write(plain)
        self.stderr.write(f"key {key.prefix} for {membership.user.email} on {tenant.slug}, scopes {','.join(key.scopes)}")
