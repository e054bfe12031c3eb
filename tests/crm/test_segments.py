"""Segments: saving the list's filters, listing them with live counts, opening and deleting them, with role checks."""

import pytest
from django.test import Client as HttpClient
from django.urls import reverse

from crm import models
from tests.factories import ClientFactory, SegmentFactory


def create_url() -> str:
    return reverse("crm:segment-create")


def shown(response) -> list[str]:
    return [str(client) for client in response.context["page_obj"]]


@pytest.mark.parametrize("user_fixture", ["manager", "admin_member"])
def test_manager_saves_the_current_filters_as_a_segment(db, request, client_as, user_fixture):
    user = request.getfixturevalue(user_fixture)
    response = client_as(user).post(
        create_url(),
        {"name": "Lyon key accounts", "description": "For the spring tour", "filters": "city=Lyon&tier=A&q="},
    )
    segment = models.Segment.objects.get()
    assert response.status_code == 302
    assert response["Location"] == segment.get_absolute_url()
    assert segment.name == "Lyon key accounts"
    assert segment.description == "For the spring tour"
    assert segment.filters == {"city": "Lyon", "tier": "A"}
    assert segment.created_by == user


def test_rep_cannot_save_a_segment(client_as, rep):
    response = client_as(rep).post(create_url(), {"name": "Mine", "filters": "city=Lyon"})
    assert response.status_code == 403
    assert not models.Segment.objects.exists()


def test_segment_create_accepts_only_post(client_as, manager):
    assert client_as(manager).get(create_url(), {"name": "Lyon", "city": "Lyon"}).status_code == 405
    assert not models.Segment.objects.exists()


def test_saving_requires_the_csrf_token(manager):
    browser = HttpClient(enforce_csrf_checks=True)
    browser.force_login(manager)
    assert browser.post(create_url(), {"name": "No token", "filters": ""}).status_code == 403
    assert not models.Segment.objects.exists()


def test_duplicate_segment_name_shows_a_clear_error(client_as, manager):
    SegmentFactory(name="Lyon")
    response = client_as(manager).post(create_url(), {"name": "Lyon", "filters": "city=Lyon"})
    assert response.status_code == 200
    assert "A segment with this name already exists" in response.content.decode()
    assert models.Segment.objects.count() == 1


def test_segment_with_invalid_filters_is_not_saved(client_as, manager):
    response = client_as(manager).post(create_url(), {"name": "Broken", "filters": "idle_days=abc"})
    assert response.status_code == 200
    assert "Some filters are invalid" in response.content.decode()
    assert not models.Segment.objects.exists()


def test_form_shown_again_after_an_error_keeps_the_filters_to_save(client_as, manager):
    SegmentFactory(name="Lyon")
    response = client_as(manager).post(create_url(), {"name": "Lyon", "filters": "lifecycle=client&city=Lyon"})
    content = response.content.decode()
    assert 'value="lifecycle=client&amp;city=Lyon"' in content
    assert "City: Lyon" in content
    assert "Lifecycle: Client" in content


def test_segment_list_shows_live_counts_description_and_author(client_as, rep, manager):
    ClientFactory(city="Lyon")
    ClientFactory(city="Lyon")
    ClientFactory(city="Paris")
    SegmentFactory(name="Lyonnais", filters={"city": "Lyon"}, description="Near the office", created_by=manager)
    response = client_as(rep).get(reverse("crm:segment-list"))
    assert response.status_code == 200
    row = response.context["rows"][0]
    assert row["count"] == 2
    content = response.content.decode()
    assert "Lyonnais" in content
    assert "Near the office" in content
    assert "martine" in content
    assert "City: Lyon" in content


def test_segment_count_only_counts_clients_the_user_may_see(settings, client_as, rep, rep_client, other_client):
    settings.CRM_REPS_SEE_ONLY_OWN_CLIENTS = True
    SegmentFactory(name="Lyon", filters={"city": "Lyon"})
    response = client_as(rep).get(reverse("crm:segment-list"))
    assert response.context["rows"][0]["count"] == 1


def test_segment_list_hides_delete_from_reps(client_as, rep, manager):
    segment = SegmentFactory()
    delete_url = reverse("crm:segment-delete", args=[segment.pk])
    assert delete_url not in client_as(rep).get(reverse("crm:segment-list")).content.decode()
    assert delete_url in client_as(manager).get(reverse("crm:segment-list")).content.decode()


