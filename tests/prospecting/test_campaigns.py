"""Email campaigns: who is mailed, what the email says, sequences that stop on a reply or a purchase, nothing sent
twice, every email on the card, per-step figures, and who may do what."""

import smtplib
import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.db import connection, connections
from django.urls import reverse
from django.utils import timezone

from crm import roles
from crm.models import Client, ClientChange, Direction, Interaction, InteractionKind
from prospecting import campaigns as services
from prospecting.models import (
    Campaign,
    CampaignSend,
    CampaignStatus,
    CampaignStep,
    Offer,
    SendPace,
    SendStatus,
    SkipReason,
    StepStatus,
)
from scoring.models import ClientScore, RunStatus, ScoringRun
from tests.factories import ClientFactory, InteractionFactory, PurchaseFactory, SegmentFactory, UserFactory


@pytest.fixture(autouse=True)
def campaign_settings(settings, tasks_inline):
    """Tasks run in-process, even when the suite is given a real broker; mail leaves without pause."""
    settings.CAMPAIGN_SEND_RATE = 0
    settings.CAMPAIGN_BATCH_SIZE = 3
    settings.SITE_URL = "https://crm.example.com"


def consenting(**fields):
    return ClientFactory(marketing_consent=True, lifecycle="client", **fields)


def make_campaign(manager, *, steps=(("Hello {first_name}", "Dear {first_name} of {company},\nNews."),), **fields):
    campaign = services.campaign_save(
        name=fields.pop("name", "Spring"),
        segment=fields.pop("segment", None) or SegmentFactory(filters={"lifecycle": "client"}),
        rfm_segment=fields.pop("rfm_segment", ""),
        offer=fields.pop("offer", None),
        user=manager,
    )
    for number, (subject, body) in enumerate(steps):
        services.campaign_step_save(campaign=campaign, subject=subject, body=body, delay_days=0 if number == 0 else 2)
    return campaign


def launch(campaign, manager, capture):
    with capture(execute=True):
        services.campaign_launch(campaign=campaign, user=manager)


def advance_to_next_step(campaign, capture):
    """Pretend the delay after the previous step has passed, and let the periodic pass queue the next step."""
    campaign.steps.filter(status=StepStatus.SCHEDULED).update(due_at=timezone.now() - timedelta(minutes=1))
    with capture(execute=True):
        services.campaign_advance()


def step(campaign, position):
    return CampaignStep.objects.get(campaign=campaign, position=position)


def recipients(position=None):
    messages = mail.outbox
    return sorted(address for message in messages for address in message.to)


# --- Personal fields ------------------------------------------------------------------------------------------


def test_personal_fields_are_a_whitelist_and_never_run_templates():
    fields = {"first_name": "Ann", "company": "ACME", "offer_code": "SPRING15", "last_name": "Martin"}
    text = "Hi {first_name} ({company}), code {offer_code}. {{ settings.SECRET_KEY }} {secret} {first_name.__class__}"

    assert services.personalize(text, fields) == (
        "Hi Ann (ACME), code SPRING15. {{ settings.SECRET_KEY }} {secret} {first_name.__class__}"
    )
    assert services.unknown_placeholders(text) == ["secret"]


