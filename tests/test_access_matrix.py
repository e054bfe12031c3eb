"""Every view, for every role: built from the URL resolver, so a new view cannot escape the matrix.

Anonymous visitors are sent to the login page, accounts without a role get 403, and each role gets exactly the
status listed in EXPECTED. A URL name missing from EXPECTED fails the test until someone decides who may open it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from crm import roles
from tests.factories import FollowUpFactory, PersonaFactory, SegmentFactory

OK, FORBIDDEN, NOT_ALLOWED, REDIRECT = 200, 403, 405, 302

# URL name -> GET status for (rep, manager, admin). Objects belong to another rep than the one logged in.
EXPECTED = {
    "crm:home": (OK, OK, OK),
    "crm:client-list": (OK, OK, OK),
    "crm:client-export": (FORBIDDEN, OK, OK),
    "crm:client-create": (OK, OK, OK),
    "crm:client-duplicates": (OK, OK, OK),
    "crm:client-detail": (OK, OK, OK),
    "crm:client-edit": (FORBIDDEN, OK, OK),
    "crm:client-delete": (FORBIDDEN, OK, OK),
    "crm:interaction-create": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "crm:follow-up-create": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "crm:follow-up-close": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "crm:segment-list": (OK, OK, OK),
    "crm:segment-create": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "crm:segment-detail": (OK, OK, OK),
    "crm:segment-delete": (FORBIDDEN, OK, OK),
    "crm:persona-list": (OK, OK, OK),
    "crm:persona-create": (FORBIDDEN, OK, OK),
    "crm:persona-detail": (OK, OK, OK),
    "crm:persona-edit": (FORBIDDEN, OK, OK),
    "crm:persona-assign": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "crm:follow-up-bulk": (OK, OK, OK),
    "crm:reminder-badge": (OK, OK, OK),
    "prospecting:rule-list": (FORBIDDEN, OK, OK),
    "prospecting:rule-create": (FORBIDDEN, OK, OK),
    "prospecting:rule-preview": (FORBIDDEN, OK, OK),
    # The objects fixture holds no rule: the pk given is a client's, so managers get 404 (reps 403 before that).
    "prospecting:rule-edit": (FORBIDDEN, 404, 404),
    "prospecting:rule-apply": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:rule-delete": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    # Campaigns, offers, ambassadors, events. The objects fixture holds none of them: the pk given is a client's,
    # so the roles allowed get 404 (a role refused gets 403 before the lookup).
    "prospecting:campaign-list": (OK, OK, OK),
    "prospecting:campaign-create": (FORBIDDEN, OK, OK),
    "prospecting:campaign-detail": (404, 404, 404),
    "prospecting:campaign-edit": (FORBIDDEN, 404, 404),
    "prospecting:campaign-progress": (404, 404, 404),
    "prospecting:campaign-launch": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-cancel": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-step-create": (FORBIDDEN, 404, 404),
    "prospecting:campaign-step-edit": (FORBIDDEN, 404, 404),
    "prospecting:campaign-step-delete": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:offer-list": (OK, OK, OK),
    "prospecting:offer-create": (FORBIDDEN, OK, OK),
    "prospecting:offer-detail": (404, 404, 404),
    "prospecting:offer-edit": (FORBIDDEN, 404, 404),
    "prospecting:offer-redeem": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:ambassadors": (OK, OK, OK),
    "prospecting:event-list": (OK, OK, OK),
    "prospecting:event-create": (FORBIDDEN, OK, OK),
    "prospecting:event-detail": (404, 404, 404),
    "prospecting:event-register": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:event-import": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:dashboard": (FORBIDDEN, OK, OK),
    "scoring:run-list": (FORBIDDEN, OK, OK),
    "scoring:run-start": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:run-progress": (FORBIDDEN, OK, OK),
}

# Public by design, or checked by the tests named here.
OUTSIDE_THE_MATRIX = {
    "login",  # the door itself
    "logout",  # POST only, harmless
    "set_language",  # language switch, also before login
    "prospecting:unsubscribe",  # public: the signed link in a campaign email; tests/prospecting/test_unsubscribe.py
}


def _all_url_names(resolvers=None, namespace=""):
    for pattern in resolvers if resolvers is not None else get_resolver().url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            if pattern.namespace != "admin":  # Django admin: test_admin_is_for_admins_only
                yield from _all_url_names(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern) and pattern.name:
            yield f"{namespace}{pattern.name}", pattern


@pytest.fixture
def objects(other_rep, other_client):
    follow_up = FollowUpFactory(client=other_client, assignee=other_rep, due_at=timezone.now())
    return {
        "client": other_client,
        "follow-up": follow_up,
        "segment": SegmentFactory(),
        "persona": PersonaFactory(),
    }


def _url(name: str, pattern: URLPattern, objects: dict) -> str:
    if "pk" not in pattern.pattern.converters:
        return reverse(name)
    local = name.split(":")[-1]
    for prefix in ("follow-up", "segment", "persona"):
        if local.startswith(prefix):
            return reverse(name, args=[objects[prefix].pk])
    return reverse(name, args=[objects["client"].pk])


def test_every_view_is_in_the_matrix():
    names = {name for name, _ in _all_url_names()} - OUTSIDE_THE_MATRIX
    assert names - set(EXPECTED) == set(), "add the new views to EXPECTED"
    assert set(EXPECTED) - names == set(), "EXPECTED lists views that no longer exist"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_role_matrix(name, client, objects, rep, manager, admin_member, outsider):
    pattern = dict(_all_url_names())[name]
    url = _url(name, pattern, objects)

    anonymous = client.get(url)
    assert anonymous.status_code == REDIRECT and anonymous.url.startswith(reverse("login"))
    assert client.post(url).status_code == REDIRECT

    client.force_login(outsider)
    assert client.get(url).status_code == FORBIDDEN
    assert client.post(url).status_code == FORBIDDEN

    for user, expected in zip((rep, manager, admin_member), EXPECTED[name], strict=True):
        client.force_login(user)
        assert client.get(url).status_code == expected, f"{name} GET as {roles.role_of(user)}"


def test_admin_is_for_admins_only(client, rep, manager, admin_member):
    url = reverse("admin:crm_client_changelist")
    for user in (rep, manager):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == REDIRECT and "/admin/login/" in response.url
    client.force_login(admin_member)
    assert client.get(url).status_code == OK
