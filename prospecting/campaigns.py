"""Email campaigns: who a step goes to, how each email is written and sent, and what came of it.

The life of a step: launching the campaign (or the end of the previous step) schedules it; when it is due,
``campaign_step_queue`` evaluates the segment, writes one ``CampaignSend`` row per recipient and enqueues a send
task per batch of row ids; each ``campaign_send_batch`` claims its rows (``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL), checks consent again, waits for its turn at the shared send rate, sends, and logs each email as an
interaction on the client's card. ``campaign_advance`` (every few minutes) starts due steps, recovers work a dead
worker left behind and records replies and conversions.

Nothing goes out twice: a row is unique per step and client, moves pending -> claimed -> sending -> sent or failed,
and only a claimed row is sent. A row left "sending" by a worker killed mid-send is marked failed, never resent.

Personal fields in subjects and bodies are a whitelist of ``{name}`` placeholders replaced by plain text: text that
people write is never run through the template engine, and the HTML part escapes it.
"""

from __future__ import annotations

import logging
import re
import smtplib
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core import signing
from django.core.exceptions import EmptyResultSet
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, models, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import TruncDate
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext

from crm.filters import client_filter_class
from crm.models import Client, Direction, Interaction, InteractionKind, Purchase
from crm.services import client_update, interaction_log
from portfolio.queueing import enqueue_on_commit
from prospecting.models import (
    Campaign,
    CampaignMember,
    CampaignSend,
    CampaignStatus,
    CampaignStep,
    Offer,
    SendPace,
    SendStatus,
    SkipReason,
    StepStatus,
)
from scoring.models import ClientScore
from scoring.rfm import SEGMENTS
from scoring.selectors import current_run_id

logger = logging.getLogger(__name__)

PERSONAL_FIELDS = ("first_name", "last_name", "company", "offer_code")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
# A claim older than this belongs to a worker that died: longer than a send task's time limit.
CLAIM_LEASE = timedelta(minutes=35)
# A batch waits at most this long for its turn at the send rate; further ahead, the task is retried later.
MAX_PACE_WAIT_SECONDS = 60
PACE_NAME = "campaigns"
UNSUBSCRIBE_SALT = "prospecting.campaigns.unsubscribe"
OPEN_SEND_STATUSES = (SendStatus.PENDING, SendStatus.CLAIMED, SendStatus.SENDING)
INTERRUPTED = "interrupted while sending; not resent, so that nobody gets it twice"


class CampaignError(Exception):
    """A campaign action that cannot be done; the message is for the user."""


class MailServerUnavailable(Exception):
    """The mail server could not be reached or dropped the connection: the batch is worth retrying."""


@dataclass
class BatchResult:
    sent: int = 0
    failed: int = 0
    skipped: int = 0


# --- Personal fields -------------------------------------------------------------------------------------------


def unknown_placeholders(text: str) -> list[str]:
    """The ``{name}`` placeholders of ``text`` that are not personal fields, in order of appearance."""
    seen = []
    for name in PLACEHOLDER.findall(text):
        if name not in PERSONAL_FIELDS and name not in seen:
            seen.append(name)
    return seen


