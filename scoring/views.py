"""The scoring pages, for managers and admins: the segment dashboard, starting a run and watching it, the runs.

The dashboard reads only the aggregates the current run stored when it completed (``ScoringRun.dashboard``): one
row, whatever the size of the portfolio. A newer run that is still going or failed changes nothing on it until it
completes; the progress partial polls while a run is going and reloads the page once it has finished.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST, require_safe

from crm import roles
from crm.models import Lifecycle, Source
from scoring.models import RunStatus, ScoringRun
from scoring.rfm import SEGMENT_GRID, SEGMENTS
from scoring.selectors import current_run, current_run_id, latest_run, run_history

RUNS_PER_PAGE = 50
# Bootstrap's bg-opacity steps: the grid's colour scale, from the emptiest cell to the fullest.
GRID_SHADES = (10, 25, 50, 75, 100)
REP_UNASSIGNED = "none"
IN_PROGRESS = frozenset({RunStatus.PENDING, RunStatus.RUNNING})
# Labels of what a run records (scoring.services), by their keys; an unknown key is shown as it is.
COUNT_LABELS = {
    "clients_in_portfolio": _("clients in the portfolio"),
    "clients_scored": _("clients scored"),
    "lifecycle_changes": _("lifecycle changes"),
    "lifecycle_suggestions": _("lifecycle suggestions (set by hand)"),
}
PHASE_LABELS = {
    "aggregate": _("reading purchases"),
    "rfm": _("RFM and historical CLV"),
    "fit": _("fitting the models"),
    "predict": _("predictions"),
    "lifecycle": _("lifecycle"),
    "write": _("writing the scores"),
    "dashboard": _("dashboard figures"),
    "publish": _("publishing"),
    "prune": _("removing old scores"),
}
PARAMETER_LABELS = {
    "window_months": _("analysis window (months)"),
    "window_start": _("analysis window start"),
    "lifespan_years": _("expected lifespan (years)"),
    "gross_margin": _("gross margin"),
    "annual_discount_rate": _("annual discount rate"),
    "p_alive_threshold": _("to reactivate below this chance of being active"),
    "reactivate_after_days": _("to reactivate after (days without purchase)"),
    "time_unit_days": _("model time unit (days)"),
    "keep_runs": _("runs whose scores are kept"),
    "apply_lifecycle": _("lifecycles updated"),
}
TIME_UNITS = {"days": _("days"), "weeks": _("weeks")}
# The fitted parameters shown, by their names in the run (the models' own symbols need no translation).
BGNBD_PARAMS = {"r": "r", "alpha": "alpha", "a": "a", "b": "b", "loglik": _("log-likelihood")}
GAMMA_GAMMA_PARAMS = {"p": "p", "q": "q", "gamma": "gamma", "loglik": _("log-likelihood")}
PARAMETER_LABELS = {
    "lifespan_years": _("expected lifespan (years)"),
    "gross_margin": _("gross margin"),
    "annual_discount_rate": _("annual discount rate"),
}


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true" and not request.headers.get("HX-History-Restore-Request")


def _client_list_url(**params) -> str:
    return f"{reverse('crm:client-list')}?{urlencode(params)}"


def _percent(share: float | None) -> float | None:
    return None if share is None else share * 100


def _segment_label(key: str | None) -> str:
    segment = SEGMENTS.get(key or "")
    return segment.label if segment else key


def _grid_rows(cells: list[dict]) -> list[dict]:
    """The R x F grid, R = 5 on top, each cell with its clients, revenue, colour step and link to those clients."""
    by_position = {(cell["r"], cell["f"]): cell for cell in cells}
    fullest = max((cell["clients"] for cell in cells), default=0)
    rows = []
    for r in range(5, 0, -1):
        row = []
        for f in range(1, 6):
            cell = by_position.get((r, f), {})
            clients = cell.get("clients", 0)
            shade = GRID_SHADES[-(-len(GRID_SHADES) * clients // fullest) - 1] if clients else 0
            row.append(
                {
                    "f": f,
                    "clients": clients,
                    "revenue": cell.get("revenue", 0),
                    "shade": shade,
                    "segment_label": _segment_label(SEGMENT_GRID[r - 1][f - 1]),
                    "url": _client_list_url(r=r, f=f),
                }
            )
        rows.append({"r": r, "cells": row})
    return rows


def _segment_rows(segments: list[dict]) -> list[dict]:
    """The segment table in the order of the segments' definition, each with its action and its clients' link."""
    order = {key: position for position, key in enumerate(SEGMENTS)}
    rows = []
    for row in sorted(segments, key=lambda row: order.get(row["key"], len(order))):
        segment = SEGMENTS.get(row["key"])
        rows.append(
            {
                **row,
                "label": segment.label if segment else row["key"],
                "action": segment.action if segment else "",
                "revenue_percent": _percent(row.get("revenue_share")),
                "url": _client_list_url(segment=row["key"]),
            }
        )
    return rows


def _movement_rows(movements: list[dict]) -> list[dict]:
    rows = [
        {
            "from_label": _segment_label(move["from"]) if move["from"] else _("Not scored before"),
            "to_label": _segment_label(move["to"]),
            "clients": move["clients"],
            "stayed": move["from"] == move["to"],
        }
        for move in movements
    ]
    return sorted(rows, key=lambda row: (row["stayed"], -row["clients"]))


def _composition_rows(composition: dict) -> list[dict]:
    total = sum(composition.values())
    return [
        {
            "label": label,
            "count": composition.get(value, 0),
            "percent": 100 * composition.get(value, 0) / total if total else None,
        }
        for value, label in Lifecycle.choices
    ]


def _conversion_rows(rows: list[dict], *, key: str, labels: dict | None = None) -> list[dict]:
    return [
        {**row, "label": labels.get(row[key], row[key]) if labels else row[key], "percent": _percent(row["rate"])}
        for row in rows
    ]


def _chart(kind: str, labels: list, series: list[tuple[str, list]]) -> dict:
    """A chart for static/js/scoring-charts.js: its type, labels and datasets; labels as text for json_script."""
    return {
        "type": kind,
        "labels": [str(label) for label in labels],
        "datasets": [{"label": str(name), "data": data} for name, data in series],
    }


def _charts(segments: list[dict], composition: list[dict], by_month: list[dict]) -> dict:
    segment_labels = [row["label"] for row in segments]
    return {
        "segments": _chart("bar", segment_labels, [(_("Clients"), [row["clients"] for row in segments])]),
        "revenue": _chart("doughnut", segment_labels, [(_("Revenue"), [row["revenue"] for row in segments])]),
        "composition": _chart(
            "doughnut", [row["label"] for row in composition], [(_("People"), [row["count"] for row in composition])]
        ),
        "conversion": _chart(
            "line",
            [row["month"] for row in by_month],
            [(_("Conversion rate (%)"), [row["percent"] for row in by_month])],
        ),
    }


def _rep_value(rep: dict) -> str:
    return REP_UNASSIGNED if rep.get("owner_id") is None else str(rep["owner_id"])


def _rep_figures(per_rep: list[dict], selected: str | None) -> dict | None:
    """The figures of the rep chosen in the dashboard's selector, shaped like the whole portfolio's."""
    rep = next((rep for rep in per_rep if _rep_value(rep) == selected), None)
    if rep is None:
        return None
    counts = rep.get("segments", {})
    segments = [
        {"label": _segment_label(key), "clients": counts[key], "url": _client_list_url(segment=key, owner=selected)}
        for key in SEGMENTS
        if counts.get(key)
    ]
    return {
        **rep,
        "name": rep["owner"] if rep.get("owner_id") is not None else _("Unassigned"),
        "conversion_percent": _percent(rep.get("conversion_rate")),
        "composition_rows": _composition_rows(rep.get("composition", {})),
        "segment_rows": segments,
        "chart": {
            "segments": _chart(
                "bar", [row["label"] for row in segments], [(_("Clients"), [r["clients"] for r in segments])]
            )
        },
    }


def _figure_rows(figures: dict, labels: dict) -> list[tuple[str, object]]:
    """The plain numbers of a run's counts or timings, labelled, in the order the run recorded them."""
    return [
        (labels.get(key, key.replace("_", " ")), value)
        for key, value in figures.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    ]


