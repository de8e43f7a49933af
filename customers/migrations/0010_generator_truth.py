"""GeneratorTruth: the persona and churn the data generator planted per generated customer
(demo/generator.py), in its own table so segmentation and clustering features never
see it; tests of clustering and churn prediction read it."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("customers", "0008_customer_ui_indexes")]

    operations = [
        migrations.CreateModel(
            name="GeneratorTruth",
            fields=[
                ("customer", models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True,
                                                  related_name="generator_truth", serialize=False,
                                                  to="customers.customer")),
                ("persona", models.CharField(max_length=32)),
                ("churned", models.BooleanField()),
                ("churned_at", models.DateTimeField(blank=True, null=True)),
                ("seed", models.BigIntegerField()),
                ("created_at", models.DateTimeField(auto_now_add=True)),
            ],
            options={"ordering": ["customer_id"]},
        ),
    ]
