"""The client card and the actions on it: create, edit, delete, log an interaction, plan and close a follow-up.

Everyone with a role opens the cards they can see; a rep changes only his own clients, managers and admins any.
The card costs a fixed number of queries whatever the client's history: every list on it is bounded.
The POST-only actions check who may act before the method, so that anyone else gets the same 403 whatever he sends.

Other apps add panels to the card without crm knowing them: ``settings.CRM_CARD_PANELS`` lists dotted paths of
callables ``panel(request, client) -> {"template": str, "context": dict} | None``; the card includes each panel's
template with its context as ``panel``. A panel must cost a constant number of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from operator import attrgetter
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import FieldDoesNotExist, PermissionDenied
from django.db import models
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_safe

from crm import roles, services
from crm.forms import ClientForm, FollowUpCloseForm, FollowUpForm, InteractionForm, find_duplicates
from crm.models import Client, ClientChange, FollowUp, FollowUpStatus, Interaction, PurchaseLine

TIMELINE_LENGTH = 100
PURCHASES_SHOWN = 20
REFERRALS_SHOWN = 20


@dataclass(frozen=True)
class TimelineEntry:
    """One line of the card's timeline: an interaction, a follow-up, or a change of the client's history."""

    kind: str
    at: datetime
    record: Interaction | FollowUp | ClientChange
    can_close: bool = False
    field_label: str = ""
    old_value: str = ""
    new_value: str = ""


def _is_htmx(request: HttpRequest) -> bool:
    return request.headers.get("HX-Request") == "true"


def _get_visible_client(request: HttpRequest, pk: int) -> Client:
    clients = Client.objects.visible_to(request.user).select_related("owner", "persona", "referred_by")
    return get_object_or_404(clients.prefetch_related("tags", "preferred_categories"), pk=pk)


def _get_editable_client(request: HttpRequest, pk: int) -> Client:
    client = _get_visible_client(request, pk)
    if not client.can_be_edited_by(request.user):
        raise PermissionDenied
    return client


def _change_entry(change: ClientChange) -> TimelineEntry:
    """A history row in words: the field's label, and choice labels rather than stored codes."""
    if change.field == services.CREATED:
        return TimelineEntry("created", change.changed_at, change)
    try:
        model_field = Client._meta.get_field(change.field)
    except FieldDoesNotExist:
        return TimelineEntry("change", change.changed_at, change, change.field, change.old_value, change.new_value)
    labels = {str(value): label for value, label in model_field.flatchoices}
    if isinstance(model_field, models.BooleanField):
        labels = {"True": _("yes"), "False": _("no")}
    return TimelineEntry(
        "change",
        change.changed_at,
        change,
        field_label=capfirst(model_field.verbose_name),
        old_value=labels.get(change.old_value, change.old_value),
        new_value=labels.get(change.new_value, change.new_value),
    )


def _timeline(client: Client, user) -> list[TimelineEntry]:
    """Interactions, follow-ups and history of the client, newest first: three bounded queries merged."""
    may_edit = client.can_be_edited_by(user)
    interactions = client.interactions.select_related("user")[:TIMELINE_LENGTH]
    follow_ups = client.follow_ups.select_related("assignee").order_by("-created_at", "-id")[:TIMELINE_LENGTH]
    changes = client.changes.select_related("user")[:TIMELINE_LENGTH]
    entries = [TimelineEntry("interaction", interaction.occurred_at, interaction) for interaction in interactions]
    entries += [
        TimelineEntry(
            "follow_up",
            follow_up.created_at,
            follow_up,
            can_close=follow_up.status == FollowUpStatus.OPEN and (may_edit or follow_up.assignee_id == user.pk),
        )
        for follow_up in follow_ups
    ]
    entries += [_change_entry(change) for change in changes]
    entries.sort(key=attrgetter("at"), reverse=True)
    return entries[:TIMELINE_LENGTH]


def _web_link(url: str) -> str:
    """The URL when it is safe to put in a link (http or https), else nothing."""
    return url if urlsplit(url).scheme in ("http", "https") else ""


def _follow_up_form(client: Client, user) -> FollowUpForm:
    return FollowUpForm(initial={"assignee": client.owner_id or user.pk})


@cache
def _load_panels(paths: tuple[str, ...]) -> tuple[Callable, ...]:
    return tuple(import_string(path) for path in paths)


def _panels(request: HttpRequest, client: Client) -> list[dict]:
    """The extra panels of the card (``settings.CRM_CARD_PANELS``) that have something to show."""
    panels = (panel(request, client) for panel in _load_panels(tuple(getattr(settings, "CRM_CARD_PANELS", ()))))
    return [panel for panel in panels if panel]


def _card_context(request: HttpRequest, client: Client, **forms) -> dict:
    may_edit = client.can_be_edited_by(request.user)
    lines = Prefetch("lines", queryset=PurchaseLine.objects.select_related("product"))
    context = {
        "client": client,
        "can_edit": may_edit,
        "figures": client.purchase_figures(),
        "purchases": client.purchases.prefetch_related(lines)[:PURCHASES_SHOWN],
        "referrals": list(client.referrals.all()[: REFERRALS_SHOWN + 1]),
        "referrals_shown": REFERRALS_SHOWN,
        "linkedin_link": _web_link(client.linkedin_url),
        "timeline": _timeline(client, request.user),
        "panels": _panels(request, client),
    }
    if may_edit:
        context["interaction_form"] = forms.get("interaction_form") or InteractionForm()
        context["follow_up_form"] = forms.get("follow_up_form") or _follow_up_form(client, request.user)
    return context


