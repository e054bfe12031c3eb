"""Every periodic job of the product, in one place."""

import os

from celery.schedules import crontab

# Seconds between two reminder passes; tests shorten it to see the beat fire within seconds.
REMINDER_INTERVAL_SECONDS = float(os.environ.get("REMINDER_INTERVAL_SECONDS", "60"))

BEAT_SCHEDULE = {
    "refresh-client-activity-nightly": {
        "task": "crm.tasks.refresh_client_activity_task",
        "schedule": crontab(hour=1, minute=30),
    },
    # After the activity refresh, so that the night's conversions and last purchases are in.
    "score-portfolio-nightly": {
        "task": "scoring.tasks.start_nightly_scoring_task",
        "schedule": crontab(hour=2, minute=0),
    },
    # Reminders and digests scan the database each time, so a tick that expires unread (a busy worker, a broker
    # outage) is simply caught up by the next one. The digest pass sends from settings.REMINDER_DIGEST_HOUR (08:00).
    "send-due-reminders": {
        "task": "crm.tasks.send_due_reminders_task",
        "schedule": REMINDER_INTERVAL_SECONDS,
        "options": {"expires": REMINDER_INTERVAL_SECONDS},
    },
    "send-daily-digests": {
        "task": "crm.tasks.send_digests_task",
        "schedule": REMINDER_INTERVAL_SECONDS,
        "options": {"expires": REMINDER_INTERVAL_SECONDS},
    },
    # After the nightly scoring run (the task waits while one is under way). Rules compare each client with their
    # last evaluation, so running them again, or on an unchanged scoring run, creates nothing new.
    "apply-automation-rules-nightly": {
        "task": "prospecting.tasks.apply_automation_rules_task",
        "schedule": crontab(hour=2, minute=45),
    },
}

BEAT_SCHEDULE["advance-campaigns"] = {
    # Queue the campaign steps that are due, recover sends left by a dead worker, record replies and conversions.
    "task": "prospecting.tasks.campaign_advance_task",
    "schedule": 5 * 60,
    "options": {"expires": 5 * 60},
}

# Recovery passes: fail the jobs whose worker died, send again those whose message the broker lost (see
# portfolio.queueing.requeue_decision, which counts the attempts with JOBS_RECOVERY_INTERVAL_SECONDS).
JOBS_RECOVERY_INTERVAL_SECONDS = float(os.environ.get("JOBS_RECOVERY_INTERVAL_SECONDS", "300"))
RECOVERY_TASKS = {
    "recover-imports": "prospecting.tasks.recover_imports_task",
    "recover-bulk-actions": "crm.tasks.recover_bulk_actions_task",
    "recover-scoring-jobs": "scoring.tasks.recover_scoring_jobs_task",
}
BEAT_SCHEDULE.update(
    {
        name: {
            "task": task,
            "schedule": JOBS_RECOVERY_INTERVAL_SECONDS,
            "options": {"expires": JOBS_RECOVERY_INTERVAL_SECONDS},
        }
        for name, task in RECOVERY_TASKS.items()
    }
)
