"""Bulk actions on a selection of clients: each changes exactly the selected clients the user may edit, says how
many it touched, leaves a history, and can be undone once, within the window, without overwriting later edits."""

import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client as HttpClient
from django.urls import reverse
from django.utils import timezone

from crm import bulk
from crm.models import BulkAction, BulkActionItem, Client, ClientChange, FollowUp, FollowUpStatus, Tag
from tests.factories import ClientFactory, FollowUpFactory, SegmentFactory, TagFactory, UserFactory

URL = reverse("crm:bulk-action")


@pytest.fixture
def lyon(rep, other_rep):
    """Three clients of alice and two of bob in Lyon, one of alice in Paris."""
    alices = [ClientFactory(owner=rep, city="Lyon", tier="C") for _ in range(3)]
    bobs = [ClientFactory(owner=other_rep, city="Lyon", tier="B") for _ in range(2)]
    ClientFactory(owner=rep, city="Paris", tier="C")
    return alices, bobs


def _lyon():
    return Client.objects.filter(city="Lyon")


def _apply(kind, user, clients=None, **params):
    return bulk.bulk_action_apply(kind=kind, clients=clients or _lyon(), params=params, user=user, selection="Lyon")


def _owners():
    return dict(Client.objects.values_list("pk", "owner_id"))


def _tags(client):
    return set(client.tags.values_list("name", flat=True))


# --- Owner -------------------------------------------------------------------------------------------------------


def test_assigning_an_owner_changes_the_selection_and_counts_only_the_clients_that_changed(
    manager, rep, other_rep, lyon
):
    alices, bobs = lyon
    paris_before = Client.objects.get(city="Paris").owner_id

    action, outcome = _apply("assign_owner", manager, value=other_rep.pk, name="bob")

    assert outcome.touched == action.touched == 3  # bob's two clients were his already
    assert set(_lyon().values_list("owner_id", flat=True)) == {other_rep.pk}
    assert Client.objects.get(city="Paris").owner_id == paris_before
    history = ClientChange.objects.filter(field="owner")
    assert {change.client_id for change in history} == {client.pk for client in alices}
    assert {(change.old_value, change.new_value, change.user_id) for change in history} == {
        ("alice", "bob", manager.pk)
    }
    assert BulkActionItem.objects.filter(action=action).count() == 3


def test_undoing_an_owner_assignment_restores_each_previous_owner(manager, rep, other_rep, lyon):
    unowned = ClientFactory(owner=None, city="Lyon")
    before = _owners()
    action, _outcome = _apply("assign_owner", manager, value=manager.pk, name="martine")

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (6, 0)
    assert _owners() == before
    assert Client.objects.get(pk=unowned.pk).owner is None
    undo_rows = ClientChange.objects.filter(field="owner", old_value="martine")
    assert undo_rows.count() == 6
    action.refresh_from_db()
    assert action.undone_at is not None and action.undone_by == manager and action.restored == 6


def test_a_client_edited_since_is_left_as_it_is_and_reported(manager, rep, other_rep, lyon):
    alices, _bobs = lyon
    action, _outcome = _apply("assign_owner", manager, value=other_rep.pk, name="bob")
    Client.objects.filter(pk=alices[0].pk).update(owner=manager)

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (2, 1)
    assert Client.objects.get(pk=alices[0].pk).owner == manager
    assert Client.objects.get(pk=alices[1].pk).owner == rep
    assert "1 client edited since was left as it is." in bulk.undo_message(outcome)


def test_an_owner_whose_account_was_deleted_since_is_not_written_back(manager, rep, lyon):
    leaver = UserFactory(username="leaver")
    theirs = ClientFactory(owner=leaver, city="Lyon")
    action, _outcome = _apply("assign_owner", manager, value=manager.pk, name="martine")
    leaver.delete()

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (5, 1)
    assert Client.objects.get(pk=theirs.pk).owner == manager
    assert set(Client.objects.filter(city="Lyon").exclude(pk=theirs.pk).values_list("owner__username", flat=True)) == {
        "alice",
        "bob",
    }


# --- Tier --------------------------------------------------------------------------------------------------------


