"""Personas: fictive portraits of typical clients, and the clients who fit each one.

Every role reads them; managers and admins write them and assign clients to them.

Other apps add panels to the persona page without crm knowing them: ``settings.CRM_PERSONA_PANELS`` lists dotted
paths of callables ``panel(request, persona) -> {"template": str, "context": dict} | None``; the page includes each
panel's template with its context as ``panel``, in the order of the setting, and leaves out those returning None.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.contrib import messages
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.module_loading import import_string
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles, services
from crm.forms import PersonaAssignForm, PersonaForm
from crm.models import Client, Persona

MEMBERS_SHOWN = 50


@cache
def _load_panels(paths: tuple[str, ...]) -> tuple[Callable, ...]:
    return tuple(import_string(path) for path in paths)


def _panels(request: HttpRequest, persona: Persona) -> list[dict]:
    """The extra panels of the persona page (``settings.CRM_PERSONA_PANELS``) that have something to show."""
    loaded = _load_panels(tuple(getattr(settings, "CRM_PERSONA_PANELS", ())))
    return [panel for panel in (load(request, persona) for load in loaded) if panel]


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def persona_list(request: HttpRequest) -> HttpResponse:
    personas = Persona.objects.annotate(member_count=Count("clients")).order_by("name")
    # Another app may offer to build personas from data (``settings.CRM_PERSONA_BUILDER_URL``, a URL name).
    builder = getattr(settings, "CRM_PERSONA_BUILDER_URL", "")
    context = {"personas": personas, "builder_url": reverse(builder) if builder else ""}
    return render(request, "crm/persona_list.html", context)


def _persona_detail_page(
    request: HttpRequest, persona: Persona, assign_form: PersonaAssignForm | None = None
) -> HttpResponse:
    members = Client.objects.visible_to(request.user).filter(persona=persona)
    context = {
        "persona": persona,
        "member_count": persona.clients.count(),
        "members": members[:MEMBERS_SHOWN],
        "members_shown": MEMBERS_SHOWN,
        "panels": _panels(request, persona),
    }
    if roles.role_of(request.user) in roles.MANAGERS:
        context["assign_form"] = assign_form or PersonaAssignForm()
    return render(request, "crm/persona_detail.html", context)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def persona_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _persona_detail_page(request, get_object_or_404(Persona, pk=pk))


def _persona_form_page(request: HttpRequest, persona: Persona | None) -> HttpResponse:
    form = PersonaForm(request.POST or None, instance=persona)
    if request.method == "POST" and form.is_valid():
        persona = services.persona_save(data=form.cleaned_data, persona=persona)
        return redirect(persona)
    return render(request, "crm/persona_form.html", {"form": form, "persona": persona})


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def persona_create(request: HttpRequest) -> HttpResponse:
    return _persona_form_page(request, None)


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def persona_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _persona_form_page(request, get_object_or_404(Persona, pk=pk))


@roles.role_required(*roles.MANAGERS)
@require_POST
def persona_assign(request: HttpRequest, pk: int) -> HttpResponse:
    """Give the persona to the clients picked on its page, by card number or by a search."""
    persona = get_object_or_404(Persona, pk=pk)
    form = PersonaAssignForm(request.POST)
    if not form.is_valid():
        return _persona_detail_page(request, persona, assign_form=form)
    clients = form.selected_clients(Client.objects.visible_to(request.user))
    assigned = services.persona_assign_clients(persona=persona, clients=clients, user=request.user)
    message = ngettext(
        "%(count)d client assigned to %(persona)s.", "%(count)d clients assigned to %(persona)s.", assigned
    )
    messages.success(request, message % {"count": assigned, "persona": persona})
    return redirect(persona)
