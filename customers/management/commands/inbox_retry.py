"""List a workspace's tracking batches the merge set aside, and put them back in line.

    python manage.py inbox_retry --tenant acme            # list them, with why
    python manage.py inbox_retry --tenant acme --retry    # retry them now (after a fix)
"""

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django_tenants.utils import schema_context

from customers.ingest import inbox
from tenants.models import Tenant


class Command(BaseCommand):
    help = "List the tracking batches a workspace's merge set aside (customers/ingest/inbox.py); --retry merges them."

    def add_arguments(self, parser):
        parser.add_argument("--tenant", required=True, help="the workspace's slug")
        parser.add_argument("--retry", action="store_true", help="put them back in line and merge now")

    def handle(self, *args, **options):
        tenant = Tenant.objects.filter(slug=options["tenant"]).first()
        if tenant is None:
            raise CommandError(f"tenant: no workspace “{options['tenant']}”")
        with schema_context(tenant.schema_name):
            batches = inbox.set_aside()
            for batch_id, received_at, items, failed_at, error in batches:
                reason = (error.strip().splitlines() or [""])[-1][:200]
                self.stdout.write(f"{batch_id}  received {received_at:%Y-%m-%d %H:%M:%S}  {items} items  "
                                  f"set aside {failed_at:%Y-%m-%d %H:%M:%S}  {reason}")
            if not options["retry"]:
                self.stdout.write(f"{len(batches)} batch(es) set aside" + (" (--retry to merge them)" if batches else ""))
                return
            put_back, merged = inbox.set_aside_retry(clock=timezone.now)
            left = len(inbox.set_aside())
            self.stdout.write(f"{put_back} batch(es) put back, {merged} items merged, {left} set aside again")
