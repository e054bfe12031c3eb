"""The scoring panels of crm's pages: on the client card (``CRM_CARD_PANELS``) the client's scores and the persona
suggested for a client without one; on the persona page (``CRM_PERSONA_PANELS``) the persona's figures.

The scores panel:
It explains the client's scores in the current run (each score beside the figures it comes from), what the
behaviour suggests for the lifecycle, and how the client moved over the past completed runs. Two queries whatever
the history: the current run, and the client's last scores.
"""

from __future__ import annotations

from decimal import Decimal
from urllib.parse import urlencode

from django.db.models import Avg, Count, Q, Sum
from django.http import HttpRequest
from django.urls import reverse

from crm import roles
from crm.models import Client, Lifecycle, Persona, Purchase
from scoring.models import ClientScore, PersonaProfile, ScoringRun
from scoring.selectors import client_score_history, current_run, segment_of

PANEL_TEMPLATE = "scoring/_card_panel.html"
SUGGESTION_TEMPLATE = "scoring/_persona_suggestion_panel.html"
PERSONA_FIGURES_TEMPLATE = "scoring/_persona_figures_panel.html"


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


def persona_suggestion_panel(request: HttpRequest, client: Client) -> dict | None:
    """ "Suggested persona: X" for a client without a persona, once personas have been made from a study.

    A handful of queries whatever the portfolio: the profiles, then the one client's purchases, lines and scores.
    """
    if client.persona_id is not None or not PersonaProfile.objects.exists():
        return None
    from scoring.personas import persona_suggestion  # pandas and scikit-learn, only once personas come from data

    persona = persona_suggestion(client)
    if persona is None:
        return None
    context = {"client": client, "persona": persona, "may_assign": roles.role_of(request.user) in roles.MANAGERS}
    return {"template": SUGGESTION_TEMPLATE, "context": context}


def persona_figures(persona: Persona, members) -> dict:
    """Members, revenue, CLV (current run), RFM segment mix and conversion of the given members of ``persona``.

    Conversion: among the members who came in as prospects, the share who became clients, that is the members with
    a conversion date divided by those plus the members still prospects (None when there are neither).
    """
    counts = members.aggregate(
        members=Count("pk"),
        converted=Count("pk", filter=Q(converted_at__isnull=False)),
        prospects=Count("pk", filter=Q(converted_at__isnull=True, lifecycle=Lifecycle.PROSPECT)),
    )
    revenue = Purchase.objects.filter(client__in=members).aggregate(total=Sum("amount"))["total"]
    came_as_prospects = counts["converted"] + counts["prospects"]
    figures = {
        **counts,
        "revenue": revenue or 0,
        "conversion_percent": 100 * counts["converted"] / came_as_prospects if came_as_prospects else None,
        "run": current_run(),
        "segments": [],
    }
    if figures["run"] is not None:
        scores = ClientScore.objects.filter(run=figures["run"], client__in=members)
        figures.update(scores.aggregate(scored=Count("pk"), clv_average=Avg("clv_12m"), clv_total=Sum("clv_12m")))
        mix = scores.values("segment").annotate(clients=Count("pk")).order_by("-clients", "segment")
        figures["segments"] = [
            {
                "key": row["segment"],
                "label": segment.label if (segment := segment_of(row["segment"])) else row["segment"],
                "clients": row["clients"],
                "percent": 100 * row["clients"] / figures["scored"],
                "url": f"{reverse('crm:client-list')}?{urlencode({'segment': row['segment'], 'persona': persona.pk})}",
            }
            for row in mix
        ]
    return figures


def persona_figures_panel(request: HttpRequest, persona: Persona) -> dict | None:
    """The persona page's figures, over the members the user may see, and the study it was made from, if any, with
    how far the assignment of its members went.

    Six queries whatever the persona's size."""
    members = Client.objects.visible_to(request.user).filter(persona=persona)
    context = persona_figures(persona, members)
    profile = PersonaProfile.objects.filter(persona=persona).select_related("study").first()
    context["profile"] = profile
    context["assignment"] = assignment_context(request, persona, profile)
    return {"template": PERSONA_FIGURES_TEMPLATE, "context": context}


def assignment_context(request: HttpRequest, persona: Persona, profile: PersonaProfile | None) -> dict:
    """What ``scoring/_persona_assignment.html`` needs: the persona, its profile, whether the user may start again."""
    return {"persona": persona, "profile": profile, "may_manage": roles.role_of(request.user) in roles.MANAGERS}
