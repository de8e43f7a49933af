from django.db import migrations

# TRUNCATE customers_customer CASCADE truncates events and the rollups in one statement, and
# the events' AFTER TRUNCATE trigger then found the rollups "in use by active queries". The
# rollups are truncated only when something is left in them: inside such a cascade they are
# already empty.
TRUNCATE_WHEN_FILLED = r"""
CREATE OR REPLACE FUNCTION customers_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM customers_eventday) OR EXISTS (SELECT 1 FROM customers_eventdayvalue) THEN
        TRUNCATE customers_eventday, customers_eventdayvalue;
    END IF;
    RETURN NULL;
END $$;
"""

TRUNCATE_ALWAYS = r"""
CREATE OR REPLACE FUNCTION customers_rollup_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE customers_eventday, customers_eventdayvalue;
    RETURN NULL;
END $$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0020_rollup_events"),
    ]

    operations = [
        migrations.RunSQL(TRUNCATE_WHEN_FILLED, TRUNCATE_ALWAYS),
    ]
