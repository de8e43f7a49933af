"""SQL helpers the rule compiler relies on, created in each tenant schema."""

from django.db import migrations

# Custom datetime traits and event properties are ISO strings inside JSON. PostgreSQL's own
# cast accepts far more ("now", "tomorrow", "Jan 5") and raises on bad input; this accepts
# exactly what segments.rules.vocabulary.parse_datetime accepts (an ISO date, or an ISO datetime
# with an optional offset, UTC when absent) and answers NULL for anything else, so a stored
# value of the wrong shape is "missing", as the rule contract says.
TIMESTAMPTZ = r"""
CREATE OR REPLACE FUNCTION strata_timestamptz(value text) RETURNS timestamptz
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    t text := btrim(value, E' \t\n\r\f\v');
BEGIN
    IF t ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' THEN
        RETURN t::date::timestamp AT TIME ZONE 'UTC';
    END IF;
    IF t !~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ]([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$' THEN
        RETURN NULL;
    END IF;
    IF t ~ '(Z|[+-][0-9]{2}:?[0-9]{2})$' THEN
        RETURN t::timestamptz;
    END IF;
    RETURN t::timestamp AT TIME ZONE 'UTC';
EXCEPTION WHEN others THEN
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [migrations.RunSQL(TIMESTAMPTZ, "DROP FUNCTION IF EXISTS strata_timestamptz(text);")]
