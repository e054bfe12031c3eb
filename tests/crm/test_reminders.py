"""Follow-up reminders and digests: sent once, retried with backoff, failed visibly, never lost to a crash.

Plain tests use Django's in-memory mail; the delivery tests go through a real SMTP server (aiosmtpd); the
concurrency tests run on PostgreSQL, threads each with their own connection.
"""

import threading
from datetime import datetime, timedelta

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core import mail
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone

from crm import reminders, services
from crm.models import DeliveryState, Digest, FollowUp, Reminder
from tests.factories import ClientFactory, FollowUpFactory, UserFactory
from tests.smtp import RecordingHandler, smtp_server

BACKOFF = 60


@pytest.fixture(autouse=True)
def reminder_settings(settings):
    settings.SITE_URL = "https://crm.example.com"
    settings.REMINDER_MAX_ATTEMPTS = 3
    settings.REMINDER_BACKOFF_SECONDS = BACKOFF
    settings.REMINDER_BACKOFF_MAX_SECONDS = 3600
    settings.REMINDER_CLAIM_TIMEOUT_SECONDS = 600
    settings.REMINDER_LOOKBACK_HOURS = 24
    settings.REMINDER_DIGEST_HOUR = 8
    settings.REMINDER_DIGEST_MINUTE = 0
    settings.REMINDER_DIGEST_WINDOW_HOURS = 4
    return settings


@pytest.fixture
def smtp(settings):
    """Start a real SMTP server and point Django's SMTP backend at it: ``handler = smtp(fail_first=2)``."""
    servers = []

    def start(**options) -> RecordingHandler:
        handler = RecordingHandler(**options)
        server = smtp_server(handler)
        port = server.__enter__()
        servers.append(server)
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST = "127.0.0.1"
        settings.EMAIL_PORT = port
        settings.EMAIL_USE_TLS = False
        settings.EMAIL_TIMEOUT = 10
        return handler

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture
def due_follow_up(rep, rep_client):
    return FollowUpFactory(
        client=rep_client, assignee=rep, due_at=timezone.now() - timedelta(minutes=1), title="Call about the renewal"
    )


def _reminder(follow_up) -> Reminder:
    return Reminder.objects.get(follow_up=follow_up)


# Delivering once


def test_a_due_follow_up_sends_its_assignee_one_reminder(due_follow_up, rep):
    result = reminders.reminders_send_due()

    assert result.sent == 1
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [rep.email]
    assert "Call about the renewal" in message.subject
    assert "Ann Martin" in message.subject
    card_url = f"https://crm.example.com{reverse('crm:client-detail', args=[due_follow_up.client.pk])}"
    assert card_url in message.body
    html, mimetype = message.alternatives[0]
    assert mimetype == "text/html" and f'href="{card_url}"' in html
    reminder = _reminder(due_follow_up)
    assert reminder.state == DeliveryState.SENT and reminder.attempts == 1 and reminder.sent_at is not None


def test_the_plain_text_is_not_html_escaped(rep):
    client = ClientFactory(owner=rep, first_name="Zoé", last_name="O'Brien & fils")
    FollowUpFactory(client=client, assignee=rep, due_at=timezone.now(), title="Relance <devis>")
    reminders.reminders_send_due()
    assert "O'Brien & fils" in mail.outbox[0].body
    assert "Relance <devis>" in mail.outbox[0].body


def test_two_passes_in_a_row_send_one_email(due_follow_up):
    reminders.reminders_send_due()
    second = reminders.reminders_send_due()
    assert second.sent == 0 and second.created == 0
    assert len(mail.outbox) == 1
    assert Reminder.objects.count() == 1


def test_the_same_reminder_handled_twice_in_a_row_sends_one_email(due_follow_up):
    reminders.reminders_create_due()
    reminder = _reminder(due_follow_up)

    assert reminders.reminder_send(reminder_id=reminder.pk) == reminders.SENT
    assert reminders.reminder_send(reminder_id=reminder.pk) == ""
    assert len(mail.outbox) == 1