def test_segment_detail_is_the_live_filtered_list(client_as, rep):
    segment = SegmentFactory(name="Nantes", filters={"city": "Nantes"})
    ClientFactory(first_name="Early", last_name="Bird", city="Nantes")
    ClientFactory(first_name="Not", last_name="Here", city="Lyon")
    ClientFactory(first_name="Late", last_name="Comer", city="Nantes")
    response = client_as(rep).get(segment.get_absolute_url())
    assert response.status_code == 200
    assert shown(response) == ["Early Bird", "Late Comer"]
    content = response.content.decode()
    assert "<h1" in content and "Nantes" in content
    assert f"{reverse('crm:client-list')}?city=Nantes" in content


def test_segment_detail_sorts_and_returns_the_table_alone_to_htmx(client_as, manager):
    segment = SegmentFactory(filters={"city": "Nantes"})
    ClientFactory(first_name="Anna", last_name="Abel", city="Nantes")
    ClientFactory(first_name="Zoé", last_name="Zed", city="Nantes")
    response = client_as(manager).get(segment.get_absolute_url(), {"sort": "-name"}, HTTP_HX_REQUEST="true")
    assert shown(response) == ["Zoé Zed", "Anna Abel"]
    assert "<html" not in response.content.decode()


def test_segment_owner_me_means_the_user_who_opens_it(client_as, rep, other_rep, rep_client, other_client):
    segment = SegmentFactory(filters={"owner": "me"})
    assert shown(client_as(rep).get(segment.get_absolute_url())) == ["Ann Martin"]
    assert shown(client_as(other_rep).get(segment.get_absolute_url())) == ["Yves Durand"]


def test_segment_whose_tag_was_deleted_matches_no_client_rather_than_all(client_as, manager, rep_client):
    tag = models.Tag.objects.create(name="Salon")
    segment = SegmentFactory(name="Salon", filters={"tag": str(tag.pk)})
    tag.delete()
    listing = client_as(manager).get(reverse("crm:segment-list"))
    assert listing.context["rows"][0]["count"] is None
    assert "The filters of this segment are no longer valid." in listing.content.decode()
    assert "All clients" not in listing.content.decode()
    response = client_as(manager).get(segment.get_absolute_url())
    assert shown(response) == []
    assert "Some filters are invalid" in response.content.decode()


def test_segment_name_is_escaped(client_as, manager):
    segment = SegmentFactory(name="<b>bold</b>")
    for url in (reverse("crm:segment-list"), segment.get_absolute_url()):
        content = client_as(manager).get(url).content.decode()
        assert "<b>bold</b>" not in content
        assert "&lt;b&gt;bold&lt;/b&gt;" in content


def test_delete_asks_for_confirmation_first(client_as, manager):
    segment = SegmentFactory(name="Old")
    response = client_as(manager).get(reverse("crm:segment-delete", args=[segment.pk]))
    assert response.status_code == 200
    assert 'method="post"' in response.content.decode()
    assert models.Segment.objects.filter(pk=segment.pk).exists()


@pytest.mark.parametrize("user_fixture", ["manager", "admin_member"])
def test_manager_deletes_a_segment(db, request, client_as, user_fixture):
    user = request.getfixturevalue(user_fixture)
    segment = SegmentFactory(name="Old")
    response = client_as(user).post(reverse("crm:segment-delete", args=[segment.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("crm:segment-list")
    assert not models.Segment.objects.exists()


def test_rep_cannot_delete_a_segment(client_as, rep):
    segment = SegmentFactory(name="Kept")
    assert client_as(rep).post(reverse("crm:segment-delete", args=[segment.pk])).status_code == 403
    assert client_as(rep).get(reverse("crm:segment-delete", args=[segment.pk])).status_code == 403
    assert models.Segment.objects.filter(pk=segment.pk).exists()


def test_deleting_a_missing_segment_is_a_404(client_as, manager):
    assert client_as(manager).post(reverse("crm:segment-delete", args=[999999])).status_code == 404


def test_user_without_role_sees_no_segment(client_as, outsider):
    segment = SegmentFactory()
    assert client_as(outsider).get(reverse("crm:segment-list")).status_code == 403
    assert client_as(outsider).get(segment.get_absolute_url()).status_code == 403
