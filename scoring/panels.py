"""The scores panel of the client card, plugged into crm's card through the ``CRM_CARD_PANELS`` setting.

It explains the client's scores in the current run (each score beside the figures it comes from), what the
behaviour suggests for the lifecycle, and how the client moved over the past completed runs. Two queries whatever
the history: the current run, and the client's last scores.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse

from crm.models import Client, Lifecycle
from scoring.models import ClientScore, ScoringRun
from scoring.selectors import client_score_history, current_run, segment_of

PANEL_TEMPLATE = "scoring/_card_panel.html"


def client_scores_panel(request: HttpRequest, client: Client) -> dict | None:
    """The panel for ``client``, or nothing while no run has completed."""
    run = current_run()
    if run is None:
        return None
    history = client_score_history(client.pk)
    score = history[0] if history and history[0].run_id == run.pk else None
    context = {"run": run, "score": score, "trend": [_trend_row(past) for past in history]}
    if score is not None:
        segment = segment_of(score.segment)
        context.update(
            segment_label=segment.label if segment else score.segment,
            segment_action=segment.action if segment else "",
            segment_url=f"{reverse('crm:client-list')}?{urlencode({'segment': score.segment})}",
            historical=_historical_inputs(score, run),
            suggested_lifecycle=_suggested_lifecycle(score, client),
            lifecycle_label=client.get_lifecycle_display(),
            lifecycle_manual=client.lifecycle_manual,
            p_alive_percent=_percent(score.p_alive),
        )
    return {"template": PANEL_TEMPLATE, "context": context}


def _historical_inputs(score: ClientScore, run: ScoringRun) -> dict:
    """The factors of the historical CLV: basket x purchases per year x lifespan x margin.

    The run records the lifespan and margin it used; purchases per year are what the stored CLV implies, the tenure
    they were counted over not being kept per client.
    """
    lifespan = run.parameters.get("lifespan_years")
    margin = run.parameters.get("gross_margin")
    basket = score.monetary / score.frequency if score.frequency else None
    per_year = None
    if basket and lifespan and margin:
        per_year = float(score.historical_clv) / (float(basket) * float(lifespan) * float(margin))
    return {
        "average_basket": basket.quantize(Decimal("0.01")) if basket is not None else None,
        "purchases_per_year": per_year,
        "lifespan_years": lifespan,
        "gross_margin_percent": float(margin) * 100 if margin is not None else None,
    }


def _suggested_lifecycle(score: ClientScore, client: Client) -> str:
    """The lifecycle the behaviour suggests, when it differs from the one on the card."""
    suggested = score.suggested_lifecycle
    if not suggested or suggested == client.lifecycle:
        return ""
    return str(Lifecycle(suggested).label) if suggested in Lifecycle.values else suggested


def _trend_row(score: ClientScore) -> dict:
    segment = segment_of(score.segment)
    return {
        "as_of": score.run.as_of,
        "segment_label": segment.label if segment else score.segment,
        "rfm_sum": score.rfm_sum,
        "rfm_code": score.rfm_code,
        "historical_clv": score.historical_clv,
        "clv_12m": score.clv_12m,
        "p_alive_percent": _percent(score.p_alive),
    }


def _percent(share: float | None) -> float | None:
    return share * 100 if share is not None else None
