from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save

from tenants.routing import routing_changed


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and users"

    def ready(self) -> None:
        """A signal, as the one exception to the house rule: it is cache invalidation, not
        behaviour, and it must see every write of a Tenant or Domain (services, the admin,
        provisioning, tests) — see tenants/routing.py."""
        # TRICKY: the models exist only once the app registry is ready.
        from tenants.models import Domain, Tenant

        for model in (Tenant, Domain):
            post_save.connect(routing_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-save")
            post_delete.connect(routing_changed, sender=model, dispatch_uid=f"routing-{model.__name__}-delete")
