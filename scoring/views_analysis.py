"""The three-step analysis, for managers and admins: segment the portfolio, measure each segment's profitability,
list the actions to take (retain the profitable, reactivate the inactive); and the profitability table as CSV.

The figures come from ``scoring.profitability`` (aggregated in the database, cached per run, period and kind of
group). Step 2 shows one kind of group at a time (RFM segments, saved segments, personas); its tabs swap the table
alone through htmx.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from crm import roles
from crm.exports import csv_stream
from crm.models import Lifecycle
from scoring import profitability
from scoring.models import ScoringRun
from scoring.rfm import SEGMENTS
from scoring.selectors import current_run

# RFM segments whose clients have stopped buying, or are about to: step 3 proposes to reactivate them.
INACTIVE_SEGMENTS = ("about_to_sleep", "at_risk", "cant_lose_them", "hibernating")
RETAIN_SHOWN = 3
TABLE_TARGET = "profitability"


class AnalysisForm(forms.Form):
    period = forms.ChoiceField(label=_("Period"), choices=list(profitability.PERIODS.items()), required=False)
    by = forms.ChoiceField(label=_("Groups"), choices=list(profitability.KINDS.items()), required=False)

    def choices(self) -> tuple[str, str]:
        """The period and kind asked, or the defaults when the values are missing or invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        return data.get("period") or profitability.PERIOD_12_MONTHS, data.get("by") or profitability.KIND_RFM


def _link(name: str, **params) -> str:
    """The URL of a page with its query; empty when the page is not installed (campaigns belong to prospecting)."""
    try:
        url = reverse(name)
    except NoReverseMatch:
        return ""
    return f"{url}?{urlencode(params)}" if params else url


def _percent(share) -> float | None:
    return None if share is None else float(share) * 100


def _display(row: dict) -> dict:
    return {
        **row,
        "coverage_percent": _percent(row["margin_coverage"]),
        "margin_percent": _percent(row["margin_rate"]),
        "clients_percent": _percent(row["clients_share"]),
        "revenue_percent": _percent(row["revenue_share"]),
    }


def _selection_links(filters: dict[str, str], *, rfm_segment: str = "", saved_segment: int | None = None) -> dict:
    """Where to act on a group: its clients, a campaign to it, follow-ups for each of its clients."""
    if saved_segment is not None:
        clients_url = reverse("crm:segment-detail", args=[saved_segment])
        follow_ups_url = _link("crm:follow-up-bulk", segment=saved_segment)
        campaign_url = _link("prospecting:campaign-create", segment=saved_segment)
    else:
        clients_url = _link("crm:client-list", **filters)
        follow_ups_url = _link("crm:follow-up-bulk", filters=urlencode(filters))
        campaign_url = _link("prospecting:campaign-create", **({"rfm_segment": rfm_segment} if rfm_segment else {}))
    return {"clients_url": clients_url, "follow_ups_url": follow_ups_url, "campaign_url": campaign_url}


def _group_links(kind: str, group: str) -> dict:
    if kind == profitability.KIND_RFM and group in SEGMENTS:
        return _selection_links({"segment": group}, rfm_segment=group)
    if kind == profitability.KIND_PERSONAS and group:
        return _selection_links({"persona": group})
    if kind == profitability.KIND_SEGMENTS:
        return _selection_links({}, saved_segment=int(group))
    return {}


def _table_context(report: profitability.ProfitabilityReport, *, period: str) -> dict:
    return {
        "report": report,
        "rows": [{**_display(row), **_group_links(report.kind, row["group"])} for row in report.rows],
        "kind": report.kind,
        "kinds": [
            {"key": key, "label": label, "url": _link("scoring:analysis", period=period, by=key)}
            for key, label in profitability.KINDS.items()
        ],
        "export_url": _link("scoring:analysis-export", period=period, by=report.kind),
        "period": period,
    }


def _composition(rfm: profitability.ProfitabilityReport) -> list[dict]:
    """Step 1: the portfolio by RFM segment, in the segments' order, the clients not scored last."""
    by_group = {row["group"]: row for row in rfm.rows}
    order = [*SEGMENTS, profitability.NO_GROUP]
    return [_display(by_group[key]) for key in order if key in by_group]


def _retain(rfm: profitability.ProfitabilityReport) -> list[dict]:
    """Step 3: the active segments that contribute most (positive contribution), with what to do for them."""
    rows = [
        row
        for row in rfm.rows
        if row["group"] in SEGMENTS and row["group"] not in INACTIVE_SEGMENTS and row["contribution"] > 0
    ]
    return [
        {**_display(row), "action": SEGMENTS[row["group"]].action, **_group_links(rfm.kind, row["group"])}
        for row in rows[:RETAIN_SHOWN]
    ]


