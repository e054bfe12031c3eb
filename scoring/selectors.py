"""Reads of the scoring results for pages: the run the product shows, the latest run's state, a client's history.

Every read here is bounded: one row, or at most ``TREND_RUNS`` rows through the (client, run) index. Only the
dashboard needs a run's ``dashboard`` aggregates; every other read leaves that large JSON column in the database.
"""

from __future__ import annotations

from scoring.models import ClientScore, RunStatus, ScoringRun, ScoringRunQuerySet
from scoring.rfm import SEGMENTS, Segment

TREND_RUNS = 12
HEAVY_RUN_FIELDS = ("dashboard",)


def current_run(*, with_dashboard: bool = False) -> ScoringRun | None:
    """The latest completed run, whose figures the product shows; its dashboard aggregates only when asked."""
    runs = ScoringRun.objects.all() if with_dashboard else ScoringRun.objects.defer(*HEAVY_RUN_FIELDS)
    return runs.current()


def current_run_id() -> int | None:
    run = ScoringRun.objects.only("id").current()
    return run.pk if run else None


def latest_run() -> ScoringRun | None:
    """The run started last, whatever its status: the one whose progress a manager watches."""
    return ScoringRun.objects.defer(*HEAVY_RUN_FIELDS).select_related("started_by").first()


def run_history() -> ScoringRunQuerySet:
    """Every run, newest first, without the dashboard aggregates."""
    return ScoringRun.objects.defer(*HEAVY_RUN_FIELDS).select_related("started_by")


def client_score_history(client_id: int, *, limit: int = TREND_RUNS) -> list[ClientScore]:
    """The client's scores in the last ``limit`` completed runs, newest first, each with its run."""
    return list(
        ClientScore.objects.filter(client_id=client_id, run__status=RunStatus.COMPLETED)
        .select_related("run")
        .defer(*(f"run__{field}" for field in HEAVY_RUN_FIELDS))
        .order_by("-run__finished_at", "-run_id")[:limit]
    )


def segment_of(key: str) -> Segment | None:
    return SEGMENTS.get(key)