def _card_form_response(request: HttpRequest, client: Client, form, *, form_name: str, saved: bool) -> HttpResponse:
    """Answer a form of the card. With htmx: the form again (a fresh one, with the refreshed timeline out of band,
    when it was saved). Without: back to the card, or the card again showing the errors."""
    if not _is_htmx(request):
        if saved:
            return redirect(client)
        return render(request, "crm/client_detail.html", _card_context(request, client, **{form_name: form}))
    context = {"client": client, "form": form}
    if saved:
        context.update(timeline=_timeline(client, request.user), timeline_oob=True)
    return render(request, f"crm/_{form_name}.html", context)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def client_detail(request: HttpRequest, pk: int) -> HttpResponse:
    client = _get_visible_client(request, pk)
    return render(request, "crm/client_detail.html", _card_context(request, client))


@roles.role_required(*roles.ALL_ROLES)
@require_http_methods(["GET", "HEAD", "POST"])
def client_create(request: HttpRequest) -> HttpResponse:
    form = ClientForm(request.POST or None, user=request.user, initial={"owner": request.user.pk})
    if request.method == "POST" and form.is_valid():
        data = form.client_data()
        # A rep's form has no owner field: what a rep creates is his.
        data.setdefault("owner", request.user)
        client = services.client_create(data=data, user=request.user)
        messages.success(request, _("%(client)s was added to the portfolio.") % {"client": client})
        return redirect(client)
    return render(request, "crm/client_form.html", {"form": form})


@roles.role_required(*roles.ALL_ROLES)
@require_http_methods(["GET", "HEAD", "POST"])
def client_edit(request: HttpRequest, pk: int) -> HttpResponse:
    client = _get_editable_client(request, pk)
    form = ClientForm(request.POST or None, instance=client, user=request.user)
    if request.method == "POST" and form.is_valid():
        # Validation has copied the new values onto ``client``: the service must compare with the stored row.
        stored = Client.objects.get(pk=client.pk)
        changes = services.client_update(client=stored, data=form.changed_client_data(), user=request.user)
        if changes:
            messages.success(request, _("The card of %(client)s was updated.") % {"client": stored})
        return redirect(stored)
    return render(request, "crm/client_form.html", {"form": form, "client": client})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def client_delete(request: HttpRequest, pk: int) -> HttpResponse:
    client = _get_visible_client(request, pk)
    if request.method == "POST":
        name = str(client)
        services.client_delete(client=client)
        messages.success(request, _("%(client)s was deleted.") % {"client": name})
        return redirect("crm:client-list")
    return render(request, "crm/client_confirm_delete.html", {"client": client})


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def client_duplicates(request: HttpRequest) -> HttpResponse:
    """The likely duplicates of the email and LinkedIn URL being typed in the client form (an htmx partial)."""
    exclude = request.GET.get("exclude", "")
    duplicates = find_duplicates(
        email=request.GET.get("email", ""),
        linkedin_url=request.GET.get("linkedin_url", ""),
        user=request.user,
        exclude_pk=int(exclude) if exclude.isdigit() else None,
    )
    return render(request, "crm/_duplicates.html", {"duplicates": duplicates})


@roles.role_required(*roles.ALL_ROLES)
def interaction_create(request: HttpRequest, pk: int) -> HttpResponse:
    client = _get_editable_client(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = InteractionForm(request.POST)
    saved = form.is_valid()
    if saved:
        services.interaction_log(client=client, user=request.user, **form.cleaned_data)
        form = InteractionForm()
        if not _is_htmx(request):
            messages.success(request, _("Interaction logged."))
    return _card_form_response(request, client, form, form_name="interaction_form", saved=saved)


@roles.role_required(*roles.ALL_ROLES)
def follow_up_create(request: HttpRequest, pk: int) -> HttpResponse:
    client = _get_editable_client(request, pk)
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = FollowUpForm(request.POST)
    saved = form.is_valid()
    if saved:
        services.follow_up_plan(client=client, created_by=request.user, **form.cleaned_data)
        form = _follow_up_form(client, request.user)
        if not _is_htmx(request):
            messages.success(request, _("Follow-up planned."))
    return _card_form_response(request, client, form, form_name="follow_up_form", saved=saved)


@roles.role_required(*roles.ALL_ROLES)
def follow_up_close(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a follow-up done or cancelled: its assignee may, and whoever may edit its client."""
    follow_up = get_object_or_404(FollowUp.objects.select_related("client"), pk=pk)
    client = follow_up.client
    if follow_up.assignee_id != request.user.pk and not client.can_be_edited_by(request.user):
        raise PermissionDenied
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    form = FollowUpCloseForm(request.POST)
    if not form.is_valid():
        return HttpResponse(status=400)
    services.follow_up_close(follow_up=follow_up, status=form.cleaned_data["status"])
    if not _is_htmx(request):
        messages.success(request, _("Follow-up closed: %(title)s") % {"title": follow_up.title})
        next_url = request.POST.get("next", "")
        if url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
            return redirect(next_url)
        return redirect("crm:home")
    if request.headers.get("HX-Target") == "timeline":
        return render(request, "crm/_timeline.html", {"client": client, "timeline": _timeline(client, request.user)})
    # Anywhere else (the home page's list), the closed follow-up's row simply goes away.
    return HttpResponse()
