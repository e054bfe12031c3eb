"""Prospecting models: imports.

An :class:`ImportJob` holds one uploaded file from upload to undo: its kind, the bytes, the column mapping and the
options the admin chose, the status the pages poll, the counts, timings and the error report. The file's bytes are
kept in the database (not under MEDIA_ROOT) so that a worker on another machine reads exactly what was uploaded
without shared storage, and they go away with the job. :class:`ImportChange` rows remember what an applied job
created or changed, so that it can be undone. A :class:`SavedMapping` lets an admin reuse a column mapping.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

__all__ = [
    "ClientKey",
    "ImportChange",
    "ImportChangeAction",
    "ImportEntity",
    "ImportJob",
    "ImportKind",
    "ImportStatus",
    "MatchKey",
    "SavedMapping",
    "UnknownClients",
    "UpdatePolicy",
]


class ImportKind(models.TextChoices):
    PEOPLE = "people", _("Prospects and clients")
    PURCHASES = "purchases", _("Purchase history")


class ImportStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    PREVIEWING = "previewing", _("Previewing")
    PREVIEWED = "previewed", _("Previewed")
    QUEUED = "queued", _("Queued")
    APPLYING = "applying", _("Applying")
    APPLIED = "applied", _("Applied")
    FAILED = "failed", _("Failed")
    UNDONE = "undone", _("Undone")


class UpdatePolicy(models.TextChoices):
    OVERWRITE = "overwrite", _("Overwrite with the file's value")
    FILL_EMPTY = "fill_empty", _("Fill only when empty")
    NEVER = "never", _("Never change")


class MatchKey(models.TextChoices):
    EMAIL_LINKEDIN = "email_linkedin", _("Email, then LinkedIn URL")
    NAME_COMPANY = "name_company", _("First name, last name and company")
    EXTERNAL_ID = "external_id", _("External id (the shop's or invoicing tool's client number)")


class ClientKey(models.TextChoices):
    """How a purchase file names its clients."""

    EMAIL = "email", _("Email")
    EXTERNAL_ID = "external_id", _("External id")


class UnknownClients(models.TextChoices):
    CREATE = "create", _("Create them")
    REPORT = "report", _("Report them as errors")


class ImportJob(models.Model):
    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    filename = models.CharField(_("file name"), max_length=255)
    data = models.BinaryField(_("file"))
    is_waalaxy = models.BooleanField(_("Waalaxy export"), default=False)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("uploaded by"),
    )
    # The file's column names in their order (a PostgreSQL JSON object does not keep the order of its keys).
    header = models.JSONField(_("columns"), default=list, blank=True)
    # {column: field name or None}; options: owner_id, tags, source, policy, field_policies, match_key, client_key,
    # unknown_clients.
    mapping = models.JSONField(_("mapping"), default=dict, blank=True)
    options = models.JSONField(_("options"), default=dict, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=ImportStatus.choices, default=ImportStatus.UPLOADED)
    total_rows = models.PositiveIntegerField(_("rows"), default=0)
    progress = models.PositiveIntegerField(_("rows processed"), default=0)
    created_count = models.PositiveIntegerField(_("created"), default=0)
    updated_count = models.PositiveIntegerField(_("updated"), default=0)
    unchanged_count = models.PositiveIntegerField(_("unchanged"), default=0)
    error_count = models.PositiveIntegerField(_("errors"), default=0)
    # The first rows of the dry run (action, changes) and every error line (line, column, reason, cells).
    preview_rows = models.JSONField(_("preview"), default=list, blank=True)
    errors = models.JSONField(_("error report"), default=list, blank=True)
    error = models.TextField(_("failure"), blank=True)
    preview_seconds = models.FloatField(_("preview time (s)"), null=True, blank=True)
    apply_seconds = models.FloatField(_("apply time (s)"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    previewed_at = models.DateTimeField(_("previewed at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    applied_at = models.DateTimeField(_("applied at"), null=True, blank=True)
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("import")
        verbose_name_plural = _("imports")

    def __str__(self) -> str:
        return self.filename

    def get_absolute_url(self) -> str:
        return reverse("prospecting:import-detail", args=[self.pk])

    @property
    def is_running(self) -> bool:
        return self.status in (ImportStatus.PREVIEWING, ImportStatus.QUEUED, ImportStatus.APPLYING)

    @property
    def can_apply(self) -> bool:
        return self.status in (ImportStatus.PREVIEWED, ImportStatus.FAILED)

    @property
    def can_undo(self) -> bool:
        return self.status == ImportStatus.APPLIED

    @property
    def percent_done(self) -> int:
        if self.status == ImportStatus.APPLIED:
            return 100
        return min(100, int(100 * self.progress / self.total_rows)) if self.total_rows else 0


class ImportEntity(models.TextChoices):
    CLIENT = "client", _("client")
    INTERACTION = "interaction", _("interaction")
    PURCHASE = "purchase", _("purchase")


class ImportChangeAction(models.TextChoices):
    CREATED = "created", _("created")
    UPDATED = "updated", _("updated")


class ImportChange(models.Model):
    """A record an applied job created, or a client it updated with the values it had before (for undo)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="changes", verbose_name=_("import"))
    entity = models.CharField(_("record"), max_length=20, choices=ImportEntity.choices)
    object_id = models.BigIntegerField(_("record id"))
    action = models.CharField(_("action"), max_length=10, choices=ImportChangeAction.choices)
    previous = models.JSONField(_("previous values"), default=dict, blank=True)

    class Meta:
        verbose_name = _("import change")
        verbose_name_plural = _("import changes")
        indexes = [models.Index(fields=["job", "entity", "action"], name="importchange_job_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.get_entity_display()} #{self.object_id}"


class SavedMapping(models.Model):
    name = models.CharField(_("name"), max_length=120)
    kind = models.CharField(_("kind"), max_length=20, choices=ImportKind.choices)
    mapping = models.JSONField(_("mapping"), default=dict)
    # {field name: update policy} chosen with the mapping; fields not named follow the file-wide policy.
    field_policies = models.JSONField(_("update policy by field"), default=dict, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("saved mapping")
        verbose_name_plural = _("saved mappings")
        constraints = [models.UniqueConstraint(fields=["kind", "name"], name="savedmapping_kind_name_unique")]

    def __str__(self) -> str:
        return self.name