def test_setting_the_tier_and_undoing_it(manager, lyon):
    alices, bobs = lyon
    action, outcome = _apply("set_tier", manager, value="B")

    assert outcome.touched == 3
    assert set(_lyon().values_list("tier", flat=True)) == {"B"}
    assert ClientChange.objects.filter(field="tier", old_value="C", new_value="B").count() == 3

    bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert {client.pk: client.tier for client in _lyon()} == {
        **{client.pk: "C" for client in alices},
        **{client.pk: "B" for client in bobs},
    }


def test_undoing_twice_is_refused(manager, lyon):
    action, _outcome = _apply("set_tier", manager, value="A")
    bulk.bulk_action_undo(action_id=action.pk, user=manager)
    Client.objects.update(tier="A")

    with pytest.raises(bulk.BulkActionError, match="already undone"):
        bulk.bulk_action_undo(action_id=action.pk, user=manager)
    assert set(Client.objects.values_list("tier", flat=True)) == {"A"}


def test_undoing_after_the_window_is_refused(manager, lyon, settings):
    settings.CRM_BULK_UNDO_HOURS = 24
    action, _outcome = _apply("set_tier", manager, value="A")
    BulkAction.objects.filter(pk=action.pk).update(created_at=timezone.now() - timedelta(hours=25))

    with pytest.raises(bulk.BulkActionError, match="no longer be undone"):
        bulk.bulk_action_undo(action_id=action.pk, user=manager)
    assert set(_lyon().values_list("tier", flat=True)) == {"A"}


def test_a_selection_larger_than_the_maximum_is_refused_and_nothing_changes(manager, lyon, settings):
    settings.CRM_BULK_MAX_CLIENTS = 4

    with pytest.raises(bulk.BulkActionError, match="holds 5 clients; a bulk action takes 4 at most"):
        _apply("set_tier", manager, value="A")
    assert not _lyon().filter(tier="A").exists()
    assert not BulkAction.objects.exists()


# --- Tags --------------------------------------------------------------------------------------------------------


def test_adding_a_tag_creates_it_and_skips_the_clients_who_have_it(manager, lyon):
    alices, bobs = lyon
    vip = TagFactory(name="VIP")
    bobs[0].tags.add(vip, TagFactory(name="Salon"))

    action, outcome = _apply("add_tag", manager, name="vip")

    assert outcome.touched == 4
    assert action.params == {"tag": vip.pk, "name": "VIP"}  # the existing tag, whatever the case typed
    assert all(_tags(client) >= {"VIP"} for client in _lyon())
    assert not Client.objects.get(city="Paris").tags.exists()
    assert not ClientChange.objects.filter(client=bobs[0]).exists()
    change = ClientChange.objects.get(client=bobs[1], field="tags")
    assert (change.old_value, change.new_value) == ("", "VIP")


def test_a_new_tag_is_created_by_name(rep, lyon):
    _action, outcome = _apply("add_tag", rep, name="Printemps 2027")
    assert Tag.objects.filter(name="Printemps 2027").exists()
    assert outcome.touched == 3  # alice's clients only: a rep acts on the clients he may edit


def test_undoing_a_tag_added_takes_it_off_only_the_clients_that_got_it(manager, lyon):
    alices, bobs = lyon
    vip = TagFactory(name="VIP")
    bobs[0].tags.add(vip)
    action, _outcome = _apply("add_tag", manager, name="VIP")
    alices[0].tags.remove(vip)  # edited since

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (3, 1)
    assert _tags(bobs[0]) == {"VIP"}
    assert not any("VIP" in _tags(client) for client in [*alices, bobs[1]])
    change = ClientChange.objects.filter(client=alices[1], field="tags").first()
    assert (change.old_value, change.new_value) == ("VIP", "")


