"""Follow-ups beyond the card: planning one for every client of a list selection or a segment, and the navigation
badge counting the user's due follow-ups.

The selection is the client list's current filters, or a saved segment; each user plans only for the clients he may
edit (a rep his own). Each follow-up goes to the client's owner, or to the user planning them.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_http_methods

from crm import roles
from crm.bulk import ASSIGN_TO_ME, FollowUpsForm
from crm.filters import ClientFilter, client_filter_class
from crm.followups import follow_up_plan_many
from crm.forms import style_for_bootstrap
from crm.models import Client, FollowUp, Segment

MAX_BULK_FOLLOW_UPS = 5000
FORM_TEMPLATE = "crm/_follow_up_bulk_form.html"


class FollowUpBulkForm(FollowUpsForm):
    # Where the selection comes from: a segment, or the client list's filters as a query string.
    segment = forms.IntegerField(required=False, widget=forms.HiddenInput)
    filters = forms.CharField(required=False, max_length=4000, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style_for_bootstrap(self)


def selection_from_request(request: HttpRequest, data: QueryDict) -> tuple[ClientFilter, Segment | None]:
    """The filters picking the clients: the segment's when ``segment`` is given, else the list's."""
    segment = None
    if data.get("segment"):
        if not data["segment"].isdigit():
            raise Http404
        segment = get_object_or_404(Segment, pk=data["segment"])
        params = segment.filters
    elif "filters" in data:
        params = QueryDict(data["filters"])
    else:
        params = data
    return client_filter_class()(params, request=request), segment


def _clients(request: HttpRequest, filterset: ClientFilter):
    """The selected clients this user may plan follow-ups for."""
    return filterset.qs.filter(pk__in=Client.objects.editable_by(request.user).values("pk"))


def selection_back_url(filterset: ClientFilter, segment: Segment | None) -> str:
    if segment is not None:
        return segment.get_absolute_url()
    return f"{reverse('crm:client-list')}?{urlencode(filterset.params())}"


@roles.role_required(*roles.ALL_ROLES)
@require_http_methods(["GET", "POST"])
def follow_up_bulk(request: HttpRequest) -> HttpResponse:
    """Show how many clients the selection covers with the form; on POST, plan one follow-up for each."""
    data = request.POST if request.method == "POST" else request.GET
    filterset, segment = selection_from_request(request, data)
    clients = _clients(request, filterset)
    count = clients.count()
    if request.method == "POST":
        form = FollowUpBulkForm(request.POST)
        if form.is_valid() and filterset.is_valid() and 0 < count <= MAX_BULK_FOLLOW_UPS:
            created = _plan(request, clients, form.cleaned_data)
            messages.success(
                request,
                ngettext("%(count)d follow-up planned.", "%(count)d follow-ups planned.", created) % {"count": created},
            )
            return redirect(selection_back_url(filterset, segment))
    else:
        form = FollowUpBulkForm(
            initial={"segment": segment.pk if segment else None, "filters": urlencode(filterset.params())}
        )
    context = {
        "form": form,
        "filter": filterset,
        "filters": filterset.describe(),
        "segment": segment,
        "count": count,
        "max_count": MAX_BULK_FOLLOW_UPS,
        "back_url": selection_back_url(filterset, segment),
    }
    is_partial = request.headers.get("HX-Request") and not request.headers.get("HX-History-Restore-Request")
    return render(request, FORM_TEMPLATE if is_partial else "crm/follow_up_bulk.html", context)


def _plan(request: HttpRequest, clients, cleaned: dict) -> int:
    me = request.user.pk
    if cleaned["assign_to"] == ASSIGN_TO_ME:
        assignments = [(pk, me) for pk in clients.values_list("pk", flat=True)]
    else:
        assignments = [(pk, owner or me) for pk, owner in clients.values_list("pk", "owner_id")]
    return follow_up_plan_many(
        assignments=assignments,
        due_at=cleaned["due_at"],
        title=cleaned["title"],
        notes=cleaned["notes"],
        created_by=request.user,
    )


@roles.role_required(*roles.ALL_ROLES)
@require_GET
def reminder_badge(request: HttpRequest) -> HttpResponse:
    """The count of the user's open follow-ups that are due, for the navigation bar (polled by htmx)."""
    due = FollowUp.objects.open().filter(assignee=request.user, due_at__lte=timezone.now()).count()
    return render(request, "crm/_reminder_badge.html", {"due_count": due})
