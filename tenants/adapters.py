from allauth.account.adapter import DefaultAccountAdapter
from django.urls import reverse


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request) -> bool:
        # People join by creating a company (tenants.views.signup) or by invitation;
        # allauth's bare user sign-up would create a user with no workspace.
        return False

    def get_login_redirect_url(self, request) -> str:
        tenant = getattr(request, "tenant", None)
        if tenant is not None and not tenant.is_public:
            return "/"
        return reverse("tenant_picker")
