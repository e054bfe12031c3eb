"""A real Celery worker with its beat, on Redis and PostgreSQL, emails a due follow-up's reminder to a real SMTP
server (aiosmtpd) exactly once, however many ticks go by."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from crm.models import DeliveryState, Reminder
from tests.factories import ClientFactory, FollowUpFactory, UserFactory
from tests.integration.worker import celery_worker, wait_for
from tests.smtp import RecordingHandler, smtp_server

pytestmark = [pytest.mark.postgresql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

TICK_SECONDS = 1


def test_the_beat_and_a_worker_email_a_due_follow_up_exactly_once():
    rep = UserFactory(username="alice", email="alice@example.com")
    follow_up = FollowUpFactory(
        client=ClientFactory(owner=rep, first_name="Ann", last_name="Martin"),
        assignee=rep,
        due_at=timezone.now() - timedelta(seconds=5),
        title="Integration call",
    )
    handler = RecordingHandler()

    with smtp_server(handler) as port:
        # The product's settings rather than the test settings, whose mail stays in memory.
        environment = {
            "DJANGO_SETTINGS_MODULE": "portfolio.settings",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "EMAIL_USE_TLS": "0",
            "REMINDER_INTERVAL_SECONDS": str(TICK_SECONDS),
        }
        with celery_worker(beat=True, extra_env=environment):
            reminder = wait_for(
                lambda: Reminder.objects.filter(follow_up=follow_up, state=DeliveryState.SENT).first(), timeout=60
            )
            time.sleep(5 * TICK_SECONDS)  # more passes go by: none may send it again

    reminder_id = f"<reminder-{reminder.pk}@"
    sent = [message for message in handler.messages if message["Message-ID"].startswith(reminder_id)]
    assert len(sent) == 1
    assert sent[0]["To"] == "alice@example.com"
    assert "Integration call" in sent[0]["Subject"]
    assert Reminder.objects.get(pk=reminder.pk).attempts == 1
