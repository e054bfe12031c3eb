"""Forms of the import pages: the upload, and the mapping with the options that apply to the whole file."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.forms import style_for_bootstrap
from crm.models import Source
from prospecting.mapping import FIELDS_BY_TARGET
from prospecting.models import ImportKind, MatchKey, SavedMapping, UnknownClients, UpdatePolicy
from prospecting.validation import InvalidValue, parse_tags


class ImportUploadForm(forms.Form):
    file = forms.FileField(label=_("File (CSV or Excel .xlsx)"))
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


class ImportOptionsForm(forms.Form):
    """One select per column of the file (unless it is a Waalaxy export), then the options of the whole file."""

    owner = forms.ModelChoiceField(label=_("Owner of the new records"), queryset=None, required=False)
    tags = forms.CharField(label=_("Tags added to every row"), required=False, help_text=_("Separated by commas."))
    source = forms.ChoiceField(label=_("Source of the new records"), required=False)
    policy = forms.ChoiceField(label=_("Existing records: update each field"), choices=UpdatePolicy.choices)
    match_key = forms.ChoiceField(label=_("Recognise existing people by"), choices=MatchKey.choices)
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
        for position, column in enumerate(self.columns):
            self.fields[f"column_{position}"] = forms.ChoiceField(
                label=column, choices=choices, required=False, initial=job.mapping.get(column) or ""
            )
        users = get_user_model().objects.filter(groups__name__in=roles.ROLES, is_active=True).distinct()
        self.fields["owner"].queryset = users.order_by("username")
        self.fields["source"].choices = [("", _("— from the file, else Import —")), *Source.choices]
        options = job.options
        for name in ("policy", "match_key", "unknown_clients", "source"):
            self.fields[name].initial = options.get(name)
        self.fields["tags"].initial = ", ".join(options.get("tags") or [])
        if job.kind == ImportKind.PURCHASES:
            del self.fields["policy"], self.fields["match_key"], self.fields["tags"], self.fields["source"]
        else:
            del self.fields["unknown_clients"]
        if job.is_waalaxy:
            del self.fields["save_mapping_as"]
        style_for_bootstrap(self)

    def column_fields(self):
        return [self[f"column_{position}"] for position in range(len(self.columns))]

    def option_fields(self):
        return [self[name] for name in self.fields if not name.startswith("column_")]

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
            "match_key": cleaned.get("match_key") or MatchKey.EMAIL_LINKEDIN,
            "unknown_clients": cleaned.get("unknown_clients") or UnknownClients.REPORT,
        }
