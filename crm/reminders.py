"""Follow-up reminders and the morning digest: emails kept as rows with their own state, sent by a periodic pass.

How a reminder travels
1. ``reminders_create_due`` inserts one ``Reminder`` per open follow-up that has come due, reading committed rows
   only: a follow-up planned in a transaction that is rolled back never gets one. Nothing is queued from a request
   and no follow-up waits in the broker with a countdown, so a broker outage neither breaks a page nor loses a
   reminder: the next pass finds every due follow-up in the database. The unique (follow-up, due time) constraint
   keeps two passes running at once from creating it twice.
2. ``_claim`` moves a batch of pending rows to ``sending`` under a fresh claim token, in one short transaction.
   PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then ``UPDATE``, so concurrent passes take disjoint rows without
   waiting on each other. SQLite: one ``UPDATE ... WHERE state = 'pending'`` (the database's write lock serialises
   it), then the rows are read back by token. Each claim counts as an attempt.
3. The holder of the claim sends the email, then records the outcome (sent; pending again after a backoff; failed)
   with an ``UPDATE`` conditioned on its token and on the ``sending`` state.

Exactly once on the normal paths, at least once across a crash
- Only the holder of a claim sends, and only a pending row can be claimed: a second pass, a second beat, the same
  reminder handled twice in a row or by two workers at once all find it no longer pending and send nothing.
- The email cannot be part of the database transaction: SMTP is not transactional. Marking the row sent *before*
  sending loses the reminder when the worker dies in between (at most once); marking it *after* sends it again
  when the worker dies between the server accepting the message (its reply to DATA) and the commit of the mark
  (at least once). A reminder that never comes is the failure users complain about, so the mark comes after, and
  that window of a few milliseconds is the only way to a duplicate. Keeping a row lock open across the SMTP
  exchange would not close it (the crash rolls the mark back all the same) and would hold locks during network
  waits, hence the short claim transactions.
- A claim older than ``REMINDER_CLAIM_TIMEOUT_SECONDS`` belongs to a worker that died (killed, out of memory, host
  lost): ``_release_stale`` gives the row back to the pending ones, or fails it when its attempts are used up. A live
  worker never holds a claim that long: a pass stops claiming after ``REMINDER_PASS_SECONDS`` and hands back what it
  has not started, every SMTP operation times out after ``EMAIL_TIMEOUT``, and the task's hard time limit ends a
  stuck pass; the timeout is set well above their sum. A worker slower still would find its claim gone and change
  nothing when it records the outcome, having sent a duplicate: the second, far rarer, way to one.
- A message sent again after a crash keeps its Message-ID, so mail programs that drop duplicates show it once.
- Temporary failures (4xx replies, lost connections, timeouts) are retried after ``REMINDER_BACKOFF_SECONDS``,
  doubled at each attempt up to ``REMINDER_BACKOFF_MAX_SECONDS``, until ``REMINDER_MAX_ATTEMPTS``; then the row is
  failed, listed in the admin and on the assignee's home page. A recipient refused outright (5xx) fails at once.

The digest (``Digest``, unique per user and day) goes through the same claim and send steps, once a day from
``REMINDER_DIGEST_HOUR``; a pass later in ``REMINDER_DIGEST_WINDOW_HOURS`` still sends a digest that a stopped beat
or broker missed.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.db.models import Exists, F, Model, OuterRef, Q
from django.template.loader import render_to_string
from django.utils import timezone, translation

from crm.models import DeliveryState, Digest, FollowUp, FollowUpStatus, Reminder

logger = logging.getLogger(__name__)

CLAIM_BATCH_SIZE = 50
CREATE_BATCH_SIZE = 1000
DIGEST_FOLLOW_UPS_SHOWN = 50
ERROR_LENGTH = 1000

SENT, RETRY, FAILED, CANCELLED, LOST = "sent", "retried", "failed", "cancelled", "lost"


@dataclass
class PassResult:
    """What one pass did, per outcome; ``lost`` counts claims taken over after a timeout (see the module doc)."""

    created: int = 0
    released: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    lost: int = 0

    def count(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


# Creating the rows


def reminders_create_due(*, now: datetime | None = None) -> int:
    """Insert a pending reminder for every open follow-up due by ``now`` that has none for its due time yet.

    Follow-ups overdue for longer than ``REMINDER_LOOKBACK_HOURS`` are left to the digest: a first deployment or a
    long outage must not flood anyone with old reminders. Returns how many follow-ups were found without one.
    """
    now = now or timezone.now()
    since = now - timedelta(hours=settings.REMINDER_LOOKBACK_HOURS)
    has_reminder = Reminder.objects.filter(follow_up=OuterRef("pk"), due_at=OuterRef("due_at"))
    due = (
        FollowUp.objects.open()
        .filter(due_at__lte=now, due_at__gt=since)
        .filter(~Exists(has_reminder))
        .order_by("pk")
        .values_list("pk", "due_at")
    )
    found, last_pk = 0, 0
    while batch := list(due.filter(pk__gt=last_pk)[:CREATE_BATCH_SIZE]):
        Reminder.objects.bulk_create(
            [Reminder(follow_up_id=pk, due_at=due_at, next_attempt_at=now, created_at=now) for pk, due_at in batch],
            ignore_conflicts=True,  # another pass created some of them meanwhile
        )
        found += len(batch)
        last_pk = batch[-1][0]
    return found


def _digest_day(now: datetime) -> datetime | None:
    """The local start of today's digest time when ``now`` falls in its sending window, else None."""
    local = timezone.localtime(now)
    start = local.replace(
        hour=settings.REMINDER_DIGEST_HOUR, minute=settings.REMINDER_DIGEST_MINUTE, second=0, microsecond=0
    )
    if start <= local < start + timedelta(hours=settings.REMINDER_DIGEST_WINDOW_HOURS):
        return start
    return None


