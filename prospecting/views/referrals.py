"""The ambassadors page: clients ranked by the clients they referred and what those bought, and the clients most
worth asking for a referral (best RFM scores of the current run, nobody referred yet).

Everyone with a role opens it; each sees the clients he may see.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from crm import roles
from crm.models import Client
from prospecting import referrals


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def ambassadors(request: HttpRequest) -> HttpResponse:
    clients = Client.objects.visible_to(request.user)
    context = {
        "ambassadors": referrals.ambassador_ranking(clients),
        "candidates": referrals.referral_candidates(clients),
        "candidate_min_rfm": referrals.CANDIDATE_MIN_RFM_SUM,
    }
    return render(request, "prospecting/ambassadors.html", context)