def test_a_follow_up_not_yet_due_sends_nothing(rep, rep_client):
    FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() + timedelta(minutes=5))
    reminders.reminders_send_due()
    assert mail.outbox == []
    assert not Reminder.objects.exists()


def test_a_follow_up_reminds_when_its_time_comes(rep, rep_client):
    follow_up = FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() + timedelta(minutes=5))
    reminders.reminders_send_due(now=timezone.now() + timedelta(minutes=6))
    assert len(mail.outbox) == 1
    assert _reminder(follow_up).state == DeliveryState.SENT


def test_a_follow_up_closed_before_its_reminder_went_out_sends_nothing(due_follow_up):
    reminders.reminders_create_due()
    services.follow_up_close(follow_up=due_follow_up)

    result = reminders.reminders_send_due()

    assert result.cancelled == 1 and mail.outbox == []
    assert _reminder(due_follow_up).state == DeliveryState.CANCELLED


def test_a_follow_up_moved_later_is_reminded_at_its_new_time(due_follow_up):
    reminders.reminders_create_due()
    later = timezone.now() + timedelta(hours=2)
    FollowUp.objects.filter(pk=due_follow_up.pk).update(due_at=later)

    reminders.reminders_send_due()
    assert mail.outbox == []
    reminders.reminders_send_due(now=later + timedelta(minutes=1))

    assert len(mail.outbox) == 1
    states = dict(Reminder.objects.values_list("due_at", "state"))
    assert states[later] == DeliveryState.SENT
    assert list(states.values()).count(DeliveryState.CANCELLED) == 1


def test_follow_ups_overdue_for_days_are_left_to_the_digest(rep, rep_client):
    FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() - timedelta(days=3))
    reminders.reminders_send_due()
    assert mail.outbox == []


def test_an_inactive_assignee_gets_no_reminder(due_follow_up, rep):
    rep.is_active = False
    rep.save()
    assert reminders.reminders_send_due().cancelled == 1
    assert mail.outbox == []


def test_an_assignee_without_email_address_is_failed_at_once(due_follow_up, rep):
    rep.email = ""
    rep.save()
    reminders.reminders_send_due()
    reminder = _reminder(due_follow_up)
    assert reminder.state == DeliveryState.FAILED and reminder.attempts == 1
    assert "No email address" in reminder.last_error


def test_a_follow_up_created_in_a_rolled_back_transaction_sends_nothing(rep, rep_client):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.follow_up_plan(
            client=rep_client, assignee=rep, due_at=timezone.now(), title="Never committed", created_by=rep
        )
        raise RuntimeError("rolled back")

    reminders.reminders_send_due()

    assert mail.outbox == []
    assert not Reminder.objects.exists()


def test_send_due_reminders_command_prints_how_many_were_sent_and_failed(due_follow_up, rep, other_rep):
    other_rep.email = ""
    other_rep.save()
    FollowUpFactory(assignee=other_rep, due_at=timezone.now())

    call_command("send_due_reminders", stdout=(out := _Output()))

    assert "1 sent, 1 failed" in out.text
    assert len(mail.outbox) == 1


class _Output:
    def __init__(self):
        self.text = ""

    def write(self, text):
        self.text += text

    def flush(self):
        pass


# Failures, retries and crashes, through a real SMTP server


def test_an_smtp_failure_then_success_gives_one_email(smtp, due_follow_up):
    handler = smtp(fail_first=2)
    start = timezone.now()

    first = reminders.reminders_send_due(now=start)
    reminder = _reminder(due_follow_up)
    assert first.retried == 1
    assert reminder.state == DeliveryState.PENDING and reminder.attempts == 1
    assert "451" in reminder.last_error
    assert reminder.next_attempt_at == start + timedelta(seconds=BACKOFF)

    assert reminders.reminders_send_due(now=start + timedelta(seconds=BACKOFF - 1)).retried == 0
    assert reminders.reminders_send_due(now=start + timedelta(seconds=BACKOFF)).retried == 1
    assert _reminder(due_follow_up).next_attempt_at == start + timedelta(seconds=BACKOFF + 2 * BACKOFF)
    assert reminders.reminders_send_due(now=start + timedelta(seconds=3 * BACKOFF)).sent == 1

    assert handler.attempts == 3
    assert len(handler.messages) == 1
    assert "Call about the renewal" in handler.messages[0]["Subject"]
    reminder = _reminder(due_follow_up)
    assert reminder.state == DeliveryState.SENT and reminder.attempts == 3