def test_undoing_a_tag_added_deletes_the_tag_it_created_unless_used_since(manager, lyon):
    action, _outcome = _apply("add_tag", manager, name="Printemps 2027")

    bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert not Tag.objects.filter(name="Printemps 2027").exists()

    action, _outcome = _apply("add_tag", manager, name="Salon 2027")
    Client.objects.get(city="Paris").tags.add(Tag.objects.get(name="Salon 2027"))  # given by hand since
    bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert set(Client.objects.filter(tags__name="Salon 2027").values_list("city", flat=True)) == {"Paris"}

    action, _outcome = _apply("add_tag", manager, name="Foire 2027")
    SegmentFactory(filters={"tag": str(Tag.objects.get(name="Foire 2027").pk)})  # saved since
    bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert Tag.objects.filter(name="Foire 2027").exists() and not Client.objects.filter(tags__name="Foire 2027")


def test_removing_a_tag_and_undoing_it_puts_it_back_on_those_who_had_it(manager, lyon):
    alices, bobs = lyon
    vip, other = TagFactory(name="VIP"), TagFactory(name="Salon")
    alices[0].tags.add(vip, other)
    bobs[0].tags.add(vip)

    action, outcome = _apply("remove_tag", manager, tag=vip.pk, name="VIP")

    assert outcome.touched == 2
    assert not Client.tags.through.objects.filter(tag=vip).exists()
    change = ClientChange.objects.get(client=alices[0], field="tags")
    assert (change.old_value, change.new_value) == ("Salon, VIP", "Salon")

    bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert set(Client.tags.through.objects.filter(tag=vip).values_list("client_id", flat=True)) == {
        alices[0].pk,
        bobs[0].pk,
    }
    assert _tags(alices[0]) == {"VIP", "Salon"}


# --- Follow-ups --------------------------------------------------------------------------------------------------


def test_planning_follow_ups_and_undoing_deletes_only_those_still_open(manager, rep, other_rep, lyon):
    alices, bobs = lyon
    kept = FollowUpFactory(client=alices[0], assignee=rep, due_at=timezone.now())
    due = (timezone.now() + timedelta(days=1)).isoformat()
    action, outcome = _apply("plan_follow_ups", manager, title="Call", due_at=due, assign_to="owner", notes="")

    assert outcome.touched == 5
    planned = FollowUp.objects.filter(title="Call")
    assert {(f.client_id, f.assignee_id) for f in planned} == {(c.pk, c.owner_id) for c in [*alices, *bobs]}
    planned.filter(client=bobs[0]).update(status=FollowUpStatus.DONE)

    outcome = bulk.bulk_action_undo(action_id=action.pk, user=manager)

    assert (outcome.restored, outcome.left) == (4, 1)
    assert list(FollowUp.objects.filter(title="Call").values_list("client_id", flat=True)) == [bobs[0].pk]
    assert FollowUp.objects.filter(pk=kept.pk).exists()


# --- Views: roles, counts, messages ----------------------------------------------------------------------------


def test_the_form_says_how_many_clients_it_will_apply_to(client_as, rep, lyon):
    page = client_as(rep).get(URL, {"city": "Lyon", "action": "add_tag"}).content.decode()
    assert "This will apply to 3 clients." in page
    assert "<html" in page


def test_htmx_gets_the_form_alone(client_as, manager, lyon):
    response = client_as(manager).get(URL, {"city": "Lyon", "action": "set_tier"}, headers={"HX-Request": "true"})
    page = response.content.decode()
    assert "<html" not in page
    assert "This will apply to 5 clients." in page
    assert 'name="filters" value="city=Lyon"' in page


def test_the_list_offers_the_menu_and_tick_boxes(client_as, rep, manager, lyon):
    rep_page = client_as(rep).get(reverse("crm:client-list")).content.decode()
    assert "Bulk actions" in rep_page and 'name="ids"' in rep_page
    assert "action=add_tag" in rep_page and "action=assign_owner" not in rep_page
    manager_page = client_as(manager).get(reverse("crm:client-list")).content.decode()
    assert "action=assign_owner" in manager_page and "action=export" in manager_page


