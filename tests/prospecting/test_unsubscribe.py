"""The unsubscribe page: public by design (outside the access matrix), opened from the signed link of a campaign
email; it sets do-not-contact, refuses altered links and never changes anything on GET."""

import pytest
from django.urls import reverse

from crm.models import Client, ClientChange
from prospecting import campaigns as services
from prospecting.models import CampaignSend, CampaignStep
from tests.factories import ClientFactory, SegmentFactory


@pytest.fixture
def sent(manager):
    """A campaign email sent to Ann, and the path of its unsubscribe link."""
    ann = ClientFactory(first_name="Ann", email="ann.martin@example.com", marketing_consent=True)
    campaign = services.campaign_save(name="Spring", segment=SegmentFactory(), rfm_segment="", offer=None, user=manager)
    step = CampaignStep.objects.create(campaign=campaign, position=1, subject="Hi", body="News")
    send = CampaignSend.objects.create(campaign=campaign, step=step, client=ann, status="sent")
    return send, reverse("prospecting:unsubscribe", args=[services.unsubscribe_token(send)])


def test_the_link_opens_a_confirmation_without_login_and_changes_nothing(client, sent):
    send, path = sent

    response = client.get(path)

    assert response.status_code == 200
    html = response.content.decode()
    assert "a…@example.com" in html and "ann.martin" not in html
    assert not Client.objects.get(pk=send.client_id).do_not_contact


def test_confirming_sets_do_not_contact_with_a_history_row(client, sent):
    send, path = sent

    response = client.post(path)

    assert response.status_code == 200
    assert 'id="unsubscribe-done"' in response.content.decode()
    assert Client.objects.get(pk=send.client_id).do_not_contact
    change = ClientChange.objects.get(client_id=send.client_id, field="do_not_contact")
    assert (change.new_value, change.user) == ("True", None)
    assert CampaignSend.objects.get(pk=send.pk).unsubscribed_at is not None


def test_one_click_unsubscribe_works_without_session_or_csrf_token(sent):
    from django.test import Client as Browser

    send, path = sent
    browser = Browser(enforce_csrf_checks=True)

    response = browser.post(path, {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert Client.objects.get(pk=send.client_id).do_not_contact


def test_a_tampered_link_is_refused_with_a_clear_message(client, sent):
    send, path = sent
    token = path.rstrip("/").rsplit("/", 1)[1]
    other = ClientFactory(email="other@example.com")
    forged = token.replace(token[5], "A" if token[5] != "A" else "B", 1)

    for bad in (
        forged,
        token[:-2],
        "not-a-token",
        services.unsubscribe_token(CampaignSend(pk=send.pk, client_id=other.pk))[:-1],
    ):
        response = client.post(reverse("prospecting:unsubscribe", args=[bad]))
        assert response.status_code == 400
        assert "link is incomplete or was altered" in response.content.decode()
    assert not Client.objects.filter(do_not_contact=True).exists()


def test_a_link_signed_for_another_purpose_is_refused(client, sent):
    from django.core import signing

    send, _path = sent
    token = signing.Signer().sign_object({"c": send.client_id, "s": send.pk}, compress=True)  # not our salt

    assert client.post(reverse("prospecting:unsubscribe", args=[token])).status_code == 400


def test_unsubscribing_twice_says_so_and_counts_once(client, sent):
    send, path = sent
    client.post(path)
    first = CampaignSend.objects.get(pk=send.pk).unsubscribed_at

    response = client.get(path)
    client.post(path)

    assert 'id="unsubscribe-already"' in response.content.decode()
    assert CampaignSend.objects.get(pk=send.pk).unsubscribed_at == first
    assert ClientChange.objects.filter(client_id=send.client_id, field="do_not_contact").count() == 1


def test_a_deleted_client_link_says_he_is_no_longer_mailed(client, sent):
    send, path = sent
    Client.objects.filter(pk=send.client_id).delete()

    response = client.post(path)

    assert response.status_code == 200 and 'id="unsubscribe-gone"' in response.content.decode()


def test_an_unsubscribed_client_gets_no_further_campaign_email(
    sent, manager, django_capture_on_commit_callbacks, tasks_inline
):
    from django.core import mail

    send, path = sent
    services.campaign_unsubscribe(client=send.client, send_id=send.pk)
    campaign = services.campaign_save(
        name="Summer", segment=SegmentFactory(filters={}), rfm_segment="", offer=None, user=manager
    )
    services.campaign_step_save(campaign=campaign, subject="Hi", body="News", delay_days=0)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_launch(campaign=campaign, user=manager)

    assert mail.outbox == []


def test_a_send_always_gets_the_same_link(sent, monkeypatch):
    import time

    send, _path = sent
    first = services.unsubscribe_url(send)
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)  # a timestamped token would change
    assert services.unsubscribe_url(send) == first
