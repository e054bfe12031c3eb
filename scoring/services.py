"""Scoring runs: start one, execute it phase by phase, publish it, keep the history of scores bounded.

A run scores every client with a purchase in the analysis window as of a date. It reads the purchases aggregated
per client (``scoring.io``), computes RFM, both CLVs and the BG/NBD and Gamma-Gamma fits in pure functions, writes
its scores in bulk and the dashboard's aggregates, then publishes in one transaction: the lifecycle changes the
clients' behaviour calls for, and the run marked completed. Readers only ever see completed runs
(``ScoringRun.objects.current()``), so a run that fails or is killed leaves the previous figures in place; a failed
run's partial scores are deleted, and so are a killed one's once it is found stale. Progress (phase, percentage, seconds per
phase) is committed as the run goes, for the page that polls it.

The same purchases and the same as-of date give the same scores: the inputs are sorted by client, the fits are
deterministic, and ties in RFM are broken by value only. If a fit fails, the previous completed run's parameters are
used instead and the run says so in its warnings. A BG/NBD fit in its fixed-dropout limit (every client drops out
with the same probability) is a usable model: the run records it in the ``note`` of its BG/NBD parameters.

Lifecycle from behaviour: a client (or a client to reactivate) whose chance of being active is under
``SCORING_P_ALIVE_THRESHOLD``, or whose last purchase is more than ``SCORING_REACTIVATE_AFTER_DAYS`` days before the
as-of date, is "to reactivate", otherwise a client. A lifecycle chosen by hand is never overwritten: the behaviour's
answer is stored as the score's ``suggested_lifecycle`` for the card to show beside it. A run as of a past date
(a replay) changes no lifecycle.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from typing import NamedTuple

import numpy as np
import pandas as pd
from django.conf import settings
from django.db import transaction
from django.db.models import Model, Q
from django.utils import timezone
from django.utils.translation import gettext

from crm.models import Lifecycle
from crm.services import client_lifecycle_apply
from portfolio.queueing import (
    GIVE_UP,
    REQUEUE,
    enqueue_now,
    enqueue_on_commit,
    never_picked_up_message,
    requeue_decision,
)
from scoring import io as scoring_io
from scoring.bgnbd import BgNbdParams, bgnbd_expected_purchases, bgnbd_probability_alive, fit_bgnbd
from scoring.clv import DAYS_PER_MONTH, historical_clv, predictive_clv
from scoring.dashboard import dashboard_aggregates
from scoring.gamma_gamma import GammaGammaParams, fit_gamma_gamma
from scoring.models import RunStatus, ScoringRun
from scoring.rfm import SEGMENTS, compute_rfm

logger = logging.getLogger(__name__)

IN_PROGRESS = (RunStatus.PENDING, RunStatus.RUNNING)
# Phases in order, with the progress (%) reached when each one ends.
PHASES = {
    "aggregate": 25,
    "rfm": 30,
    "fit": 45,
    "predict": 55,
    "lifecycle": 65,
    "write": 85,
    "dashboard": 95,
    "publish": 100,
}
BEHAVIOUR_GOVERNED = (Lifecycle.CLIENT, Lifecycle.TO_REACTIVATE)
TIME_UNIT_NAMES = {1: "days", 7: "weeks"}


class ScoringRunInProgress(Exception):
    """A run is already pending or running: a second one is refused."""

    def __init__(self, run: ScoringRun):
        self.run = run
        super().__init__(
            gettext("A scoring run (as of %(date)s) is already under way; wait for it to finish.")
            % {"date": run.as_of.isoformat()}
        )


class ScoringRunBusy(Exception):
    """The run is being executed elsewhere and is not stale yet: try again in ``retry_in`` seconds."""

    def __init__(self, run: ScoringRun, retry_in: float):
        self.run = run
        self.retry_in = retry_in
        super().__init__(f"scoring run {run.pk} is running since {run.started_at}")


def scoring_parameters(*, as_of: date) -> dict:
    """The settings a run uses, frozen on the run so that its figures can be explained later."""
    months = settings.SCORING_WINDOW_MONTHS
    start = (pd.Timestamp(as_of) - pd.DateOffset(months=months) + pd.Timedelta(days=1)).date() if months else None
    return {
        "window_months": months,
        "window_start": start.isoformat() if start else None,
        "lifespan_years": settings.SCORING_LIFESPAN_YEARS,
        "gross_margin": settings.SCORING_GROSS_MARGIN,
        "annual_discount_rate": settings.SCORING_ANNUAL_DISCOUNT_RATE,
        "p_alive_threshold": settings.SCORING_P_ALIVE_THRESHOLD,
        "reactivate_after_days": settings.SCORING_REACTIVATE_AFTER_DAYS,
        "time_unit_days": settings.SCORING_TIME_UNIT_DAYS,
        "fit_max_clients": settings.SCORING_FIT_MAX_CLIENTS,
        "keep_runs": settings.SCORING_KEEP_RUNS,
        "apply_lifecycle": as_of >= timezone.localdate(),
    }


def scoring_runs_fail_stale(*, now=None) -> int:
    """Mark failed the runs that cannot still be going: pending or running for longer than the task's time limit.

    Their partial scores are deleted by the next completed run's pruning.
    """
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.SCORING_RUN_TIME_LIMIT)
    stale = ScoringRun.objects.filter(
        Q(status=RunStatus.RUNNING, started_at__lt=cutoff) | Q(status=RunStatus.PENDING, created_at__lt=cutoff)
    )
    count = stale.update(
        status=RunStatus.FAILED,
        finished_at=now,
        error=gettext("The run stopped without finishing (its worker was stopped or it ran out of time)."),
    )
    if count:
        logger.warning("marked %d stale scoring run(s) failed", count)
    return count


def scoring_run_recover(*, now=None) -> dict[str, int]:
    """The periodic recovery pass: send again the pending runs no worker took (a message the broker lost), give up
    those never picked up, then fail the runs that cannot still be going (``scoring_runs_fail_stale``)."""
    from scoring.tasks import score_portfolio_task  # the task module imports this one

    now = now or timezone.now()
    counts = {"requeued": 0, "given_up": 0}
    pending = ScoringRun.objects.filter(status=RunStatus.PENDING).values_list("pk", "created_at")
    for run_id, created_at in pending:
        decision = requeue_decision(created_at, now=now, give_up_after=settings.SCORING_RUN_TIME_LIMIT)
        if decision == REQUEUE:
            counts["requeued"] += enqueue_now(score_portfolio_task, run_id)
        elif decision == GIVE_UP:
            counts["given_up"] += ScoringRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
                status=RunStatus.FAILED, finished_at=now, error=never_picked_up_message()
            )
    counts["failed"] = scoring_runs_fail_stale(now=now)
    return counts


def scoring_run_create(*, as_of: date | None = None, user=None) -> ScoringRun:
    """A pending run as of ``as_of`` (today, local time, by default); refused while another one is under way."""
    as_of = as_of or timezone.localdate()
    with transaction.atomic():
        scoring_io.lock_run_start()
        scoring_runs_fail_stale()
        under_way = ScoringRun.objects.filter(status__in=IN_PROGRESS).order_by("created_at").first()
        if under_way is not None:
            raise ScoringRunInProgress(under_way)
        return ScoringRun.objects.create(as_of=as_of, started_by=user, parameters=scoring_parameters(as_of=as_of))


def scoring_run_start(*, as_of: date | None = None, user=None) -> ScoringRun:
    """Create a pending run and have a worker execute it once the transaction commits."""
    from scoring.tasks import score_portfolio_task  # the task module imports this one

    run = scoring_run_create(as_of=as_of, user=user)
    enqueue_on_commit(score_portfolio_task, run.pk, on_failure=lambda error: _fail_unqueued(run.pk))
    return run


def _fail_unqueued(run_id: int) -> None:
    ScoringRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.FAILED,
        error=gettext("The background workers could not be reached; start the run again in a moment."),
        finished_at=timezone.now(),
    )


def scoring_run_execute(*, run_id: int) -> ScoringRun:
    """Execute a pending run to the end, synchronously. Safe to call twice: a finished run is left as it is.

    Raises ``ScoringRunBusy`` if the run is being executed elsewhere (and is not stale); on any error the run is
    marked failed with the error, its partial scores are deleted, and the error is raised again.
    """
    run = _run_claim(run_id)
    if run.status != RunStatus.RUNNING:
        return run
    progress = PhaseProgress(run, PHASES)
    try:
        _run_phases(run, progress)
    except Exception as exc:
        _run_fail(run, exc, progress)
        raise
    _prune_after(run, progress)
    return run


def scoring_scores_prune(*, keep_runs: int) -> None:
    """Keep the scores of the ``keep_runs`` newest completed runs (at least one) and of runs under way, only.

    The runs themselves stay, with their parameters, counts and dashboard aggregates.
    """
    newest = ScoringRun.objects.completed().order_by("-finished_at", "-id").values_list("pk", flat=True)
    under_way = ScoringRun.objects.filter(status__in=IN_PROGRESS).values_list("pk", flat=True)
    scoring_io.scores_delete_except(run_ids=[*newest[: max(keep_runs, 1)], *under_way])


def _run_claim(run_id: int) -> ScoringRun:
    claimed = ScoringRun.objects.filter(pk=run_id, status=RunStatus.PENDING).update(
        status=RunStatus.RUNNING, started_at=timezone.now(), phase="", progress=0, error=""
    )
    run = ScoringRun.objects.get(pk=run_id)
    if claimed or run.status != RunStatus.RUNNING:
        return run
    # Running already: a duplicate delivery while it goes, or a worker that died mid-run.
    if scoring_runs_fail_stale():
        run.refresh_from_db()
    if run.status == RunStatus.RUNNING:
        stale_at = run.started_at + timedelta(seconds=settings.SCORING_RUN_TIME_LIMIT)
        raise ScoringRunBusy(run, retry_in=max((stale_at - timezone.now()).total_seconds(), 0) + 30)
    scoring_io.scores_delete(run_ids=[run.pk])  # what the dead worker had written
    return run


class PhaseProgress:
    """Commits the phase, the percentage and the seconds per phase of a job row (a scoring run, a persona study) as
    it goes, for the page that polls it. ``phases`` gives the percentage reached at the end of each phase."""

    def __init__(self, job: Model, phases: dict[str, int]):
        self.job = job
        self.phases = phases
        self.timings: dict[str, float] = {}
        self.started = time.perf_counter()

    def _save(self, **fields) -> None:
        for name, value in fields.items():
            setattr(self.job, name, value)
        type(self.job).objects.filter(pk=self.job.pk).update(**fields)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        self._save(phase=name)
        started = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - started, 3)
        self.timings.pop("total", None)  # kept last
        self.timings["total"] = round(time.perf_counter() - self.started, 3)
        self._save(progress=self.phases.get(name, self.job.progress), timings=dict(self.timings))


class _Models(NamedTuple):
    bgnbd: BgNbdParams | None
    bgnbd_info: dict
    gamma_gamma: GammaGammaParams | None
    gamma_gamma_info: dict


def _run_phases(run: ScoringRun, progress: PhaseProgress) -> None:
    parameters, as_of = run.parameters, run.as_of
    window_start = date.fromisoformat(parameters["window_start"]) if parameters["window_start"] else None
    previous = ScoringRun.objects.completed().exclude(pk=run.pk).current()
    warnings: list[str] = []

    with progress.phase("aggregate"):
        summary = scoring_io.purchase_summary(start=window_start, end=as_of)
    with progress.phase("rfm"):
        rfm = compute_rfm(summary, as_of=as_of)
        historical = historical_clv(
            summary, as_of=as_of, lifespan_years=parameters["lifespan_years"], gross_margin=parameters["gross_margin"]
        )
    with progress.phase("fit"):
        model_summary = model_summary_from_purchases(summary, as_of=as_of, unit_days=parameters["time_unit_days"])
        models = _fit_models(model_summary, parameters, previous, warnings)
    with progress.phase("predict"):
        predictions = predict(
            model_summary,
            bgnbd=models.bgnbd,
            gamma_gamma=models.gamma_gamma,
            unit_days=parameters["time_unit_days"],
            annual_discount_rate=parameters["annual_discount_rate"],
            gross_margin=parameters["gross_margin"],
        )
        scores = scores_frame(rfm, historical, predictions)
    with progress.phase("lifecycle"):
        clients = scoring_io.client_facts()
        behaviour = lifecycle_from_behaviour(
            scores,
            clients,
            p_alive_threshold=parameters["p_alive_threshold"],
            reactivate_after_days=parameters["reactivate_after_days"],
        )
        suggested = behaviour[behaviour["manual"]].set_index("client_id")["behaviour"]
        scores["suggested_lifecycle"] = scores["client_id"].map(suggested).astype(object).fillna("")
        changes = behaviour[~behaviour["manual"]] if parameters["apply_lifecycle"] else behaviour.iloc[:0]
        if not parameters["apply_lifecycle"]:
            warnings.append(gettext("The as-of date is in the past: no lifecycle was changed."))
    with progress.phase("write"):
        scoring_io.scores_delete(run_ids=[run.pk])  # leftovers of an earlier attempt at this run
        scoring_io.scores_write(run_id=run.pk, scores=scores)
    with progress.phase("dashboard"):
        dashboard = _dashboard(scores, clients, changes, previous, as_of)
    with progress.phase("publish"), transaction.atomic():
        changed = client_lifecycle_apply(
            changes=dict(zip(changes["client_id"].tolist(), changes["behaviour"].tolist(), strict=True)),
            reason=gettext("scoring run as of %(date)s") % {"date": as_of.isoformat()},
        )
        segment_counts = scores["segment"].astype(str).value_counts()
        run.counts = {
            "clients_scored": len(scores),
            "segments": {key: int(segment_counts.get(key, 0)) for key in SEGMENTS},
            "lifecycle_changes": changed,
            "lifecycle_suggestions": len(suggested),
            "clients_in_portfolio": len(clients),
        }
        _run_complete(run, models=models, dashboard=dashboard, warnings=warnings)


def _fit_models(model_summary: pd.DataFrame, parameters: dict, previous: ScoringRun | None, warnings: list) -> _Models:
    unit_days = parameters["time_unit_days"]
    sample = model_summary[fit_sample(model_summary["client_id"], max_clients=parameters["fit_max_clients"])]
    bgnbd = fit_bgnbd(sample["frequency"], sample["recency"], sample["T"])
    gamma_gamma = fit_gamma_gamma(sample["frequency"], sample["monetary"])
    return _Models(
        *_fitted_or_previous(bgnbd, previous, unit_days, warnings),
        *_fitted_or_previous(gamma_gamma, previous, unit_days, warnings),
    )


def _dashboard(
    scores: pd.DataFrame, clients: pd.DataFrame, changes: pd.DataFrame, previous: ScoringRun | None, as_of: date
) -> dict:
    """The dashboard's aggregates, with the lifecycles as they will be once the run's changes are published."""
    planned = pd.Series(changes["behaviour"].to_numpy(), index=changes["client_id"].to_numpy())
    lifecycle = clients["client_id"].map(planned).astype(object).fillna(clients["lifecycle"].astype(object))
    return dashboard_aggregates(
        scores=scores,
        clients=clients.assign(lifecycle=lifecycle),
        previous=scoring_io.run_segments(previous.pk) if previous else None,
        owners=scoring_io.owner_names(clients["owner_id"].dropna().astype(np.int64).unique().tolist()),
        as_of=as_of,
    )


def _run_complete(run: ScoringRun, *, models: _Models, dashboard: dict, warnings: list[str]) -> None:
    run.bgnbd = models.bgnbd_info
    run.gamma_gamma = models.gamma_gamma_info
    run.warnings = warnings
    run.dashboard = dashboard
    run.status = RunStatus.COMPLETED
    run.phase = ""
    run.progress = 100
    run.finished_at = timezone.now()
    run.save()


def _prune_after(run: ScoringRun, progress: PhaseProgress) -> None:
    """Bound the history once the run is published; a failure here leaves the run completed."""
    try:
        with progress.phase("prune"):
            scoring_scores_prune(keep_runs=run.parameters["keep_runs"])
    except Exception:
        logger.exception("pruning old scores after scoring run %s failed", run.pk)


def _run_fail(run: ScoringRun, exc: Exception, progress: PhaseProgress) -> None:
    logger.exception("scoring run %s failed in phase %r", run.pk, run.phase)
    try:
        scoring_io.scores_delete(run_ids=[run.pk])
    except Exception:
        logger.exception("could not delete the partial scores of scoring run %s", run.pk)
    run.status = RunStatus.FAILED
    run.error = f"{type(exc).__name__}: {exc}"[:2000]
    run.finished_at = timezone.now()
    run.timings = dict(progress.timings)
    ScoringRun.objects.filter(pk=run.pk).update(
        status=run.status, error=run.error, finished_at=run.finished_at, timings=run.timings
    )


# Model parameters: fitted, or the previous run's when the fit fails.


def _finite_or_none(value) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _params_info(params: BgNbdParams | GammaGammaParams, unit_days: float) -> dict:
    if isinstance(params, BgNbdParams):
        info = {name: _finite_or_none(getattr(params, name)) for name in ("r", "alpha", "a", "b", "loglik")}
        info.update(time_unit=TIME_UNIT_NAMES.get(unit_days, f"{unit_days} days"), time_unit_days=unit_days)
        fixed = params.converged and params.fixed_dropout
        info.update(note=params.note, dropout_probability=params.dropout_probability if fixed else None)
    else:
        info = {name: _finite_or_none(getattr(params, name)) for name in ("p", "q", "gamma", "loglik")}
        info["mean_spend"] = _finite_or_none(params.mean_spend) if params.converged else None
    info.update(converged=params.converged, reason=params.reason, reused_from_run=None, n_customers=params.n_customers)
    return info


def _previous_params(previous: ScoringRun | None, kind: type, unit_days: float):
    """The parameters the previous completed run used, in this run's time unit, or None when it had none."""
    stored = (previous.bgnbd if kind is BgNbdParams else previous.gamma_gamma) if previous else None
    names = ("r", "alpha", "a", "b") if kind is BgNbdParams else ("p", "q", "gamma")
    used = stored and (stored.get("converged") or stored.get("reused_from_run"))
    if not used or any(stored.get(name) is None for name in names):
        return None
    values = {name: float(stored[name]) for name in names}
    if kind is BgNbdParams:
        # The purchase rate's scale is per time unit: alpha is in units of time.
        values["alpha"] *= unit_days / stored.get("time_unit_days", unit_days)
    loglik = stored.get("loglik")
    return kind(**values, loglik=float("nan") if loglik is None else loglik, converged=True), stored