def personalize(text: str, fields: Mapping[str, str]) -> str:
    """``text`` with each whitelisted ``{name}`` replaced by its value; anything else is left as written."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return str(fields.get(name, "")) if name in PERSONAL_FIELDS else match.group(0)

    return PLACEHOLDER.sub(replace, text)


def personal_fields(client: Client, offer: Offer | None) -> dict[str, str]:
    return {
        "first_name": client.first_name,
        "last_name": client.last_name,
        "company": client.company,
        "offer_code": offer.code if offer else "",
    }


# --- Who a step goes to ----------------------------------------------------------------------------------------


def rfm_segment_label(key: str) -> str:
    segment = SEGMENTS.get(key)
    return str(segment.label) if segment else key


def campaign_target_missing(campaign: Campaign) -> bool:
    """True when a segment the campaign targets was deleted (the campaign then targets nobody)."""
    return bool(campaign.segment_name) and campaign.segment_id is None


def campaign_audience(campaign: Campaign) -> QuerySet[Client]:
    """The clients the campaign goes to now: those in its target (its crm segment, its scored RFM segment, or
    clients in both) and the clients enrolled in it by hand; a campaign without a target goes to its members."""
    members = CampaignMember.objects.filter(campaign=campaign).values("client_id")
    targeted = campaign_target(campaign)
    if targeted is None:
        return Client.objects.filter(pk__in=members)
    if not members.exists():
        return targeted
    return Client.objects.filter(Q(pk__in=targeted.values("pk")) | Q(pk__in=members))


def campaign_target(campaign: Campaign) -> QuerySet[Client] | None:
    """The clients of the campaign's segments now, or None when it targets none (or its segment was deleted)."""
    clients = Client.objects.all()
    if campaign_target_missing(campaign) or (campaign.segment_id is None and not campaign.rfm_segment):
        return None
    if campaign.segment_id is not None:
        filterset = client_filter_class()(campaign.segment.filters, queryset=clients, user=campaign.created_by)
        clients = filterset.qs
    if campaign.rfm_segment:
        run_id = current_run_id()
        if run_id is None:
            return None
        scored = ClientScore.objects.filter(run_id=run_id, segment=campaign.rfm_segment).values("client_id")
        clients = clients.filter(pk__in=scored)
    return clients


def mailable(clients: QuerySet[Client]) -> QuerySet[Client]:
    """Clients who agreed to marketing email, did not ask to be left alone, and have an address."""
    return clients.filter(marketing_consent=True, do_not_contact=False).exclude(email="")


def previous_step(step: CampaignStep) -> CampaignStep | None:
    return CampaignStep.objects.filter(campaign_id=step.campaign_id, position__lt=step.position).last()


def _left_after(send_field: str = "sent_at", client_field: str = "client_id") -> Q:
    """A reply (any inbound interaction) or a purchase since the email of the outer send row."""
    replied = Interaction.objects.filter(
        client=OuterRef(client_field), direction=Direction.INBOUND, occurred_at__gte=OuterRef(send_field)
    )
    purchased = Purchase.objects.filter(client=OuterRef(client_field), purchased_on__gte=_outer_day(send_field))
    return Q(Exists(replied)) | Q(Exists(purchased))


def _outer_day(field: str) -> TruncDate:
    """The local day of the outer query's datetime ``field``, for a subquery."""
    return TruncDate(models.ExpressionWrapper(OuterRef(field), output_field=models.DateTimeField()))


def still_in_sequence(step: CampaignStep) -> QuerySet[CampaignSend]:
    """The previous step's sent emails whose client has neither replied nor purchased since."""
    previous = previous_step(step)
    return CampaignSend.objects.filter(step=previous, status=SendStatus.SENT).exclude(_left_after())


def step_recipients(step: CampaignStep) -> QuerySet[Client]:
    """Who the step goes to now: mailable clients of the target; after the first step, only those who got the
    previous email and have not left the sequence since (a reply or a purchase)."""
    clients = mailable(campaign_audience(step.campaign))
    if step.position > 1 and previous_step(step) is not None:
        clients = clients.filter(pk__in=still_in_sequence(step).values("client_id"))
    return clients


# --- Drafting, launching, cancelling ---------------------------------------------------------------------------


def campaign_save(
    *,
    name: str,
    segment,
    rfm_segment: str,
    offer: Offer | None,
    user,
    campaign: Campaign | None = None,
    cost: Decimal | None = None,
) -> Campaign:
    """Create a draft campaign, or change the target, offer or cost of a draft."""
    if campaign is not None and not campaign.is_draft:
        raise CampaignError(gettext("Only a draft campaign can be changed."))
    campaign = campaign or Campaign(created_by=user)
    campaign.name = name
    campaign.segment = segment
    campaign.segment_name = segment.name if segment else ""
    campaign.rfm_segment = rfm_segment
    campaign.offer = offer
    campaign.cost = cost
    campaign.save()
    return campaign


def campaign_step_save(
    *, campaign: Campaign, subject: str, body: str, delay_days: int, step: CampaignStep | None = None
) -> CampaignStep:
    """Add a step at the end of a draft's sequence, or change one."""
    if not campaign.is_draft:
        raise CampaignError(gettext("Only a draft campaign can be changed."))
    with transaction.atomic():
        if step is None:
            last = campaign.steps.aggregate(last=models.Max("position"))["last"] or 0
            step = CampaignStep(campaign=campaign, position=last + 1)
        step.subject, step.body, step.delay_days = subject, body, delay_days
        step.save()
    return step


