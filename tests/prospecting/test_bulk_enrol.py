"""Enrolling a selection of clients in a campaign (a bulk action), its undo, and what the campaign then targets."""

import pytest
from django.core import mail
from django.urls import reverse

from crm import bulk
from crm.models import BulkAction, Client
from prospecting import campaigns as services
from prospecting.models import Campaign, CampaignMember, CampaignStatus, StepStatus
from tests.factories import ClientFactory, SegmentFactory

URL = reverse("crm:bulk-action")


@pytest.fixture(autouse=True)
def campaign_settings(settings, tasks_inline):
    settings.CAMPAIGN_SEND_RATE = 0


@pytest.fixture
def campaign(manager):
    campaign = services.campaign_save(name="Spring", segment=None, rfm_segment="", offer=None, user=manager)
    services.campaign_step_save(campaign=campaign, subject="Hello {first_name}", body="News.", delay_days=0)
    return campaign


@pytest.fixture
def lyon(rep, other_rep):
    return [ClientFactory(owner=rep, city="Lyon", marketing_consent=True) for _ in range(3)] + [
        ClientFactory(owner=other_rep, city="Lyon", marketing_consent=True)
    ]


def _members(campaign):
    return set(CampaignMember.objects.filter(campaign=campaign).values_list("client_id", flat=True))


def test_a_manager_enrols_the_selection_and_the_skipped_clients_are_named(client_as, manager, campaign, lyon):
    CampaignMember.objects.create(campaign=campaign, client=lyon[0])
    Client.objects.filter(pk=lyon[1].pk).update(do_not_contact=True)

    response = client_as(manager).post(
        URL, {"action": "enrol_in_campaign", "filters": "city=Lyon", "campaign": campaign.pk}, follow=True
    )

    page = response.content.decode()
    assert "Campaign: Spring: 2 clients touched." in page
    assert "1 client already enrolled was skipped." in page
    assert "1 client who asked not to be contacted was skipped." in page
    assert _members(campaign) == {lyon[0].pk, lyon[2].pk, lyon[3].pk}
    assert CampaignMember.objects.get(campaign=campaign, client=lyon[3]).added_by == manager
    assert BulkAction.objects.get().touched == 2
    detail = client_as(manager).get(campaign.get_absolute_url()).content.decode()
    assert "3 clients enrolled by hand" in detail


def test_undoing_removes_only_the_memberships_it_added(manager, campaign, lyon):
    CampaignMember.objects.create(campaign=campaign, client=lyon[0])
    action, outcome = bulk.bulk_action_apply(
        kind="enrol_in_campaign",
        clients=Client.objects.filter(city="Lyon"),
        params={"campaign": campaign.pk, "name": campaign.name},
        user=manager,
    )
    assert outcome.touched == 3

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (3, 0)
    assert _members(campaign) == {lyon[0].pk}


def test_a_finished_campaign_takes_no_one(client_as, manager, campaign, lyon):
    Campaign.objects.filter(pk=campaign.pk).update(status=CampaignStatus.FINISHED)

    page = (
        client_as(manager)
        .post(URL, {"action": "enrol_in_campaign", "filters": "city=Lyon", "campaign": campaign.pk})
        .content.decode()
    )

    assert "Select a valid choice" in page
    with pytest.raises(bulk.BulkActionError, match="draft or running campaign"):
        bulk.bulk_action_apply(
            kind="enrol_in_campaign",
            clients=Client.objects.all(),
            params={"campaign": campaign.pk, "name": "Spring"},
            user=manager,
        )
    assert not CampaignMember.objects.exists()


def test_a_rep_cannot_enrol_clients(client_as, rep, campaign, lyon):
    response = client_as(rep).post(URL, {"action": "enrol_in_campaign", "filters": "", "campaign": campaign.pk})
    assert response.status_code == 403
    assert not CampaignMember.objects.exists()


def test_the_audience_is_the_segment_and_the_members(manager, campaign, rep):
    in_segment = ClientFactory(lifecycle="client")
    enrolled = ClientFactory(lifecycle="prospect")
    ClientFactory(lifecycle="prospect")
    assert set(services.campaign_audience(campaign)) == set()

    CampaignMember.objects.create(campaign=campaign, client=enrolled)
    assert set(services.campaign_audience(campaign)) == {enrolled}

    services.campaign_save(
        name="Spring",
        segment=SegmentFactory(filters={"lifecycle": "client"}),
        rfm_segment="",
        offer=None,
        user=manager,
        campaign=campaign,
    )
    assert set(services.campaign_audience(campaign)) == {in_segment, enrolled}


def test_a_campaign_with_members_only_launches_and_mails_them(manager, campaign, django_capture_on_commit_callbacks):
    enrolled = ClientFactory(email="enrolled@example.com", marketing_consent=True)
    ClientFactory(email="other@example.com", marketing_consent=True)
    with pytest.raises(services.CampaignError, match="Choose the segment"):
        services.campaign_launch(campaign=campaign, user=manager)

    CampaignMember.objects.create(campaign=campaign, client=enrolled)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_launch(campaign=campaign, user=manager)

    assert [address for message in mail.outbox for address in message.to] == ["enrolled@example.com"]
    assert campaign.steps.get().status == StepStatus.SENT


def test_a_draft_with_members_may_drop_its_segment(client_as, manager, campaign, lyon):
    url = reverse("prospecting:campaign-edit", args=[campaign.pk])
    page = client_as(manager).post(url, {"name": "Spring"}).content.decode()
    assert "Choose the segment the campaign targets, an RFM segment, or both." in page

    CampaignMember.objects.create(campaign=campaign, client=lyon[0])
    response = client_as(manager).post(url, {"name": "Spring 2"})

    assert response.status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).name == "Spring 2"
