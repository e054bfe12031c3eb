"""Forms of the import pages: the upload, and the mapping with the update policy of each field and the options
that apply to the whole file."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.forms import style_for_bootstrap
from crm.models import Client, Source
from prospecting.imports import UPDATABLE_FIELDS
from prospecting.mapping import FIELDS_BY_TARGET
from prospecting.models import ClientKey, ImportKind, MatchKey, SavedMapping, UnknownClients, UpdatePolicy
from prospecting.validation import InvalidValue, parse_tags


class ImportUploadForm(forms.Form):
    # An empty file goes through to the reader, whose message says what is wrong as for every other bad file.
    file = forms.FileField(label=_("File (CSV or Excel .xlsx)"), allow_empty_file=True)
    kind = forms.ChoiceField(label=_("What the file holds"), choices=ImportKind.choices)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)

    def clean_file(self):
        upload = self.cleaned_data["file"]
        # Checked on the size Django reports, before the bytes are read into memory.
        if upload.size > settings.IMPORT_MAX_BYTES:
            raise forms.ValidationError(
                _("The file is %(size).1f MB, more than the %(limit).1f MB allowed. Split it into smaller files.")
                % {"size": upload.size / 1_000_000, "limit": settings.IMPORT_MAX_BYTES / 1_000_000}
            )
        return upload


# The client fields a Waalaxy export fills, in the order of the page.
WAALAXY_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "linkedin_url",
    "job_title",
    "company",
    "city",
    "country",
    "source_detail",
    "stage",
)


def _policy_field(initial: str = "") -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("If the record exists"),
        choices=[("", _("as for the whole file")), *UpdatePolicy.choices],
        required=False,
        initial=initial,
        error_messages={
            "invalid_choice": _(
                "“%(value)s” is not an update policy: choose overwrite, fill only when empty, or never."
            )
        },
    )


class ImportOptionsForm(forms.Form):
    """One select per column of the file with the update policy of the field it feeds (for a Waalaxy export, the
    update policy of each field it fills), then the options of the whole file."""

    owner = forms.ModelChoiceField(label=_("Owner of the new records"), queryset=None, required=False)
    tags = forms.CharField(label=_("Tags added to every row"), required=False, help_text=_("Separated by commas."))
    source = forms.ChoiceField(label=_("Source of the new records"), required=False)
    policy = forms.ChoiceField(
        label=_("Existing records: update each field"),
        choices=UpdatePolicy.choices,
        help_text=_("Unless the field has a policy of its own above."),
    )
    match_key = forms.ChoiceField(label=_("Recognise existing people by"), choices=MatchKey.choices)
    client_key = forms.ChoiceField(label=_("Find the client by"), choices=ClientKey.choices)
    unknown_clients = forms.ChoiceField(label=_("Purchases of unknown clients"), choices=UnknownClients.choices)
    save_mapping_as = forms.CharField(
        label=_("Save this mapping as"), max_length=120, required=False, help_text=_("Optional; to reuse it.")
    )

    def __init__(self, *args, job, **kwargs):
        super().__init__(*args, **kwargs)
        self.job = job
        self.columns = [] if job.is_waalaxy else list(job.header or job.mapping)
        target = "purchase" if job.kind == ImportKind.PURCHASES else "client"
        choices = [("", _("— ignore —")), *((name, spec.label) for name, spec in FIELDS_BY_TARGET[target].items())]
        policies = job.options.get("field_policies") or {}
        people = job.kind == ImportKind.PEOPLE
        for position, column in enumerate(self.columns):
            self.fields[f"column_{position}"] = forms.ChoiceField(
                label=column, choices=choices, required=False, initial=job.mapping.get(column) or ""
            )
            if people:
                self.fields[f"column_policy_{position}"] = _policy_field(policies.get(job.mapping.get(column), ""))
        self.waalaxy_fields = list(WAALAXY_FIELDS) if job.is_waalaxy and people else []
        for name in self.waalaxy_fields:
            self.fields[f"field_policy_{name}"] = _policy_field(policies.get(name, ""))
            self.fields[f"field_policy_{name}"].label = Client._meta.get_field(name).verbose_name
        users = get_user_model().objects.filter(groups__name__in=roles.ROLES, is_active=True).distinct()
        self.fields["owner"].queryset = users.order_by("username")
        self.fields["source"].choices = [("", _("— from the file, else Import —")), *Source.choices]
        options = job.options
        for name in ("policy", "match_key", "client_key", "unknown_clients", "source"):
            self.fields[name].initial = options.get(name)
        self.fields["tags"].initial = ", ".join(options.get("tags") or [])
        if job.kind == ImportKind.PURCHASES:
            del self.fields["policy"], self.fields["match_key"], self.fields["tags"], self.fields["source"]
        else:
            del self.fields["unknown_clients"], self.fields["client_key"]
        if job.is_waalaxy:
            del self.fields["save_mapping_as"]
        style_for_bootstrap(self)

    def column_fields(self):
        """(column's field select, its update policy select or None) for each column."""
        return [
            (self[f"column_{position}"], self[f"column_policy_{position}"] if self.has_policies else None)
            for position in range(len(self.columns))
        ]

    @property
    def has_policies(self) -> bool:
        return self.job.kind == ImportKind.PEOPLE

    def field_policy_fields(self):
        return [self[f"field_policy_{name}"] for name in self.waalaxy_fields]

    def option_fields(self):
        return [self[name] for name in self.fields if not name.startswith(("column_", "field_policy_"))]

    def clean_tags(self) -> list[str]:
        try:
            return parse_tags(self.cleaned_data["tags"].replace(",", "\n")) or []
        except InvalidValue as exc:
            raise forms.ValidationError(str(exc)) from exc

    def clean(self):
        cleaned = super().clean()
        used = [cleaned.get(f"column_{position}") for position in range(len(self.columns))]
        named = [name for name in used if name]
        if len(named) != len(set(named)):
            raise forms.ValidationError(_("Two columns feed the same field: choose one of them."))
        if cleaned.get("client_key") == ClientKey.EXTERNAL_ID and "client_ref" not in named:
            self.add_error("client_key", _("Choose the column holding the client's external id, or find by email."))
        name = cleaned.get("save_mapping_as")
        if name and SavedMapping.objects.filter(kind=self.job.kind, name=name).exists():
            self.add_error("save_mapping_as", _("A saved mapping already has this name."))
        return cleaned

    def mapping(self) -> dict[str, str | None]:
        return {
            column: self.cleaned_data.get(f"column_{position}") or None for position, column in enumerate(self.columns)
        }

    def options(self) -> dict:
        cleaned = self.cleaned_data
        owner = cleaned.get("owner")
        return {
            "owner_id": owner.pk if owner else None,
            "tags": cleaned.get("tags") or [],
            "source": cleaned.get("source") or "",
            "policy": cleaned.get("policy") or UpdatePolicy.FILL_EMPTY,
            "field_policies": self.field_policies(),
            "match_key": cleaned.get("match_key") or MatchKey.EMAIL_LINKEDIN,
            "client_key": cleaned.get("client_key") or ClientKey.EMAIL,
            "unknown_clients": cleaned.get("unknown_clients") or UnknownClients.REPORT,
        }

    def field_policies(self) -> dict[str, str]:
        """{field: policy} for the fields given a policy of their own; the others follow the file-wide one."""
        cleaned = self.cleaned_data
        if self.waalaxy_fields:
            chosen = {name: cleaned.get(f"field_policy_{name}") for name in self.waalaxy_fields}
        elif self.has_policies:
            chosen = {
                cleaned.get(f"column_{position}"): cleaned.get(f"column_policy_{position}")
                for position in range(len(self.columns))
            }
        else:
            return {}
        return {name: policy for name, policy in chosen.items() if name in UPDATABLE_FIELDS and policy}