def campaign_step_delete(*, step: CampaignStep) -> None:
    """Remove a step from a draft; the later steps move up one place."""
    if not step.campaign.is_draft:
        raise CampaignError(gettext("Only a draft campaign can be changed."))
    with transaction.atomic():
        later = list(CampaignStep.objects.filter(campaign_id=step.campaign_id, position__gt=step.position))
        step.delete()
        for moved in later:  # in ascending order: each one takes the place just freed
            CampaignStep.objects.filter(pk=moved.pk).update(position=moved.position - 1)


def campaign_launch(*, campaign: Campaign, user) -> Campaign:
    """Start a draft: its first step is scheduled and, when already due, queued by a worker after commit."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if not campaign.is_draft:
            raise CampaignError(gettext("This campaign was already launched."))
        first = campaign.steps.order_by("position").first()
        if first is None:
            raise CampaignError(gettext("Add at least one email before launching."))
        if campaign.segment_id is None and not campaign.rfm_segment and not campaign.members.exists():
            raise CampaignError(gettext("Choose the segment the campaign targets before launching."))
        now = timezone.now()
        campaign.status, campaign.launched_at, campaign.launched_by = CampaignStatus.RUNNING, now, user
        campaign.save(update_fields=["status", "launched_at", "launched_by"])
        _schedule(first, now=now)
    return campaign


def campaign_cost_set(*, campaign: Campaign, cost: Decimal | None) -> Campaign:
    """Record what a campaign cost, whatever its status: the bill often comes once it has been sent."""
    Campaign.objects.filter(pk=campaign.pk).update(cost=cost)
    campaign.cost = cost
    return campaign


def campaign_cancel(*, campaign: Campaign) -> Campaign:
    """Stop a campaign: emails not sent yet are skipped, later steps never go out."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if campaign.status not in (CampaignStatus.DRAFT, CampaignStatus.RUNNING):
            raise CampaignError(gettext("This campaign is already over."))
        now = timezone.now()
        campaign.status, campaign.finished_at = CampaignStatus.CANCELLED, now
        campaign.save(update_fields=["status", "finished_at"])
        campaign.steps.exclude(status__in=[StepStatus.SENT, StepStatus.FAILED]).update(
            status=StepStatus.CANCELLED, finished_at=now
        )
        # Rows already claimed finish their send; the others never go out.
        campaign.sends.filter(status=SendStatus.PENDING).update(
            status=SendStatus.SKIPPED, skip_reason=SkipReason.CANCELLED
        )
    return campaign


def _schedule(step: CampaignStep, *, now: datetime) -> None:
    """Make ``step`` due ``delay_days`` from now; when it is due at once, queue it after commit."""
    step.status, step.due_at = StepStatus.SCHEDULED, now + timedelta(days=step.delay_days)
    step.save(update_fields=["status", "due_at"])
    if step.due_at <= now:
        _enqueue_step(step.pk)


def _enqueue_step(step_id: int) -> None:
    from prospecting.tasks import campaign_step_queue_task

    # Unreachable workers leave the step scheduled: the periodic pass queues it once they are back.
    enqueue_on_commit(campaign_step_queue_task, step_id)


# --- Queuing a step --------------------------------------------------------------------------------------------