def test_a_rep_tags_his_clients_of_the_list_and_gets_the_count_with_an_undo_button(client_as, rep, lyon):
    alices, bobs = lyon
    browser = client_as(rep)

    response = browser.post(URL, {"action": "add_tag", "filters": "city=Lyon", "tag": "Salon"}, follow=True)

    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"{reverse('crm:client-list')}?city=Lyon"
    assert "Tag added: Salon: 3 clients touched." in page
    action = BulkAction.objects.get()
    undo_url = reverse("crm:bulk-action-undo", args=[action.pk])
    assert f'action="{undo_url}"' in page
    assert {client.pk for client in Client.objects.filter(tags__name="Salon")} == {c.pk for c in alices}

    response = browser.post(undo_url, {"next": f"{reverse('crm:client-list')}?city=Lyon"}, follow=True)

    assert "3 clients restored." in response.content.decode()
    assert not Client.objects.filter(tags__name="Salon").exists()


def test_the_message_escapes_what_the_user_typed_and_keeps_its_undo_button(client_as, rep, lyon):
    response = client_as(rep).post(
        URL, {"action": "add_tag", "filters": "city=Lyon", "tag": "<b>Salon</b>"}, follow=True
    )

    page = response.content.decode()
    assert "Tag added: &lt;b&gt;Salon&lt;/b&gt;: 3 clients touched." in page and "<b>Salon</b>" not in page
    assert f'action="{reverse("crm:bulk-action-undo", args=[BulkAction.objects.get().pk])}"' in page


def test_ticked_rows_narrow_the_selection(client_as, manager, lyon):
    alices, bobs = lyon
    ticked = [alices[0].pk, bobs[1].pk]
    page = client_as(manager).get(URL, {"city": "Lyon", "action": "set_tier", "ids": ticked}).content.decode()
    assert "This will apply to 2 clients." in page

    client_as(manager).post(URL, {"action": "set_tier", "filters": "city=Lyon", "ids": ticked, "tier": "A"})

    assert set(Client.objects.filter(tier="A").values_list("pk", flat=True)) == set(ticked)


def test_a_segment_is_a_selection_too(client_as, manager, rep, other_rep):
    segment = SegmentFactory(filters={"lifecycle": "client"})
    members = [ClientFactory(owner=rep, lifecycle="client"), ClientFactory(owner=other_rep, lifecycle="client")]
    ClientFactory(owner=rep, lifecycle="prospect")

    response = client_as(manager).post(URL, {"action": "assign_owner", "segment": segment.pk, "owner": manager.pk})

    assert response.status_code == 302 and response.url == segment.get_absolute_url()
    assert set(Client.objects.filter(owner=manager).values_list("pk", flat=True)) == {c.pk for c in members}
    assert "Segment: " in BulkAction.objects.get().selection


def test_a_rep_cannot_use_the_manager_actions(client_as, rep, lyon):
    browser = client_as(rep)
    for data in (
        {"action": "assign_owner", "owner": rep.pk},
        {"action": "set_tier", "tier": "A"},
        {"action": "export"},
    ):
        assert browser.get(URL, {"city": "Lyon", "action": data["action"]}).status_code == 403
        assert browser.post(URL, {"filters": "city=Lyon", **data}).status_code == 403
    assert not BulkAction.objects.exists()
    assert set(Client.objects.values_list("tier", flat=True)) == {"B", "C"}


def test_a_rep_never_touches_another_reps_clients(client_as, rep, lyon):
    _alices, bobs = lyon
    client_as(rep).post(URL, {"action": "add_tag", "filters": "", "ids": [bobs[0].pk], "tag": "Mine"})
    assert not bobs[0].tags.exists()
    assert not BulkAction.objects.filter(touched__gt=0).exists()


def test_a_rep_sees_and_undoes_only_his_own_actions(client_as, rep, other_rep, manager, lyon):
    mine, _outcome = _apply("add_tag", rep, name="Mine")
    managers, _outcome = _apply("set_tier", manager, value="A")

    page = client_as(rep).get(reverse("crm:bulk-action-list")).content.decode()
    assert "Tag added: Mine" in page and "Tier: A" not in page
    assert client_as(rep).post(reverse("crm:bulk-action-undo", args=[managers.pk])).status_code == 404
    assert BulkAction.objects.get(pk=managers.pk).undone_at is None
    assert client_as(other_rep).post(reverse("crm:bulk-action-undo", args=[mine.pk])).status_code == 404

    page = client_as(manager).get(reverse("crm:bulk-action-list")).content.decode()
    assert "Tag added: Mine" in page and "Tier: A" in page
    client_as(manager).post(reverse("crm:bulk-action-undo", args=[mine.pk]))
    assert not Client.objects.filter(tags__name="Mine").exists()