def test_an_address_that_always_fails_stops_at_the_limit_and_is_shown_failed(
    smtp, due_follow_up, client_as, rep, admin_member
):
    handler = smtp(fail_always=True)
    now = timezone.now()
    for hour in range(6):
        reminders.reminders_send_due(now=now + timedelta(hours=hour))

    reminder = _reminder(due_follow_up)
    assert handler.attempts == 3 and handler.messages == []
    assert reminder.state == DeliveryState.FAILED and reminder.attempts == 3
    assert "451" in reminder.last_error

    home = client_as(rep).get(reverse("crm:home"))
    assert "could not be emailed" in home.content.decode()
    assert "Call about the renewal" in home.content.decode()
    admin_page = client_as(admin_member).get(reverse("admin:crm_reminder_changelist") + "?state=failed")
    assert "451" in admin_page.content.decode()


def test_a_failed_reminder_sent_again_from_the_admin_goes_out_once(smtp, due_follow_up, client_as, admin_member):
    handler = smtp(refuse={"alice@example.com"})
    reminders.reminders_send_due()
    assert _reminder(due_follow_up).state == DeliveryState.FAILED
    handler.refuse.clear()

    client_as(admin_member).post(
        reverse("admin:crm_reminder_changelist"),
        {"action": "send_again", "_selected_action": [_reminder(due_follow_up).pk]},
    )
    reminders.reminders_send_due()

    assert len(handler.messages) == 1
    assert _reminder(due_follow_up).state == DeliveryState.SENT


def test_a_refused_address_fails_at_once(smtp, due_follow_up):
    handler = smtp(refuse={"alice@example.com"})
    result = reminders.reminders_send_due()
    reminder = _reminder(due_follow_up)
    assert result.failed == 1 and reminder.attempts == 1 and reminder.state == DeliveryState.FAILED
    assert "550" in reminder.last_error
    assert handler.messages == []


def test_an_unreachable_mail_server_is_retried(settings, due_follow_up):
    from tests.smtp import free_port

    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", free_port()
    assert reminders.reminders_send_due().retried == 1
    reminder = _reminder(due_follow_up)
    assert reminder.state == DeliveryState.PENDING and "ConnectionRefusedError" in reminder.last_error


def test_a_worker_killed_mid_send_leaves_its_reminder_to_a_later_pass(smtp, due_follow_up, settings):
    handler = smtp()
    now = timezone.now()
    reminders.reminders_create_due(now=now)
    # A worker claims the reminder, then dies before sending or recording anything.
    _token, claimed = reminders._claim(Reminder, now=now, limit=10)
    assert [row.pk for row in claimed] == [_reminder(due_follow_up).pk]

    # While the claim is fresh nobody else touches it: its worker may still be at work.
    assert reminders.reminders_send_due(now=now + timedelta(seconds=60)).sent == 0
    after_timeout = now + timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS + 1)
    result = reminders.reminders_send_due(now=after_timeout)

    assert result.released == 1 and result.sent == 1
    assert len(handler.messages) == 1
    reminder = _reminder(due_follow_up)
    assert reminder.state == DeliveryState.SENT and reminder.attempts == 2


def test_a_claim_expired_on_its_last_attempt_is_failed(due_follow_up, settings):
    settings.REMINDER_MAX_ATTEMPTS = 1
    now = timezone.now()
    reminders.reminders_create_due(now=now)
    reminders._claim(Reminder, now=now, limit=10)

    reminders.reminders_send_due(now=now + timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS + 1))

    assert _reminder(due_follow_up).state == DeliveryState.FAILED
    assert mail.outbox == []


