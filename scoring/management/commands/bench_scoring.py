"""``manage.py bench_scoring [--as-of YYYY-MM-DD] [--json]``: the time of a full scoring run against its floor.

Meant for PostgreSQL holding a large portfolio (see ``generate_portfolio``). In one invocation it measures the floor
(PostgreSQL alone aggregating the orders per client and streaming the result out, before and after the run), a full
scoring run through the service (every phase: aggregate, RFM, fits, both CLVs, lifecycle, scores written, dashboard
aggregates, publication, pruning), the run's ratio to the floor, the process's peak memory and the dashboard page's
server time. When the fit gives no usable BG/NBD model, it also times the prediction phase with the published CDNOW
parameters, so that the cost of both CLVs is known whatever the data.
"""

from __future__ import annotations

import json
import os
import resource
import time
import warnings
from datetime import date

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test import Client as Browser
from django.test import override_settings
from django.urls import NoReverseMatch, reverse

from crm import roles
from crm.models import Purchase
from scoring import io as scoring_io
from scoring import services
from scoring.bgnbd import BgNbdParams
from scoring.gamma_gamma import GammaGammaParams
from scoring.models import RunStatus

FLOOR_SQL = (
    "SELECT client_id, count(*), sum(amount), min(purchased_on), max(purchased_on) FROM {table} GROUP BY client_id"
)
DASHBOARD_REQUESTS = 10
WARM_UP_REQUESTS = 2
BENCH_MANAGER = "bench_manager"
# Fader, Hardie & Lee's CDNOW estimates (weeks): typical parameters for timing the predictions.
REFERENCE_BGNBD = BgNbdParams(r=0.243, alpha=4.414, a=0.793, b=2.426, loglik=float("nan"), converged=True)
REFERENCE_GAMMA_GAMMA = GammaGammaParams(p=6.25, q=3.74, gamma=15.44, loglik=float("nan"), converged=True)


class _Discard:
    def write(self, data) -> int:
        return len(data)


def _floor_seconds() -> float:
    """PostgreSQL alone: the orders aggregated per client and streamed out, nothing kept."""
    sql = FLOOR_SQL.format(table=Purchase._meta.db_table)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT", _Discard())
    return time.perf_counter() - started


def _peak_memory_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def _predict_with_reference_parameters(run) -> float:
    """Seconds of the prediction phase (both models, every scored client) with the reference parameters."""
    parameters = run.parameters
    start = date.fromisoformat(parameters["window_start"]) if parameters["window_start"] else None
    summary = scoring_io.purchase_summary(start=start, end=run.as_of)
    model_summary = services.model_summary_from_purchases(
        summary, as_of=run.as_of, unit_days=parameters["time_unit_days"]
    )
    started = time.perf_counter()
    services.predict(
        model_summary,
        bgnbd=REFERENCE_BGNBD,
        gamma_gamma=REFERENCE_GAMMA_GAMMA,
        unit_days=parameters["time_unit_days"],
        annual_discount_rate=parameters["annual_discount_rate"],
        gross_margin=parameters["gross_margin"],
    )
    return time.perf_counter() - started


def _dashboard_timings(requests: int) -> dict:
    try:
        url = reverse("scoring:dashboard")
    except NoReverseMatch:
        return {"note": "no scoring:dashboard URL yet: page not measured"}
    user, _created = get_user_model().objects.get_or_create(username=BENCH_MANAGER)
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    storages = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    with (
        override_settings(ALLOWED_HOSTS=[*settings.ALLOWED_HOSTS, "testserver"], STORAGES=storages),
        warnings.catch_warnings(),
    ):
        warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
        browser = Browser()
        browser.force_login(user)
        for _ in range(WARM_UP_REQUESTS):
            browser.get(url, secure=True)
        timings, statuses = [], set()
        for _ in range(requests):
            started = time.perf_counter()
            statuses.add(browser.get(url, secure=True).status_code)
            timings.append((time.perf_counter() - started) * 1000)
    return {
        "url": url,
        "status": max(statuses - {200}, default=200),
        "p50_ms": round(float(np.percentile(timings, 50)), 1),
        "p95_ms": round(float(np.percentile(timings, 95)), 1),
        "max_ms": round(max(timings), 1),
    }