def test_a_manager_demoted_to_rep_cannot_undo_his_manager_only_action(client_as, rep, other_rep, lyon):
    from crm import roles

    boss = UserFactory(username="boss", role=roles.MANAGER)
    action, _outcome = _apply("assign_owner", boss, value=boss.pk, name="boss")
    boss.groups.clear()
    boss.groups.add(*rep.groups.all())  # now a rep, owning the clients he took

    response = client_as(boss).post(reverse("crm:bulk-action-undo", args=[action.pk]), follow=True)

    assert "Your role may not use this bulk action." in response.content.decode()
    assert set(_lyon().values_list("owner_id", flat=True)) == {boss.pk}
    assert BulkAction.objects.get(pk=action.pk).undone_at is None


def test_the_list_shows_an_undone_action_with_the_clients_left(client_as, manager, lyon):
    alices, _bobs = lyon
    action, _outcome = _apply("set_tier", manager, value="A")
    Client.objects.filter(pk=alices[0].pk).update(tier="B")
    client_as(manager).post(reverse("crm:bulk-action-undo", args=[action.pk]))

    page = client_as(manager).get(reverse("crm:bulk-action-list")).content.decode()

    assert "Undone on" in page and "1 client edited since was left as it is" in page
    assert reverse("crm:bulk-action-undo", args=[action.pk]) not in page


def test_admins_read_bulk_actions_in_the_admin(client_as, admin_member, manager, lyon):
    action, _outcome = _apply("set_tier", manager, value="A")
    browser = client_as(admin_member)
    assert "Tier: A" in browser.get(reverse("admin:crm_bulkaction_changelist")).content.decode()
    assert browser.get(reverse("admin:crm_bulkaction_add")).status_code == 403


def test_the_list_says_when_an_action_can_no_longer_be_undone(client_as, manager, lyon):
    action, _outcome = _apply("set_tier", manager, value="A")
    undo_url = reverse("crm:bulk-action-undo", args=[action.pk])
    assert undo_url in client_as(manager).get(reverse("crm:bulk-action-list")).content.decode()
    BulkAction.objects.filter(pk=action.pk).update(created_at=timezone.now() - timedelta(days=2))

    page = client_as(manager).get(reverse("crm:bulk-action-list")).content.decode()
    assert undo_url not in page and "Too late to undo" in page
    response = client_as(manager).post(undo_url, follow=True)
    assert "can no longer be undone" in response.content.decode()


def test_the_export_streams_the_csv_and_is_logged_without_undo(client_as, manager, lyon):
    response = client_as(manager).post(URL, {"action": "export", "filters": "city=Lyon"})

    assert response["Content-Type"].startswith("text/csv")
    csv_text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert len(csv_text.strip().splitlines()) == 1 + 5
    action = BulkAction.objects.get()
    assert (action.kind, action.touched, action.undoable, action.can_undo) == ("export", 5, False, False)
    with pytest.raises(bulk.BulkActionError, match="cannot be undone"):
        bulk.bulk_action_undo(action_id=action.pk, user=manager)


def test_the_export_stops_at_the_export_limit(client_as, manager, lyon, settings):
    settings.CRM_EXPORT_MAX_ROWS = 2
    response = client_as(manager).post(URL, {"action": "export", "filters": "city=Lyon"})
    assert len(b"".join(response.streaming_content).decode("utf-8-sig").strip().splitlines()) == 1 + 2
    assert BulkAction.objects.get().touched == 2


def test_bad_input_gets_a_clear_message(client_as, manager, lyon):
    browser = client_as(manager)
    page = browser.post(URL, {"action": "set_tier", "filters": "city=Lyon", "tier": "Z"}).content.decode()
    assert "Select a valid choice" in page
    page = browser.get(URL, {"action": "set_tier", "ids": "x"}).content.decode()
    assert "The ticked rows could not be read" in page
    page = browser.get(URL, {"action": "set_tier", "idle_days": "-4"}).content.decode()
    assert "Some filters are invalid" in page
    assert not BulkAction.objects.exists()


