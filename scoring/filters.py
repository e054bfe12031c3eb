"""The client list's filters and sorts on scores, plugged into crm through the ``CRM_CLIENT_FILTERSET`` setting.

``ScoredClientFilter`` adds to crm's ``ClientFilter``: RFM segment, RFM score range, R and F scores (a dashboard grid
cell links to ``?r=4&f=5``), minimum predicted CLV and maximum chance of being active; and the sort keys
``rfm_sum``, ``clv_12m`` and ``p_alive`` (``-`` for descending). All read the current run's scores only.

The scores are joined once, on ``run_id = <current run>``, so PostgreSQL reaches them through the (run, ...)
indexes of ClientScore; that join keeps only the clients scored in that run, and a score sort keeps the clients that
have that score. With no completed run the score filters match no client and the form says why; the score sorts
fall back to the list's default order.
"""

from __future__ import annotations

import django_filters
from django.db.models import F, FilteredRelation, Q, QuerySet
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from crm.filters import ClientFilter, ClientFilterForm, IntegerFilter
from scoring.rfm import SEGMENTS
from scoring.selectors import current_run_id

SCORES = "current_score"
# Filter name -> lookup on the current score.
SCORE_LOOKUPS = {
    "segment": "segment",
    "rfm_min": "rfm_sum__gte",
    "rfm_max": "rfm_sum__lte",
    "r": "r_score",
    "f": "f_score",
    "clv_12m_min": "clv_12m__gte",
    "p_alive_max": "p_alive__lte",
}
SCORE_SORTS = frozenset({"rfm_sum", "clv_12m", "p_alive"})
NO_COMPLETED_RUN = _("No scoring run has completed yet, so no client has a score to filter on.")


class ScoredClientFilterForm(ClientFilterForm):
    @cached_property
    def score_run_id(self) -> int | None:
        """The run whose scores the filters read; looked up only when a score filter or sort is used."""
        return current_run_id()

    def clean(self) -> dict:
        cleaned = super().clean()
        used = [name for name in SCORE_LOOKUPS if cleaned.get(name) not in (None, "")]
        if used and self.score_run_id is None:
            self.add_error(used[0], NO_COMPLETED_RUN)
        low, high = cleaned.get("rfm_min"), cleaned.get("rfm_max")
        if low is not None and high is not None and low > high:
            self.add_error("rfm_max", _("The maximum RFM score is below the minimum."))
        return cleaned


class ScoredClientFilter(ClientFilter):
    """``ClientFilter`` plus the current run's scores (see the module docstring)."""

    # The score filters are applied together in ``filter_queryset``, through a single join.
    segment = django_filters.ChoiceFilter(
        method="filter_score",
        choices=[(key, segment.label) for key, segment in SEGMENTS.items()],
        label=_("RFM segment"),
        empty_label=_("Any"),
    )
    rfm_min = IntegerFilter(method="filter_score", label=_("RFM score from"), min_value=3, max_value=15)
    rfm_max = IntegerFilter(method="filter_score", label=_("RFM score up to"), min_value=3, max_value=15)
    r = IntegerFilter(method="filter_score", label=_("R score (recency)"), min_value=1, max_value=5)
    f = IntegerFilter(method="filter_score", label=_("F score (frequency)"), min_value=1, max_value=5)
    clv_12m_min = django_filters.NumberFilter(
        method="filter_score", label=_("Predicted CLV (12 months) from"), min_value=0, max_digits=14, decimal_places=2
    )
    p_alive_max = django_filters.NumberFilter(
        method="filter_score", label=_("Chance of being active up to (%)"), min_value=0, max_value=100
    )

    class Meta(ClientFilter.Meta):
        form = ScoredClientFilterForm

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._scores_joined = False

    def filter_score(self, queryset: QuerySet, name: str, value) -> QuerySet:
        return queryset

    def filter_queryset(self, queryset: QuerySet) -> QuerySet:
        queryset = super().filter_queryset(queryset)
        if not self.form.is_valid():
            return queryset
        conditions = {
            f"{SCORES}__{lookup}": self._score_value(name, self.form.cleaned_data[name])
            for name, lookup in SCORE_LOOKUPS.items()
            if self.form.cleaned_data.get(name) not in (None, "")
        }
        if conditions:
            queryset = self._with_current_scores(queryset).filter(**conditions)
            self._scores_joined = True
        return queryset

    def sort(self, queryset: QuerySet, sort: str | None) -> tuple[QuerySet, str]:
        """The list's sorts plus the score sorts: highest (``-``) or lowest first, clients without the score left out."""
        descending = (sort or "").startswith("-")
        key = (sort or "").removeprefix("-")
        if key not in SCORE_SORTS or self.form.score_run_id is None:
            return super().sort(queryset, sort)
        if not self._scores_joined:
            queryset = self._with_current_scores(queryset)
        # Through an alias the sort reuses the filters' join; IS NOT NULL lets PostgreSQL walk the (run, score) index.
        queryset = queryset.alias(score_sort=F(f"{SCORES}__{key}")).filter(score_sort__isnull=False)
        if descending:
            return queryset.order_by(F("score_sort").desc(), "-id"), sort
        return queryset.order_by(F("score_sort").asc(), "id"), sort

    def _with_current_scores(self, queryset: QuerySet) -> QuerySet:
        scores = FilteredRelation("scores", condition=Q(scores__run_id=self.form.score_run_id))
        return queryset.annotate(**{SCORES: scores})

    @staticmethod
    def _score_value(name: str, value):
        # The form speaks in percent, the scores in probabilities.
        return float(value) / 100 if name == "p_alive_max" else value
