"""The delete trigger also keeps the ids it deleted for a day (segments.DeletedCustomer).

A day: far longer than any evaluation may run (segments.tasks.LIMITS: 1,900 s), so a full
evaluation that read customers before a delete finds the id here when it comes to write.
The trigger prunes older ids itself, by their index.
"""

from django.db import migrations, models

FORGET_DELETED_CUSTOMERS = """
CREATE OR REPLACE FUNCTION segments_forget_deleted_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20261202, hashtext(TG_TABLE_SCHEMA));
    -- By the table's own schema, not the search_path: whoever deletes, in whatever
    -- session, the rows touched are this tenant's.
    EXECUTE format('DELETE FROM %I.segments_membership m USING gone g WHERE m.customer_id = g.id',
                   TG_TABLE_SCHEMA);
    EXECUTE format('INSERT INTO %I.segments_deletedcustomer (customer_id, deleted_at) '
                   'SELECT id, now() FROM gone ON CONFLICT DO NOTHING', TG_TABLE_SCHEMA);
    EXECUTE format('DELETE FROM %I.segments_deletedcustomer WHERE deleted_at < now() - interval ''1 day''',
                   TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
"""

# As migration 0005 made it.
PREVIOUS = """
CREATE OR REPLACE FUNCTION segments_forget_deleted_customers() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(20261202, hashtext(TG_TABLE_SCHEMA));
    EXECUTE format('DELETE FROM %I.segments_membership m USING gone g WHERE m.customer_id = g.id',
                   TG_TABLE_SCHEMA);
    RETURN NULL;
END
$$;
"""


class Migration(migrations.Migration):

    dependencies = [
        ('segments', '0005_customer_deletes_wait_for_evaluations'),
    ]

    operations = [
        migrations.CreateModel(
            name='DeletedCustomer',
            fields=[
                ('customer_id', models.BigIntegerField(primary_key=True, serialize=False)),
                ('deleted_at', models.DateTimeField(db_index=True)),
            ],
            options={
                'ordering': ['deleted_at'],
            },
        ),
        migrations.RunSQL(FORGET_DELETED_CUSTOMERS, PREVIOUS),
    ]
