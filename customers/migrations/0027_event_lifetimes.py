from importlib import import_module

import django.db.models.deletion
from django.db import migrations, models

# The triggers keep a lifetime row per (customer, event name) of RollupEvent beside its day
# rows: inserts add one more grouped upsert (after the totals: every writer locks the rollup
# tables in one order); deletes and updates sum the touched pairs' day rows again once they
# are recounted. Existing day rows give the lifetimes here.
_TOTALS = import_module("customers.migrations.0022_event_totals").TOTALS
# 0022's functions without its back-fill of the totals (the statement after them).
FUNCTIONS_0022 = _TOTALS[:_TOTALS.rindex("INSERT INTO customers_eventtotal (customer_id")]

_RECOUNT_END = """    GROUP BY 1, 2, 3;
END $$;

CREATE OR REPLACE FUNCTION customers_rollup_insert()"""
_RECOUNT_LIFETIMES = """    GROUP BY 1, 2, 3;
    DELETE FROM customers_eventlifetime l USING (SELECT DISTINCT * FROM unnest(customers, names)) AS k(customer_id, name)
    WHERE l.customer_id = k.customer_id AND l.name = k.name;
    INSERT INTO customers_eventlifetime (customer_id, name, events, first_at, last_at)
    SELECT d.customer_id, d.name, sum(d.events), min(d.first_at), max(d.last_at)
    FROM (SELECT DISTINCT * FROM unnest(customers, names)) AS k(customer_id, name)
    JOIN customers_eventday d ON d.customer_id = k.customer_id AND d.name = k.name
    GROUP BY 1, 2;
END $$;

CREATE OR REPLACE FUNCTION customers_rollup_insert()"""
_INSERT_END = """            latest = greatest(t.latest, excluded.latest);
    END IF;
    RETURN NULL;"""
_INSERT_LIFETIMES = """            latest = greatest(t.latest, excluded.latest);
    END IF;
    IF EXISTS (SELECT 1 FROM customers_rollupevent) THEN
        INSERT INTO customers_eventlifetime AS l (customer_id, name, events, first_at, last_at)
        SELECT r.customer_id, r.name, count(*), min(r.timestamp), max(r.timestamp)
        FROM rollup_new r JOIN customers_rollupevent re ON re.name = r.name
        GROUP BY 1, 2 ORDER BY 1, 2
        ON CONFLICT (customer_id, name) DO UPDATE SET events = l.events + excluded.events,
            first_at = least(l.first_at, excluded.first_at), last_at = greatest(l.last_at, excluded.last_at);
    END IF;
    RETURN NULL;"""
_TRUNCATE = """OR EXISTS (SELECT 1 FROM customers_eventtotal) THEN
        TRUNCATE customers_eventday, customers_eventdayvalue, customers_eventtotal;"""
_TRUNCATE_LIFETIMES = """OR EXISTS (SELECT 1 FROM customers_eventtotal)
            OR EXISTS (SELECT 1 FROM customers_eventlifetime) THEN
        TRUNCATE customers_eventday, customers_eventdayvalue, customers_eventtotal, customers_eventlifetime;"""


def _with_lifetimes(functions: str) -> str:
    for old, new in ((_RECOUNT_END, _RECOUNT_LIFETIMES), (_INSERT_END, _INSERT_LIFETIMES),
                     (_TRUNCATE, _TRUNCATE_LIFETIMES)):
        assert functions.count(old) == 1, old
        functions = functions.replace(old, new)
    return functions


LIFETIMES = _with_lifetimes(FUNCTIONS_0022) + """
INSERT INTO customers_eventlifetime (customer_id, name, events, first_at, last_at)
SELECT customer_id, name, sum(events), min(first_at), max(last_at) FROM customers_eventday GROUP BY 1, 2;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("customers", "0026_event_partitions"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventLifetime",
            fields=[
                ("pk", models.CompositePrimaryKey("customer", "name", blank=True, editable=False, primary_key=True,
                                                  serialize=False)),
                ("name", models.CharField(max_length=200)),
                ("events", models.IntegerField()),
                ("first_at", models.DateTimeField()),
                ("last_at", models.DateTimeField()),
                ("customer", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                               related_name="+", to="customers.customer")),
            ],
            options={
                "indexes": [models.Index(fields=["name", "customer"], name="eventlifetime_name_idx")],
            },
        ),
        migrations.RunSQL(LIFETIMES, FUNCTIONS_0022),
    ]
