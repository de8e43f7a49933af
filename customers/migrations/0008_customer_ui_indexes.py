"""Indexes for the customer list at a million customers (customers/selectors.py).

- customer_created_idx: the default order, ORDER BY created_at DESC, id DESC LIMIT 51
  (also the REST API's cursor pagination), read backwards without a sort;
- customer_*_prefix_idx: the search box, WHERE UPPER(col::text) LIKE UPPER('ada%') as
  Django's istartswith writes it; text_pattern_ops turns a LIKE prefix into a range scan
  whatever the collation. (Substring search would need pg_trgm, which the embedded
  PostgreSQL does not ship.)

No index on last_seen_at: ingestion updates it with every batch, and an index would stop
those updates from being HOT; sorting and filtering on it scan.
"""

import django.contrib.postgres.indexes
import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0007_imports"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(fields=["created_at", "id"], name="customer_created_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(django.contrib.postgres.indexes.OpClass(
                django.db.models.functions.text.Upper("external_id"), name="text_pattern_ops"),
                name="customer_xid_prefix_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(django.contrib.postgres.indexes.OpClass(
                django.db.models.functions.text.Upper("email"), name="text_pattern_ops"),
                name="customer_email_prefix_idx"),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(django.contrib.postgres.indexes.OpClass(
                django.db.models.functions.text.Upper("name"), name="text_pattern_ops"),
                name="customer_name_prefix_idx"),
        ),
    ]
