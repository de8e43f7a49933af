"""Room on every customers_customer page for HOT updates of last_seen_at.

Every tracked batch advances last_seen_at for each customer it names (~475 rows for 500
events). With pages packed full (fillfactor 100) none of those updates could stay on its
page: each wrote a new tuple elsewhere plus an entry in every customer index (nine of
them, GIN on traits included), and btree bottom-up deletion then had to clean up after
them. Measured on a 500-event batch: that UPDATE took 24 ms of the statement's 35 ms,
against 10 ms for inserting the 500 events; pg_stat_user_tables counted 11 HOT updates
in 28,000. last_seen_at has no index on purpose (see 0008), so with free space on the
page the update is HOT: no index is touched.

Pages written from now on keep 30% free; existing pages get it as they are rewritten
(VACUUM FULL or pg_repack to apply it at once). Costs ~40% more heap pages for a scan of
customers.
"""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0010_generator_truth"),
    ]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_customer SET (fillfactor = 70)",
            reverse_sql="ALTER TABLE customers_customer RESET (fillfactor)",
        ),
    ]
