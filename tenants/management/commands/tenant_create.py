import getpass
import time

from django.core.management.base import BaseCommand, CommandError

from common.errors import DomainError
from tenants.selectors import tenant_url
from tenants.services import tenant_create


class Command(BaseCommand):
    help = "Create a tenant (schema, domain, first admin)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--admin-email", required=True)
        parser.add_argument("--admin-password", help="omit to be prompted; empty for an unusable password")

    @staticmethod
    def stdin_is_tty() -> bool:
        import sys

        return sys.stdin.isatty()

    def handle(self, *args, **options):
        password = options["admin_password"]
        if password is None and self.stdin_is_tty():
            password = getpass.getpass("Admin password (empty: none): ")
        started = time.perf_counter()
        try:
            tenant = tenant_create(
                slug=options["slug"], name=options["name"],
                admin_email=options["admin_email"], admin_password=password or None,
            )
        except DomainError as error:
            raise CommandError("; ".join(f"{p.path}: {p.message} [{p.code}]" for p in error.problems)) from None
        self.stdout.write(
            f"created {tenant.slug} (schema {tenant.schema_name}) in {time.perf_counter() - started:.2f}s "
            f"at {tenant_url(tenant)}"
        )
