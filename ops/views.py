from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ops import health


@never_cache
@require_GET
def healthz(request):
    body, healthy = health.report(now=timezone.now())
    return JsonResponse(body, status=200 if healthy else 503)
