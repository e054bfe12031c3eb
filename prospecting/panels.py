"""The referrals panel of the client card, plugged into crm's card through the ``CRM_CARD_PANELS`` setting.

The card itself shows who referred the client and whom he referred; the panel adds what those referrals brought,
or, for a well-scored client who has referred nobody yet, that he is worth asking. At most two queries.
"""

from __future__ import annotations

from django.http import HttpRequest

from crm.models import Client
from prospecting.referrals import referral_candidate_score, referral_figures

PANEL_TEMPLATE = "prospecting/_referral_panel.html"


def referrals_panel(request: HttpRequest, client: Client) -> dict | None:
    figures = referral_figures(client)
    if figures.referred:
        return {"template": PANEL_TEMPLATE, "context": {"figures": figures}}
    score = referral_candidate_score(client)
    if score is not None:
        return {"template": PANEL_TEMPLATE, "context": {"candidate_score": score}}
    return None
