"""The unsubscribe page, public by design: the signed link of a campaign email is the only key it needs.

GET shows what will happen and changes nothing (mail scanners open links); POST sets do-not-contact through crm's
``client_update``, which keeps a history row. Mail clients offering one-click unsubscribe (RFC 8058) POST to the
same link from the ``List-Unsubscribe`` header without a session or a CSRF token, hence ``csrf_exempt``.
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.models import Client
from prospecting import campaigns as services


def mask_email(email: str) -> str:
    """ "ann.martin@example.com" -> "a…@example.com": enough to recognise one's address, little to whoever else."""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}…@{domain}" if domain else "…"


@login_not_required
@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    try:
        client_id, send_id = services.read_unsubscribe_token(token)
    except signing.BadSignature:
        return render(request, "prospecting/unsubscribe_invalid.html", status=400)
    client = Client.objects.filter(pk=client_id).only("email", "do_not_contact").first()
    if client is None:
        return render(request, "prospecting/unsubscribe_done.html", {"gone": True})
    context = {"masked_email": mask_email(client.email), "token": token}
    if request.method == "POST":
        services.campaign_unsubscribe(client=client, send_id=send_id)
        return render(request, "prospecting/unsubscribe_done.html", context)
    return render(request, "prospecting/unsubscribe.html", {**context, "already": client.do_not_contact})
