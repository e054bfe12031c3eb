"""A real Celery worker on Redis and PostgreSQL sends a two-email campaign through a real SMTP server (aiosmtpd):
each recipient gets each email once, at the configured rate, with a working unsubscribe link; the second email skips
whoever replied; a send task run again sends nothing more."""

import threading
import time
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from crm import roles
from crm.models import Client, Direction, Interaction, InteractionKind
from crm.services import interaction_log
from portfolio.celery import app as celery_app
from prospecting import campaigns as services
from prospecting.models import CampaignSend, CampaignStep, SendStatus, StepStatus
from prospecting.tasks import campaign_advance_task, campaign_send_batch_task
from tests.factories import ClientFactory, SegmentFactory, UserFactory
from tests.integration.worker import celery_worker, wait_for
from tests.smtp import RecordingHandler, smtp_server

pytestmark = [pytest.mark.postgresql, pytest.mark.redis, pytest.mark.django_db(transaction=True)]

RATE = 20  # emails per second
CONSENTING = 25


class TimedHandler(RecordingHandler):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.arrivals: list[float] = []
        self._times = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        answer = await super().handle_DATA(server, session, envelope)
        with self._times:
            self.arrivals.append(time.monotonic())
        return answer


@pytest.fixture
def manager(transactional_db):
    """A manager, whatever an earlier transactional test flushed (the role groups come from a data migration)."""
    Group.objects.get_or_create(name=roles.MANAGER)
    return UserFactory(username="martine", role=roles.MANAGER)


def _step_done(step: CampaignStep):
    return CampaignStep.objects.filter(pk=step.pk, status=StepStatus.SENT).first()


def test_a_worker_sends_a_sequence_through_smtp_once_per_recipient_and_step(client, manager):
    clients = [
        ClientFactory(city="Lyon", marketing_consent=True, email=f"c{n:02d}@example.com", first_name=f"Name{n:02d}")
        for n in range(CONSENTING)
    ]
    ClientFactory(city="Lyon", marketing_consent=False, email="no-consent@example.com")
    ClientFactory(city="Lyon", marketing_consent=True, do_not_contact=True, email="dnc@example.com")
    ClientFactory(city="Lyon", marketing_consent=True, email="refused@example.com")
    campaign = services.campaign_save(
        name="Autumn", segment=SegmentFactory(filters={"city": "Lyon"}), rfm_segment="", offer=None, user=manager
    )
    first = services.campaign_step_save(campaign=campaign, subject="Hello {first_name}", body="News", delay_days=0)
    second = services.campaign_step_save(campaign=campaign, subject="Again {first_name}", body="More", delay_days=1)
    replier = clients[0]
    handler = TimedHandler(refuse={"refused@example.com"})

    with smtp_server(handler) as port:
        # The product's settings rather than the test settings, whose mail stays in memory.
        environment = {
            "DJANGO_SETTINGS_MODULE": "portfolio.settings",
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(port),
            "EMAIL_USE_TLS": "0",
            "CAMPAIGN_SEND_RATE": str(RATE),
            "CAMPAIGN_BATCH_SIZE": "4",
            "SITE_URL": "https://crm.example.com",
        }
        with celery_worker(extra_env=environment) as queue:
            default_queue, celery_app.conf.task_default_queue = celery_app.conf.task_default_queue, queue
            try:
                services.campaign_launch(campaign=campaign, user=manager)  # enqueued at once: no transaction here
                wait_for(lambda: _step_done(first), timeout=90)
                first_arrivals = list(handler.arrivals)

                interaction_log(
                    client=replier, user=None, kind=InteractionKind.EMAIL, direction=Direction.INBOUND, subject="Re"
                )
                ids = list(first.sends.values_list("pk", flat=True))
                campaign_send_batch_task.delay(first.pk, ids)  # the first email's send task, run again
                CampaignStep.objects.filter(pk=second.pk).update(due_at=timezone.now() - timedelta(minutes=1))
                campaign_advance_task.delay()  # the periodic pass, as the beat runs it
                wait_for(lambda: _step_done(second), timeout=90)
            finally:
                celery_app.conf.task_default_queue = default_queue

    firsts = [message for message in handler.messages if message["Subject"].startswith("Hello")]
    seconds = [message for message in handler.messages if message["Subject"].startswith("Again")]
    assert sorted(message["To"] for message in firsts) == [client.email for client in clients]
    assert sorted(message["To"] for message in seconds) == [client.email for client in clients[1:]]
    assert {message["Subject"] for message in firsts} >= {"Hello Name00", "Hello Name24"}
    # Throttled: 25 emails at 20 per second take more than a second.
    assert first_arrivals[-1] - first_arrivals[0] >= (CONSENTING - 1) / RATE * 0.8

    refused = CampaignSend.objects.get(client__email="refused@example.com")
    assert refused.status == SendStatus.FAILED and "SMTPRecipientsRefused" in refused.error
    assert Interaction.objects.filter(kind=InteractionKind.EMAIL, direction=Direction.OUTBOUND).count() == (
        len(firsts) + len(seconds)
    )
    services.campaign_outcomes_refresh(campaign=campaign)
    stats = services.campaign_step_stats(campaign)
    assert {key: stats[first.pk][key] for key in ("sent", "failed", "replied")} == {
        "sent": CONSENTING,
        "failed": 1,
        "replied": 1,
    }

    # The link in a received email unsubscribes without login.
    message = seconds[0]
    header_link = str(message["List-Unsubscribe"]).strip().strip("<>")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert header_link in message.get_body(("plain",)).get_content()
    path = urlsplit(header_link).path
    assert path.startswith(reverse("prospecting:campaign-list").replace("campaigns/", "unsubscribe/"))
    assert client.post(path).status_code == 200
    assert Client.objects.get(email=message["To"]).do_not_contact
