"""Forms of the CRM core: the client form with its likely-duplicate check, the card's interaction and follow-up forms,
closing a follow-up, and the persona forms.

They validate input only: the views hand the cleaned values to ``crm.services``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.models import Client, ClientQuerySet, FollowUp, FollowUpStatus, Interaction, Persona
from crm.normalize import normalize_email, normalize_linkedin_url

DUPLICATES_SHOWN = 10
MAX_CLIENT_IDS = 5000
DATETIME_LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


def team_members() -> QuerySet:
    """Active accounts holding a role: the people a client or a follow-up can be given to."""
    return (
        get_user_model()
        .objects.filter(Q(groups__name__in=roles.ROLES) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


def _member_label(user) -> str:
    return user.get_full_name() or user.get_username()


def style_for_bootstrap(form: forms.BaseForm) -> forms.BaseForm:
    """Give every widget its Bootstrap class, so that templates render fields in a plain loop (all apps' forms)."""
    for form_field in form.fields.values():
        widget = form_field.widget
        if isinstance(widget, forms.CheckboxInput):
            css_class = "form-check-input"
        elif isinstance(widget, forms.Select):
            css_class = "form-select"
        else:
            css_class = "form-control"
        widget.attrs.setdefault("class", css_class)
    return form


def _datetime_local_input() -> forms.DateTimeInput:
    return forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL_FORMAT)


def _now_to_the_minute() -> datetime:
    return timezone.localtime().replace(second=0, microsecond=0)


def _tomorrow_morning() -> datetime:
    tomorrow = timezone.localdate() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(tomorrow, time(9, 0)))


@dataclass(frozen=True)
class Duplicates:
    """Clients who are probably the same person: the first few the user may open, and how many others exist."""

    shown: list[Client] = field(default_factory=list)
    others: int = 0

    def __bool__(self) -> bool:
        return bool(self.shown or self.others)


def find_duplicates(*, email: str, linkedin_url: str, user, exclude_pk: int | None = None) -> Duplicates:
    """Clients sharing the normalised email or LinkedIn URL with the given values."""
    matches = Client.objects.with_duplicate_keys(
        email=normalize_email(email), linkedin_url=normalize_linkedin_url(linkedin_url)
    )
    if exclude_pk:
        matches = matches.exclude(pk=exclude_pk)
    shown = list(matches.visible_to(user).select_related("owner")[:DUPLICATES_SHOWN])
    # Clients the user may not open still count: creating a second card for them is as wrong.
    others = matches.exclude(pk__in=[client.pk for client in shown]).count()
    return Duplicates(shown=shown, others=others)


class ClientForm(forms.ModelForm):
    create_anyway = forms.BooleanField(required=False, label=_("Save anyway: this is a different person"))

    class Meta:
        model = Client
        fields = [
            "first_name",
            "last_name",
            "email",
            "phone",
            "linkedin_url",
            "external_id",
            "job_title",
            "company",
            "sector",
            "city",
            "country",
            "birth_year",
            "gender",
            "lifecycle",
            "stage",
            "tier",
            "owner",
            "source",
            "source_detail",
            "referred_by",
            "persona",
            "tags",
            "preferred_categories",
            "marketing_consent",
            "do_not_contact",
            "notes",
        ]
        # A select listing the whole portfolio would not load: the referrer is given by card number.
        widgets = {"referred_by": forms.NumberInput(attrs={"min": 1}), "notes": forms.Textarea(attrs={"rows": 4})}
        help_texts = {"referred_by": _("Card number of the client who referred this one.")}

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.duplicates = Duplicates()
        if roles.role_of(user) in roles.MANAGERS:
            self.fields["owner"].queryset = team_members()
            self.fields["owner"].label_from_instance = _member_label
        else:
            # Only managers hand clients over: without the field, an owner sent by a rep is never read.
            del self.fields["owner"]
        self.fields["referred_by"].queryset = Client.objects.visible_to(user)
        duplicate_check = {
            "hx-get": reverse("crm:client-duplicates"),
            "hx-trigger": "change",
            "hx-target": "#duplicates",
            "hx-include": "[name=email],[name=linkedin_url]",
            "hx-vals": json.dumps({"exclude": self.instance.pk or ""}),
        }
        self.fields["email"].widget.attrs.update(duplicate_check)
        self.fields["linkedin_url"].widget.attrs.update(duplicate_check)
        style_for_bootstrap(self)

    def clean_linkedin_url(self) -> str:
        url = normalize_linkedin_url(self.cleaned_data["linkedin_url"])
        if url and not url.startswith("https://www.linkedin.com/"):
            raise forms.ValidationError(_("Enter a LinkedIn address, such as https://www.linkedin.com/in/name."))
        return url

    def clean_referred_by(self) -> Client | None:
        referrer = self.cleaned_data["referred_by"]
        if referrer is not None and referrer.pk == self.instance.pk:
            raise forms.ValidationError(_("A client cannot refer himself."))
        return referrer

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not any(cleaned.get(name) for name in ("first_name", "last_name", "email", "company")):
            raise forms.ValidationError(_("Give at least a name, an email or a company."))
        keys_changed = self.instance.pk is None or {"email", "linkedin_url"} & set(self.changed_data)
        if keys_changed and not cleaned.get("create_anyway"):
            self.duplicates = find_duplicates(
                email=cleaned.get("email") or "",
                linkedin_url=cleaned.get("linkedin_url") or "",
                user=self.user,
                exclude_pk=self.instance.pk,
            )
            if self.duplicates:
                raise forms.ValidationError(
                    _("This looks like a client already in the portfolio. Check the list below, or tick the box.")
                )
        return cleaned

    def client_data(self) -> dict[str, Any]:
        """Cleaned values of the client's own fields, for ``client_create``."""
        return {name: value for name, value in self.cleaned_data.items() if name in self._meta.fields}

    def changed_client_data(self) -> dict[str, Any]:
        """Cleaned values of the fields the user changed, for ``client_update`` (one history row each)."""
        return {name: value for name, value in self.client_data().items() if name in self.changed_data}


