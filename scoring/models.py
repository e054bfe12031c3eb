"""Scoring runs and the scores they produce.

A run scores the whole portfolio as of a date; its scores and dashboard aggregates become visible only when the run
completes (``ScoringRun.objects.current()``), so a failed or killed run leaves the previous figures in place.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RunStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    COMPLETED = "completed", _("Completed")
    FAILED = "failed", _("Failed")


class ScoringRunQuerySet(models.QuerySet):
    def completed(self) -> ScoringRunQuerySet:
        return self.filter(status=RunStatus.COMPLETED)

    def current(self) -> ScoringRun | None:
        """The run whose scores the product shows: the latest completed one."""
        return self.completed().order_by("-finished_at", "-id").first()


class ScoringRun(models.Model):
    as_of = models.DateField(_("as of"))
    status = models.CharField(_("status"), max_length=10, choices=RunStatus.choices, default=RunStatus.PENDING)
    phase = models.CharField(_("phase"), max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    # Inputs: analysis window, CLV settings, lifecycle thresholds, as used by this run.
    parameters = models.JSONField(_("parameters"), default=dict, blank=True)
    # Fitted models: {"r", "alpha", "a", "b", "loglik", "time_unit", "converged", "reason", "reused_from_run"}.
    bgnbd = models.JSONField(_("BG/NBD parameters"), null=True, blank=True)
    # {"p", "q", "gamma", "mean_spend", "converged", "reason", "reused_from_run"}.
    gamma_gamma = models.JSONField(_("Gamma-Gamma parameters"), null=True, blank=True)
    # {"clients_scored": n, "segments": {key: n}, "lifecycle_changes": n, ...}
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    # Seconds per phase and "total".
    timings = models.JSONField(_("timings"), default=dict, blank=True)
    warnings = models.JSONField(_("warnings"), default=list, blank=True)
    # Precomputed aggregates the dashboard reads: grid, segment table, movements, composition, KPIs, per rep.
    dashboard = models.JSONField(_("dashboard aggregates"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("started by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = ScoringRunQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("scoring run")
        verbose_name_plural = _("scoring runs")
        indexes = [models.Index(fields=["status", "finished_at"], name="scoringrun_status_idx")]

    def __str__(self) -> str:
        return f"{self.as_of} ({self.get_status_display()})"


class ClientScore(models.Model):
    """One client's scores in one run."""

    run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="scores", verbose_name=_("run"))
    client = models.ForeignKey("crm.Client", on_delete=models.CASCADE, related_name="scores", verbose_name=_("client"))
    recency_days = models.PositiveIntegerField(_("days since last purchase"))
    frequency = models.PositiveIntegerField(_("orders"))
    monetary = models.DecimalField(_("total spent"), max_digits=14, decimal_places=2)
    r_score = models.PositiveSmallIntegerField("R")
    f_score = models.PositiveSmallIntegerField("F")
    m_score = models.PositiveSmallIntegerField("M")
    rfm_sum = models.PositiveSmallIntegerField(_("RFM score"))
    rfm_code = models.CharField(_("RFM code"), max_length=3)
    segment = models.CharField(_("RFM segment"), max_length=20)
    historical_clv = models.DecimalField(_("historical CLV"), max_digits=14, decimal_places=2)
    p_alive = models.FloatField(_("chance of being active"), null=True, blank=True)
    expected_purchases_12m = models.FloatField(_("expected purchases (12 months)"), null=True, blank=True)
    expected_order_value = models.DecimalField(
        _("expected average order"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    clv_12m = models.DecimalField(
        _("predicted CLV (12 months)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    clv_36m = models.DecimalField(
        _("predicted CLV (36 months)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    # What the behaviour suggests when it differs from a lifecycle chosen by hand (shown on the card beside it).
    suggested_lifecycle = models.CharField(_("suggested lifecycle"), max_length=20, blank=True)

    class Meta:
        verbose_name = _("client score")
        verbose_name_plural = _("client scores")
        constraints = [models.UniqueConstraint(fields=["run", "client"], name="clientscore_run_client_uniq")]
        indexes = [
            models.Index(fields=["client", "run"], name="clientscore_client_idx"),
            models.Index(fields=["run", "segment"], name="clientscore_segment_idx"),
            models.Index(fields=["run", "clv_12m"], name="clientscore_clv_idx"),
            models.Index(fields=["run", "rfm_sum"], name="clientscore_rfm_idx"),
            models.Index(fields=["run", "p_alive"], name="clientscore_alive_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.client_id} {self.rfm_code} {self.segment}"
