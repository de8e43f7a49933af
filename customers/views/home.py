"""The tenant's home page: what is in the workspace and whether background work reaches it."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from customers.selectors import workspace_counts
from ops.selectors import heartbeat_latest
from common.pages import ANY_MEMBER, requires


@require_GET
@requires(ANY_MEMBER)
def workspace_home(request):
    context = {"counts": workspace_counts(), "heartbeat": heartbeat_latest()}
    return render(request, "customers/workspace_home.html", context)