def _reactivate(rfm: profitability.ProfitabilityReport, lifecycle: profitability.ProfitabilityReport) -> list[dict]:
    """Step 3: the inactive RFM segments and the clients marked to reactivate, with what they brought and may bring."""
    by_group = {row["group"]: row for row in rfm.rows}
    rows = [
        {**_display(by_group[key]), "action": SEGMENTS[key].action, **_group_links(rfm.kind, key)}
        for key in INACTIVE_SEGMENTS
        if key in by_group and by_group[key]["clients"]
    ]
    for row in lifecycle.rows:
        if row["clients"]:
            filters = {"lifecycle": Lifecycle.TO_REACTIVATE}
            action = gettext("A personal call or email, with an offer based on what they bought.")
            rows.append({**_display(row), "action": action, **_selection_links(filters)})
    return rows


def _analysis_choices(request: HttpRequest) -> tuple[AnalysisForm, str, str, ScoringRun | None]:
    form = AnalysisForm(request.GET)
    period, kind = form.choices()
    run = current_run()
    return form, period, kind, run


@roles.role_required(*roles.MANAGERS)
@require_safe
def analysis(request: HttpRequest) -> HttpResponse:
    """The three steps on one page; an htmx request for the table (step 2's tabs) gets the table alone."""
    form, period, kind, run = _analysis_choices(request)
    run_id = run.pk if run else None
    table = profitability.profitability_report(kind, period=period, run_id=run_id)
    if request.headers.get("HX-Target") == TABLE_TARGET and not request.headers.get("HX-History-Restore-Request"):
        response = render(request, "scoring/_profitability_table.html", _table_context(table, period=period))
    else:
        rfm = (
            table
            if kind == profitability.KIND_RFM
            else profitability.profitability_report("rfm", period=period, run_id=run_id)
        )
        lifecycle = profitability.profitability_report(profitability.KIND_LIFECYCLE, period=period, run_id=run_id)
        context = {
            "form": form,
            "run": run,
            "periods": [
                {"key": key, "label": label, "url": _link("scoring:analysis", period=key, by=kind)}
                for key, label in profitability.PERIODS.items()
            ],
            "composition": _composition(rfm),
            "retain": _retain(rfm),
            "reactivate": _reactivate(rfm, lifecycle),
            "offer_url": _link("prospecting:offer-create"),
            **_table_context(table, period=period),
        }
        response = render(request, "scoring/analysis.html", context)
    patch_vary_headers(response, ["HX-Target"])
    return response


def _cell(value) -> object:
    return "" if value is None else value


def _export_rows(report: profitability.ProfitabilityReport):
    bases = {profitability.BASIS_MARGIN: gettext("margin"), profitability.BASIS_REVENUE: gettext("revenue")}
    for row in report.rows:
        yield [
            row["label"],
            row["clients"],
            row["revenue"],
            _cell(row["gross_margin"]),
            _cell(None if row["margin_coverage"] is None else round(row["margin_coverage"] * 100, 1)),
            _cell(None if row["margin_rate"] is None else round(row["margin_rate"] * 100, 1)),
            _cell(row["clv_12m_sum"]),
            _cell(row["clv_12m_mean"]),
            row["campaign_cost"],
            row["campaigns_cost_unknown"],
            row["contribution"],
            bases[row["contribution_basis"]],
            _cell(row["revenue_per_client"]),
        ]


@roles.role_required(*roles.MANAGERS)
@require_safe
def analysis_export(request: HttpRequest) -> HttpResponse:
    """The profitability table of the kind and period asked, as CSV (every cell safe from spreadsheet formulas)."""
    _form, period, kind, run = _analysis_choices(request)
    report = profitability.profitability_report(kind, period=period, run_id=run.pk if run else None)
    header = [
        gettext("Group"),
        gettext("Clients"),
        gettext("Revenue"),
        gettext("Gross margin (known costs)"),
        gettext("Revenue with a known cost (%)"),
        gettext("Margin rate (%)"),
        gettext("Predicted CLV, 12 months (sum)"),
        gettext("Predicted CLV, 12 months (mean)"),
        gettext("Campaign cost"),
        gettext("Campaigns without a cost"),
        gettext("Net contribution"),
        gettext("Contribution based on"),
        gettext("Revenue per client"),
    ]
    response = StreamingHttpResponse(csv_stream(header, _export_rows(report)), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="profitability-{kind}-{period}.csv"'
    return response
