"""strata_timestamptz catches bad calendar dates and offsets with an EXCEPTION block,
which needs a subtransaction, and none can start while a statement runs in parallel mode
— not even in the leader ("cannot start subtransactions during a parallel operation").
Declared PARALLEL SAFE, it failed every rule on a custom datetime trait or event property
once the planner chose a parallel plan for a large enough table. PARALLEL UNSAFE keeps
such statements serial."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("segments", "0005_customer_deletes_wait_for_evaluations")]
    operations = [migrations.RunSQL(
        "ALTER FUNCTION strata_timestamptz(text) PARALLEL UNSAFE;",
        "ALTER FUNCTION strata_timestamptz(text) PARALLEL SAFE;",
    )]
