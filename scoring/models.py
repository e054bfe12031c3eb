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


class StudyStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


class ClusterStudyQuerySet(models.QuerySet):
    def done(self) -> ClusterStudyQuerySet:
        return self.filter(status=StudyStatus.DONE)

    def latest_done(self) -> ClusterStudy | None:
        """The study the persona builder shows: the latest one that finished."""
        return self.done().order_by("-finished_at", "-id").first()


class ClusterStudy(models.Model):
    """One clustering of the whole portfolio for the persona builder (``scoring.personas``).

    It keeps what is needed to explain the clusters (descriptions, which variables mattered) and to place a client
    seen later in the same feature space (``fitted``: feature columns, scaling, fill values and cluster centres).
    """

    status = models.CharField(_("status"), max_length=10, choices=StudyStatus.choices, default=StudyStatus.QUEUED)
    phase = models.CharField(_("phase"), max_length=40, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress (%)"), default=0)
    as_of = models.DateField(_("as of"))
    # None: chosen automatically (the best silhouette among 2 to 4 clusters).
    requested_k = models.PositiveSmallIntegerField(_("clusters asked for"), null=True, blank=True)
    k = models.PositiveSmallIntegerField(_("clusters"), null=True, blank=True)
    k_scores = models.JSONField(_("silhouette per number of clusters"), default=dict, blank=True)
    sample_size = models.PositiveIntegerField(_("fitting sample size"))
    clients_count = models.PositiveIntegerField(_("clients clustered"), default=0)
    scoring_run = models.ForeignKey(
        ScoringRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("scoring run")
    )
    # {"columns": [...], "mean": [...], "scale": [...], "fill": {column: value}, "centers": [[...] per cluster]}
    fitted = models.JSONField(_("fitted model"), default=dict, blank=True)
    # One dict per cluster (scoring.clustering.describe_clusters), numbered by size, plus its "profile" text.
    clusters = models.JSONField(_("clusters"), default=list, blank=True)
    # [[variable, share of its variance between clusters], ...], largest first.
    importance = models.JSONField(_("variable importance"), default=list, blank=True)
    timings = models.JSONField(_("timings"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    objects = ClusterStudyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("cluster study")
        verbose_name_plural = _("cluster studies")

    def __str__(self) -> str:
        return f"{self.as_of} ({self.get_status_display()})"

    def cluster(self, number: int) -> dict | None:
        """The description of cluster ``number``, or None."""
        return next((cluster for cluster in self.clusters if cluster.get("cluster") == number), None)


class ClusterLabel(models.Model):
    """The cluster of one client in one study: a narrow table written in bulk, kept for the last few studies."""

    study = models.ForeignKey(ClusterStudy, on_delete=models.CASCADE, related_name="labels", verbose_name=_("study"))
    # No database constraint: a million rows go in by COPY without a check per row, and a deleted client's label is
    # harmless (it matches no client when members are selected).
    client = models.ForeignKey(
        "crm.Client",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
        verbose_name=_("client"),
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"))

    class Meta:
        verbose_name = _("cluster label")
        verbose_name_plural = _("cluster labels")
        indexes = [models.Index(fields=["study", "cluster", "client"], name="clusterlabel_study_idx")]

    def __str__(self) -> str:
        return f"{self.study_id}:{self.client_id} -> {self.cluster}"


class AssignmentStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")


# A pending or running assignment whose row has not moved for this long lost its message or its worker (a batch
# takes seconds): the page offers to assign the members again.
ASSIGNMENT_STALE_SECONDS = 600


class PersonaProfile(models.Model):
    """Where a persona built from data came from, and its centre in that study's feature space (for suggestions).

    It also follows the assignment of the cluster's members to the persona, which a worker does for a large cluster:
    status, members gone through out of the cluster's size, how many of them changed persona, error;
    ``assign_updated_at`` moves with every batch.
    """

    persona = models.OneToOneField(
        "crm.Persona",
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="scoring_profile",
        verbose_name=_("persona"),
    )
    study = models.ForeignKey(
        ClusterStudy, on_delete=models.CASCADE, related_name="persona_profiles", verbose_name=_("study")
    )
    cluster = models.PositiveSmallIntegerField(_("cluster"))
    centroid = models.JSONField(_("centroid"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    assign_status = models.CharField(
        _("member assignment"), max_length=10, choices=AssignmentStatus.choices, default=AssignmentStatus.DONE
    )
    assign_total = models.PositiveIntegerField(_("members to assign"), default=0)
    assign_done = models.PositiveIntegerField(_("members gone through"), default=0)
    assign_changed = models.PositiveIntegerField(_("members who got the persona"), default=0)
    assign_error = models.TextField(_("assignment error"), blank=True)
    assign_updated_at = models.DateTimeField(_("assignment updated at"), default=timezone.now)

    class Meta:
        verbose_name = _("persona profile")
        verbose_name_plural = _("persona profiles")

    def __str__(self) -> str:
        return f"{self.persona_id} <- {self.study_id}:{self.cluster}"

    @property
    def assignment_stalled(self) -> bool:
        """Pending or running, but untouched for longer than a worker would leave it: its message or worker is gone."""
        in_progress = self.assign_status in (AssignmentStatus.PENDING, AssignmentStatus.RUNNING)
        age = (timezone.now() - self.assign_updated_at).total_seconds()
        return in_progress and age > ASSIGNMENT_STALE_SECONDS

    @property
    def assignment_in_progress(self) -> bool:
        in_progress = self.assign_status in (AssignmentStatus.PENDING, AssignmentStatus.RUNNING)
        return in_progress and not self.assignment_stalled

    @property
    def assignment_retryable(self) -> bool:
        return self.assign_status == AssignmentStatus.FAILED or self.assignment_stalled
