"""The client list: who sees which clients, each filter, search, sorting, paging, the htmx partial, escaping."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from crm import models
from tests.factories import ClientFactory, PersonaFactory, UserFactory


def list_url() -> str:
    return reverse("crm:client-list")


def shown(response) -> list[str]:
    """The client names of the page, in their displayed order."""
    return [str(client) for client in response.context["page_obj"]]


def test_anonymous_visitor_is_sent_to_login(client, db):
    response = client.get(list_url())
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_user_without_role_is_refused(client_as, outsider):
    assert client_as(outsider).get(list_url()).status_code == 403


@pytest.mark.parametrize("user_fixture", ["rep", "manager", "admin_member"])
def test_every_role_sees_the_whole_portfolio_by_default(request, client_as, rep_client, other_client, user_fixture):
    response = client_as(request.getfixturevalue(user_fixture)).get(list_url())
    assert response.status_code == 200
    assert shown(response) == ["Yves Durand", "Ann Martin"]


def test_rep_sees_only_own_clients_when_reps_are_restricted(settings, client_as, rep, rep_client, other_client):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    response = client_as(rep).get(list_url())
    assert shown(response) == ["Ann Martin"]
    assert "Yves Durand" not in response.content.decode()


def test_manager_sees_every_client_when_reps_are_restricted(settings, client_as, manager, rep_client, other_client):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    assert shown(client_as(manager).get(list_url())) == ["Yves Durand", "Ann Martin"]


def test_result_count_is_shown(client_as, manager, rep_client, other_client):
    assert "2 clients" in client_as(manager).get(list_url()).content.decode()


def test_each_row_links_to_the_client_card(client_as, manager, rep_client):
    content = client_as(manager).get(list_url()).content.decode()
    assert f'href="{reverse("crm:client-detail", args=[rep_client.pk])}"' in content


def test_html_in_a_client_name_is_escaped(client_as, manager):
    ClientFactory(first_name="<script>alert(1)</script>", last_name="Evil")
    content = client_as(manager).get(list_url()).content.decode()
    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ann", ["Ann Martin"]),
        ("yves@example", ["Yves Durand"]),
        ("acme", ["Ann Martin"]),
        ("ann martin", ["Ann Martin"]),
    ],
)
def test_search_matches_name_email_and_company(client_as, manager, rep_client, other_client, text, expected):
    models.Client.objects.filter(pk=rep_client.pk).update(company="ACME Lyon")
    models.Client.objects.filter(pk=other_client.pk).update(company="Durand SARL")
    assert shown(client_as(manager).get(list_url(), {"q": text})) == expected


@pytest.mark.parametrize(
    ("param", "field", "wanted", "unwanted"),
    [
        ("lifecycle", "lifecycle", models.Lifecycle.CLIENT, models.Lifecycle.PROSPECT),
        ("stage", "stage", models.Stage.MEETING, models.Stage.NEW),
        ("tier", "tier", models.Tier.A, models.Tier.C),
        ("source", "source", models.Source.REFERRAL, models.Source.WEBINAR),
        ("sector", "sector", "Retail", "Banking"),
        ("city", "city", "Nantes", "Lyon"),
        ("country", "country", "Belgique", "France"),
    ],
)
def test_each_field_filter_narrows_the_list(client_as, manager, param, field, wanted, unwanted):
    ClientFactory(first_name="Wanted", last_name="One", **{field: wanted})
    ClientFactory(first_name="Other", last_name="Two", **{field: unwanted})
    assert shown(client_as(manager).get(list_url(), {param: wanted})) == ["Wanted One"]


def test_owner_filter_me_shows_the_current_users_clients(client_as, rep, rep_client, other_client):
    assert shown(client_as(rep).get(list_url(), {"owner": "me"})) == ["Ann Martin"]


def test_owner_filter_by_user(client_as, manager, other_rep, rep_client, other_client):
    assert shown(client_as(manager).get(list_url(), {"owner": other_rep.pk})) == ["Yves Durand"]


def test_owner_filter_unassigned(client_as, manager, rep_client):
    ClientFactory(first_name="Nobody", last_name="Owns", owner=None)
    assert shown(client_as(manager).get(list_url(), {"owner": "none"})) == ["Nobody Owns"]


def test_tag_filter_narrows_the_list(client_as, manager, rep_client, other_client):
    vip = models.Tag.objects.create(name="VIP")
    rep_client.tags.add(vip, models.Tag.objects.create(name="Salon 2024"))
    assert shown(client_as(manager).get(list_url(), {"tag": vip.pk})) == ["Ann Martin"]


def test_persona_filter_narrows_the_list(client_as, manager, rep_client, other_client):
    persona = PersonaFactory()
    models.Client.objects.filter(pk=other_client.pk).update(persona=persona)
    assert shown(client_as(manager).get(list_url(), {"persona": persona.pk})) == ["Yves Durand"]


def test_idle_days_filter_keeps_clients_without_recent_interaction(client_as, manager):
    now = timezone.now()
    ClientFactory(first_name="Recent", last_name="A", last_interaction_at=now - timedelta(days=3))
    ClientFactory(first_name="Old", last_name="B", last_interaction_at=now - timedelta(days=90))
    ClientFactory(first_name="Never", last_name="C", last_interaction_at=None)
    assert shown(client_as(manager).get(list_url(), {"idle_days": 30})) == ["Old B", "Never C"]


def test_filters_combine(client_as, manager):
    ClientFactory(first_name="Both", last_name="A", city="Nantes", tier=models.Tier.A)
    ClientFactory(first_name="City", last_name="B", city="Nantes", tier=models.Tier.B)
    ClientFactory(first_name="Tier", last_name="C", city="Lyon", tier=models.Tier.A)
    assert shown(client_as(manager).get(list_url(), {"city": "Nantes", "tier": "A"})) == ["Both A"]


def test_empty_filter_values_are_ignored(client_as, manager, rep_client, other_client):
    response = client_as(manager).get(list_url(), {"q": "", "lifecycle": "", "owner": "", "idle_days": ""})
    assert shown(response) == ["Yves Durand", "Ann Martin"]


@pytest.mark.parametrize(
    "params",
    [
        {"idle_days": "abc"},
        {"idle_days": "-3"},
        {"idle_days": "99999999999"},
        {"lifecycle": "nonsense"},
        {"tag": "999999"},
        {"persona": "abc"},
        {"owner": "123456"},
    ],
)
def test_invalid_filter_value_shows_an_error_and_no_client(client_as, manager, rep_client, params):
    response = client_as(manager).get(list_url(), params)
    assert response.status_code == 200
    assert "Some filters are invalid" in response.content.decode()
    assert shown(response) == []


@pytest.mark.parametrize("params", [{"page": "abc"}, {"page": "999"}, {"sort": "password"}, {"sort": "--name"}])
def test_odd_page_or_sort_values_still_show_the_list(client_as, manager, rep_client, params):
    response = client_as(manager).get(list_url(), params)
    assert response.status_code == 200
    assert shown(response) == ["Ann Martin"]


def test_list_is_sorted_by_name_by_default(client_as, manager):
    for first, last in [("Zoé", "Blanc"), ("Amir", "Blanc"), ("Paul", "Arnaud")]:
        ClientFactory(first_name=first, last_name=last)
    assert shown(client_as(manager).get(list_url())) == ["Paul Arnaud", "Amir Blanc", "Zoé Blanc"]


def test_sort_descending_with_a_minus(client_as, manager):
    for first, last in [("Zoé", "Blanc"), ("Amir", "Blanc"), ("Paul", "Arnaud")]:
        ClientFactory(first_name=first, last_name=last)
    assert shown(client_as(manager).get(list_url(), {"sort": "-name"})) == ["Zoé Blanc", "Amir Blanc", "Paul Arnaud"]


def test_sort_by_last_interaction(client_as, manager):
    now = timezone.now()
    ClientFactory(first_name="Week", last_name="A", last_interaction_at=now - timedelta(days=7))
    ClientFactory(first_name="Year", last_name="B", last_interaction_at=now - timedelta(days=365))
    ClientFactory(first_name="Today", last_name="C", last_interaction_at=now)
    response = client_as(manager).get(list_url(), {"sort": "last_interaction_at"})
    assert shown(response) == ["Year B", "Week A", "Today C"]


def test_clients_without_an_interaction_come_last_in_both_directions(client_as, manager):
    now = timezone.now()
    ClientFactory(first_name="Never", last_name="A", last_interaction_at=None)
    ClientFactory(first_name="Old", last_name="B", last_interaction_at=now - timedelta(days=365))
    ClientFactory(first_name="Recent", last_name="C", last_interaction_at=now)
    newest_first = client_as(manager).get(list_url(), {"sort": "-last_interaction_at"})
    assert shown(newest_first) == ["Recent C", "Old B", "Never A"]
    oldest_first = client_as(manager).get(list_url(), {"sort": "last_interaction_at"})
    assert shown(oldest_first) == ["Old B", "Recent C", "Never A"]


def test_sort_by_owner_groups_each_owners_clients(client_as, manager, rep, other_rep):
    for owner, name in [(other_rep, "Bob1"), (rep, "Alice1"), (other_rep, "Bob2"), (rep, "Alice2")]:
        ClientFactory(first_name=name, last_name="Client", owner=owner)
    owners = [client.owner for client in client_as(manager).get(list_url(), {"sort": "owner"}).context["page_obj"]]
    assert owners == [rep, rep, other_rep, other_rep]


def test_sort_by_company_breaks_ties_by_name_then_id(client_as, manager):
    first = ClientFactory(first_name="Same", last_name="Name", company="Acme")
    second = ClientFactory(first_name="Same", last_name="Name", company="Acme")
    ClientFactory(first_name="Before", last_name="Zed", company="Aaa")
    ascending = client_as(manager).get(list_url(), {"sort": "company"}).context["page_obj"]
    assert [c.pk for c in ascending][1:] == [first.pk, second.pk]
    descending = client_as(manager).get(list_url(), {"sort": "-company"}).context["page_obj"]
    assert [c.pk for c in descending][:2] == [second.pk, first.pk]


def test_column_header_offers_the_reverse_sort_of_the_current_one(client_as, manager, rep_client):
    content = client_as(manager).get(list_url(), {"sort": "company"}).content.decode()
    assert "?sort=-company" in content
    assert 'aria-sort="ascending"' in content


def test_pages_split_the_list_and_page_links_keep_the_filters(settings, client_as, manager):
    settings.CRM_CLIENTS_PER_PAGE = 2
    for index in range(5):
        ClientFactory(first_name=f"Lyon{index}", last_name="Client", city="Lyon")
    ClientFactory(first_name="Paris", last_name="Client", city="Paris")
    first_page = client_as(manager).get(list_url(), {"city": "Lyon", "sort": "created_at"})
    assert shown(first_page) == ["Lyon0 Client", "Lyon1 Client"]
    assert "?city=Lyon&amp;sort=created_at&amp;page=2" in first_page.content.decode()
    last_page = client_as(manager).get(list_url(), {"city": "Lyon", "sort": "created_at", "page": 3})
    assert shown(last_page) == ["Lyon4 Client"]
    assert "5 clients" in last_page.content.decode()


def test_htmx_request_gets_only_the_table(client_as, manager, rep_client):
    response = client_as(manager).get(list_url(), {"city": "Lyon"}, HTTP_HX_REQUEST="true")
    content = response.content.decode()
    assert "Ann Martin" in content
    assert "<html" not in content
    assert 'id="client-filters"' not in content
    assert "HX-Request" in response["Vary"]


def test_plain_request_gets_the_whole_page_with_the_filter_form(client_as, manager, rep_client):
    content = client_as(manager).get(list_url()).content.decode()
    assert "<html" in content
    assert 'id="client-filters"' in content
    assert 'hx-get="/clients/"' in content
    assert "Ann Martin" in content


def test_htmx_history_restore_gets_the_whole_page(client_as, manager, rep_client):
    response = client_as(manager).get(list_url(), HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in response.content.decode()


def test_list_does_not_accept_post(client_as, manager):
    assert client_as(manager).post(list_url()).status_code == 405


def test_rep_sees_neither_export_nor_save_as_segment(client_as, rep, rep_client):
    content = client_as(rep).get(list_url()).content.decode()
    assert reverse("crm:client-export") not in content
    assert reverse("crm:segment-create") not in content


def test_manager_sees_export_and_save_as_segment_with_the_current_filters(client_as, manager, rep_client):
    content = client_as(manager).get(list_url(), {"city": "Lyon", "q": ""}).content.decode()
    assert f"{reverse('crm:client-export')}?city=Lyon&amp;sort=name" in content
    assert f'action="{reverse("crm:segment-create")}"' in content
    assert 'name="filters" value="city=Lyon"' in content


def _queries_for_a_page(client, count: int) -> int:
    owner = UserFactory()
    tag = models.Tag.objects.get_or_create(name="VIP")[0]
    for _index in range(count):
        ClientFactory(owner=owner).tags.add(tag)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(list_url(), {"tag": tag.pk}).status_code == 200
    return len(queries)


def test_number_of_queries_does_not_grow_with_the_rows(client_as, manager):
    client = client_as(manager)
    few = _queries_for_a_page(client, 2)
    many = _queries_for_a_page(client, 12)
    assert many == few


def test_list_count_stops_at_the_cap_and_says_so(client_as, manager, settings):
    settings.CRM_LIST_COUNT_CAP = 3
    settings.CRM_CLIENTS_PER_PAGE = 2
    ClientFactory.create_batch(5)
    html = client_as(manager).get(reverse("crm:client-list")).content.decode()
    assert "More than 3 clients" in html
    assert "Page 1 of 2+" in html


def test_list_count_is_exact_under_the_cap(client_as, manager, settings):
    settings.CRM_LIST_COUNT_CAP = 10
    ClientFactory.create_batch(4)
    html = client_as(manager).get(reverse("crm:client-list")).content.decode()
    assert "4 clients" in html and "More than" not in html


def test_a_search_is_counted_up_to_its_own_cap(client_as, manager, settings):
    settings.CRM_LIST_COUNT_CAP = 100
    settings.CRM_SEARCH_COUNT_CAP = 2
    for index in range(4):
        ClientFactory(company=f"Groupe {index}")
    html = client_as(manager).get(reverse("crm:client-list"), {"q": "groupe"}).content.decode()
    assert "More than 2 clients" in html
