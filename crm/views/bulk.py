"""Bulk actions from the client list (its filters, or the rows ticked on the page) or a segment, and their undo.

The form of the chosen action says how many clients it will apply to; applying redirects back with a message
carrying the count and an Undo button. A large selection is applied by a worker: the page of the action then
polls its progress, and shows the count and the Undo button once done. The list of recent bulk actions shows a rep his own, managers and admins
everyone's. Every action applies only to the clients the user may edit; the actions a role may use are the ones
``crm.bulk`` offers it.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, QueryDict, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from crm import bulk, roles
from crm.exports import client_export_header, client_export_rows, csv_stream
from crm.filters import ClientFilter
from crm.models import BulkAction, Client, Segment
from crm.views.followups import selection_back_url, selection_from_request

FORM_TEMPLATE = "crm/_bulk_action_form.html"
RECENT_ACTIONS = 100
MAX_TICKED = 1000
MAX_ID = 2**63


def _ticked(data: QueryDict) -> list[int] | None:
    """The ids of the rows ticked on the page, or None when the whole selection is meant."""
    values = data.getlist("ids")
    if not values:
        return None
    try:
        ids = {int(value) for value in values[:MAX_TICKED]}
    except ValueError:
        return []
    # Out of the range of an id, a value is no row of the page (and SQLite would fail on it).
    return sorted(ids) if all(0 < pk < MAX_ID for pk in ids) else []


def _describe(filterset: ClientFilter, segment: Segment | None, ticked: list[int] | None) -> str:
    parts = [gettext("Segment: %(name)s") % {"name": segment.name}] if segment else []
    parts += [f"{label}: {value}" for label, value in filterset.describe()] or [gettext("All clients")]
    if ticked is not None:
        parts.append(ngettext("%(count)d row ticked", "%(count)d rows ticked", len(ticked)) % {"count": len(ticked)})
    return " · ".join(parts)


def _undo_button(request: HttpRequest, action: BulkAction, next_url: str) -> str:
    """The Undo form carried by the flash message (the token is the one of this user's session)."""
    return format_html(
        '<form method="post" action="{}" class="d-inline ms-2">'
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
        '<input type="hidden" name="next" value="{}">'
        '<button type="submit" class="btn btn-sm btn-outline-secondary">{}</button></form>',
        reverse("crm:bulk-action-undo", args=[action.pk]),
        get_token(request),
        next_url,
        gettext("Undo"),
    )


def _result_message(request: HttpRequest, action: BulkAction, outcome: bulk.Outcome, next_url: str) -> str:
    text = ngettext(
        "%(action)s: %(count)d client touched.", "%(action)s: %(count)d clients touched.", outcome.touched
    ) % {"action": action.description, "count": outcome.touched}
    text = " ".join([text, *outcome.notes])
    if action.can_undo:
        return format_html("{}{}", text, _undo_button(request, action, next_url))
    return text


def _export(filterset: ClientFilter, clients) -> HttpResponse:
    clients, _sort = filterset.sort(clients, None)
    filename = f"clients-{timezone.localdate().isoformat()}.csv"
    return StreamingHttpResponse(
        csv_stream(client_export_header(), client_export_rows(clients[: settings.CRM_EXPORT_MAX_ROWS])),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _selected(request: HttpRequest, data: QueryDict):
    """The selection's filters and segment, the ticked rows, and the clients of it this user may edit."""
    filterset, segment = selection_from_request(request, data)
    ticked = _ticked(data)
    clients = filterset.qs.filter(pk__in=Client.objects.editable_by(request.user).values("pk"))
    if ticked is not None:
        clients = clients.filter(pk__in=ticked)
    return filterset, segment, ticked, clients


@roles.role_required(*roles.ALL_ROLES)
@require_http_methods(["GET", "POST"])
def bulk_action(request: HttpRequest) -> HttpResponse:
    """The menu of actions for a selection, the form of the chosen one with its count, and applying it."""
    data = request.POST if request.method == "POST" else request.GET
    filterset, segment, ticked, clients = _selected(request, data)
    action_type = bulk.bulk_action_type(data.get("action", ""))
    if action_type is not None and roles.role_of(request.user) not in action_type.allowed_roles:
        raise PermissionDenied
    back_url = selection_back_url(filterset, segment)
    context = {
        "actions": bulk.bulk_actions_for(request.user),
        "action_type": action_type,
        "filter": filterset,
        "filters": filterset.describe(),
        "segment": segment,
        "ticked": ticked,
        "bad_ticks": ticked == [],
        "filters_value": urlencode(filterset.params()),
        "back_url": back_url,
        "max_count": settings.CRM_BULK_MAX_CLIENTS,
    }
    form = (
        action_type.form(request.POST if request.method == "POST" else None, user=request.user) if action_type else None
    )
    count = clients.count() if filterset.is_valid() else 0
    if request.method == "POST" and action_type is not None and form.is_valid() and filterset.is_valid() and count:
        try:
            action, outcome = bulk.bulk_action_submit(
                kind=action_type.key,
                clients=clients,
                params=action_type.params(form.cleaned_data),
                user=request.user,
                selection=_describe(filterset, segment, ticked),
                submission=request.POST.get("submission", ""),
            )
        except bulk.BulkActionError as error:
            form.add_error(None, str(error))
        else:
            if action_type is bulk.EXPORT:
                return _export(filterset, clients)
            if outcome is None:  # queued for a worker: its page shows the progress
                return redirect(_detail_url(action, back_url))
            messages.success(request, _result_message(request, action, outcome, back_url))
            return redirect(back_url)
    context.update(
        form=form,
        count=count,
        too_many=action_type is not None and action_type.caps_selection and count > settings.CRM_BULK_MAX_CLIENTS,
        in_background=action_type is not None and bulk.runs_in_background(action_type, count),
        submission=uuid.uuid4().hex,
    )
    is_partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    return render(request, FORM_TEMPLATE if is_partial else "crm/bulk_action.html", context)


def _safe_next(request: HttpRequest, url: str | None, fallback: str) -> str:
    if url and url_has_allowed_host_and_scheme(
        url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return url
    return fallback


def _detail_url(action: BulkAction, back_url: str) -> str:
    return f"{reverse('crm:bulk-action-detail', args=[action.pk])}?{urlencode({'next': back_url})}"


def _get_action(request: HttpRequest, pk: int) -> BulkAction:
    bulk.bulk_action_fail_stale()
    actions = BulkAction.objects.visible_to(request.user).select_related("user", "undone_by").defer("client_ids")
    return get_object_or_404(actions, pk=pk)


def _action_context(request: HttpRequest, action: BulkAction) -> dict:
    back_url = _safe_next(request, request.GET.get("next"), reverse("crm:bulk-action-list"))
    return {
        "action": action,
        "label": bulk.bulk_action_labels().get(action.kind, action.kind),
        "back_url": back_url,
        "next_query": urlencode({"next": back_url}),
    }


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def bulk_action_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One bulk action: its selection, and its progress while a worker applies or undoes it."""
    action = _get_action(request, pk)
    return render(request, "crm/bulk_action_detail.html", _action_context(request, action))


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def bulk_action_progress(request: HttpRequest, pk: int) -> HttpResponse:
    """The status of the action, polled while it is queued, applied or undone; then the count and Undo."""
    action = _get_action(request, pk)
    return render(request, "crm/_bulk_action_progress.html", _action_context(request, action))


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def bulk_action_list(request: HttpRequest) -> HttpResponse:
    """Recent bulk actions: a rep's own, everyone's for managers and admins, with Undo while it is possible."""
    bulk.bulk_action_fail_stale()
    actions = BulkAction.objects.visible_to(request.user).select_related("user", "undone_by").defer("client_ids")
    actions = actions[:RECENT_ACTIONS]
    labels = bulk.bulk_action_labels()
    rows = [{"action": action, "label": labels.get(action.kind, action.kind)} for action in actions]
    return render(request, "crm/bulk_action_list.html", {"rows": rows, "undo_hours": settings.CRM_BULK_UNDO_HOURS})


@roles.role_required(*roles.ALL_ROLES)
@require_POST
def bulk_action_undo(request: HttpRequest, pk: int) -> HttpResponse:
    action = get_object_or_404(BulkAction.objects.visible_to(request.user).defer("client_ids"), pk=pk)
    next_url = _safe_next(request, request.POST.get("next"), reverse("crm:bulk-action-list"))
    try:
        outcome = bulk.bulk_action_undo_submit(action_id=action.pk, user=request.user)
    except bulk.BulkActionError as error:
        messages.error(request, str(error))
    else:
        if outcome is None:  # queued for a worker: the action's page shows the progress
            messages.info(request, gettext("The undo runs in the background; this page shows when it is done."))
            return redirect(_detail_url(action, next_url))
        messages.success(request, bulk.undo_message(outcome))
    return redirect(next_url)
