"""Prospecting models: email campaigns and their steps, one send row per client and step, promotional offers and
their redemptions, events and webinars with their registrations.

A campaign step is a job: its state (status, counts, error, timings) lives on ``CampaignStep`` and the campaign
page polls it. Each email is a ``CampaignSend`` row, unique per step and client, claimed by exactly one worker
before it goes out; its outcomes (replied, converted, unsubscribed) are recorded on the same row.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

__all__ = [
    "Campaign",
    "CampaignMember",
    "CampaignSend",
    "CampaignStatus",
    "CampaignStep",
    "DiscountKind",
    "Event",
    "EventKind",
    "EventRegistration",
    "Offer",
    "OfferRedemption",
    "SendPace",
    "SendStatus",
    "SkipReason",
    "StepStatus",
]


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", _("Draft")
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    CANCELLED = "cancelled", _("Cancelled")


class StepStatus(models.TextChoices):
    WAITING = "waiting", _("Waiting")
    SCHEDULED = "scheduled", _("Scheduled")
    QUEUING = "queuing", _("Queuing")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Cancelled")


class SendStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    CLAIMED = "claimed", _("Claimed")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    SKIPPED = "skipped", _("Skipped")


class SkipReason(models.TextChoices):
    NO_CONSENT = "no_consent", _("No marketing consent")
    DO_NOT_CONTACT = "do_not_contact", _("Do not contact")
    NO_EMAIL = "no_email", _("No email address")
    LEFT_SEQUENCE = "left_sequence", _("Replied or purchased")
    CANCELLED = "cancelled", _("Campaign cancelled")


class DiscountKind(models.TextChoices):
    PERCENT = "percent", _("Percentage")
    AMOUNT = "amount", _("Amount")


class EventKind(models.TextChoices):
    EVENT = "event", _("Event")
    WEBINAR = "webinar", _("Webinar")


class Offer(models.Model):
    """A promotional offer: a code, a discount, a validity window and the clients it is meant for."""

    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=200, help_text=_("e.g. 15% on a first purchase, this month only"))
    description = models.TextField(_("conditions"), blank=True)
    discount_kind = models.CharField(_("discount kind"), max_length=10, choices=DiscountKind.choices)
    discount_value = models.DecimalField(_("discount"), max_digits=10, decimal_places=2)
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until"))
    segment = models.ForeignKey(
        "crm.Segment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("segment"),
    )
    rfm_segment = models.CharField(_("RFM segment"), max_length=20, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-valid_from", "code"]
        verbose_name = _("offer")
        verbose_name_plural = _("offers")
        constraints = [
            models.UniqueConstraint(
                Lower("code"), name="offer_code_ci_uniq", violation_error_message=_("Another offer has this code.")
            ),
            models.CheckConstraint(
                condition=models.Q(valid_until__gte=models.F("valid_from")),
                name="offer_window",
                violation_error_message=_("The offer must end on or after its first day."),
            ),
            models.CheckConstraint(
                condition=models.Q(discount_value__gt=0),
                name="offer_discount_positive",
                violation_error_message=_("The discount must be more than zero."),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def get_absolute_url(self) -> str:
        return reverse("prospecting:offer-detail", args=[self.pk])

    def is_valid_on(self, day) -> bool:
        return self.valid_from <= day <= self.valid_until

    @property
    def is_current(self) -> bool:
        return self.is_valid_on(timezone.localdate())


class OfferRedemption(models.Model):
    """A purchase that used an offer's code; a purchase uses at most one offer."""

    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="redemptions", verbose_name=_("offer"))
    purchase = models.OneToOneField(
        "crm.Purchase", on_delete=models.CASCADE, related_name="offer_redemption", verbose_name=_("purchase")
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("recorded by"),
    )
    recorded_at = models.DateTimeField(_("recorded at"), default=timezone.now)

    class Meta:
        ordering = ["-recorded_at", "-id"]
        verbose_name = _("offer redemption")
        verbose_name_plural = _("offer redemptions")

    def __str__(self) -> str:
        return f"{self.offer} / {self.purchase}"


