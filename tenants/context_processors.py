from django.conf import settings


def tenant(request):
    current = getattr(request, "tenant", None)
    return {
        "current_tenant": None if current is None or current.is_public else current,
        "current_membership": getattr(request, "membership", None),
        "base_domain": settings.BASE_DOMAIN,
        "public_port": settings.PUBLIC_PORT,
    }
