"""Every periodic job of the product, in one place."""

from celery.schedules import crontab

BEAT_SCHEDULE = {
    "refresh-client-activity-nightly": {
        "task": "crm.tasks.refresh_client_activity_task",
        "schedule": crontab(hour=1, minute=30),
    },
}
