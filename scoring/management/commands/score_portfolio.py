"""``manage.py score_portfolio [--as-of YYYY-MM-DD] [--json]``: one scoring run, synchronously, and its summary."""

from __future__ import annotations

import json
import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from scoring import services
from scoring.models import RunStatus, ScoringRun
from scoring.rfm import SEGMENTS


def run_summary(run: ScoringRun) -> dict:
    """The figures the command prints, as one JSON-ready dict."""
    counts = run.counts or {}
    bgnbd = run.bgnbd or {}
    gamma_gamma = run.gamma_gamma or {}
    return {
        "run_id": run.pk,
        "as_of": run.as_of.isoformat(),
        "status": run.status,
        "clients_scored": counts.get("clients_scored", 0),
        "segments": counts.get("segments", {}),
        "lifecycle_changes": counts.get("lifecycle_changes", 0),
        "lifecycle_suggestions": counts.get("lifecycle_suggestions", 0),
        "bgnbd": {
            key: bgnbd.get(key)
            for key in ("r", "alpha", "a", "b", "loglik", "time_unit", "converged", "reason", "reused_from_run")
        },
        "gamma_gamma": {
            key: gamma_gamma.get(key)
            for key in ("p", "q", "gamma", "mean_spend", "converged", "reason", "reused_from_run")
        },
        "seconds": run.timings,
        "warnings": run.warnings,
        "error": run.error,
    }


def _number(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = "Score the whole portfolio as of a date (today by default), synchronously, and print a summary."

    def add_arguments(self, parser):
        parser.add_argument("--as-of", type=date.fromisoformat, help="as-of date, YYYY-MM-DD (default: today)")
        parser.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
        parser.add_argument(
            "--skip-profitability",
            action="store_true",
            help="do not store the analysis page's profitability figures on the run (the worker does it after a "
            "nightly run; without them the page computes its figures when first asked)",
        )

    def handle(self, *args, **options):
        try:
            run = services.scoring_run_create(as_of=options["as_of"])
        except services.ScoringRunInProgress as exc:
            raise CommandError(str(exc)) from exc
        try:
            run = services.scoring_run_execute(run_id=run.pk)
        except Exception:
            run.refresh_from_db()
        summary = run_summary(run)
        if run.status == RunStatus.COMPLETED and not options["skip_profitability"]:
            from scoring import profitability  # pandas: loaded only when a run is scored here

            started = time.perf_counter()
            profitability.profitability_snapshot_store(run_id=run.pk)
            summary["profitability_seconds"] = round(time.perf_counter() - started, 2)
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self._print(summary)
        if run.status != RunStatus.COMPLETED:
            raise CommandError(f"scoring run {run.pk} failed: {run.error}")

    def _print(self, summary: dict) -> None:
        write = self.stdout.write
        write(f"Scoring run {summary['run_id']} as of {summary['as_of']}: {summary['status']}")
        write(f"  clients scored: {summary['clients_scored']:,}")
        for key in SEGMENTS:
            if count := summary["segments"].get(key):
                write(f"    {key:<20} {count:>10,}")
        bgnbd, gamma_gamma = summary["bgnbd"], summary["gamma_gamma"]
        write(
            f"  BG/NBD ({bgnbd['time_unit'] or '-'}): r={_number(bgnbd['r'])} alpha={_number(bgnbd['alpha'])} "
            f"a={_number(bgnbd['a'])} b={_number(bgnbd['b'])} log-likelihood={_number(bgnbd['loglik'], 1)}"
        )
        write(
            f"  Gamma-Gamma: p={_number(gamma_gamma['p'])} q={_number(gamma_gamma['q'])} "
            f"gamma={_number(gamma_gamma['gamma'])}"
        )
        write(
            f"  lifecycle: {summary['lifecycle_changes']:,} changed, "
            f"{summary['lifecycle_suggestions']:,} suggested (set by hand)"
        )
        seconds = summary["seconds"]
        phases = ", ".join(f"{name} {value:.2f}" for name, value in seconds.items() if name != "total")
        write(f"  seconds: {phases}; total {seconds.get('total', 0):.2f}")
        if "profitability_seconds" in summary:
            write(f"  profitability figures stored for the analysis page in {summary['profitability_seconds']:.2f} s")
        for warning in summary["warnings"]:
            write(self.style.WARNING(f"  warning: {warning}"))
