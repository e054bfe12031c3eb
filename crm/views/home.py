"""The home page: what is due for me today, the clients I touched lately, and for managers the team's backlog."""

from __future__ import annotations

from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from crm import roles
from crm.models import Client, FollowUp, Reminder

FOLLOW_UPS_SHOWN = 100
RECENT_CLIENTS_SHOWN = 10
FAILED_REMINDERS_SHOWN = 10


def _team_overdue_counts() -> list[dict]:
    """Open follow-ups past their due time, counted per assignee, the longest backlog first."""
    return list(
        FollowUp.objects.open()
        .filter(due_at__lt=timezone.now())
        .values("assignee_id", "assignee__username", "assignee__first_name", "assignee__last_name")
        .annotate(overdue=Count("id"))
        .order_by("-overdue", "assignee__username")
    )


@roles.role_required(*roles.ALL_ROLES)
@require_safe
def home(request: HttpRequest) -> HttpResponse:
    user = request.user
    follow_ups = FollowUp.objects.filter(assignee=user).due_by_end_of_today().select_related("client")
    recent_clients = Client.objects.filter(owner=user, last_interaction_at__isnull=False).order_by(
        "-last_interaction_at"
    )
    context = {
        "follow_ups": list(follow_ups.order_by("due_at", "id")[:FOLLOW_UPS_SHOWN]),
        "follow_ups_shown": FOLLOW_UPS_SHOWN,
        "recent_clients": recent_clients[:RECENT_CLIENTS_SHOWN],
        "failed_reminders": Reminder.objects.failed_for(user).select_related("follow_up__client")[
            :FAILED_REMINDERS_SHOWN
        ],
    }
    if roles.role_of(user) in roles.MANAGERS:
        context["team_overdue"] = _team_overdue_counts()
    return render(request, "crm/home.html", context)