def campaign_step_queue(*, step_id: int) -> CampaignStep | None:
    """Write the step's send rows and enqueue a send task per batch; nothing when the step is not due or was
    taken by another worker (a step is claimed scheduled -> queuing, so running this twice queues once)."""
    now = timezone.now()
    claimed = CampaignStep.objects.filter(
        pk=step_id, status=StepStatus.SCHEDULED, due_at__lte=now, campaign__status=CampaignStatus.RUNNING
    ).update(status=StepStatus.QUEUING, queue_started_at=now, error="")
    if not claimed:
        return None
    step = CampaignStep.objects.select_related("campaign__segment").get(pk=step_id)
    try:
        with transaction.atomic():
            step.audience = campaign_audience(step.campaign).count()
            step.recipients = _write_send_rows(step)
            step.status = StepStatus.SENDING
            if campaign_target_missing(step.campaign) and not step.campaign.members.exists():
                step.error = gettext("The segment this campaign targets was deleted: nobody was mailed.")
            elif campaign_target_missing(step.campaign):
                step.error = gettext(
                    "The segment this campaign targets was deleted: only the clients enrolled by hand were mailed."
                )
            # Only a step still queuing moves on: one cancelled meanwhile keeps its rows unsent.
            if not CampaignStep.objects.filter(pk=step_id, status=StepStatus.QUEUING).update(
                audience=step.audience, recipients=step.recipients, status=step.status, error=step.error
            ):
                step.sends.filter(status=SendStatus.PENDING).update(
                    status=SendStatus.SKIPPED, skip_reason=SkipReason.CANCELLED
                )
                return None
            transaction.on_commit(lambda: _enqueue_step_batches(step.pk))
    except Exception as exc:
        CampaignStep.objects.filter(pk=step_id).update(
            status=StepStatus.FAILED, error=f"{type(exc).__name__}: {exc}", finished_at=timezone.now()
        )
        raise
    if not step.recipients:
        _finish_step_if_done(step.pk)
    return step