def test_a_worker_whose_claim_was_taken_over_records_nothing(due_follow_up, settings):
    now = timezone.now()
    reminders.reminders_create_due(now=now)
    token, [claimed] = reminders._claim(Reminder, now=now, limit=10)
    reminders.reminders_send_due(now=now + timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS + 1))
    assert _reminder(due_follow_up).state == DeliveryState.SENT

    late = reminders._record_failure(claimed, token=token, error="timeout", now=now)

    assert late == reminders.LOST
    assert _reminder(due_follow_up).state == DeliveryState.SENT


def test_a_pass_out_of_time_hands_back_what_it_has_not_started(rep, rep_client):
    for _ in range(3):
        FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now())

    result = reminders.reminders_send_due(time_budget=0)

    assert result.sent == 0
    assert set(Reminder.objects.values_list("state", "attempts")) == {(DeliveryState.PENDING, 0)}


# The morning digest


def _local(day: int, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime(2026, 3, day, hour, minute))


@pytest.fixture
def digest_day(rep, other_rep, rep_client):
    """Alice has one overdue follow-up, one later today and one tomorrow; Bob has none."""
    morning = _local(10, 8)
    for title, due in (
        ("Overdue call", morning - timedelta(days=2)),
        ("Lunch with Ann", morning + timedelta(hours=4)),
        ("Tomorrow's visit", morning + timedelta(days=1)),
    ):
        FollowUpFactory(client=rep_client, assignee=rep, due_at=due, title=title)
    return morning


def test_the_digest_waits_for_its_hour(digest_day):
    assert reminders.digests_send_due(now=digest_day - timedelta(minutes=1)).sent == 0
    assert mail.outbox == []


def test_each_user_gets_one_digest_of_the_days_and_overdue_follow_ups(digest_day, rep):
    result = reminders.digests_send_due(now=digest_day)

    assert result.sent == 1
    [message] = mail.outbox
    assert message.to == [rep.email]
    assert "2 follow-ups" in message.subject
    assert "Overdue call" in message.body and "Lunch with Ann" in message.body
    assert "Tomorrow's visit" not in message.body
    assert "Overdue (1)" in message.body and "Due today (1)" in message.body


def test_the_digest_goes_once_a_day_however_many_passes(digest_day):
    for minutes in (0, 1, 30, 120):
        reminders.digests_send_due(now=digest_day + timedelta(minutes=minutes))
    assert len(mail.outbox) == 1
    reminders.digests_send_due(now=digest_day + timedelta(days=1))
    assert len(mail.outbox) == 2
    assert Digest.objects.filter(state=DeliveryState.SENT).count() == 2


def test_a_digest_missed_at_eight_goes_out_later_in_the_window_but_not_after(digest_day):
    assert reminders.digests_send_due(now=digest_day + timedelta(hours=3, minutes=59)).sent == 1
    assert reminders.digests_send_due(now=_local(11, 12, 0)).sent == 0


def test_a_user_has_at_most_one_digest_a_day_in_the_database(rep):
    Digest.objects.create(user=rep, day=_local(10, 8).date())
    with pytest.raises(IntegrityError), transaction.atomic():
        Digest.objects.create(user=rep, day=_local(10, 8).date())


def test_the_digest_hour_is_a_setting(digest_day, settings):
    settings.REMINDER_DIGEST_HOUR = 7
    settings.REMINDER_DIGEST_MINUTE = 30
    assert reminders.digests_send_due(now=_local(10, 7, 30)).sent == 1


def test_a_digest_with_nothing_left_to_do_is_not_sent(digest_day):
    reminders.digests_create_due(now=digest_day)
    FollowUp.objects.update(status="done")
    assert reminders.digests_send_due(now=digest_day).cancelled == 1
    assert mail.outbox == []


# The badge


def test_the_badge_counts_my_due_follow_ups(client_as, rep, rep_client, other_rep):
    FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() - timedelta(hours=1))
    FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() - timedelta(days=3))
    FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now() + timedelta(hours=1))
    FollowUpFactory(client=rep_client, assignee=other_rep, due_at=timezone.now() - timedelta(hours=1))

    response = client_as(rep).get(reverse("crm:reminder-badge"))

    assert response.status_code == 200
    assert ">2<" in response.content.decode()