class Campaign(models.Model):
    """An email sequence to a segment: a crm segment, a scored RFM segment, or both (clients in both)."""

    name = models.CharField(_("name"), max_length=200)
    segment = models.ForeignKey(
        "crm.Segment",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("segment"),
    )
    # The segment's name when it was chosen: a campaign whose segment was deleted since targets nobody.
    segment_name = models.CharField(_("segment name"), max_length=120, blank=True)
    rfm_segment = models.CharField(_("RFM segment"), max_length=20, blank=True)
    offer = models.ForeignKey(
        Offer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("offer"),
    )
    status = models.CharField(_("status"), max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("launched by"),
    )
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    outcomes_refreshed_at = models.DateTimeField(_("outcomes refreshed at"), null=True, blank=True)
    # What the campaign cost (design, sending, discounts granted), for profitability per segment and persona.
    cost = models.DecimalField(_("cost"), max_digits=12, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        indexes = [models.Index(fields=["status", "finished_at"], name="campaign_status_idx")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("prospecting:campaign-detail", args=[self.pk])

    @property
    def is_draft(self) -> bool:
        return self.status == CampaignStatus.DRAFT


class CampaignMember(models.Model):
    """A client enrolled in a campaign by hand (a bulk action on a selection), on top of its target segment."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members", verbose_name=_("campaign"))
    client = models.ForeignKey(
        "crm.Client", on_delete=models.CASCADE, related_name="campaign_memberships", verbose_name=_("client")
    )
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("added by"),
    )
    added_at = models.DateTimeField(_("added at"), default=timezone.now)

    class Meta:
        verbose_name = _("campaign member")
        verbose_name_plural = _("campaign members")
        constraints = [models.UniqueConstraint(fields=["campaign", "client"], name="campaign_member_unique")]

    def __str__(self) -> str:
        return f"{self.client} / {self.campaign}"


class CampaignStep(models.Model):
    """One email of the sequence, sent ``delay_days`` after the previous step finished (the first after launch)."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="steps", verbose_name=_("campaign"))
    position = models.PositiveSmallIntegerField(_("position"))
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("body"))
    delay_days = models.PositiveSmallIntegerField(_("delay after the previous step (days)"), default=0)

    status = models.CharField(_("status"), max_length=10, choices=StepStatus.choices, default=StepStatus.WAITING)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    # Clients of the segment when the step was queued, and how many of them were mailable.
    audience = models.PositiveIntegerField(_("clients in the segment"), null=True, blank=True)
    recipients = models.PositiveIntegerField(_("recipients"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    queue_started_at = models.DateTimeField(_("queuing started at"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        ordering = ["campaign", "position"]
        verbose_name = _("campaign step")
        verbose_name_plural = _("campaign steps")
        constraints = [models.UniqueConstraint(fields=["campaign", "position"], name="campaignstep_position_uniq")]
        indexes = [models.Index(fields=["status", "due_at"], name="campaignstep_due_idx")]

    def __str__(self) -> str:
        return f"{self.campaign} #{self.position}"


class CampaignSend(models.Model):
    """One email of one step to one client: claimed, sent or failed once, never twice."""

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="sends", verbose_name=_("campaign"), db_index=False
    )
    step = models.ForeignKey(
        CampaignStep, on_delete=models.CASCADE, related_name="sends", verbose_name=_("step"), db_index=False
    )
    client = models.ForeignKey(
        "crm.Client", on_delete=models.CASCADE, related_name="campaign_sends", verbose_name=_("client")
    )
    status = models.CharField(_("status"), max_length=10, choices=SendStatus.choices, default=SendStatus.PENDING)
    skip_reason = models.CharField(_("skipped because"), max_length=20, choices=SkipReason.choices, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    replied_at = models.DateTimeField(_("replied at"), null=True, blank=True)
    converted_on = models.DateField(_("converted on"), null=True, blank=True)
    unsubscribed_at = models.DateTimeField(_("unsubscribed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("campaign email")
        verbose_name_plural = _("campaign emails")
        constraints = [models.UniqueConstraint(fields=["step", "client"], name="campaignsend_step_client_uniq")]
        indexes = [
            models.Index(fields=["step", "status"], name="campaignsend_step_status_idx"),
            models.Index(fields=["campaign", "client"], name="campaignsend_campaign_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.step} -> {self.client_id} ({self.status})"


class SendPace(models.Model):
    """The next free moment to send campaign email: the send rate is shared by every worker."""

    name = models.CharField(max_length=40, unique=True)
    next_slot_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = _("sending pace")
        verbose_name_plural = _("sending paces")

    def __str__(self) -> str:
        return self.name


class Event(models.Model):
    """An event or a webinar whose registrations become prospects with that source."""

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=10, choices=EventKind.choices, default=EventKind.EVENT)
    held_on = models.DateField(_("date"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner of new prospects"),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-held_on", "-id"]
        verbose_name = _("event")
        verbose_name_plural = _("events")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("prospecting:event-detail", args=[self.pk])


class EventRegistration(models.Model):
    event = models.ForeignKey(Event, on_delete=models.CASCADE, related_name="registrations", verbose_name=_("event"))
    client = models.ForeignKey(
        "crm.Client", on_delete=models.CASCADE, related_name="event_registrations", verbose_name=_("client")
    )
    # True when the registration brought a new prospect, False when it matched a known client.
    created_prospect = models.BooleanField(_("new prospect"), default=False)
    registered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("entered by"),
    )
    registered_at = models.DateTimeField(_("registered at"), default=timezone.now)

    class Meta:
        ordering = ["-registered_at", "-id"]
        verbose_name = _("event registration")
        verbose_name_plural = _("event registrations")
        constraints = [models.UniqueConstraint(fields=["event", "client"], name="eventregistration_uniq")]

    def __str__(self) -> str:
        return f"{self.event} / {self.client_id}"