def test_ticked_ids_out_of_range_get_the_bad_ticks_message(client_as, manager, lyon):
    page = client_as(manager).get(URL, {"action": "set_tier", "ids": [str(2**70), "-3", "0"]}).content.decode()
    assert "The ticked rows could not be read" in page
    response = client_as(manager).post(URL, {"action": "set_tier", "filters": "", "ids": [str(2**70)], "tier": "A"})
    assert response.status_code == 200 and not BulkAction.objects.exists()


def test_an_unknown_segment_is_not_found(client_as, manager):
    assert client_as(manager).get(URL, {"segment": "9999", "action": "set_tier"}).status_code == 404
    assert client_as(manager).get(URL, {"segment": "x", "action": "set_tier"}).status_code == 404


def test_the_posts_are_protected_against_csrf(manager, lyon):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(manager)
    response = browser.post(URL, {"action": "set_tier", "filters": "city=Lyon", "tier": "A"})
    assert response.status_code == 403
    action, _outcome = _apply("set_tier", manager, value="A")
    assert browser.post(reverse("crm:bulk-action-undo", args=[action.pk])).status_code == 403
    assert BulkAction.objects.get(pk=action.pk).undone_at is None
    assert BulkAction.objects.count() == 1


# --- Concurrency, on PostgreSQL -----------------------------------------------------------------------------------


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_two_undos_at_once_restore_once():
    from django.contrib.auth.models import Group

    from crm import roles

    Group.objects.get_or_create(name=roles.MANAGER)
    manager = UserFactory(username="martine", role=roles.MANAGER)
    clients = [ClientFactory(owner=None, tier="C") for _ in range(50)]
    action, _outcome = bulk.bulk_action_apply(
        kind="set_tier", clients=Client.objects.all(), params={"value": "A"}, user=manager
    )
    barrier, outcomes, errors = threading.Barrier(2), [], []

    def undo():
        try:
            barrier.wait()
            outcomes.append(bulk.bulk_action_undo(action_id=action.pk, user=manager))
        except bulk.BulkActionError as error:
            errors.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=undo) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(outcomes) == 1 and outcomes[0].restored == 50
    assert errors == ["This action was already undone."]
    assert set(Client.objects.filter(pk__in=[c.pk for c in clients]).values_list("tier", flat=True)) == {"C"}
    assert ClientChange.objects.filter(field="tier", old_value="A", new_value="C").count() == 50


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_a_follow_up_done_while_the_undo_runs_is_kept():
    from django.db import DEFAULT_DB_ALIAS, connections

    from crm import roles

    manager = UserFactory(username="martine", role=roles.MANAGER)
    for _ in range(3):
        ClientFactory(owner=None)
    due = (timezone.now() + timedelta(days=1)).isoformat()
    action, _outcome = bulk.bulk_action_apply(
        kind="plan_follow_ups",
        clients=Client.objects.all(),
        params={"title": "Call", "due_at": due, "assign_to": "me", "notes": ""},
        user=manager,
    )
    done = FollowUp.objects.filter(title="Call").order_by("pk").first()
    other = connections.create_connection(DEFAULT_DB_ALIAS)
    other.set_autocommit(False)
    with other.cursor() as cursor:  # a rep closes it, his transaction not yet committed
        cursor.execute("UPDATE crm_followup SET status = %s WHERE id = %s", [FollowUpStatus.DONE, done.pk])
    outcomes = []

    def undo():
        try:
            outcomes.append(bulk.bulk_action_undo(action_id=action.pk, user=manager))
        finally:
            connection.close()

    thread = threading.Thread(target=undo)
    thread.start()
    thread.join(timeout=1)  # the undo waits for the rep's row
    other.commit()
    other.close()
    thread.join()

    assert FollowUp.objects.filter(pk=done.pk, status=FollowUpStatus.DONE).exists()
    assert (outcomes[0].restored, outcomes[0].left) == (2, 1)
    assert FollowUp.objects.filter(title="Call").count() == 1


# --- The same form sent twice ------------------------------------------------------------------------------------