def _fitted_or_previous(fitted, previous: ScoringRun | None, unit_days: float, warnings: list[str]):
    """The parameters to predict with (None: no model at all) and what the run records about them."""
    model = "BG/NBD" if isinstance(fitted, BgNbdParams) else "Gamma-Gamma"
    if fitted.converged:
        return fitted, _params_info(fitted, unit_days)
    reused = _previous_params(previous, type(fitted), unit_days)
    if reused is None:
        warnings.append(
            gettext("The %(model)s fit failed (%(reason)s) and no earlier run has parameters: no prediction.")
            % {"model": model, "reason": fitted.reason}
        )
        return None, _params_info(fitted, unit_days)
    params, stored = reused
    source_run = stored.get("reused_from_run") or previous.pk
    warnings.append(
        gettext("The %(model)s fit failed (%(reason)s): the parameters of run %(run)s are used.")
        % {"model": model, "reason": fitted.reason, "run": source_run}
    )
    info = _params_info(params, unit_days)
    info.update(converged=False, reason=fitted.reason, reused_from_run=source_run, n_customers=fitted.n_customers)
    return params, info


# Pure computations of a run: DataFrames in, DataFrames out.


def model_summary_from_purchases(summary: pd.DataFrame, *, as_of: date, unit_days: float) -> pd.DataFrame:
    """BG/NBD and Gamma-Gamma inputs from the per-client purchase summary of ``scoring.io.purchase_summary``.

    The same figures as ``scoring.summary.summary_from_orders`` with the cut-off at ``as_of``: purchases are days
    with an order, ``monetary`` the mean total of the days after the first.
    """
    frequency = summary["purchase_days"].to_numpy(np.int64) - 1
    first = pd.to_datetime(summary["first_purchase"])
    repeat_revenue = summary["revenue"].to_numpy(float) - summary["first_day_revenue"].to_numpy(float)
    return pd.DataFrame(
        {
            "client_id": summary["client_id"].to_numpy(),
            "frequency": frequency,
            "recency": (pd.to_datetime(summary["last_purchase"]) - first).dt.days.to_numpy(float) / unit_days,
            "T": (pd.Timestamp(as_of) - first).dt.days.to_numpy(float) / unit_days,
            "monetary": np.divide(repeat_revenue, frequency, out=np.zeros(len(frequency)), where=frequency > 0),
        },
        index=summary.index,
    )


