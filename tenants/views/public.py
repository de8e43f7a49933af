"""Public-site pages (landing, company sign-up, tenant picker) and the tenant-side handoff."""

from allauth.account.models import EmailAddress
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from common.errors import DomainError
from tenants.forms import SignupForm
from tenants.handoff import handoff_token_create, handoff_token_redeem
from tenants.models import Tenant
from tenants.selectors import membership_for, memberships_of, tenant_url
from tenants.services import tenant_create

BACKEND = "django.contrib.auth.backends.ModelBackend"


@require_GET
def landing(request):
    return render(request, "tenants/landing.html")


@require_http_methods(["GET", "POST"])
def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            tenant = tenant_create(**_signup_args(form.cleaned_data))
        except DomainError as error:
            for problem in error.problems:
                form.add_error(problem.path if problem.path in form.fields else None, problem.message)
        else:
            user = tenant.memberships.get().user
            login(request, user, backend=BACKEND)
            # allauth sends the verification link (console backend in development).
            EmailAddress.objects.add_email(request, user, user.email, confirm=True, signup=True)
            return redirect("tenant_enter", slug=tenant.slug)
    return render(request, "tenants/signup.html", {"form": form}, status=400 if form.errors else 200)


def _signup_args(data: dict) -> dict:
    return {
        "slug": data["slug"],
        "name": data["name"],
        "admin_email": data["admin_email"],
        "admin_password": data["password"],
    }


@login_required
@require_GET
def tenant_picker(request):
    memberships = list(memberships_of(user=request.user))
    return render(request, "tenants/picker.html", {"memberships": memberships})


@login_required
@require_GET
def tenant_enter(request, slug: str):
    """Jump from the public site into a workspace the user belongs to."""
    tenant = get_object_or_404(Tenant, slug=slug, status=Tenant.Status.ACTIVE)
    if membership_for(user=request.user, tenant=tenant) is None:
        raise Http404("Not a member of this workspace")
    token = handoff_token_create(user=request.user, tenant=tenant)
    return redirect(tenant_url(tenant, f"/auth/handoff/?token={token}"))


@require_GET
def handoff(request):
    """Tenant side of the jump: log the user in from a fresh, single-use token."""
    user = handoff_token_redeem(token=request.GET.get("token", ""), tenant=request.tenant)
    if user is None or membership_for(user=user, tenant=request.tenant) is None:
        return redirect("account_login")
    login(request, user, backend=BACKEND)
    return redirect("/")