def _plan_form(browser, submission):
    due = (timezone.localtime() + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    data = {
        "action": "plan_follow_ups",
        "filters": "city=Lyon",
        "title": "Call back",
        "due_at": due,
        "assign_to": "me",
        "notes": "",
        "submission": submission,
    }
    return browser.post(URL, data)


def test_the_form_carries_a_fresh_submission_token_each_time_it_is_shown(client_as, manager, lyon):
    browser = client_as(manager)
    first = browser.get(URL, {"action": "plan_follow_ups", "filters": "city=Lyon"}).context["submission"]
    second = browser.get(URL, {"action": "plan_follow_ups", "filters": "city=Lyon"}).context["submission"]
    assert len(first) == 32 and first != second
    assert f'name="submission" value="{first}"' not in browser.get(URL, {"action": "set_tier"}).content.decode()


def test_the_same_form_sent_twice_plans_the_follow_ups_once(client_as, manager, lyon):
    browser = client_as(manager)

    assert _plan_form(browser, "a" * 32).status_code == 302
    again = _plan_form(browser, "a" * 32)

    assert again.status_code == 200
    assert "This form was already sent" in again.content.decode()
    assert BulkAction.objects.count() == 1
    assert FollowUp.objects.filter(title="Call back").count() == 5
    assert _plan_form(browser, "b" * 32).status_code == 302  # a new form is a new action
    assert FollowUp.objects.filter(title="Call back").count() == 10


def test_two_users_may_send_forms_with_the_same_token(client_as, manager, admin_member, lyon):
    assert _plan_form(client_as(manager), "c" * 32).status_code == 302
    assert _plan_form(client_as(admin_member), "c" * 32).status_code == 302
    assert BulkAction.objects.count() == 2


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("role_groups_restored")
def test_a_double_click_sent_at_once_records_one_action():
    from crm import roles

    manager = UserFactory(username="double", role=roles.MANAGER)
    for _ in range(4):
        ClientFactory(city="Lyon")
    due = (timezone.now() + timedelta(days=1)).isoformat()
    barrier = threading.Barrier(2)
    results = []

    def submit():
        try:
            barrier.wait()
            bulk.bulk_action_submit(
                kind="plan_follow_ups",
                clients=_lyon(),
                params={"title": "Twice", "due_at": due, "assign_to": "me", "notes": ""},
                user=manager,
                submission="d" * 32,
            )
            results.append("applied")
        except bulk.BulkActionError as error:
            results.append(str(error))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(results) == 2 and results.count("applied") == 1
    assert any("already sent" in result for result in results)
    assert BulkAction.objects.count() == 1
    assert FollowUp.objects.filter(title="Twice").count() == 4


# --- What undoing needs is dropped once it can no longer be used ---------------------------------------------------


def test_items_are_pruned_once_the_undo_is_done_or_out_of_reach(manager, lyon, settings):
    kept, _ = _apply("set_tier", manager, value="A")
    undone, _ = _apply("add_tag", manager, name="Salon")
    bulk.bulk_action_undo(action_id=undone.pk, user=manager)
    expired, _ = _apply("set_tier", manager, value="B")
    BulkAction.objects.filter(pk=expired.pk).update(created_at=timezone.now() - timedelta(hours=25))
    undoing, _ = _apply("set_tier", manager, value="C")
    BulkAction.objects.filter(pk=undoing.pk).update(
        created_at=timezone.now() - timedelta(hours=25), status=bulk.BulkActionStatus.UNDOING
    )
    actions = (kept.pk, undone.pk, expired.pk, undoing.pk)
    counts = {pk: BulkActionItem.objects.filter(action_id=pk).count() for pk in actions}
    assert all(counts.values())

    pruned = bulk.bulk_action_items_prune()  # the recovery pass calls it (tests/test_recovery.py)

    remaining = set(BulkActionItem.objects.values_list("action_id", flat=True))
    assert remaining == {kept.pk, undoing.pk}
    assert pruned == counts[expired.pk] + counts[undone.pk]
    assert BulkActionItem.objects.filter(action_id=kept.pk).count() == counts[kept.pk]