def fit_sample(client_ids: pd.Series, *, max_clients: int) -> np.ndarray:
    """Mask of the clients the models are fitted on: all of them, or at most about ``max_clients`` (0: all).

    The sample is drawn by a hash of the client id, not at random: the same clients are in it from one run to the
    next, so the fitted parameters move only with the clients' purchases.
    """
    ids = client_ids.to_numpy(np.uint64)
    if not max_clients or len(ids) <= max_clients:
        return np.ones(len(ids), dtype=bool)
    hashed = (ids * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(11)  # Fibonacci hashing, top 53 bits
    return hashed.astype(float) < (max_clients / len(ids)) * 2.0**53


def predict(
    model_summary: pd.DataFrame,
    *,
    bgnbd: BgNbdParams | None,
    gamma_gamma: GammaGammaParams | None,
    unit_days: float,
    annual_discount_rate: float,
    gross_margin: float,
) -> pd.DataFrame:
    """``p_alive, expected_purchases_12m, expected_order_value, clv_12m, clv_36m`` per client (NaN without a model).

    Purchases need the BG/NBD parameters; order values and CLVs need both models.
    """
    nan = np.full(len(model_summary), np.nan)
    columns = dict.fromkeys(("p_alive", "expected_purchases_12m", "expected_order_value", "clv_12m", "clv_36m"), nan)
    if bgnbd is not None and gamma_gamma is not None:
        predicted = predictive_clv(
            model_summary,
            bgnbd=bgnbd,
            gamma_gamma=gamma_gamma,
            unit_days=unit_days,
            annual_discount_rate=annual_discount_rate,
            gross_margin=gross_margin,
        )
        columns.update(
            p_alive=predicted["probability_alive"].to_numpy(),
            expected_purchases_12m=predicted["expected_purchases_12m"].to_numpy(),
            expected_order_value=predicted["expected_order_value"].to_numpy(),
            clv_12m=predicted["clv_12m"].to_numpy(),
            clv_36m=predicted["clv_36m"].to_numpy(),
        )
    elif bgnbd is not None:
        x, t_x, T = (model_summary[name].to_numpy(float) for name in ("frequency", "recency", "T"))
        columns.update(
            p_alive=bgnbd_probability_alive(x, t_x, T, params=bgnbd),
            expected_purchases_12m=bgnbd_expected_purchases(12 * DAYS_PER_MONTH / unit_days, x, t_x, T, params=bgnbd),
        )
    return pd.DataFrame(columns, index=model_summary.index)


def scores_frame(rfm: pd.DataFrame, historical: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per scored client with every ``ClientScore`` column but the suggestion (all frames share an index)."""
    scores = rfm.copy()
    scores["historical_clv"] = historical["historical_clv"]
    for column in predictions.columns:
        scores[column] = predictions[column]
    return scores


def lifecycle_from_behaviour(
    scores: pd.DataFrame, clients: pd.DataFrame, *, p_alive_threshold: float, reactivate_after_days: int
) -> pd.DataFrame:
    """The scored clients whose lifecycle their behaviour contradicts: ``client_id, lifecycle, behaviour, manual``.

    Only clients and clients to reactivate are governed by behaviour: prospects become clients when they buy (crm
    does that), and "lost" is a person's call. Without a chance of being active, recency alone decides.
    """
    facts = scores[["client_id", "p_alive", "recency_days"]].merge(
        clients[["client_id", "lifecycle", "lifecycle_manual"]], on="client_id", how="inner"
    )
    inactive = (facts["p_alive"] < p_alive_threshold) | (facts["recency_days"] > reactivate_after_days)
    behaviour = np.where(inactive, Lifecycle.TO_REACTIVATE.value, Lifecycle.CLIENT.value)
    lifecycle = facts["lifecycle"].astype(str)
    contradicted = lifecycle.isin([str(value) for value in BEHAVIOUR_GOVERNED]) & (lifecycle != behaviour)
    return pd.DataFrame(
        {
            "client_id": facts["client_id"].to_numpy(np.int64),
            "lifecycle": lifecycle.to_numpy(),
            "behaviour": behaviour,
            "manual": facts["lifecycle_manual"].to_numpy(bool),
        }
    )[contradicted.to_numpy()].reset_index(drop=True)
