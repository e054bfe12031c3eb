"""The client-list filters, shared by every page that narrows the portfolio.

``ClientFilter`` reads plain GET-style parameters (``lifecycle=client&city=Lyon``), so the same dict drives the
client list, a saved segment (``Segment.filters``), the CSV export and any link built elsewhere
(``reverse("crm:client-list") + "?" + urlencode(params)``). ``sort_clients`` applies the list's column sorting.

Other apps extend the list without crm knowing them: ``settings.CRM_CLIENT_FILTERSET`` names the FilterSet that the
list, the export and the segments use (``client_filter_class()``), a subclass of ``ClientFilter`` that may add
filters and, by overriding ``ClientFilter.sort``, sort keys.
"""

from __future__ import annotations

from functools import cache

import django_filters
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import F, OrderBy, QuerySet
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.models import Client, Lifecycle, Persona, Source, Stage, Tag, Tier

OWNER_ME = "me"
OWNER_NONE = "none"
MAX_IDLE_DAYS = 36500

# Each sort key orders by its columns then by id, so pages never overlap or skip rows; descending reverses them
# all, which lets PostgreSQL walk the matching index backwards (client_name_idx, client_lifecycle_idx).
# "owner" groups clients by owner id rather than by the owner's name: ordering by a joined column sorts the whole
# portfolio on every page, while owner_id is indexed.
CLIENT_SORTS: dict[str, tuple[str, ...]] = {
    "name": ("last_name", "first_name"),
    "company": ("company", "last_name", "first_name"),
    "lifecycle": ("lifecycle", "last_name", "first_name"),
    "stage": ("stage", "last_name", "first_name"),
    "tier": ("tier", "last_name", "first_name"),
    "owner": ("owner_id", "last_name", "first_name"),
    "last_interaction_at": ("last_interaction_at",),
    "last_purchase_at": ("last_purchase_at",),
    "created_at": ("created_at",),
}
# Clients without a date come last in both directions, whatever the database's default.
NULLABLE_SORT_FIELDS = frozenset({"last_interaction_at", "last_purchase_at"})
DEFAULT_CLIENT_SORT = "name"
DEFAULT_CLIENT_FILTERSET = "crm.filters.ClientFilter"


def owner_choices() -> list[tuple[str, str]]:
    """The owner choices: me, unassigned, then every active user holding a role, by name."""
    users = (
        get_user_model()
        .objects.filter(is_active=True, groups__name__in=roles.ROLES)
        .distinct()
        .order_by("last_name", "first_name", "username")
        .only("username", "first_name", "last_name")
    )
    return [
        (OWNER_ME, _("Me")),
        (OWNER_NONE, _("Unassigned")),
        *((str(user.pk), user.get_full_name() or user.get_username()) for user in users),
    ]


def sort_clients(queryset: QuerySet, sort: str | None) -> tuple[QuerySet, str]:
    """Order clients by a whitelisted ``sort`` key (``-`` prefix for descending); unknown keys fall back to name.

    Returns the ordered queryset and the sort key actually applied.
    """
    sort = sort or DEFAULT_CLIENT_SORT
    descending = sort.startswith("-")
    key = sort.removeprefix("-")
    if key not in CLIENT_SORTS:
        key, descending = DEFAULT_CLIENT_SORT, False
    ordering = [_order_by(field, descending=descending) for field in (*CLIENT_SORTS[key], "id")]
    return queryset.order_by(*ordering), f"-{key}" if descending else key


def _order_by(field: str, *, descending: bool) -> str | OrderBy:
    if field in NULLABLE_SORT_FIELDS:
        return F(field).desc(nulls_last=True) if descending else F(field).asc(nulls_last=True)
    return f"-{field}" if descending else field


class IntegerFilter(django_filters.NumberFilter):
    field_class = forms.IntegerField