def _end_of_day(day_start: datetime) -> datetime:
    return timezone.localtime(day_start).replace(hour=23, minute=59, second=59, microsecond=999999)


def digests_create_due(*, now: datetime | None = None) -> int:
    """Within the digest window, insert today's digest for each active user with follow-ups due by tonight.

    The first pass of the window does it, in one statement; later passes only send what is left.
    """
    now = now or timezone.now()
    start = _digest_day(now)
    if start is None or Digest.objects.filter(day=start.date()).exists():
        return 0
    user_ids = (
        FollowUp.objects.open()
        .filter(due_at__lte=_end_of_day(start), assignee__is_active=True)
        .exclude(assignee__email="")
        .order_by()
        .values_list("assignee_id", flat=True)
        .distinct()
    )
    digests = [Digest(user_id=pk, day=start.date(), next_attempt_at=now, created_at=now) for pk in user_ids]
    Digest.objects.bulk_create(digests, ignore_conflicts=True, batch_size=CREATE_BATCH_SIZE)
    return len(digests)


# Claiming


def _claim_token() -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:16]}"


def _claim(model: type[Model], *, now: datetime, limit: int, only: Q | None = None) -> tuple[str, list]:
    """Claim up to ``limit`` due pending rows for this process; returns the token and the claimed rows."""
    token = _claim_token()
    pending = model.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lte=now)
    if only is not None:
        pending = pending.filter(only)
    pending = pending.order_by("next_attempt_at", "pk")
    claim = {"state": DeliveryState.SENDING, "claimed_by": token, "claimed_at": now, "attempts": F("attempts") + 1}
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(pending.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
            if ids:
                model.objects.filter(pk__in=ids).update(**claim)
    else:
        # One statement under SQLite's write lock: the state test and the claim cannot be split by another writer.
        model.objects.filter(pk__in=pending.values("pk")[:limit], state=DeliveryState.PENDING).update(**claim)
    claimed = model.objects.filter(state=DeliveryState.SENDING, claimed_by=token).order_by("next_attempt_at", "pk")
    if model is Reminder:
        claimed = claimed.select_related("follow_up__client", "follow_up__assignee")
    else:
        claimed = claimed.select_related("user")
    return token, list(claimed)


def _unclaim(model: type[Model], *, token: str, pks: list[int]) -> int:
    """Hand back rows claimed but not started, without counting the attempt."""
    return model.objects.filter(pk__in=pks, state=DeliveryState.SENDING, claimed_by=token).update(
        state=DeliveryState.PENDING, attempts=F("attempts") - 1
    )


def _release_stale(model: type[Model], *, now: datetime) -> int:
    """Give the rows of a worker that died mid-send back to the pending ones, or fail those out of attempts."""
    cutoff = now - timedelta(seconds=settings.REMINDER_CLAIM_TIMEOUT_SECONDS)
    stale = model.objects.filter(state=DeliveryState.SENDING, claimed_at__lt=cutoff)
    error = "The worker stopped while sending: its claim expired."
    stale.filter(attempts__gte=settings.REMINDER_MAX_ATTEMPTS).update(state=DeliveryState.FAILED, last_error=error)
    return stale.update(state=DeliveryState.PENDING, next_attempt_at=now, last_error=error)


# Sending


class _Mailer:
    """One SMTP connection reused across messages, opened on first use and reopened after any failure."""

    def __init__(self):
        self.connection = None

    def send(self, message: EmailMultiAlternatives) -> None:
        try:
            if self.connection is None:
                self.connection = get_connection(fail_silently=False)
                self.connection.open()
            message.connection = self.connection
            self.connection.send_messages([message])
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        if self.connection is not None:
            try:
                self.connection.close()
            except OSError:
                logger.debug("SMTP connection already broken", exc_info=True)
            self.connection = None


def _is_permanent(error: Exception) -> bool:
    """A recipient refused with a 5xx reply will be refused again: no point in retrying."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _reply in error.recipients.values())
    return False


def _backoff(attempts: int) -> timedelta:
    seconds = settings.REMINDER_BACKOFF_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.REMINDER_BACKOFF_MAX_SECONDS))


def _record(row, *, token: str, outcome: str, **values) -> str:
    """Write the outcome if this process still holds the claim; ``LOST`` when the claim was taken over."""
    updated = type(row).objects.filter(pk=row.pk, state=DeliveryState.SENDING, claimed_by=token).update(**values)
    if not updated:
        logger.warning("%s %s: claim %s expired before the outcome was recorded", type(row).__name__, row.pk, token)
        return LOST
    return outcome


def _record_failure(row, *, token: str, error: str, now: datetime, permanent: bool = False) -> str:
    error = error[:ERROR_LENGTH]
    if permanent or row.attempts >= settings.REMINDER_MAX_ATTEMPTS:
        return _record(row, token=token, outcome=FAILED, state=DeliveryState.FAILED, last_error=error)
    return _record(
        row,
        token=token,
        outcome=RETRY,
        state=DeliveryState.PENDING,
        next_attempt_at=now + _backoff(row.attempts),
        last_error=error,
    )


def _deliver(row, *, token: str, build: Callable, mailer: _Mailer, now: datetime | None) -> str:
    """Send one claimed row's email and record the outcome (see the module docstring for the order)."""
    try:
        message = build(row, now=now or timezone.now())
    except Exception as error:  # a broken template or record: keep the row, retry, then show it failed
        logger.exception("%s %s: could not build the email", type(row).__name__, row.pk)
        return _record_failure(row, token=token, error=f"{type(error).__name__}: {error}", now=now or timezone.now())
    if message is None:
        return _record(row, token=token, outcome=CANCELLED, state=DeliveryState.CANCELLED)
    if not any(message.to):
        return _record_failure(row, token=token, error="No email address.", now=now or timezone.now(), permanent=True)
    try:
        mailer.send(message)
    except OSError as error:  # smtplib.SMTPException, refused connections and timeouts are all OSErrors
        logger.info("%s %s: attempt %s failed: %s", type(row).__name__, row.pk, row.attempts, error)
        return _record_failure(
            row,
            token=token,
            error=f"{type(error).__name__}: {error}",
            now=now or timezone.now(),
            permanent=_is_permanent(error),
        )
    return _record(row, token=token, outcome=SENT, state=DeliveryState.SENT, sent_at=now or timezone.now())


def _send_pending(
    model: type[Model],
    *,
    build: Callable,
    result: PassResult,
    now: datetime | None,
    time_budget: float | None,
    only: Q | None = None,
    batch_size: int = CLAIM_BATCH_SIZE,
) -> PassResult:
    """Claim and send batches until none is due or the time budget is spent."""
    deadline = None if time_budget is None else time.monotonic() + time_budget
    mailer = _Mailer()
    try:
        while deadline is None or time.monotonic() < deadline:
            token, rows = _claim(model, now=now or timezone.now(), limit=batch_size, only=only)
            if not rows:
                break
            for index, row in enumerate(rows):
                if deadline is not None and time.monotonic() >= deadline:
                    _unclaim(model, token=token, pks=[later.pk for later in rows[index:]])
                    break
                try:
                    result.count(_deliver(row, token=token, build=build, mailer=mailer, now=now))
                except BaseException:
                    # Stopped mid-send (soft time limit, shutdown): the rows not started go back at once; this
                    # one may have gone out, so it waits for its claim to expire like a crashed worker's.
                    _unclaim(model, token=token, pks=[later.pk for later in rows[index + 1 :]])
                    raise
    finally:
        mailer.close()
    return result


# The emails


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


def _language_of(user) -> str:
    """The language of a user's emails: the site's default until accounts carry a preferred language."""
    return settings.LANGUAGE_CODE


def _message_id(kind: str, pk: int) -> str:
    """Stable per row, so that a message sent again after a crash is recognisably the same one."""
    domain = urlsplit(settings.SITE_URL).hostname or "localhost"
    return f"<{kind}-{pk}@{domain}>"


def _render_email(template: str, context: dict, *, to: str, language: str, message_id: str) -> EmailMultiAlternatives:
    """Subject, plain text and HTML from ``emails/<template>_subject.txt``, ``.txt`` and ``.html``."""
    with translation.override(language):
        subject = " ".join(render_to_string(f"emails/{template}_subject.txt", context).split())
        text = render_to_string(f"emails/{template}.txt", context)
        html = render_to_string(f"emails/{template}.html", context)
    message = EmailMultiAlternatives(subject, text, to=[to] if to else [], headers={"Message-ID": message_id})
    message.attach_alternative(html, "text/html")
    return message


def _reminder_email(reminder: Reminder, *, now: datetime) -> EmailMultiAlternatives | None:
    """The reminder's email, or None when the follow-up was closed, moved or its assignee left meanwhile."""
    follow_up = reminder.follow_up
    assignee = follow_up.assignee
    if follow_up.status != FollowUpStatus.OPEN or follow_up.due_at != reminder.due_at or not assignee.is_active:
        return None
    context = {
        "follow_up": follow_up,
        "client": follow_up.client,
        "user": assignee,
        "card_url": absolute_url(follow_up.client.get_absolute_url()),
        "home_url": absolute_url("/"),
    }
    return _render_email(
        "reminder",
        context,
        to=assignee.email,
        language=_language_of(assignee),
        message_id=_message_id("reminder", reminder.pk),
    )


def _digest_email(digest: Digest, *, now: datetime) -> EmailMultiAlternatives | None:
    """The day's and overdue follow-ups of the digest's user, or None when nothing is due any more."""
    user = digest.user
    if not user.is_active:
        return None
    day_start = timezone.make_aware(datetime.combine(digest.day, datetime.min.time()))
    open_follow_ups = FollowUp.objects.open().filter(assignee=user).select_related("client").order_by("due_at", "pk")
    overdue = open_follow_ups.filter(due_at__lt=now)
    today = open_follow_ups.filter(due_at__gte=now, due_at__lte=_end_of_day(day_start))
    overdue_count, today_count = overdue.count(), today.count()
    if not overdue_count and not today_count:
        return None
    context = {
        "user": user,
        "day": digest.day,
        "overdue": [_digest_line(item) for item in overdue[:DIGEST_FOLLOW_UPS_SHOWN]],
        "overdue_count": overdue_count,
        "overdue_more": max(overdue_count - DIGEST_FOLLOW_UPS_SHOWN, 0),
        "today": [_digest_line(item) for item in today[:DIGEST_FOLLOW_UPS_SHOWN]],
        "today_count": today_count,
        "today_more": max(today_count - DIGEST_FOLLOW_UPS_SHOWN, 0),
        "home_url": absolute_url("/"),
    }
    return _render_email(
        "digest", context, to=user.email, language=_language_of(user), message_id=_message_id("digest", digest.pk)
    )


def _digest_line(follow_up: FollowUp) -> dict:
    return {
        "follow_up": follow_up,
        "client": follow_up.client,
        "card_url": absolute_url(follow_up.client.get_absolute_url()),
    }


# The passes


def reminders_send_due(
    *,
    now: datetime | None = None,
    time_budget: float | None = None,
    batch_size: int = CLAIM_BATCH_SIZE,
    only: Q | None = None,
) -> PassResult:
    """One reminder pass: recover dead workers' claims, create the due reminders, send them.

    ``now`` fixes the clock (tests); ``time_budget`` (seconds) stops claiming new rows once spent; ``only`` limits
    the sending to some reminders (the benchmark's). Safe to run any number of times, at once too.
    """
    result = PassResult()
    result.released = _release_stale(Reminder, now=now or timezone.now())
    result.created = reminders_create_due(now=now)
    return _send_pending(
        Reminder,
        build=_reminder_email,
        result=result,
        now=now,
        time_budget=time_budget,
        batch_size=batch_size,
        only=only,
    )


def reminder_send(*, reminder_id: int, now: datetime | None = None) -> str:
    """Send one reminder if it is pending and due; returns the outcome, or "" when another process has it."""
    result = _send_pending(
        Reminder, build=_reminder_email, result=PassResult(), now=now, time_budget=None, only=Q(pk=reminder_id)
    )
    outcomes = {name: value for name, value in result.as_dict().items() if value}
    return next(iter(outcomes), "")


def digests_send_due(*, now: datetime | None = None, time_budget: float | None = None) -> PassResult:
    """One digest pass: recover dead claims, create today's digests within the window, send them.

    A digest still pending on a later day is dropped as failed: yesterday's list is no use this morning.
    """
    now_value = now or timezone.now()
    today = timezone.localdate(now_value)
    result = PassResult()
    result.released = _release_stale(Digest, now=now_value)
    Digest.objects.filter(state=DeliveryState.PENDING, day__lt=today).update(
        state=DeliveryState.FAILED, last_error="Not sent on its day."
    )
    result.created = digests_create_due(now=now_value)
    return _send_pending(
        Digest, build=_digest_email, result=result, now=now, time_budget=time_budget, only=Q(day=today)
    )


def reminders_retry(*, reminder_ids: list[int], now: datetime | None = None) -> int:
    """Put failed reminders back in the queue with fresh attempts (after fixing an address, say)."""
    return Reminder.objects.filter(pk__in=reminder_ids, state=DeliveryState.FAILED).update(
        state=DeliveryState.PENDING, attempts=0, next_attempt_at=now or timezone.now(), last_error=""
    )
