"""Event and webinar pages: the list, an event with its registrations, creating an event, entering a registration
and importing a small CSV of them.

Everyone with a role reads events; managers and admins create them and enter registrations, since a registration
may match, and log an interaction on, any client of the portfolio.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from crm import roles
from crm.forms import style_for_bootstrap
from crm.models import Client
from prospecting import events as services
from prospecting.models import Event

REGISTRATIONS_SHOWN = 100


class EventForm(forms.ModelForm):
    class Meta:
        model = Event
        fields = ["name", "kind", "held_on", "owner"]
        widgets = {"held_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}
        help_texts = {
            "owner": _("New prospects from this event are given to this person (by default, whoever enters them).")
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].queryset = (
            get_user_model()
            .objects.filter(Q(groups__name__in=roles.ROLES) | Q(is_superuser=True), is_active=True)
            .distinct()
            .order_by("first_name", "last_name", "username")
        )
        style_for_bootstrap(self)


class RegistrationForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=300)
    email = forms.EmailField(label=_("Email"))
    company = forms.CharField(label=_("Company"), max_length=200, required=False)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)


class ImportForm(forms.Form):
    file = forms.FileField(label=_("CSV file (name, email, company)"))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def event_list(request: HttpRequest) -> HttpResponse:
    events = Event.objects.annotate(
        registration_count=Count("registrations"),
        new_prospects=Count("registrations", filter=Q(registrations__created_prospect=True)),
    )
    return render(request, "prospecting/event_list.html", {"events": events})


def _event_detail_page(request: HttpRequest, event: Event, **forms_) -> HttpResponse:
    visible = Client.objects.visible_to(request.user)
    registrations = event.registrations.filter(client__in=visible).select_related("client", "registered_by")
    figures = event.registrations.aggregate(
        total=Count("id"), new_prospects=Count("id", filter=Q(created_prospect=True))
    )
    context = {
        "event": event,
        "figures": figures,
        "registrations": registrations[:REGISTRATIONS_SHOWN],
        "registrations_shown": REGISTRATIONS_SHOWN,
        "can_manage": roles.role_of(request.user) in roles.MANAGERS,
        "report": forms_.get("report"),
    }
    if context["can_manage"]:
        context["registration_form"] = forms_.get("registration_form") or RegistrationForm()
        context["import_form"] = forms_.get("import_form") or ImportForm()
    return render(request, "prospecting/event_detail.html", context)


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def event_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return _event_detail_page(request, get_object_or_404(Event.objects.select_related("owner"), pk=pk))


@roles.role_required(*roles.MANAGERS)
@require_http_methods(["GET", "HEAD", "POST"])
def event_create(request: HttpRequest) -> HttpResponse:
    form = EventForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        event = form.save(commit=False)
        event.created_by = request.user
        event.save()
        return redirect(event)
    return render(request, "prospecting/event_form.html", {"form": form})


@roles.role_required(*roles.MANAGERS)
@require_POST
def event_register(request: HttpRequest, pk: int) -> HttpResponse:
    event = get_object_or_404(Event.objects.select_related("owner"), pk=pk)
    form = RegistrationForm(request.POST)
    if not form.is_valid():
        return _event_detail_page(request, event, registration_form=form)
    registrant = services.Registrant(**form.cleaned_data)
    registration, outcome = services.event_register(event=event, registrant=registrant, user=request.user)
    text = {
        "created": gettext("%(client)s was added as a new prospect."),
        "matched": gettext("%(client)s was already in the portfolio: registration added to the card."),
        "already": gettext("%(client)s was already registered."),
    }[outcome]
    messages.success(request, text % {"client": registration.client})
    return redirect(event)


@roles.role_required(*roles.MANAGERS)
@require_POST
def event_import(request: HttpRequest, pk: int) -> HttpResponse:
    """Register every row of a small CSV file at once; rows without a valid email are listed, not imported."""
    event = get_object_or_404(Event.objects.select_related("owner"), pk=pk)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _event_detail_page(request, event, import_form=form)
    upload = form.cleaned_data["file"]
    if upload.size > services.EVENT_IMPORT_MAX_BYTES:
        form.add_error("file", gettext("The file is too large: at most 1 MB."))
        return _event_detail_page(request, event, import_form=form)
    try:
        registrants, errors = services.read_registrants(upload.read())
    except services.EventImportError as exc:
        form.add_error("file", str(exc))
        return _event_detail_page(request, event, import_form=form)
    report = services.event_register_many(event=event, registrants=registrants, user=request.user)
    report.errors = errors
    messages.success(
        request,
        ngettext(
            "%(count)d registration imported: %(created)d new prospects, %(matched)d known clients, %(already)d already registered.",
            "%(count)d registrations imported: %(created)d new prospects, %(matched)d known clients, %(already)d already registered.",
            report.registered,
        )
        % {
            "count": report.registered,
            "created": report.created,
            "matched": report.matched,
            "already": report.already_registered,
        },
    )
    if not errors:
        return redirect(event)
    return _event_detail_page(request, event, report=report)