class ClientFilterForm(forms.Form):
    """Bootstrap classes on every widget, so templates can render the fields as they come."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            is_select = isinstance(field.widget, forms.Select)
            field.widget.attrs.setdefault(
                "class", "form-select form-select-sm" if is_select else "form-control form-control-sm"
            )


class ClientFilter(django_filters.FilterSet):
    """Filters of the client list, applied to the clients ``user`` may see.

    Pass ``user`` (or ``request``): it resolves the "me" owner and, when no ``queryset`` is given, limits the result
    to ``Client.objects.visible_to(user)``. Invalid values match no client at all, never more clients than asked:
    a saved segment whose tag was deleted must not suddenly cover the whole portfolio.
    """

    q = django_filters.CharFilter(
        method="filter_search", label=_("Search"), max_length=200, widget=forms.TextInput(attrs={"type": "search"})
    )
    lifecycle = django_filters.ChoiceFilter(choices=Lifecycle.choices, label=_("Lifecycle"), empty_label=_("Any"))
    stage = django_filters.ChoiceFilter(choices=Stage.choices, label=_("Stage"), empty_label=_("Any"))
    owner = django_filters.ChoiceFilter(
        method="filter_owner", choices=owner_choices, label=_("Owner"), empty_label=_("Anyone")
    )
    tier = django_filters.ChoiceFilter(choices=Tier.choices, label=_("Tier"), empty_label=_("Any"))
    tag = django_filters.ModelChoiceFilter(
        field_name="tags", queryset=Tag.objects.all(), label=_("Tag"), empty_label=_("Any")
    )
    source = django_filters.ChoiceFilter(choices=Source.choices, label=_("Source"), empty_label=_("Any"))
    persona = django_filters.ModelChoiceFilter(
        queryset=Persona.objects.only("name"), label=_("Persona"), empty_label=_("Any")
    )
    # Exact matches so PostgreSQL can use the sector, city and country indexes on a large portfolio.
    sector = django_filters.CharFilter(label=_("Sector"), max_length=120)
    city = django_filters.CharFilter(label=_("City"), max_length=120)
    country = django_filters.CharFilter(label=_("Country"), max_length=120)
    idle_days = IntegerFilter(
        method="filter_idle_days",
        label=_("No interaction for (days)"),
        min_value=1,
        max_value=MAX_IDLE_DAYS,
    )

    class Meta:
        model = Client
        fields: list[str] = []
        form = ClientFilterForm

    def __init__(self, data=None, queryset=None, *, request=None, prefix=None, user=None):
        self.user = user if user is not None else getattr(request, "user", None)
        if queryset is None:
            queryset = Client.objects.visible_to(self.user)
        super().__init__(data, queryset, request=request, prefix=prefix)

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        if not self.form.is_valid():
            return queryset.none()
        return super().filter_queryset(queryset)

    def filter_search(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        return queryset.search(value)

    def filter_owner(self, queryset: QuerySet, name: str, value: str) -> QuerySet:
        if value == OWNER_ME:
            if self.user is None or not self.user.is_authenticated:
                return queryset.none()
            return queryset.filter(owner=self.user)
        if value == OWNER_NONE:
            return queryset.filter(owner__isnull=True)
        return queryset.filter(owner_id=value)

    def filter_idle_days(self, queryset: QuerySet, name: str, value: int) -> QuerySet:
        return queryset.without_interaction_for(value)

    def sort(self, queryset: QuerySet, sort: str | None) -> tuple[QuerySet, str]:
        """Order the filtered clients by ``sort`` (see ``sort_clients``); a subclass may add sort keys."""
        return sort_clients(queryset, sort)

    def params(self) -> dict[str, str]:
        """The non-empty filter values as given, e.g. to store in a segment or put in a link."""
        values = {name: self.data.get(name) for name in self.filters}
        return {name: str(value) for name, value in values.items() if value not in (None, "")}

    def describe(self) -> list[tuple[str, str]]:
        """The active filters as (label, readable value) pairs, for people rather than URLs."""
        if not self.is_valid():
            return []
        described = []
        for name, value in self.form.cleaned_data.items():
            if value in (None, ""):
                continue
            field = self.form.fields[name]
            if isinstance(field, forms.ModelChoiceField):
                shown = str(value)
            elif isinstance(field, forms.ChoiceField):
                shown = str(dict(field.choices).get(str(value), value))
            else:
                shown = str(value)
            described.append((str(field.label), shown))
        return described


@cache
def _import_filter_class(path: str) -> type[ClientFilter]:
    return import_string(path)


def client_filter_class() -> type[ClientFilter]:
    """The FilterSet of the client list, its export and the segments: ``settings.CRM_CLIENT_FILTERSET``."""
    return _import_filter_class(getattr(settings, "CRM_CLIENT_FILTERSET", DEFAULT_CLIENT_FILTERSET))
