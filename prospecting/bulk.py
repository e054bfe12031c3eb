"""The "enrol in a campaign" bulk action, offered on the client list and segments through ``CRM_BULK_ACTIONS``.

Enrolling adds ``CampaignMember`` rows to a draft or running campaign, on top of its target segment. Clients already
members, and clients who asked not to be contacted, are skipped and counted. Undoing removes the memberships the
action added (the emails already sent stay sent).
"""

from __future__ import annotations

from django import forms
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from crm import roles
from crm.bulk import (
    BulkActionError,
    BulkActionType,
    Outcome,
    UndoOutcome,
    selection_chunks,
    undo_candidates,
    write_items,
)
from crm.models import BulkAction, Client
from prospecting.models import Campaign, CampaignMember, CampaignStatus

OPEN_STATUSES = (CampaignStatus.DRAFT, CampaignStatus.RUNNING)


class EnrolForm(forms.Form):
    campaign = forms.ModelChoiceField(label=_("Campaign"), queryset=Campaign.objects.none())

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["campaign"].queryset = Campaign.objects.filter(status__in=OPEN_STATUSES).order_by("name")
        self.fields["campaign"].help_text = _("A draft or running campaign.")


class EnrolInCampaign(BulkActionType):
    key = "enrol_in_campaign"
    label = _("Enrol in a campaign")
    allowed_roles = roles.MANAGERS
    Form = EnrolForm

    def params(self, cleaned_data: dict) -> dict:
        return {"campaign": cleaned_data["campaign"].pk, "name": cleaned_data["campaign"].name}

    def describe(self, params: dict) -> str:
        return gettext("Campaign: %(name)s") % {"name": params["name"]}

    def apply(self, *, action: BulkAction, clients: QuerySet, user) -> Outcome:
        # Locked, so that the campaign cannot finish or be cancelled while clients are being enrolled.
        campaign = Campaign.objects.select_for_update().filter(pk=action.params["campaign"]).first()
        if campaign is None or campaign.status not in OPEN_STATUSES:
            raise BulkActionError(gettext("Clients can only be enrolled in a draft or running campaign."))
        now, enrolled, already, unwilling = timezone.now(), 0, 0, 0
        for chunk in selection_chunks(action, clients):
            members = set(
                CampaignMember.objects.filter(campaign=campaign, client_id__in=chunk).values_list(
                    "client_id", flat=True
                )
            )
            blocked = (
                set(Client.objects.filter(pk__in=chunk, do_not_contact=True).values_list("pk", flat=True)) - members
            )
            new = [pk for pk in chunk if pk not in members and pk not in blocked]
            CampaignMember.objects.bulk_create(
                [CampaignMember(campaign=campaign, client_id=pk, added_by=user, added_at=now) for pk in new],
                ignore_conflicts=True,
            )
            write_items(action, ((pk, {}) for pk in new))
            enrolled, already, unwilling = enrolled + len(new), already + len(members), unwilling + len(blocked)
        notes = []
        if already:
            notes.append(
                ngettext(
                    "%(count)d client already enrolled was skipped.",
                    "%(count)d clients already enrolled were skipped.",
                    already,
                )
                % {"count": already}
            )
        if unwilling:
            notes.append(
                ngettext(
                    "%(count)d client who asked not to be contacted was skipped.",
                    "%(count)d clients who asked not to be contacted were skipped.",
                    unwilling,
                )
                % {"count": unwilling}
            )
        return Outcome(touched=enrolled, notes=notes)

    def undo(self, *, action: BulkAction, user) -> UndoOutcome:
        removed = 0
        for chunk in undo_candidates(action, user):
            members = CampaignMember.objects.filter(
                campaign_id=action.params["campaign"], client_id__in=[pk for pk, _previous in chunk]
            )
            removed += members.delete()[1].get(CampaignMember._meta.label, 0)
        return UndoOutcome(restored=removed, left=action.touched - removed)


ENROL_IN_CAMPAIGN = EnrolInCampaign()