def _run_row(run: ScoringRun) -> dict:
    return {
        "run": run,
        "clients_scored": run.counts.get("clients_scored"),
        "counts": _figure_rows(run.counts, COUNT_LABELS),
        "timings": _figure_rows({k: v for k, v in run.timings.items() if k != "total"}, PHASE_LABELS),
        "total_seconds": run.timings.get("total"),
    }


def _model_rows(name: str, fitted: dict | None, params: dict[str, str]) -> dict:
    fitted = fitted or {}
    return {
        "name": name,
        "params": [(label, fitted[key]) for key, label in params.items() if isinstance(fitted.get(key), int | float)],
        "time_unit": TIME_UNITS.get(fitted.get("time_unit"), fitted.get("time_unit") or ""),
        "not_converged": fitted.get("converged") is False,
        "reason": fitted.get("reason") or "",
        "reused_from_run": fitted.get("reused_from_run"),
    }


def _parameter_value(key: str, value):
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if key.startswith("window_") and not value:
        return _("all history")
    return value


def _run_info(run: ScoringRun) -> dict:
    """Everything the dashboard says about the run it shows: inputs, fitted models, counts, timings."""
    parameters = [
        (PARAMETER_LABELS.get(key, key.replace("_", " ")), _parameter_value(key, value))
        for key, value in run.parameters.items()
        if value is None or isinstance(value, str | int | float)
    ]
    return {
        **_run_row(run),
        "parameters": parameters,
        "models": [
            _model_rows("BG/NBD", run.bgnbd, BGNBD_PARAMS),
            _model_rows("Gamma-Gamma", run.gamma_gamma, GAMMA_GAMMA_PARAMS),
        ],
    }