def test_the_badge_is_empty_when_nothing_is_due(client_as, rep):
    assert "badge" not in client_as(rep).get(reverse("crm:reminder-badge")).content.decode()


def test_every_page_loads_the_badge(client_as, rep):
    page = client_as(rep).get(reverse("crm:client-list")).content.decode()
    assert reverse("crm:reminder-badge") in page


# Concurrency, on PostgreSQL


def _in_threads(count: int, work) -> list:
    """Run ``work(index)`` in ``count`` threads started together; each thread uses and closes its own connection."""
    barrier = threading.Barrier(count)
    results, errors = [None] * count, []

    def run(index):
        try:
            barrier.wait()
            results[index] = work(index)
        except Exception as error:  # reported by the caller
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_the_same_reminder_handled_by_two_workers_at_once_sends_one_email(smtp):
    handler = smtp()
    rep = UserFactory(username="alice", email="alice@example.com")
    follow_ups = [FollowUpFactory(assignee=rep, due_at=timezone.now()) for _ in range(20)]
    reminders.reminders_create_due()
    for follow_up in follow_ups:
        reminder = _reminder(follow_up)
        outcomes = _in_threads(2, lambda _index, pk=reminder.pk: reminders.reminder_send(reminder_id=pk))
        assert sorted(outcomes) == ["", reminders.SENT]
    assert len(handler.messages) == 20
    assert len(set(handler.message_ids())) == 20


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_passes_at_once_over_500_due_reminders_send_500_emails(smtp):
    handler = smtp()
    rep = UserFactory(username="alice", email="alice@example.com")
    client = ClientFactory(owner=rep)
    due = timezone.now() - timedelta(seconds=1)
    FollowUp.objects.bulk_create(
        FollowUp(client=client, assignee=rep, due_at=due, title=f"Call {number}") for number in range(500)
    )

    results = _in_threads(2, lambda _index: reminders.reminders_send_due(batch_size=20))

    assert sum(result.sent for result in results) == 500
    assert all(result.lost == 0 for result in results)
    assert len(handler.messages) == 500
    assert len(set(handler.message_ids())) == 500
    assert Reminder.objects.filter(state=DeliveryState.SENT).count() == 500


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_pass_never_sees_a_follow_up_whose_transaction_rolls_back():
    rep = UserFactory(username="alice", email="alice@example.com")
    client = ClientFactory(owner=rep)
    planned, checked = threading.Event(), threading.Event()

    def plan_then_roll_back(_index):
        try:
            with transaction.atomic():
                services.follow_up_plan(
                    client=client, assignee=rep, due_at=timezone.now(), title="Never committed", created_by=rep
                )
                planned.set()
                checked.wait(timeout=10)
                raise RuntimeError("rolled back")
        except RuntimeError:
            return "rolled back"

    thread = threading.Thread(target=lambda: (plan_then_roll_back(0), connection.close()))
    thread.start()
    assert planned.wait(timeout=10)
    during = reminders.reminders_send_due()
    checked.set()
    thread.join()
    after = reminders.reminders_send_due()

    assert during.created == 0 and after.created == 0
    assert mail.outbox == []
    assert not FollowUp.objects.exists()


def test_a_pass_stopped_mid_send_hands_back_the_rest_and_leaves_the_one_in_flight(rep, rep_client, monkeypatch):
    for _ in range(3):
        FollowUpFactory(client=rep_client, assignee=rep, due_at=timezone.now())

    def stopped(message):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(reminders._Mailer, "send", lambda self, message: stopped(message))
    with pytest.raises(SoftTimeLimitExceeded):
        reminders.reminders_send_due()

    states = sorted(Reminder.objects.values_list("state", "attempts"))
    assert states == [(DeliveryState.PENDING, 0), (DeliveryState.PENDING, 0), (DeliveryState.SENDING, 1)]