def _write_send_rows(step: CampaignStep) -> int:
    """One pending row per recipient, in one INSERT ... SELECT: the recipients never travel through Python. A row
    that already exists (the unique step and client) is left as it is."""
    recipients = step_recipients(step).order_by().annotate(recipient_id=F("pk")).values("recipient_id")
    try:
        recipients, params = recipients.query.sql_with_params()
    except EmptyResultSet:  # a target that cannot match anyone (a deleted segment, no scoring run yet)
        return 0
    table = connection.ops.quote_name(CampaignSend._meta.db_table)
    # Only the table name and the recipients' compiled query are formatted in; every value is a parameter.
    # "WHERE 1 = 1" lets SQLite tell the upsert clause from a join constraint.
    sql = (
        f"INSERT INTO {table} (campaign_id, step_id, client_id, status, skip_reason, error) "  # noqa: S608
        f"SELECT %s, %s, recipient.recipient_id, %s, '', '' FROM ({recipients}) recipient WHERE 1 = 1 ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [step.campaign_id, step.pk, SendStatus.PENDING, *params])
        return cursor.rowcount


def _enqueue_step_batches(step_id: int) -> None:
    """Enqueue the new rows' batches, then record when the whole step was in the queue."""
    enqueue_pending_batches(step_id=step_id)
    CampaignStep.objects.filter(pk=step_id).update(queued_at=timezone.now())


def enqueue_pending_batches(*, step_id: int) -> int:
    """Enqueue one send task per batch of the step's pending rows; returns how many tasks."""
    from prospecting.tasks import campaign_send_batch_task

    pending = CampaignSend.objects.filter(step_id=step_id, status=SendStatus.PENDING).order_by("pk")
    tasks = 0
    for chunk in chunked(pending.values_list("pk", flat=True).iterator(), settings.CAMPAIGN_BATCH_SIZE):
        campaign_send_batch_task.delay(step_id, chunk)
        tasks += 1
    return tasks


def chunked(items: Iterable, size: int) -> Iterator[list]:
    chunk = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


# --- Sending a batch -------------------------------------------------------------------------------------------


def campaign_send_batch(*, step_id: int, send_ids: list[int]) -> BatchResult:
    """Send the emails of ``send_ids`` that nobody else has claimed, at the shared send rate.

    Raises ``MailServerUnavailable`` when the server cannot be reached: the rows not attempted go back to pending
    and the task retries.
    """
    result = BatchResult()
    step = CampaignStep.objects.select_related("campaign__offer", "campaign__launched_by").get(pk=step_id)
    if step.status != StepStatus.SENDING:
        return result
    claimed = _claim(send_ids)
    if not claimed:
        return result
    rows = list(CampaignSend.objects.filter(pk__in=claimed).select_related("client").order_by("pk"))
    rows, result.skipped = _skip_ineligible(step, rows)
    if rows:
        _send_rows(step, rows, result)
    _finish_step_if_done(step_id)
    return result


def _claim(send_ids: list[int]) -> list[int]:
    """Take the rows still pending; rows another worker holds are skipped, not waited for."""
    with transaction.atomic():
        ids = list(
            CampaignSend.objects.select_for_update(skip_locked=True)
            .filter(pk__in=send_ids, status=SendStatus.PENDING)
            .values_list("pk", flat=True)
        )
        CampaignSend.objects.filter(pk__in=ids).update(status=SendStatus.CLAIMED, claimed_at=timezone.now())
    return ids


def _skip_ineligible(step: CampaignStep, rows: list[CampaignSend]) -> tuple[list[CampaignSend], int]:
    """Check consent again just before sending: whoever unsubscribed, replied or purchased since the step was
    queued is skipped, with the reason."""
    reasons: dict[int, str] = {}
    for row in rows:
        client = row.client
        if client.do_not_contact:
            reasons[row.pk] = SkipReason.DO_NOT_CONTACT
        elif not client.marketing_consent:
            reasons[row.pk] = SkipReason.NO_CONSENT
        elif not client.email:
            reasons[row.pk] = SkipReason.NO_EMAIL
    if step.position > 1:
        candidates = [row.client_id for row in rows if row.pk not in reasons]
        staying = set(still_in_sequence(step).filter(client_id__in=candidates).values_list("client_id", flat=True))
        for row in rows:
            if row.pk not in reasons and row.client_id not in staying:
                reasons[row.pk] = SkipReason.LEFT_SEQUENCE
    for reason in set(reasons.values()):
        ids = [pk for pk, why in reasons.items() if why == reason]
        CampaignSend.objects.filter(pk__in=ids, status=SendStatus.CLAIMED).update(
            status=SendStatus.SKIPPED, skip_reason=reason
        )
    return [row for row in rows if row.pk not in reasons], len(reasons)


def _send_rows(step: CampaignStep, rows: list[CampaignSend], result: BatchResult) -> None:
    try:
        slot = _reserve_send_window(len(rows))
    except SendRateBusy:
        _release(rows)
        raise
    mail_connection = get_connection(fail_silently=False)
    try:
        mail_connection.open()
    except (OSError, smtplib.SMTPException) as exc:
        _release(rows)
        raise MailServerUnavailable(str(exc)) from exc
    try:
        with translation.override(settings.LANGUAGE_CODE):
            for number, row in enumerate(rows):
                _wait_until(slot + number / settings.CAMPAIGN_SEND_RATE if settings.CAMPAIGN_SEND_RATE else 0)
                try:
                    outcome = _send_one(step, row, mail_connection)
                except MailServerUnavailable:
                    _release(rows[number + 1 :])
                    raise
                if outcome == SendStatus.SENT:
                    result.sent += 1
                elif outcome == SendStatus.FAILED:
                    result.failed += 1
    finally:
        try:
            mail_connection.close()
        except (OSError, smtplib.SMTPException):
            logger.warning("Closing the mail connection failed", exc_info=True)


def _send_one(step: CampaignStep, row: CampaignSend, mail_connection) -> str | None:
    """Send one claimed row: sending -> sent (with its interaction) or failed; None when it was not ours."""
    if not CampaignSend.objects.filter(pk=row.pk, status=SendStatus.CLAIMED).update(status=SendStatus.SENDING):
        return None
    try:
        message, body = campaign_email(step, row, connection=mail_connection)
        message.send()
    except smtplib.SMTPServerDisconnected as exc:
        _lost_connection(row, exc)
    except (smtplib.SMTPException, ValueError) as exc:  # refused by the server, or an address it cannot take
        _mark_failed(row, exc)
        return SendStatus.FAILED
    except OSError as exc:  # SMTPException is an OSError too: the network errors come last
        _lost_connection(row, exc)
    with transaction.atomic():
        now = timezone.now()
        CampaignSend.objects.filter(pk=row.pk).update(status=SendStatus.SENT, sent_at=now)
        interaction_log(
            client=row.client,
            user=step.campaign.launched_by,
            kind=InteractionKind.EMAIL,
            direction=Direction.OUTBOUND,
            occurred_at=now,
            subject=message.subject[:255],
            body=body,
        )
    return SendStatus.SENT


def _lost_connection(row: CampaignSend, exc: Exception) -> None:
    """The server went away during this email: it may or may not have been accepted, so it is not retried."""
    _mark_failed(row, exc)
    raise MailServerUnavailable(str(exc)) from exc


def _mark_failed(row: CampaignSend, exc: Exception) -> None:
    error = f"{type(exc).__name__}: {exc}"[:255]
    CampaignSend.objects.filter(pk=row.pk).update(status=SendStatus.FAILED, error=error)


def _release(rows: list[CampaignSend]) -> None:
    """Give rows this worker claimed but did not attempt back to the queue."""
    CampaignSend.objects.filter(pk__in=[row.pk for row in rows], status=SendStatus.CLAIMED).update(
        status=SendStatus.PENDING, claimed_at=None
    )


def campaign_batch_abandon(*, send_ids: list[int], error: str) -> int:
    """Mark failed the rows of a batch that could not be sent after every retry, so that the step can finish."""
    failed = CampaignSend.objects.filter(pk__in=send_ids, status__in=[SendStatus.PENDING, SendStatus.CLAIMED]).update(
        status=SendStatus.FAILED, error=error[:255]
    )
    step_ids = set(CampaignSend.objects.filter(pk__in=send_ids).values_list("step_id", flat=True))
    for step_id in step_ids:
        _finish_step_if_done(step_id)
    return failed


def _reserve_send_window(count: int) -> float:
    """Book ``count`` emails' worth of time at the shared rate; returns when this batch may start (a monotonic
    clock value). Raises ``SendRateBusy`` when the turn is further than ``MAX_PACE_WAIT_SECONDS`` away."""
    rate = settings.CAMPAIGN_SEND_RATE
    if not rate:
        return time.monotonic()
    SendPace.objects.get_or_create(name=PACE_NAME)
    with transaction.atomic():
        pace = SendPace.objects.select_for_update().get(name=PACE_NAME)
        now = timezone.now()
        start = max(now, pace.next_slot_at)
        wait = (start - now).total_seconds()
        if wait > MAX_PACE_WAIT_SECONDS:
            raise SendRateBusy(wait)
        pace.next_slot_at = start + timedelta(seconds=count / rate)
        pace.save(update_fields=["next_slot_at"])
    return time.monotonic() + wait


class SendRateBusy(Exception):
    """Other batches have booked the send rate for longer than a task should wait."""

    def __init__(self, wait: float):
        super().__init__(f"next free slot in {wait:.0f} s")
        self.wait = wait


def _wait_until(moment: float) -> None:
    delay = moment - time.monotonic()
    if delay > 0:
        time.sleep(delay)


# --- The email ---------------------------------------------------------------------------------------------------


def unsubscribe_token(send: CampaignSend) -> str:
    # No timestamp in the token: the same send always gets the same link (a link never expires anyway).
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign_object({"c": send.client_id, "s": send.pk}, compress=True)


def unsubscribe_url(send: CampaignSend) -> str:
    path = reverse("prospecting:unsubscribe", args=[unsubscribe_token(send)])
    return f"{settings.SITE_URL.rstrip('/')}{path}"


def read_unsubscribe_token(token: str) -> tuple[int, int]:
    """The (client id, send id) a link was made for; ``signing.BadSignature`` when the link was altered."""
    data = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign_object(token)
    try:
        return int(data["c"]), int(data["s"])
    except (TypeError, KeyError, ValueError) as exc:
        raise signing.BadSignature("unexpected content") from exc


def campaign_email(step: CampaignStep, send: CampaignSend, *, connection=None) -> tuple[EmailMultiAlternatives, str]:
    """The email of ``step`` for the client of ``send`` (text and HTML, one-click unsubscribe headers), and the
    text logged on the card."""
    campaign, client = step.campaign, send.client
    fields = personal_fields(client, campaign.offer)
    subject = " ".join(personalize(step.subject, fields).split())  # a header never holds a line break
    body = personalize(step.body, fields)
    link = unsubscribe_url(send)
    context = {"body": body, "unsubscribe_url": link, "campaign": campaign, "client": client}
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("emails/campaign.txt", context),
        from_email=settings.CAMPAIGN_FROM_EMAIL,
        to=[client.email],
        headers={"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        connection=connection,
    )
    message.attach_alternative(render_to_string("emails/campaign.html", context), "text/html")
    logged = gettext("Campaign “%(campaign)s”, email %(position)d") % {
        "campaign": campaign.name,
        "position": step.position,
    }
    return message, f"{logged}\n\n{body}"


def campaign_unsubscribe(*, client: Client, send_id: int | None = None) -> bool:
    """Set do-not-contact on ``client`` (with a history row) and count the unsubscription for the email whose link
    was used; False when he had already unsubscribed."""
    with transaction.atomic():
        client = Client.objects.select_for_update().get(pk=client.pk)
        changed = bool(client_update(client=client, data={"do_not_contact": True}, user=None))
        if send_id is not None:
            CampaignSend.objects.filter(pk=send_id, client=client, unsubscribed_at__isnull=True).update(
                unsubscribed_at=timezone.now()
            )
    return changed


# --- Finishing steps, advancing sequences ----------------------------------------------------------------------


def _finish_step_if_done(step_id: int) -> bool:
    """Close a sending step once none of its rows is left to send, then schedule the next step or end the
    campaign. Two workers finishing together close it once: the update only matches a step still sending."""
    if CampaignSend.objects.filter(step_id=step_id, status__in=OPEN_SEND_STATUSES).exists():
        return False
    with transaction.atomic():
        now = timezone.now()
        if not CampaignStep.objects.filter(pk=step_id, status=StepStatus.SENDING).update(
            status=StepStatus.SENT, finished_at=now
        ):
            return False
        step = CampaignStep.objects.get(pk=step_id)
        following = CampaignStep.objects.filter(campaign_id=step.campaign_id, position__gt=step.position).first()
        if following is not None:
            _schedule(following, now=now)
        else:
            Campaign.objects.filter(pk=step.campaign_id, status=CampaignStatus.RUNNING).update(
                status=CampaignStatus.FINISHED, finished_at=now
            )
    return True


def campaign_advance() -> dict[str, int]:
    """The periodic pass: queue the steps that are due, recover what dead workers left, record outcomes.

    Safe to run twice or concurrently: every change it makes is guarded by the state it expects.
    """
    now = timezone.now()
    counts = {"steps_due": 0, "requeued": 0, "interrupted": 0, "steps_finished": 0, "campaigns_refreshed": 0}
    stalled_before = now - CLAIM_LEASE
    # A worker died while queuing: the step goes back to scheduled (its rows so far were rolled back).
    CampaignStep.objects.filter(status=StepStatus.QUEUING, queue_started_at__lt=stalled_before).update(
        status=StepStatus.SCHEDULED
    )
    due = CampaignStep.objects.filter(
        status=StepStatus.SCHEDULED, due_at__lte=now, campaign__status=CampaignStatus.RUNNING
    ).values_list("pk", flat=True)
    for step_id in due:
        _enqueue_step(step_id)
        counts["steps_due"] += 1
    for step_id in CampaignStep.objects.filter(status=StepStatus.SENDING).values_list("pk", flat=True):
        requeued, interrupted = _recover_step(step_id, stalled_before=stalled_before)
        counts["requeued"] += requeued
        counts["interrupted"] += interrupted
        counts["steps_finished"] += _finish_step_if_done(step_id)
    for campaign in campaigns_to_refresh(now=now):
        campaign_outcomes_refresh(campaign=campaign)
        counts["campaigns_refreshed"] += 1
    return counts


def _recover_step(step_id: int, *, stalled_before: datetime) -> tuple[int, int]:
    """Claims older than the lease: rows never attempted go back to pending, the row that was being sent when
    the worker died is marked failed. Pending rows nobody has claimed for a lease get their tasks again."""
    rows = CampaignSend.objects.filter(step_id=step_id)
    interrupted = rows.filter(status=SendStatus.SENDING, claimed_at__lt=stalled_before).update(
        status=SendStatus.FAILED, error=INTERRUPTED
    )
    requeued = rows.filter(status=SendStatus.CLAIMED, claimed_at__lt=stalled_before).update(
        status=SendStatus.PENDING, claimed_at=None
    )
    last_claim = rows.aggregate(last=models.Max("claimed_at"))["last"]
    queued_at, queue_started_at = CampaignStep.objects.filter(pk=step_id).values_list("queued_at", "queue_started_at")[
        0
    ]
    last_activity = last_claim or queued_at or queue_started_at
    idle = last_activity is None or last_activity < stalled_before
    if requeued or (idle and rows.filter(status=SendStatus.PENDING).exists()):
        transaction.on_commit(lambda: enqueue_pending_batches(step_id=step_id))
    return requeued, interrupted


def campaigns_to_refresh(*, now: datetime) -> QuerySet[Campaign]:
    """Campaigns whose outcomes can still change: running, or finished within the conversion window."""
    recent = now - timedelta(days=settings.CAMPAIGN_CONVERSION_DAYS + 1)
    return Campaign.objects.filter(
        Q(status=CampaignStatus.RUNNING)
        | Q(status__in=[CampaignStatus.FINISHED, CampaignStatus.CANCELLED], finished_at__gte=recent)
    )


def campaign_outcomes_refresh(*, campaign: Campaign) -> None:
    """Record replies and conversions on the sent emails, in a few set-based updates.

    A reply or a purchase is credited to the client's latest email of the campaign before it: a client leaves the
    sequence when he replies or buys, so no later email of this campaign reaches him. A conversion is a purchase
    within ``CAMPAIGN_CONVERSION_DAYS`` days of the email.
    """
    later = CampaignSend.objects.filter(
        campaign_id=campaign.pk,
        client_id=OuterRef("client_id"),
        status=SendStatus.SENT,
        sent_at__gt=OuterRef("sent_at"),
    )
    latest = CampaignSend.objects.filter(campaign=campaign, status=SendStatus.SENT).exclude(Exists(later))
    first_reply = (
        Interaction.objects.filter(
            client=OuterRef("client_id"), direction=Direction.INBOUND, occurred_at__gte=OuterRef("sent_at")
        )
        .order_by("occurred_at")
        .values("occurred_at")[:1]
    )
    window = timedelta(days=settings.CAMPAIGN_CONVERSION_DAYS)
    sent_on = _outer_day("sent_at")
    first_purchase = (
        Purchase.objects.filter(
            client=OuterRef("client_id"),
            purchased_on__gte=sent_on,
            purchased_on__lte=models.ExpressionWrapper(sent_on + window, output_field=models.DateField()),
        )
        .order_by("purchased_on")
        .values("purchased_on")[:1]
    )
    with transaction.atomic():
        latest.filter(replied_at__isnull=True).update(replied_at=Subquery(first_reply))
        latest.filter(converted_on__isnull=True).update(converted_on=Subquery(first_purchase))
        Campaign.objects.filter(pk=campaign.pk).update(outcomes_refreshed_at=timezone.now())


# --- Figures -----------------------------------------------------------------------------------------------------


def campaign_step_stats(campaign: Campaign) -> dict[int, dict[str, int]]:
    """Per step id: emails planned, sent, failed, skipped, still to send, unsubscribed, replied, converted."""
    rows = (
        CampaignSend.objects.filter(campaign=campaign)
        .values("step_id")
        .order_by()
        .annotate(
            recipients=Count("id"),
            sent=Count("id", filter=Q(status=SendStatus.SENT)),
            failed=Count("id", filter=Q(status=SendStatus.FAILED)),
            skipped=Count("id", filter=Q(status=SendStatus.SKIPPED)),
            to_send=Count("id", filter=Q(status__in=OPEN_SEND_STATUSES)),
            unsubscribed=Count("id", filter=Q(unsubscribed_at__isnull=False)),
            replied=Count("id", filter=Q(replied_at__isnull=False)),
            converted=Count("id", filter=Q(converted_on__isnull=False)),
        )
    )
    return {row.pop("step_id"): row for row in rows}


def campaign_is_busy(campaign: Campaign) -> bool:
    """True while a step is being queued or sent: the page then polls its figures."""
    return campaign.steps.filter(status__in=[StepStatus.QUEUING, StepStatus.SENDING]).exists()


def percent(part: int, whole: int) -> float | None:
    return 100 * part / whole if whole else None