class Command(BaseCommand):
    help = (
        "Time a full scoring run per phase against the floor (PostgreSQL alone aggregating the orders per client), "
        "with the ratio, the peak memory and the dashboard's server time. The run is a real one: it becomes the "
        "current run and, as of today, updates lifecycles."
    )

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=date.fromisoformat, help="as-of date, YYYY-MM-DD (default: today)")
        parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
        parser.add_argument("--dashboard-requests", type=int, default=DASHBOARD_REQUESTS)

    def handle(self, *args, **options):
        if not scoring_io.is_postgresql():
            raise CommandError("bench_scoring measures PostgreSQL: set DATABASE_URL=postgres://...")
        floors = [_floor_seconds()]
        try:
            run = services.scoring_run_create(as_of=options["as_of"])
        except services.ScoringRunInProgress as exc:
            raise CommandError(str(exc)) from exc
        started = time.perf_counter()
        run = services.scoring_run_execute(run_id=run.pk)
        wall = time.perf_counter() - started
        if run.status != RunStatus.COMPLETED:
            raise CommandError(f"scoring run {run.pk} failed: {run.error}")
        peak = _peak_memory_mb()
        floors.append(_floor_seconds())
        floor = sum(floors) / len(floors)
        figures = {
            "run_id": run.pk,
            "as_of": run.as_of.isoformat(),
            "clients_scored": run.counts["clients_scored"],
            "lifecycle_changes": run.counts["lifecycle_changes"],
            "phases": run.timings,
            "run_seconds": round(wall, 2),
            "floor_seconds": round(floor, 2),
            "floor_samples": [round(seconds, 2) for seconds in floors],
            "ratio": round(wall / floor, 2),
            "peak_memory_mb": round(peak),
            "bgnbd_usable": run.bgnbd["converged"] or run.bgnbd["reused_from_run"] is not None,
            "warnings": run.warnings,
            "load_average": [round(load, 2) for load in os.getloadavg()],
        }
        if not figures["bgnbd_usable"]:
            predict = _predict_with_reference_parameters(run)
            figures["predict_seconds_with_reference_parameters"] = round(predict, 2)
            figures["run_seconds_with_predictions"] = round(wall + predict, 2)
            figures["ratio_with_predictions"] = round((wall + predict) / floor, 2)
        figures["dashboard"] = _dashboard_timings(options["dashboard_requests"])
        figures["peak_memory_mb_with_extras"] = round(_peak_memory_mb())
        if options["json"]:
            self.stdout.write(json.dumps(figures, indent=2))
        else:
            self._print(figures)

    def _print(self, figures: dict) -> None:
        write = self.stdout.write
        write(f"load average: {' '.join(str(load) for load in figures['load_average'])}")
        write(f"scoring run {figures['run_id']} as of {figures['as_of']}: {figures['clients_scored']:,} clients scored")
        for phase, seconds in figures["phases"].items():
            if phase != "total":
                write(f"  {phase:<12} {seconds:>8.2f} s")
        write(f"  {'run':<12} {figures['run_seconds']:>8.2f} s")
        floors = ", ".join(f"{seconds:.2f}" for seconds in figures["floor_samples"])
        write(f"floor (PostgreSQL alone, GROUP BY client streamed out): {figures['floor_seconds']:.2f} s ({floors})")
        write(f"ratio run / floor: {figures['ratio']:.2f}x (aim: 3x or less); budget 60 s")
        if "predict_seconds_with_reference_parameters" in figures:
            write(
                "BG/NBD gave no usable model on this data; predictions with the published CDNOW parameters take "
                f"{figures['predict_seconds_with_reference_parameters']:.2f} s: run with them "
                f"{figures['run_seconds_with_predictions']:.2f} s, ratio {figures['ratio_with_predictions']:.2f}x"
            )
        write(f"peak memory: {figures['peak_memory_mb']:,} MB (budget 2,048 MB)")
        dashboard = figures["dashboard"]
        if "note" in dashboard:
            write(f"dashboard: {dashboard['note']}")
        else:
            write(
                f"dashboard {dashboard['url']}: p50 {dashboard['p50_ms']} ms, p95 {dashboard['p95_ms']} ms, "
                f"max {dashboard['max_ms']} ms (HTTP {dashboard['status']}; budget 300 ms)"
            )
        for warning in figures["warnings"]:
            write(self.style.WARNING(f"warning: {warning}"))
