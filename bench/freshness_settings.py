"""Settings of the gunicorn server and Celery worker that bench/freshness.py starts: the
local settings with a queue and Redis key prefix of that run alone, so neither another
worker (a developer's, a test run's) takes its tasks nor its worker takes theirs."""

import os

from config.settings.local import *  # noqa: F401,F403

_RUN = os.environ["BENCH_FRESHNESS_RUN"]
CELERY_TASK_DEFAULT_QUEUE = f"strata-bench-{_RUN}"
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": f"strata-bench-{_RUN}:"}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"global_keyprefix": f"strata-bench-{_RUN}:"}
CELERY_BEAT_SCHEDULE = {}  # no beat runs; nothing periodic belongs to this measurement
