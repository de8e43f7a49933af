"""Settings, URL confs, the Celery app and the embedded development servers. Only the URL
confs import the apps (import-linter: `config-edges`); settings name them as strings."""

# TRICKY: no `from .celery import app` here (the usual Django/Celery idiom). Importing
# the Celery app sets a default DJANGO_SETTINGS_MODULE, and `python -m config.devservers`
# would then hand `config.settings.local` to `make test`'s pytest. `celery -A config`
# finds config.celery by itself, and task modules import the app explicitly.