class InteractionForm(forms.ModelForm):
    class Meta:
        model = Interaction
        fields = ["kind", "direction", "occurred_at", "subject", "body"]
        widgets = {"occurred_at": _datetime_local_input(), "body": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        occurred_at = self.fields["occurred_at"]
        occurred_at.initial = _now_to_the_minute
        # The model's callable default would otherwise add a hidden "initial" input to the form.
        occurred_at.show_hidden_initial = False
        style_for_bootstrap(self)


class FollowUpForm(forms.ModelForm):
    class Meta:
        model = FollowUp
        fields = ["title", "due_at", "assignee", "notes"]
        widgets = {"due_at": _datetime_local_input(), "notes": forms.Textarea(attrs={"rows": 2})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["due_at"].initial = _tomorrow_morning
        self.fields["assignee"].queryset = team_members()
        self.fields["assignee"].label_from_instance = _member_label
        style_for_bootstrap(self)


class FollowUpCloseForm(forms.Form):
    status = forms.ChoiceField(
        choices=[(FollowUpStatus.DONE, _("Done")), (FollowUpStatus.CANCELLED, _("Cancelled"))],
        required=False,
    )

    def clean_status(self) -> str:
        return self.cleaned_data["status"] or FollowUpStatus.DONE


class PersonaForm(forms.ModelForm):
    class Meta:
        model = Persona
        fields = ["name", "bio", "goals", "obstacles", "expectations", "demographics", "behaviour"]
        widgets = {
            name: forms.Textarea(attrs={"rows": 3})
            for name in ("bio", "goals", "obstacles", "expectations", "demographics", "behaviour")
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)


class _IdListTextarea(forms.Textarea):
    """A textarea that also reads several values of the same name, as ticked boxes of a client list send them."""

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist"):
            return " ".join(data.getlist(name))
        return data.get(name)


class PersonaAssignForm(forms.Form):
    client_ids = forms.CharField(
        required=False,
        widget=_IdListTextarea(attrs={"rows": 3}),
        label=_("Client card numbers"),
        help_text=_("Separated by commas, spaces or new lines."),
    )
    q = forms.CharField(
        required=False,
        max_length=200,
        label=_("Or every client matching a search"),
        help_text=_("Words found in the name, email or company."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)

    def clean_client_ids(self) -> list[int]:
        text = self.cleaned_data["client_ids"]
        if re.search(r"[^\d,;\s]", text):
            raise forms.ValidationError(_("Use card numbers separated by commas, spaces or new lines."))
        ids = [int(number) for number in re.findall(r"\d+", text)]
        if len(ids) > MAX_CLIENT_IDS:
            raise forms.ValidationError(
                _("At most %(max)d clients at a time; use a search for more."), params={"max": MAX_CLIENT_IDS}
            )
        return ids

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if not cleaned.get("client_ids") and not (cleaned.get("q") or "").strip():
            raise forms.ValidationError(_("Give card numbers or a search."))
        return cleaned

    def selected_clients(self, clients: ClientQuerySet) -> ClientQuerySet:
        """The clients among ``clients`` picked by card number or, when none are given, by the search."""
        if self.cleaned_data["client_ids"]:
            return clients.filter(pk__in=self.cleaned_data["client_ids"])
        return clients.search(self.cleaned_data["q"])
