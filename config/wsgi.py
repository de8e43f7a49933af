import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
application = get_wsgi_application()

# Load the URL confs and the views they name now: under gunicorn --preload the workers fork
# with them imported, instead of each worker's first request paying seconds for them
# (scikit-learn, behind the Insights pages, takes 2-5 s to import) — and timing out.
from django.conf import settings  # noqa: E402
from django.urls import get_resolver  # noqa: E402

for _urlconf in (settings.ROOT_URLCONF, settings.PUBLIC_SCHEMA_URLCONF):
    get_resolver(_urlconf).url_patterns
