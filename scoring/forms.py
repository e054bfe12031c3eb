"""Forms of the scoring pages: launching a persona study, turning one of its clusters into a persona."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from crm.forms import PersonaForm, style_for_bootstrap
from scoring.models import ClusterStudy

AUTO = "auto"


class StudyStartForm(forms.Form):
    k = forms.ChoiceField(
        label=_("Number of clusters"),
        choices=[(AUTO, _("Automatic (the clearest split of 2 to 4)")), ("2", "2"), ("3", "3"), ("4", "4")],
        initial=AUTO,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)

    def clean_k(self) -> int | None:
        value = self.cleaned_data["k"]
        return None if value == AUTO else int(value)


class PersonaFromClusterForm(PersonaForm):
    """The persona's fields, plus the cluster of the study it is made from."""

    cluster = forms.TypedChoiceField(label=_("Cluster"), coerce=int)

    def __init__(self, *args, study: ClusterStudy, cluster_labels: dict[int, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.study = study
        self.fields["cluster"].choices = list(cluster_labels.items())
        self.order_fields(["cluster"])
        style_for_bootstrap(self)
