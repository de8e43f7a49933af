"""Celery's queues by kind of work and the beat schedule: what runs where, and when."""

import environ
from celery.schedules import crontab

env = environ.Env()

# Queues by kind of work, each with workers of its own (Procfile, docker-compose.yml), so a
# model training or a big import cannot hold up freshness or sends.
TASK_QUEUES = {
    "freshness": ["customers.merge_inbox", "segments.evaluate_touched", "segments.lookup_sync"],
    "evaluations": ["segments.evaluate_segment", "segments.evaluate_due"],
    "sends": ["campaigns.tick", "campaigns.send_entries", "campaigns.send_occasion", "campaigns.deliver_webhooks",
              "campaigns.review_reminders"],
    "batch": ["customers.run_import", "customers.refresh_metrics", "customers.refresh_metrics_nightly",
              "insights.run_clustering", "insights.train_churn_model", "insights.score_lookalikes", "insights.nightly",
              "segments.warehouse_export", "customers.rollup_backfill", "customers.event_upkeep"],
}

HEARTBEAT_SECONDS = env.float("HEARTBEAT_SECONDS", default=60.0)
CELERY_BEAT_SCHEDULE = {
    "heartbeat-every-minute": {
        "task": "ops.dispatch_heartbeats",
        "schedule": HEARTBEAT_SECONDS,
    },
    # Tracking items whose merge was never queued or was lost (customers/ingest/inbox.py).
    "inbox-sweep-every-minute": {
        "task": "customers.dispatch_inbox_sweep",
        "schedule": 60.0,
    },
    # Segments whose refresh interval has come (default 15 minutes each).
    "segments-due-every-minute": {
        "task": "segments.dispatch_due",
        "schedule": 60.0,
    },
    # Nightly, before the metrics: events past each tenant's retention removed, next
    # months' partitions made (customers/partitions.py).
    "event-upkeep-nightly": {
        "task": "customers.dispatch_event_upkeep",
        "schedule": crontab(hour=1, minute=30),
    },
    # Nightly, after the day's data is in: every tenant's RFM, LTV, churn and engagement.
    "metrics-nightly": {
        "task": "customers.dispatch_metrics_refresh",
        "schedule": crontab(hour=2, minute=30),
    },
    # Nightly, after the metrics: every customer into the active clusters, the churn model
    # retrained and every customer rescored (insights.tasks).
    "insights-nightly": {
        "task": "insights.dispatch_nightly",
        "schedule": crontab(hour=3, minute=30),
    },
    # The quarterly segment review (campaigns.review): owners are emailed their queue on the
    # first day of each quarter.
    "segment-review-quarterly": {
        "task": "campaigns.dispatch_review_reminders",
        "schedule": crontab(month_of_year="1,4,7,10", day_of_month=1, hour=8, minute=0),
    },
    # Campaign occasions that are due, on-entry sends from the outbox, webhook deliveries.
    "campaigns-tick-every-minute": {
        "task": "campaigns.dispatch",
        "schedule": 60.0,
    },
    # Scheduled warehouse exports that are due (segments.warehouse).
    "warehouse-exports-every-5-minutes": {
        "task": "segments.dispatch_exports",
        "schedule": 300.0,
    },
}