def test_the_html_part_escapes_what_clients_and_managers_wrote(manager, django_capture_on_commit_callbacks):
    consenting(first_name="<b>Ann</b>", company="A & B", email="ann@example.com")
    campaign = make_campaign(
        manager, steps=(("Hi {first_name}", "Hello {first_name} from {company} <script>x</script>"),)
    )

    launch(campaign, manager, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    html = message.alternatives[0][0]
    assert "&lt;b&gt;Ann&lt;/b&gt;" in html and "A &amp; B" in html and "&lt;script&gt;" in html
    assert "<script>" not in html
    assert "Hello <b>Ann</b> from A & B <script>x</script>" in message.body
    assert message.subject == "Hi <b>Ann</b>"


def test_the_offer_code_goes_into_the_email(manager, django_capture_on_commit_callbacks):
    consenting(first_name="Ann")
    offer = Offer.objects.create(
        code="SPRING15",
        name="15% this month",
        discount_kind="percent",
        discount_value=Decimal("15"),
        valid_from=timezone.localdate(),
        valid_until=timezone.localdate() + timedelta(days=30),
    )
    campaign = make_campaign(manager, offer=offer, steps=(("Your code", "{first_name}, use {offer_code}."),))

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert "Ann, use SPRING15." in mail.outbox[0].body


# --- Consent and unsubscribe ------------------------------------------------------------------------------------


def test_only_clients_with_consent_and_without_do_not_contact_are_mailed(manager, django_capture_on_commit_callbacks):
    consenting(email="yes@example.com")
    ClientFactory(lifecycle="client", marketing_consent=False, email="no-consent@example.com")
    consenting(email="dnc@example.com", do_not_contact=True)
    consenting(email="")
    ClientFactory(lifecycle="prospect", marketing_consent=True, email="outside@example.com")
    campaign = make_campaign(manager)

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert recipients() == ["yes@example.com"]
    assert CampaignSend.objects.get().client.email == "yes@example.com"
    first = step(campaign, 1)
    assert (first.audience, first.recipients, first.status) == (4, 1, StepStatus.SENT)


def test_a_client_who_unsubscribes_after_queuing_is_skipped(manager, django_capture_on_commit_callbacks, monkeypatch):
    ann = consenting(email="ann@example.com")
    consenting(email="bob@example.com")
    campaign = make_campaign(manager)
    monkeypatch.setattr(services, "enqueue_pending_batches", lambda **kwargs: 0)
    launch(campaign, manager, django_capture_on_commit_callbacks)
    Client.objects.filter(pk=ann.pk).update(do_not_contact=True)

    services.campaign_send_batch(
        step_id=step(campaign, 1).pk, send_ids=list(CampaignSend.objects.values_list("pk", flat=True))
    )

    assert recipients() == ["bob@example.com"]
    skipped = CampaignSend.objects.get(client=ann)
    assert (skipped.status, skipped.skip_reason) == (SendStatus.SKIPPED, SkipReason.DO_NOT_CONTACT)


def test_every_email_has_a_signed_unsubscribe_link_and_one_click_headers(manager, django_capture_on_commit_callbacks):
    ann = consenting(email="ann@example.com")
    campaign = make_campaign(manager)

    launch(campaign, manager, django_capture_on_commit_callbacks)

    [message] = mail.outbox
    send = CampaignSend.objects.get(client=ann)
    link = services.unsubscribe_url(send)
    assert link.startswith("https://crm.example.com/prospecting/unsubscribe/")
    assert link in message.body and link in message.alternatives[0][0]
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert services.read_unsubscribe_token(link.rstrip("/").rsplit("/", 1)[1]) == (ann.pk, send.pk)


# --- Launching --------------------------------------------------------------------------------------------------


def test_launching_only_schedules_the_step_and_queues_it_after_commit(
    client_as, manager, django_capture_on_commit_callbacks
):
    consenting()
    campaign = make_campaign(manager)

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client_as(manager).post(reverse("prospecting:campaign-launch", args=[campaign.pk]))

    assert response.status_code == 302
    assert len(callbacks) == 1
    assert not CampaignSend.objects.exists() and mail.outbox == []
    first = step(campaign, 1)
    assert first.status == StepStatus.SCHEDULED and first.due_at <= timezone.now()
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.RUNNING


def test_a_campaign_without_email_or_target_cannot_be_launched(manager):
    empty = services.campaign_save(name="Empty", segment=SegmentFactory(), rfm_segment="", offer=None, user=manager)

    with pytest.raises(services.CampaignError):
        services.campaign_launch(campaign=empty, user=manager)
    assert Campaign.objects.get(pk=empty.pk).status == CampaignStatus.DRAFT


def test_a_campaign_launched_twice_is_launched_once(manager, django_capture_on_commit_callbacks):
    consenting()
    campaign = make_campaign(manager)
    launch(campaign, manager, django_capture_on_commit_callbacks)

    with pytest.raises(services.CampaignError):
        services.campaign_launch(campaign=campaign, user=manager)
    assert len(mail.outbox) == 1


def test_a_step_due_later_waits_for_the_periodic_pass(manager, django_capture_on_commit_callbacks):
    consenting()
    campaign = make_campaign(manager)
    CampaignStep.objects.filter(campaign=campaign).update(delay_days=3)

    launch(campaign, manager, django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        services.campaign_advance()
    assert mail.outbox == []

    advance_to_next_step(campaign, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 1


# --- Every email on the card ------------------------------------------------------------------------------------


def test_every_sent_email_is_logged_as_an_interaction_on_the_card(manager, django_capture_on_commit_callbacks):
    clients = [consenting() for _ in range(7)]
    campaign = make_campaign(manager)

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert len(mail.outbox) == 7
    logged = Interaction.objects.filter(kind=InteractionKind.EMAIL, direction=Direction.OUTBOUND)
    assert logged.count() == 7
    assert set(logged.values_list("client_id", flat=True)) == {client.pk for client in clients}
    sample = logged.select_related("client").first()
    assert sample.subject == f"Hello {sample.client.first_name}"
    assert "Spring" in sample.body and "unsubscribe" not in sample.body.lower()
    assert sample.user == manager
    assert Client.objects.get(pk=sample.client_id).last_interaction_at == sample.occurred_at


# --- Sequences --------------------------------------------------------------------------------------------------


TWO_STEPS = (("First", "First email"), ("Second", "Second email"))


def test_the_next_step_goes_to_those_who_neither_replied_nor_purchased(manager, django_capture_on_commit_callbacks):
    quiet = consenting(email="quiet@example.com")
    replier = consenting(email="replier@example.com")
    buyer = consenting(email="buyer@example.com")
    internal_note = consenting(email="noted@example.com")
    campaign = make_campaign(manager, steps=TWO_STEPS)
    launch(campaign, manager, django_capture_on_commit_callbacks)
    assert len(mail.outbox) == 3 + 1
    assert step(campaign, 2).status == StepStatus.SCHEDULED

    InteractionFactory(client=replier, kind=InteractionKind.EMAIL, direction=Direction.INBOUND)
    PurchaseFactory(client=buyer, purchased_on=timezone.localdate())
    InteractionFactory(client=internal_note, kind=InteractionKind.NOTE, direction=Direction.INTERNAL)
    InteractionFactory(
        client=quiet, direction=Direction.INBOUND, occurred_at=timezone.now() - timedelta(days=10)
    )  # before the campaign: not a reply
    mail.outbox.clear()
    advance_to_next_step(campaign, django_capture_on_commit_callbacks)

    assert recipients() == ["noted@example.com", "quiet@example.com"]
    assert all(message.subject == "Second" for message in mail.outbox)
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.FINISHED


def test_a_reply_between_queuing_and_sending_stops_the_email(manager, django_capture_on_commit_callbacks, monkeypatch):
    replier = consenting(email="replier@example.com")
    consenting(email="quiet@example.com")
    campaign = make_campaign(manager, steps=TWO_STEPS)
    launch(campaign, manager, django_capture_on_commit_callbacks)
    monkeypatch.setattr(services, "enqueue_pending_batches", lambda **kwargs: 0)
    advance_to_next_step(campaign, django_capture_on_commit_callbacks)
    InteractionFactory(client=replier, direction=Direction.INBOUND)
    mail.outbox.clear()

    second = step(campaign, 2)
    services.campaign_send_batch(step_id=second.pk, send_ids=list(second.sends.values_list("pk", flat=True)))

    assert recipients() == ["quiet@example.com"]
    assert second.sends.get(client=replier).skip_reason == SkipReason.LEFT_SEQUENCE


def test_the_segment_is_evaluated_again_for_each_step(manager, django_capture_on_commit_callbacks):
    stays = consenting(email="stays@example.com", city="Lyon")
    moves = consenting(email="moves@example.com", city="Lyon")
    campaign = make_campaign(manager, steps=TWO_STEPS, segment=SegmentFactory(filters={"city": "Lyon"}))
    launch(campaign, manager, django_capture_on_commit_callbacks)
    Client.objects.filter(pk=moves.pk).update(city="Paris")
    newcomer = consenting(email="new@example.com", city="Lyon")
    mail.outbox.clear()

    advance_to_next_step(campaign, django_capture_on_commit_callbacks)

    assert recipients() == [stays.email]
    assert not CampaignSend.objects.filter(client=newcomer).exists()


def test_an_rfm_segment_targets_the_clients_of_the_current_scoring_run(manager, django_capture_on_commit_callbacks):
    champion, at_risk = consenting(email="champion@example.com"), consenting(email="risk@example.com")
    old = ScoringRun.objects.create(
        as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now() - timedelta(days=1)
    )
    current = ScoringRun.objects.create(
        as_of=timezone.localdate(), status=RunStatus.COMPLETED, finished_at=timezone.now()
    )
    for run, client, segment in (
        (old, at_risk, "champions"),
        (current, champion, "champions"),
        (current, at_risk, "at_risk"),
    ):
        ClientScore.objects.create(
            run=run, client=client, recency_days=5, frequency=3, monetary=Decimal("300"), r_score=5, f_score=5,
            m_score=5, rfm_sum=15, rfm_code="555", segment=segment, historical_clv=Decimal("900"),
        )  # fmt: skip
    campaign = make_campaign(manager, rfm_segment="champions")

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert recipients() == ["champion@example.com"]


def test_a_deleted_segment_mails_nobody(manager, django_capture_on_commit_callbacks):
    consenting()
    segment = SegmentFactory(filters={"lifecycle": "client"})
    campaign = make_campaign(manager, segment=segment, rfm_segment="champions")
    segment.delete()

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert "deleted" in step(campaign, 1).error


def test_cancelling_skips_what_was_not_sent_yet(manager, django_capture_on_commit_callbacks, monkeypatch):
    consenting()
    consenting()
    campaign = make_campaign(manager, steps=TWO_STEPS)
    monkeypatch.setattr(services, "enqueue_pending_batches", lambda **kwargs: 0)
    launch(campaign, manager, django_capture_on_commit_callbacks)

    services.campaign_cancel(campaign=campaign)
    services.campaign_send_batch(
        step_id=step(campaign, 1).pk, send_ids=list(CampaignSend.objects.values_list("pk", flat=True))
    )

    assert mail.outbox == []
    assert set(CampaignSend.objects.values_list("skip_reason", flat=True)) == {SkipReason.CANCELLED}
    assert set(campaign.steps.values_list("status", flat=True)) == {StepStatus.CANCELLED}


def test_a_campaign_cancelled_while_its_step_is_being_queued_sends_nothing(
    manager, django_capture_on_commit_callbacks, monkeypatch
):
    consenting()
    campaign = make_campaign(manager)
    write_rows = services._write_send_rows

    def write_rows_then_cancel(step):
        written = write_rows(step)
        services.campaign_cancel(campaign=campaign)
        return written

    monkeypatch.setattr(services, "_write_send_rows", write_rows_then_cancel)

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert mail.outbox == []
    assert step(campaign, 1).status == StepStatus.CANCELLED
    assert set(CampaignSend.objects.values_list("status", flat=True)) == {SendStatus.SKIPPED}


# --- Nothing sent twice -----------------------------------------------------------------------------------------


def _queued_step(manager, capture, monkeypatch, clients=5):
    for _ in range(clients):
        consenting()
    campaign = make_campaign(manager)
    monkeypatch.setattr(services, "enqueue_pending_batches", lambda **kwargs: 0)
    launch(campaign, manager, capture)
    first = step(campaign, 1)
    return first, list(first.sends.values_list("pk", flat=True))


def test_a_send_task_run_twice_sends_each_email_once(manager, django_capture_on_commit_callbacks, monkeypatch):
    first, ids = _queued_step(manager, django_capture_on_commit_callbacks, monkeypatch)

    results = [services.campaign_send_batch(step_id=first.pk, send_ids=ids) for _ in range(2)]

    assert [result.sent for result in results] == [5, 0]
    assert len(mail.outbox) == 5
    assert Interaction.objects.filter(kind=InteractionKind.EMAIL).count() == 5
    assert step(first.campaign, 1).status == StepStatus.SENT


def test_queuing_a_step_twice_writes_its_rows_once(manager, django_capture_on_commit_callbacks, monkeypatch):
    first, ids = _queued_step(manager, django_capture_on_commit_callbacks, monkeypatch)

    assert services.campaign_step_queue(step_id=first.pk) is None
    CampaignStep.objects.filter(pk=first.pk).update(status=StepStatus.SCHEDULED)
    services.campaign_step_queue(step_id=first.pk)

    assert CampaignSend.objects.count() == len(ids) == 5


def test_a_row_left_sending_by_a_dead_worker_is_marked_failed_not_resent(
    manager, django_capture_on_commit_callbacks, monkeypatch
):
    first, ids = _queued_step(manager, django_capture_on_commit_callbacks, monkeypatch, clients=3)
    long_ago = timezone.now() - services.CLAIM_LEASE - timedelta(minutes=1)
    CampaignSend.objects.filter(pk=ids[0]).update(status=SendStatus.SENDING, claimed_at=long_ago)
    CampaignSend.objects.filter(pk=ids[1]).update(status=SendStatus.CLAIMED, claimed_at=long_ago)
    monkeypatch.undo()

    with django_capture_on_commit_callbacks(execute=True):
        counts = services.campaign_advance()

    assert (counts["interrupted"], counts["requeued"]) == (1, 1)
    interrupted = CampaignSend.objects.get(pk=ids[0])
    assert (interrupted.status, interrupted.error) == (SendStatus.FAILED, services.INTERRUPTED)
    assert len(mail.outbox) == 2
    assert step(first.campaign, 1).status == StepStatus.SENT


def test_a_refused_address_fails_alone_and_is_shown(manager, django_capture_on_commit_callbacks, monkeypatch):
    consenting(email="good@example.com")
    consenting(email="bad@example.com")
    original_send = mail.EmailMessage.send

    def send(message, fail_silently=False):
        if message.to == ["bad@example.com"]:
            raise smtplib.SMTPRecipientsRefused({"bad@example.com": (550, b"no such user")})
        return original_send(message, fail_silently)

    monkeypatch.setattr(mail.EmailMessage, "send", send)
    campaign = make_campaign(manager)

    launch(campaign, manager, django_capture_on_commit_callbacks)

    assert recipients() == ["good@example.com"]
    failed = CampaignSend.objects.get(client__email="bad@example.com")
    assert failed.status == SendStatus.FAILED and "SMTPRecipientsRefused" in failed.error
    assert services.campaign_step_stats(campaign)[step(campaign, 1).pk]["failed"] == 1
    assert not Interaction.objects.filter(client=failed.client).exists()


def test_an_unreachable_mail_server_gives_the_rows_back(manager, django_capture_on_commit_callbacks, monkeypatch):
    first, ids = _queued_step(manager, django_capture_on_commit_callbacks, monkeypatch, clients=2)

    class DownBackend(mail.backends.locmem.EmailBackend):
        def open(self):
            raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(services, "get_connection", lambda **kwargs: DownBackend())

    with pytest.raises(services.MailServerUnavailable):
        services.campaign_send_batch(step_id=first.pk, send_ids=ids)
    assert set(CampaignSend.objects.values_list("status", flat=True)) == {SendStatus.PENDING}

    services.campaign_batch_abandon(send_ids=ids, error="mail server unavailable")
    assert set(CampaignSend.objects.values_list("status", flat=True)) == {SendStatus.FAILED}
    assert step(first.campaign, 1).status == StepStatus.SENT


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_concurrent_send_tasks_send_each_email_once(monkeypatch, settings):
    """Four workers given the same batches at once: each row is claimed by one of them (SKIP LOCKED)."""
    Group.objects.get_or_create(name=roles.MANAGER)  # an earlier transactional test may have flushed the roles
    manager = UserFactory(username="martine", role=roles.MANAGER)
    settings.CAMPAIGN_BATCH_SIZE = 100
    Client.objects.bulk_create(
        Client(first_name=f"C{n}", email=f"c{n}@example.com", lifecycle="client", marketing_consent=True)
        for n in range(200)
    )
    campaign = make_campaign(manager)
    monkeypatch.setattr(services, "enqueue_pending_batches", lambda **kwargs: 0)
    services.campaign_launch(campaign=campaign, user=manager)
    first = step(campaign, 1)
    services.campaign_step_queue(step_id=first.pk)
    ids = list(first.sends.order_by("pk").values_list("pk", flat=True))
    assert len(ids) == 200
    start = threading.Barrier(4)
    results, errors = [], []

    def worker(batch):
        try:
            start.wait()
            results.append(services.campaign_send_batch(step_id=first.pk, send_ids=batch))
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(ids if n % 2 else ids[::-1],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(result.sent for result in results) == 200
    assert len(mail.outbox) == 200 and len({message.to[0] for message in mail.outbox}) == 200
    assert CampaignSend.objects.filter(status=SendStatus.SENT).count() == 200
    assert Interaction.objects.filter(kind=InteractionKind.EMAIL).count() == 200
    assert step(campaign, 1).status == StepStatus.SENT
    assert connection.vendor == "postgresql"


# --- Throttling -------------------------------------------------------------------------------------------------


def test_batches_share_the_send_rate(db, settings):
    settings.CAMPAIGN_SEND_RATE = 10
    before = timezone.now()

    services._reserve_send_window(100)  # 10 s of sending at 10 per second
    pace = SendPace.objects.get()
    assert timedelta(seconds=9.9) <= pace.next_slot_at - before <= timedelta(seconds=11)

    services._reserve_send_window(600)  # starts when the first batch ends, for 60 s
    with pytest.raises(services.SendRateBusy) as busy:
        services._reserve_send_window(10)  # its turn would be 70 s away: retried later instead of waiting
    assert busy.value.wait > services.MAX_PACE_WAIT_SECONDS


# --- Figures ----------------------------------------------------------------------------------------------------


def test_step_figures_count_sent_failed_unsubscribed_replied_and_converted(
    manager, django_capture_on_commit_callbacks, settings
):
    settings.CAMPAIGN_CONVERSION_DAYS = 30
    ann, bob, cid, dan, eve = (consenting(email=f"{name}@example.com") for name in ("ann", "bob", "cid", "dan", "eve"))
    campaign = make_campaign(manager, steps=TWO_STEPS)
    launch(campaign, manager, django_capture_on_commit_callbacks)
    CampaignSend.objects.filter(client=eve).update(status=SendStatus.FAILED, sent_at=None)
    InteractionFactory(client=ann, direction=Direction.INBOUND)
    PurchaseFactory(client=bob, purchased_on=timezone.localdate() + timedelta(days=3), amount=Decimal("80"))
    PurchaseFactory(client=cid, purchased_on=timezone.localdate() + timedelta(days=45))  # outside the window
    services.campaign_unsubscribe(client=dan, send_id=CampaignSend.objects.get(client=dan).pk)
    services.campaign_outcomes_refresh(campaign=campaign)
    advance_to_next_step(campaign, django_capture_on_commit_callbacks)  # cid bought (later), so only... nobody left

    stats = services.campaign_step_stats(campaign)
    first = stats[step(campaign, 1).pk]
    assert {key: first[key] for key in ("recipients", "sent", "failed", "unsubscribed", "replied", "converted")} == {
        "recipients": 5,
        "sent": 4,
        "failed": 1,
        "unsubscribed": 1,
        "replied": 1,
        "converted": 1,
    }
    assert step(campaign, 2).pk not in stats  # ann replied, bob and cid bought, dan unsubscribed, eve failed


def test_the_campaign_page_shows_the_figures_per_step(client_as, rep, manager, django_capture_on_commit_callbacks):
    ann = consenting()
    consenting()
    campaign = make_campaign(manager, steps=TWO_STEPS)
    launch(campaign, manager, django_capture_on_commit_callbacks)
    InteractionFactory(client=ann, direction=Direction.INBOUND)
    services.campaign_outcomes_refresh(campaign=campaign)

    response = client_as(rep).get(reverse("prospecting:campaign-detail", args=[campaign.pk]))

    html = response.content.decode()
    assert response.status_code == 200
    assert 'data-figure="sent">2<' in html and 'data-figure="replied">1 <' in html
    assert reverse("prospecting:campaign-launch", args=[campaign.pk]) not in html
    assert reverse("prospecting:campaign-cancel", args=[campaign.pk]) not in html


def test_the_progress_partial_polls_while_a_step_is_sending(client_as, rep, manager):
    campaign = make_campaign(manager)
    CampaignStep.objects.filter(campaign=campaign).update(status=StepStatus.SENDING)

    html = client_as(rep).get(reverse("prospecting:campaign-progress", args=[campaign.pk])).content.decode()

    assert 'hx-trigger="every 3s"' in html


# --- Who may do what --------------------------------------------------------------------------------------------


def test_a_rep_sees_campaigns_but_cannot_create_change_or_launch_them(client_as, rep, manager):
    campaign = make_campaign(manager)
    browser = client_as(rep)

    assert browser.get(reverse("prospecting:campaign-list")).status_code == 200
    assert browser.get(reverse("prospecting:campaign-detail", args=[campaign.pk])).status_code == 200
    assert browser.post(reverse("prospecting:campaign-create"), {"name": "Mine"}).status_code == 403
    assert browser.post(reverse("prospecting:campaign-launch", args=[campaign.pk])).status_code == 403
    assert browser.post(reverse("prospecting:campaign-cancel", args=[campaign.pk])).status_code == 403
    assert browser.post(reverse("prospecting:campaign-step-create", args=[campaign.pk]), {}).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == CampaignStatus.DRAFT


def test_a_manager_drafts_and_launches_a_campaign_from_the_pages(
    client_as, manager, django_capture_on_commit_callbacks
):
    consenting(first_name="Ann")
    segment = SegmentFactory(filters={"lifecycle": "client"})
    browser = client_as(manager)

    response = browser.post(reverse("prospecting:campaign-create"), {"name": "Welcome", "segment": segment.pk})
    campaign = Campaign.objects.get(name="Welcome")
    assert response.url == campaign.get_absolute_url()
    response = browser.post(
        reverse("prospecting:campaign-step-create", args=[campaign.pk]),
        {"subject": "Hi {first_name}", "body": "Welcome {first_name}", "delay_days": 0},
    )
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=True):
        browser.post(reverse("prospecting:campaign-launch", args=[campaign.pk]))

    assert [message.subject for message in mail.outbox] == ["Hi Ann"]


def test_the_step_form_refuses_unknown_fields_and_an_offer_code_without_offer(client_as, manager):
    campaign = make_campaign(manager, steps=())

    response = client_as(manager).post(
        reverse("prospecting:campaign-step-create", args=[campaign.pk]),
        {"subject": "Hi {firstname}", "body": "Code {offer_code}", "delay_days": 0},
    )

    assert response.status_code == 200
    assert "Unknown personal field: {firstname}" in response.content.decode()
    assert "needs an offer" in response.content.decode()
    assert not campaign.steps.exists()


def test_a_campaign_needs_a_target(client_as, manager):
    response = client_as(manager).post(reverse("prospecting:campaign-create"), {"name": "Nobody"})

    assert response.status_code == 200 and not Campaign.objects.exists()


def test_a_launched_campaign_can_no_longer_be_edited(client_as, manager, django_capture_on_commit_callbacks):
    campaign = make_campaign(manager)
    launch(campaign, manager, django_capture_on_commit_callbacks)

    response = client_as(manager).post(
        reverse("prospecting:campaign-step-edit", args=[step(campaign, 1).pk]),
        {"subject": "Changed", "body": "Changed", "delay_days": 0},
    )

    assert response.status_code == 302
    assert step(campaign, 1).subject != "Changed"


def test_unsubscribing_keeps_a_history_row(manager):
    ann = consenting()

    assert services.campaign_unsubscribe(client=ann) is True
    assert services.campaign_unsubscribe(client=ann) is False

    change = ClientChange.objects.get(client=ann, field="do_not_contact")
    assert (change.old_value, change.new_value, change.user) == ("False", "True", None)
