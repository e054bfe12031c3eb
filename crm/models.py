"""The records of the portfolio: clients and prospects, what they bought, every exchange with them, what is planned.

Derived fields (``last_interaction_at``, ``last_purchase_at``, ``converted_at``, lifecycle on a first purchase) are
written by the services in ``crm.services``, never by ``save()`` overrides or signals.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm import roles


class Lifecycle(models.TextChoices):
    PROSPECT = "prospect", _("Prospect")
    CLIENT = "client", _("Client")
    TO_REACTIVATE = "to_reactivate", _("To reactivate")
    LOST = "lost", _("Lost")


class Stage(models.TextChoices):
    NEW = "new", _("New")
    CONTACTED = "contacted", _("Contacted")
    CONNECTED = "connected", _("Connected")
    ENGAGED = "engaged", _("Engaged")
    MEETING = "meeting", _("Meeting")
    PROPOSAL = "proposal", _("Proposal")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Tier(models.TextChoices):
    A = "A", _("A (key account)")
    B = "B", _("B")
    C = "C", _("C")


class Source(models.TextChoices):
    NETWORKING = "networking", _("Networking event")
    REFERRAL = "referral", _("Referral")
    INBOUND = "inbound", _("Inbound")
    SOCIAL_SELLING = "social_selling", _("Social selling")
    WEBINAR = "webinar", _("Webinar")
    IMPORT = "import", _("Import")
    OTHER = "other", _("Other")


class Gender(models.TextChoices):
    FEMALE = "female", _("Female")
    MALE = "male", _("Male")
    OTHER = "other", _("Other")


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=80, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class Category(models.Model):
    name = models.CharField(_("name"), max_length=120, unique=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("product category")
        verbose_name_plural = _("product categories")

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    name = models.CharField(_("name"), max_length=200)
    sku = models.CharField(_("SKU"), max_length=64, unique=True)
    category = models.ForeignKey(
        Category, on_delete=models.PROTECT, related_name="products", verbose_name=_("category")
    )
    price = models.DecimalField(_("price"), max_digits=12, decimal_places=2, default=Decimal("0"))

    class Meta:
        ordering = ["name"]
        verbose_name = _("product")
        verbose_name_plural = _("products")

    def __str__(self) -> str:
        return self.name


class Persona(models.Model):
    name = models.CharField(_("fictive first name"), max_length=80)
    bio = models.TextField(_("short bio"), blank=True)
    goals = models.TextField(_("goals"), blank=True)
    obstacles = models.TextField(_("obstacles"), blank=True)
    expectations = models.TextField(_("expectations"), blank=True)
    demographics = models.TextField(_("demographic description"), blank=True)
    behaviour = models.TextField(_("behaviour description"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("persona")
        verbose_name_plural = _("personas")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:persona-detail", args=[self.pk])


class ClientQuerySet(models.QuerySet):
    def visible_to(self, user) -> ClientQuerySet:
        """The clients this user may see: the whole portfolio, or a rep's own when the setting restricts reps."""
        role = roles.role_of(user)
        if role is None:
            return self.none()
        if role == roles.REP and settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS:
            return self.filter(owner=user)
        return self

    def editable_by(self, user) -> ClientQuerySet:
        role = roles.role_of(user)
        if role in (roles.MANAGER, roles.ADMIN):
            return self
        if role == roles.REP:
            return self.filter(owner=user)
        return self.none()

    def without_interaction_for(self, days: int) -> ClientQuerySet:
        cutoff = timezone.now() - timedelta(days=days)
        return self.filter(Q(last_interaction_at__lt=cutoff) | Q(last_interaction_at__isnull=True))

    def search(self, text: str) -> ClientQuerySet:
        """Clients whose name, email or company contains every word of ``text`` (or whose external id is a word)."""
        queryset = self
        for word in text.split()[:5]:
            queryset = queryset.filter(
                Q(first_name__icontains=word)
                | Q(last_name__icontains=word)
                | Q(email__icontains=word)
                | Q(company__icontains=word)
                | Q(external_id=word)
            )
        return queryset

    def with_duplicate_keys(self, *, email: str, linkedin_url: str) -> ClientQuerySet:
        keys = Q()
        if email:
            keys |= Q(email=email)
        if linkedin_url:
            keys |= Q(linkedin_url=linkedin_url)
        return self.filter(keys) if keys else self.none()


