"""The client list (filters, sorting, paging, updated in place by htmx) and its CSV export.

``client_table_context`` and ``render_client_table`` are shared with the segment page, which shows the same table
for a saved set of filters.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from crm import roles
from crm.bulk import bulk_actions_for
from crm.exports import client_export_header, client_export_rows, csv_stream
from crm.filters import ClientFilter, client_filter_class
from crm.pagination import CappedPaginator

# (sort key or None when the column does not sort, title)
COLUMNS = (
    ("name", _("Name")),
    ("company", _("Company")),
    (None, _("City")),
    ("lifecycle", _("Lifecycle")),
    ("stage", _("Stage")),
    ("tier", _("Tier")),
    ("owner", _("Owner")),
    ("last_interaction_at", _("Last interaction")),
    ("last_purchase_at", _("Last purchase")),
    ("created_at", _("Created")),
)
# Only what the table shows is read: a row of the list stays small on a large portfolio.
LIST_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "company",
    "city",
    "lifecycle",
    "stage",
    "tier",
    "owner__username",
    "owner__first_name",
    "owner__last_name",
    "last_interaction_at",
    "last_purchase_at",
    "created_at",
)
PARTIAL_TEMPLATE = "crm/_client_table.html"


def _columns(sort: str) -> list[dict]:
    columns = []
    for key, label in COLUMNS:
        direction = "asc" if sort == key else "desc" if sort == f"-{key}" else None
        next_sort = f"-{key}" if direction == "asc" else key
        columns.append({"key": key, "label": label, "direction": direction, "next_sort": next_sort})
    return columns


def client_table_context(request: HttpRequest, filterset: ClientFilter) -> dict:
    """Sort and page the filtered clients; ``sort`` and ``page`` come from the request's query string."""
    clients = filterset.qs.select_related("owner").only(*LIST_FIELDS)
    clients, sort = filterset.sort(clients, request.GET.get("sort"))
    params = filterset.params()
    # Counting the matches of a text search tests every row for the words: a broad word is counted less far.
    cap = settings.CRM_SEARCH_COUNT_CAP if params.get("q") else settings.CRM_LIST_COUNT_CAP
    page = CappedPaginator(clients, settings.CRM_CLIENTS_PER_PAGE, cap=cap).get_page(request.GET.get("page"))
    return {
        "filter": filterset,
        "page_obj": page,
        "sort": sort,
        "columns": _columns(sort),
        "filter_query": urlencode(params),
        "export_query": urlencode({**params, "sort": sort}),
        "export_max_rows": settings.CRM_EXPORT_MAX_ROWS,
        "bulk_actions": bulk_actions_for(request.user),
    }


def render_client_table(request: HttpRequest, template_name: str, context: dict) -> HttpResponse:
    """The whole page, or only the table for an htmx request (a history restore still needs the whole page)."""
    is_partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    response = render(request, PARTIAL_TEMPLATE if is_partial else template_name, context)
    # The same URL answers with a page or a fragment: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def client_list(request: HttpRequest) -> HttpResponse:
    filterset = client_filter_class()(request.GET, request=request)
    return render_client_table(request, "crm/client_list.html", client_table_context(request, filterset))


@roles.role_required(*roles.MANAGERS)
@require_GET
def client_export(request: HttpRequest) -> HttpResponse:
    filterset = client_filter_class()(request.GET, request=request)
    if not filterset.is_valid():
        messages.error(request, gettext("Some filters are invalid; correct them before exporting."))
        return redirect(f"{reverse('crm:client-list')}?{request.GET.urlencode()}")
    clients, _sort = filterset.sort(filterset.qs, request.GET.get("sort"))
    clients = clients[: settings.CRM_EXPORT_MAX_ROWS]
    filename = f"clients-{timezone.localdate().isoformat()}.csv"
    return StreamingHttpResponse(
        csv_stream(client_export_header(), client_export_rows(clients)),
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
