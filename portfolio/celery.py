"""The Celery app. Every periodic schedule lives in ``portfolio.schedules``."""

import os

from celery import Celery

from portfolio.schedules import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portfolio.settings")

app = Celery("portfolio")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