def _dashboard_context(run: ScoringRun) -> dict:
    data = run.dashboard or {}
    kpis = data.get("kpis", {})
    segments = _segment_rows(data.get("segments", []))
    composition = _composition_rows(data.get("composition", {}))
    by_month = _conversion_rows(kpis.get("conversion_by_month", []), key="month")
    return {
        "grid": _grid_rows(data.get("grid", [])),
        "grid_columns": range(1, 6),
        "segments": segments,
        "movements": _movement_rows(data.get("movements", [])),
        "composition": composition,
        "kpis": kpis,
        "conversion_percent": _percent(kpis.get("conversion_rate")),
        "conversion_by_source": _conversion_rows(
            kpis.get("conversion_by_source", []), key="source", labels=dict(Source.choices)
        ),
        "conversion_by_month": by_month,
        "per_rep": [
            {**rep, "value": _rep_value(rep), "conversion_percent": _percent(rep.get("conversion_rate"))}
            for rep in data.get("per_rep", [])
        ],
        "charts": _charts(segments, composition, by_month),
        "run_info": _run_info(run),
    }


@roles.role_required(*roles.MANAGERS)
@require_safe
def dashboard(request: HttpRequest) -> HttpResponse:
    """The current run's figures; an htmx request (the rep selector) gets the chosen rep's figures alone."""
    run = current_run(with_dashboard=True)
    selected_rep = request.GET.get("rep") or None
    rep = _rep_figures(run.dashboard.get("per_rep", []), selected_rep) if run else None
    if _is_htmx(request):
        response = render(request, "scoring/_rep_figures.html", {"rep": rep, "selected_rep": selected_rep})
    else:
        context = {"run": run, "rep": rep, "selected_rep": selected_rep, **_progress_context(latest_run())}
        if run is not None:
            context.update(_dashboard_context(run))
        response = render(request, "scoring/dashboard.html", context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def _progress_context(run: ScoringRun | None) -> dict:
    return {
        "latest": run,
        "running": run is not None and run.status in IN_PROGRESS,
        "phase_label": PHASE_LABELS.get(run.phase, run.phase) if run else "",
    }


def _progress_response(request: HttpRequest, run: ScoringRun | None, *, notice: str = "") -> HttpResponse:
    """The progress partial; once the run it was watching has finished, htmx reloads the page's figures."""
    response = render(request, "scoring/_run_progress.html", {**_progress_context(run), "notice": notice})
    if _is_htmx(request) and run is not None and run.status not in IN_PROGRESS:
        response["HX-Refresh"] = "true"
    return response


@roles.role_required(*roles.MANAGERS)
@require_POST
def run_start(request: HttpRequest) -> HttpResponse:
    # Imported here: the run's services bring pandas and scipy, which no other page of the web process needs.
    from scoring import services

    notice = ""
    try:
        services.scoring_run_start(user=request.user)
    except services.ScoringRunInProgress as exc:
        notice = str(exc)
    if _is_htmx(request):
        return _progress_response(request, latest_run(), notice=notice)
    if notice:
        messages.warning(request, notice)
    else:
        messages.success(request, _("Scoring run started."))
    return redirect("scoring:dashboard")


@roles.role_required(*roles.MANAGERS)
@require_safe
def run_progress(request: HttpRequest) -> HttpResponse:
    """The latest run's status, phase and progress: polled every two seconds while it is going."""
    return _progress_response(request, latest_run())


@roles.role_required(*roles.MANAGERS)
@require_safe
def run_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(run_history(), RUNS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"page_obj": page, "runs": [_run_row(run) for run in page], "current_id": current_run_id()}
    return render(request, "scoring/run_list.html", context)
