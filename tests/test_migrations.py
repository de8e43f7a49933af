"""The models and their migrations agree: a model change without its migration fails here,
not on the first deploy."""

from io import StringIO

from django.core.management import call_command


def test_no_model_change_lacks_its_migration(db):
    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out, stderr=out)  # SystemExit(1) otherwise
