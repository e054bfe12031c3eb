"""A paginator whose count stops at a cap: an exact count of a broad filter over a large portfolio costs more than
the page itself, and nobody pages through more than a few thousand clients."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.utils.functional import cached_property


class CappedPaginator(Paginator):
    def __init__(self, object_list, per_page, *, cap: int, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def _counted(self) -> int:
        # COUNT over a LIMITed subquery: the database stops after cap + 1 rows.
        return self.object_list.order_by()[: self.cap + 1].count()

    @cached_property
    def count(self) -> int:
        """The number of rows, or ``cap`` when there are more (see ``is_capped``)."""
        return min(self._counted, self.cap)

    @property
    def is_capped(self) -> bool:
        return self._counted > self.cap