class Client(models.Model):
    first_name = models.CharField(_("first name"), max_length=150, blank=True)
    last_name = models.CharField(_("last name"), max_length=150, blank=True)
    email = models.EmailField(_("email"), max_length=254, blank=True, db_index=True)
    phone = models.CharField(_("phone"), max_length=40, blank=True)
    linkedin_url = models.CharField(_("LinkedIn URL"), max_length=255, blank=True, db_index=True)
    # The client's id in the shop or invoicing tool (purchase files name clients by it); unique when given.
    external_id = models.CharField(
        _("external id"),
        max_length=64,
        blank=True,
        help_text=_("The client's number in the shop or invoicing tool."),
    )
    job_title = models.CharField(_("job title"), max_length=200, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    sector = models.CharField(_("sector"), max_length=120, blank=True)
    city = models.CharField(_("city"), max_length=120, blank=True)
    country = models.CharField(_("country"), max_length=120, blank=True)
    birth_year = models.PositiveSmallIntegerField(_("birth year"), null=True, blank=True)
    gender = models.CharField(_("gender"), max_length=10, choices=Gender.choices, blank=True)

    lifecycle = models.CharField(_("lifecycle"), max_length=20, choices=Lifecycle.choices, default=Lifecycle.PROSPECT)
    # Set when a person chooses the lifecycle by hand: automatic rules then suggest instead of overwriting.
    lifecycle_manual = models.BooleanField(_("lifecycle set by hand"), default=False)
    stage = models.CharField(_("sales-cycle stage"), max_length=20, choices=Stage.choices, default=Stage.NEW)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_clients",
        verbose_name=_("owner"),
    )
    tier = models.CharField(_("importance tier"), max_length=1, choices=Tier.choices, default=Tier.C)
    source = models.CharField(_("source"), max_length=20, choices=Source.choices, default=Source.OTHER)
    source_detail = models.CharField(_("source detail"), max_length=255, blank=True)
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="clients", verbose_name=_("tags"))
    persona = models.ForeignKey(
        Persona, on_delete=models.SET_NULL, null=True, blank=True, related_name="clients", verbose_name=_("persona")
    )
    preferred_categories = models.ManyToManyField(
        Category, blank=True, related_name="preferred_by", verbose_name=_("preferred product categories")
    )
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    do_not_contact = models.BooleanField(_("do not contact"), default=False)
    notes = models.TextField(_("notes"), blank=True)

    # Purchases are dated by day, so are the dates derived from them.
    converted_at = models.DateField(_("converted on"), null=True, blank=True)
    last_purchase_at = models.DateField(_("last purchase"), null=True, blank=True)
    last_interaction_at = models.DateTimeField(_("last interaction"), null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    objects = ClientQuerySet.as_manager()

    class Meta:
        ordering = ["last_name", "first_name", "id"]
        verbose_name = _("client")
        verbose_name_plural = _("clients")
        indexes = [
            models.Index(fields=["last_name", "first_name", "id"], name="client_name_idx"),
            models.Index(fields=["lifecycle", "last_name", "first_name", "id"], name="client_lifecycle_idx"),
            models.Index(fields=["stage", "last_name", "first_name", "id"], name="client_stage_idx"),
            models.Index(fields=["tier", "last_name", "first_name", "id"], name="client_tier_idx"),
            models.Index(fields=["owner", "last_name", "first_name", "id"], name="client_owner_name_idx"),
            # The "most recent first" sorts (NULLS LAST) have PostgreSQL-only indexes: migration 0003.
            models.Index(fields=["source"], name="client_source_idx"),
            models.Index(fields=["sector"], name="client_sector_idx"),
            models.Index(fields=["city"], name="client_city_idx"),
            models.Index(fields=["country"], name="client_country_idx"),
            models.Index(fields=["company"], name="client_company_idx"),
            models.Index(fields=["last_purchase_at"], name="client_last_purchase_idx"),
        ]
        constraints = [
            # A unique index over the non-blank ids only: most clients have none.
            models.UniqueConstraint(
                fields=["external_id"],
                condition=~models.Q(external_id=""),
                name="client_external_id_unique",
                violation_error_message=_("Another client already has this external id."),
            ),
        ]

    def __str__(self) -> str:
        return self.full_name or self.email or f"#{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("crm:client-detail", args=[self.pk])

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()

    @property
    def days_since_last_interaction(self) -> int | None:
        if self.last_interaction_at is None:
            return None
        return (timezone.now() - self.last_interaction_at).days

    def can_be_edited_by(self, user) -> bool:
        role = roles.role_of(user)
        if role in (roles.MANAGER, roles.ADMIN):
            return True
        return role == roles.REP and self.owner_id == user.pk

    def purchase_figures(self) -> dict:
        """Revenue, order count, average basket and first/last purchase dates, in one query."""
        figures = self.purchases.aggregate(
            revenue=models.Sum("amount"),
            orders=models.Count("id"),
            first=models.Min("purchased_on"),
            last=models.Max("purchased_on"),
        )
        revenue = figures["revenue"] or Decimal("0")
        figures["revenue"] = revenue
        figures["average_basket"] = (
            (revenue / figures["orders"]).quantize(Decimal("0.01")) if figures["orders"] else None
        )
        return figures


class Purchase(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="purchases", verbose_name=_("client"))
    reference = models.CharField(_("reference"), max_length=64, blank=True)
    purchased_on = models.DateField(_("date"))
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    # What the goods sold cost, when known: the gross margin is amount - cost (unknown without it).
    cost = models.DecimalField(_("cost of goods"), max_digits=12, decimal_places=2, null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        ordering = ["-purchased_on", "-id"]
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        indexes = [models.Index(fields=["client", "purchased_on"], name="purchase_client_date_idx")]

    def __str__(self) -> str:
        return self.reference or f"#{self.pk}"


class PurchaseLine(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.CASCADE, related_name="lines", verbose_name=_("purchase"))
    product = models.ForeignKey(
        Product, on_delete=models.PROTECT, related_name="purchase_lines", verbose_name=_("product")
    )
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    unit_price = models.DecimalField(_("unit price"), max_digits=12, decimal_places=2)

    class Meta:
        verbose_name = _("purchase line")
        verbose_name_plural = _("purchase lines")

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product}"

    @property
    def total(self) -> Decimal:
        return self.quantity * self.unit_price


class InteractionKind(models.TextChoices):
    EMAIL = "email", _("Email")
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    LINKEDIN = "linkedin", _("LinkedIn message")
    NOTE = "note", _("Note")
    EVENT = "event", _("Event")


class Direction(models.TextChoices):
    OUTBOUND = "outbound", _("Outbound")
    INBOUND = "inbound", _("Inbound")
    INTERNAL = "internal", _("Internal")


class Interaction(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="interactions", verbose_name=_("client"))
    kind = models.CharField(_("kind"), max_length=20, choices=InteractionKind.choices)
    direction = models.CharField(_("direction"), max_length=10, choices=Direction.choices, default=Direction.OUTBOUND)
    occurred_at = models.DateTimeField(_("when"), default=timezone.now)
    subject = models.CharField(_("subject"), max_length=255, blank=True)
    body = models.TextField(_("details"), blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="interactions",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # Identifies an interaction brought in from elsewhere (e.g. a prospecting tool's activity date), so that
    # importing the same file again creates it only once.
    external_key = models.CharField(_("external key"), max_length=255, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        indexes = [models.Index(fields=["client", "occurred_at"], name="interaction_client_idx")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.subject}".strip()


class FollowUpStatus(models.TextChoices):
    OPEN = "open", _("Open")
    DONE = "done", _("Done")
    CANCELLED = "cancelled", _("Cancelled")


class FollowUpOrigin(models.TextChoices):
    MANUAL = "manual", _("Manual")
    RULE = "rule", _("Rule")
    CAMPAIGN = "campaign", _("Campaign")


class FollowUpQuerySet(models.QuerySet):
    def open(self) -> FollowUpQuerySet:
        return self.filter(status=FollowUpStatus.OPEN)

    def due_by_end_of_today(self) -> FollowUpQuerySet:
        """Open follow-ups due today or overdue (today in the local time zone)."""
        end_of_today = timezone.localtime().replace(hour=23, minute=59, second=59, microsecond=999999)
        return self.open().filter(due_at__lte=end_of_today)


class FollowUp(models.Model):
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="follow_ups", verbose_name=_("client"))
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="follow_ups",
        verbose_name=_("assignee"),
    )
    due_at = models.DateTimeField(_("due"))
    title = models.CharField(_("title"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    status = models.CharField(_("status"), max_length=10, choices=FollowUpStatus.choices, default=FollowUpStatus.OPEN)
    origin = models.CharField(_("origin"), max_length=10, choices=FollowUpOrigin.choices, default=FollowUpOrigin.MANUAL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    # What planned it when that must not plan twice (e.g. "rule:12"): opaque to the CRM, unique among open ones.
    origin_key = models.CharField(_("origin key"), max_length=64, blank=True, default="")

    objects = FollowUpQuerySet.as_manager()

    class Meta:
        ordering = ["due_at", "id"]
        verbose_name = _("follow-up")
        verbose_name_plural = _("follow-ups")
        indexes = [
            models.Index(fields=["assignee", "status", "due_at"], name="followup_assignee_idx"),
            models.Index(fields=["status", "due_at"], name="followup_due_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "origin_key"],
                condition=Q(status=FollowUpStatus.OPEN) & ~Q(origin_key=""),
                name="followup_open_origin_key_uniq",
            )
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def is_overdue(self) -> bool:
        return self.status == FollowUpStatus.OPEN and self.due_at < timezone.now()


class Segment(models.Model):
    """A named, saved set of client-list filters, evaluated live each time it is opened."""

    name = models.CharField(_("name"), max_length=120, unique=True)
    description = models.TextField(_("description"), blank=True)
    filters = models.JSONField(_("filters"), default=dict, blank=True)
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
        ordering = ["name"]
        verbose_name = _("segment")
        verbose_name_plural = _("segments")

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("crm:segment-detail", args=[self.pk])


class ClientChange(models.Model):
    """One field of one client changed by someone: the client's history."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="changes", verbose_name=_("client"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    changed_at = models.DateTimeField(_("when"), default=timezone.now)
    field = models.CharField(_("field"), max_length=64)
    old_value = models.TextField(_("old value"), blank=True)
    new_value = models.TextField(_("new value"), blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        verbose_name = _("client change")
        verbose_name_plural = _("client changes")
        indexes = [models.Index(fields=["client", "changed_at"], name="clientchange_client_idx")]

    def __str__(self) -> str:
        return f"{self.field}: {self.old_value} -> {self.new_value}"


class DeliveryState(models.TextChoices):
    PENDING = "pending", _("Pending")
    SENDING = "sending", _("Sending")
    SENT = "sent", _("Sent")
    FAILED = "failed", _("Failed")
    CANCELLED = "cancelled", _("Not sent (no longer due)")


class Delivery(models.Model):
    """One email to send, with its own state: claimed by one worker at a time, retried, then sent or failed.

    ``crm.reminders`` explains the claiming and why a crash can at worst send one email twice, never lose it.
    """

    state = models.CharField(_("state"), max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    last_error = models.TextField(_("last error"), blank=True)
    claimed_by = models.CharField(_("claimed by"), max_length=100, blank=True)
    claimed_at = models.DateTimeField(_("claimed at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        abstract = True


class ReminderQuerySet(models.QuerySet):
    def failed_for(self, user) -> ReminderQuerySet:
        """Reminders that could not be emailed to ``user`` about follow-ups still open, newest first."""
        return self.filter(
            state=DeliveryState.FAILED, follow_up__assignee=user, follow_up__status=FollowUpStatus.OPEN
        ).order_by("-next_attempt_at", "-id")


class Reminder(Delivery):
    """The email telling a follow-up's assignee that it is due; one per follow-up and due time."""

    follow_up = models.ForeignKey(
        FollowUp, on_delete=models.CASCADE, related_name="reminders", verbose_name=_("follow-up")
    )
    due_at = models.DateTimeField(_("due"))

    objects = ReminderQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("reminder")
        verbose_name_plural = _("reminders")
        constraints = [models.UniqueConstraint(fields=["follow_up", "due_at"], name="reminder_follow_up_due_uniq")]
        # Small partial indexes: the rows waiting to be claimed, and the few claimed right now.
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state=DeliveryState.PENDING), name="reminder_pending_idx"
            ),
            models.Index(fields=["claimed_by"], condition=Q(state=DeliveryState.SENDING), name="reminder_sending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.follow_up_id} @ {self.due_at:%Y-%m-%d %H:%M} ({self.get_state_display()})"


class Digest(Delivery):
    """A rep's morning email of the day's and overdue follow-ups; at most one per rep and day."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    day = models.DateField(_("day"))

    class Meta:
        ordering = ["-day", "-id"]
        verbose_name = _("digest")
        verbose_name_plural = _("digests")
        constraints = [models.UniqueConstraint(fields=["user", "day"], name="digest_user_day_uniq")]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=Q(state=DeliveryState.PENDING), name="digest_pending_idx"
            ),
            models.Index(fields=["claimed_by"], condition=Q(state=DeliveryState.SENDING), name="digest_sending_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} {self.day} ({self.get_state_display()})"


class BulkActionQuerySet(models.QuerySet):
    def visible_to(self, user) -> BulkActionQuerySet:
        """The bulk actions a user may list and undo: his own, or everyone's for managers and admins."""
        role = roles.role_of(user)
        if role in roles.MANAGERS:
            return self
        if role == roles.REP:
            return self.filter(user=user)
        return self.none()


class BulkActionStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    UNDO_QUEUED = "undo_queued", _("Undo queued")
    UNDOING = "undoing", _("Undoing")
    UNDONE = "undone", _("Undone")


class BulkAction(models.Model):
    """One action applied to a selection of clients at once (``crm.bulk``), with what it takes to undo it.

    ``touched`` counts the clients it changed; clients already in the target state are neither counted nor recorded.
    An undoable action keeps one ``BulkActionItem`` per touched client with the value it had before. A large
    selection is applied (and undone) by a worker: ``client_ids`` freezes it at submission until the worker ran.
    """

    RUNNING_STATUSES = (
        BulkActionStatus.QUEUED,
        BulkActionStatus.RUNNING,
        BulkActionStatus.UNDO_QUEUED,
        BulkActionStatus.UNDOING,
    )

    kind = models.CharField(_("action"), max_length=40)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )
    created_at = models.DateTimeField(_("applied at"), default=timezone.now)
    selection = models.TextField(_("selection"), blank=True)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    touched = models.PositiveIntegerField(_("clients touched"), default=0)
    undoable = models.BooleanField(_("can be undone"), default=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("undone by"),
    )
    restored = models.PositiveIntegerField(_("clients restored"), null=True, blank=True)
    left_as_they_are = models.PositiveIntegerField(_("clients left as they are"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=12, choices=BulkActionStatus.choices, default=BulkActionStatus.DONE
    )
    total = models.PositiveIntegerField(_("clients selected"), default=0)
    progress = models.PositiveIntegerField(_("clients processed"), default=0)
    client_ids = models.JSONField(_("selected clients"), default=list, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    error = models.TextField(_("error"), blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    undo_started_at = models.DateTimeField(_("undo started at"), null=True, blank=True)
    # The token of the form that submitted it: the same form sent twice (a double click) makes one action.
    submission = models.CharField(_("submission"), max_length=36, blank=True, default="")

    objects = BulkActionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("bulk action")
        verbose_name_plural = _("bulk actions")
        indexes = [models.Index(fields=["user", "created_at"], name="bulkaction_user_idx")]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "submission"], condition=~models.Q(submission=""), name="bulkaction_submission_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.touched})"

    @property
    def undo_deadline(self):
        return self.created_at + timedelta(hours=settings.CRM_BULK_UNDO_HOURS)

    @property
    def can_undo(self) -> bool:
        return (
            self.status == BulkActionStatus.DONE
            and self.undoable
            and self.undone_at is None
            and self.touched > 0
            and timezone.now() < self.undo_deadline
        )

    @property
    def is_running(self) -> bool:
        """Queued or in the hands of a worker, for the apply or the undo: the page keeps polling."""
        return self.status in self.RUNNING_STATUSES

    @property
    def percent_done(self) -> int:
        undoing = self.status in (BulkActionStatus.UNDO_QUEUED, BulkActionStatus.UNDOING)
        of = self.touched if undoing else self.total
        return min(100, round(100 * self.progress / of)) if of else 0


class BulkActionItem(models.Model):
    """One client a bulk action touched, and what undoing it needs: the value before (``previous``)."""

    action = models.ForeignKey(BulkAction, on_delete=models.CASCADE, related_name="items", verbose_name=_("action"))
    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="+", verbose_name=_("client"))
    previous = models.JSONField(_("value before"), default=dict, blank=True)

    class Meta:
        verbose_name = _("bulk action item")
        verbose_name_plural = _("bulk action items")

    def __str__(self) -> str:
        return f"{self.action_id} / {self.client_id}"
