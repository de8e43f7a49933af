"""Stays without a database key to their customer, and what keeps them honest instead.

The key cost a deferred check and a FOR KEY SHARE lock per membership row written (6.5 s of
a 17.5 s first evaluation of 180k members on the bench data set). What it guaranteed is
kept by a trigger: a statement deleting customers waits for the membership writes running
in the tenant — each holds an advisory lock shared from before it writes until it commits,
and writes stays only for customers still there when it took the lock
(segments.engine.hold_customer_deletes) — then removes the deleted customers' stays. A
writer that found a customer before the delete committed has committed its rows by then,
and the trigger's DELETE (a new snapshot) sees them; one that starts writing after waits
for the delete to commit, and leaves the customer out.

The trigger also keeps the ids it deleted for a day (segments.DeletedCustomer): far longer
than any evaluation may run (segments.tasks.LIMITS: 1,900 s), so a full evaluation that
read customers before a delete finds the id there when it comes to write. The trigger
prunes older ids itself, by their index.
"""

import django.db.models.deletion
from django.db import migrations, models

# The advisory lock's first key: segments.engine.CUSTOMER_DELETES_LOCK (the second is the
# schema's hashtext, so tenants never wait for each other).
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
CREATE TRIGGER customers_deleted_forget_stays AFTER DELETE ON customers_customer
REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION segments_forget_deleted_customers();
"""

DROP = """
DROP TRIGGER IF EXISTS customers_deleted_forget_stays ON customers_customer;
DROP FUNCTION IF EXISTS segments_forget_deleted_customers();
"""


class Migration(migrations.Migration):

    dependencies = [
        ('customers', '0012_event_customer_name_index'),
        ('segments', '0004_engine_writes_fewer_checks'),
    ]

    operations = [
        migrations.AlterField(
            model_name='membership',
            name='customer',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='memberships', to='customers.customer'),
        ),
        migrations.AlterField(
            model_name='membershipchange',
            name='evaluation',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, to='segments.segmentevaluation'),
        ),
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
        migrations.RunSQL(FORGET_DELETED_CUSTOMERS, DROP),
    ]
