"""The replica suite runs only where a replica is configured: tests/test_read_replica.py
starts a primary and its streaming replica and runs this directory against them."""

from django.conf import settings

collect_ignore_glob = [] if "replica" in settings.DATABASES else ["test_*.py"]
