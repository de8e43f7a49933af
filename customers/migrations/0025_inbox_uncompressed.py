from django.db import migrations


class Migration(migrations.Migration):
    """Inbox rows live for a fraction of a second: compressing a request's items (pglz, on
    every value past ~2 KB) costs CPU on the write and the merge's read and saves nothing."""

    dependencies = [("customers", "0024_inbox")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE customers_inboxbatch ALTER COLUMN messages SET STORAGE EXTERNAL",
            "ALTER TABLE customers_inboxbatch ALTER COLUMN messages SET STORAGE EXTENDED",
        ),
    ]
