"""Every view, for every role: built from the URL resolver, so a new view cannot escape the matrix.

Anonymous visitors are sent to the login page, accounts without a role get 403, and each role gets exactly the
status listed in EXPECTED. A URL name missing from EXPECTED fails the test until someone decides who may open it.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from crm import roles
from crm.models import BulkAction
from prospecting.models import (
    AutomationRule,
    Campaign,
    CampaignStep,
    DiscountKind,
    Event,
    ImportJob,
    Offer,
    RuleTrigger,
)
from scoring.models import ClusterStudy, StudyStatus
from tests.factories import FollowUpFactory, PersonaFactory, SegmentFactory

OK, FORBIDDEN, NOT_FOUND, NOT_ALLOWED, REDIRECT = 200, 403, 404, 405, 302

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
    "crm:bulk-action": (OK, OK, OK),
    "crm:bulk-action-list": (OK, OK, OK),
    "crm:bulk-action-detail": (NOT_FOUND, OK, OK),
    "crm:bulk-action-progress": (NOT_FOUND, OK, OK),
    "crm:bulk-action-undo": (NOT_ALLOWED, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:rule-list": (FORBIDDEN, OK, OK),
    "prospecting:rule-create": (FORBIDDEN, OK, OK),
    "prospecting:rule-preview": (FORBIDDEN, OK, OK),
    "prospecting:rule-edit": (FORBIDDEN, OK, OK),
    "prospecting:rule-apply": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:rule-delete": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-list": (OK, OK, OK),
    "prospecting:campaign-create": (FORBIDDEN, OK, OK),
    "prospecting:campaign-detail": (OK, OK, OK),
    "prospecting:campaign-edit": (FORBIDDEN, OK, OK),
    "prospecting:campaign-progress": (OK, OK, OK),
    "prospecting:campaign-launch": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-cancel": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-cost": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:campaign-step-create": (FORBIDDEN, OK, OK),
    "prospecting:campaign-step-edit": (FORBIDDEN, OK, OK),
    "prospecting:campaign-step-delete": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:offer-list": (OK, OK, OK),
    "prospecting:offer-create": (FORBIDDEN, OK, OK),
    "prospecting:offer-detail": (OK, OK, OK),
    "prospecting:offer-edit": (FORBIDDEN, OK, OK),
    "prospecting:offer-redeem": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:ambassadors": (OK, OK, OK),
    "prospecting:event-list": (OK, OK, OK),
    "prospecting:event-create": (FORBIDDEN, OK, OK),
    "prospecting:event-detail": (OK, OK, OK),
    "prospecting:event-register": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:event-import": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "prospecting:import-list": (FORBIDDEN, FORBIDDEN, OK),
    "prospecting:import-upload": (FORBIDDEN, FORBIDDEN, OK),
    "prospecting:import-detail": (FORBIDDEN, FORBIDDEN, OK),
    "prospecting:import-mapping": (FORBIDDEN, FORBIDDEN, OK),
    "prospecting:import-progress": (FORBIDDEN, FORBIDDEN, OK),
    "prospecting:import-apply": (FORBIDDEN, FORBIDDEN, NOT_ALLOWED),
    "prospecting:import-undo": (FORBIDDEN, FORBIDDEN, REDIRECT),
    "prospecting:import-errors": (FORBIDDEN, FORBIDDEN, OK),
    "scoring:dashboard": (FORBIDDEN, OK, OK),
    "scoring:run-list": (FORBIDDEN, OK, OK),
    "scoring:run-start": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:run-progress": (FORBIDDEN, OK, OK),
    "scoring:persona-builder": (FORBIDDEN, OK, OK),
    "scoring:study-start": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:study-progress": (FORBIDDEN, OK, OK),
    "scoring:study-persona-create": (FORBIDDEN, OK, OK),
    "scoring:client-persona-assign": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:persona-assignment": (OK, OK, OK),
    "scoring:persona-assignment-retry": (FORBIDDEN, NOT_ALLOWED, NOT_ALLOWED),
    "scoring:analysis": (FORBIDDEN, OK, OK),
    "scoring:analysis-export": (FORBIDDEN, OK, OK),
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
def objects(other_rep, other_client, manager):
    follow_up = FollowUpFactory(client=other_client, assignee=other_rep, due_at=timezone.now())
    campaign = Campaign.objects.create(name="Spring", created_by=manager)
    today = timezone.localdate()
    return {
        "client": other_client,
        "bulk-action": BulkAction.objects.create(kind="set_tier", user=other_rep),
        "follow-up": follow_up,
        "segment": SegmentFactory(),
        "persona": PersonaFactory(),
        "rule": AutomationRule.objects.create(
            name="Reactivate", trigger=RuleTrigger.TO_REACTIVATE, follow_up_title="Call", created_by=manager
        ),
        "campaign": campaign,
        "campaign-step": CampaignStep.objects.create(campaign=campaign, position=1, subject="Hello", body="Hi"),
        "offer": Offer.objects.create(
            code="SPRING15",
            name="15%",
            discount_kind=DiscountKind.values[0],
            discount_value=15,
            valid_from=today,
            valid_until=today,
            created_by=manager,
        ),
        "event": Event.objects.create(name="Salon", held_on=today, created_by=manager),
        "study": ClusterStudy.objects.create(as_of=today, status=StudyStatus.DONE, k=2, sample_size=10),
        "import": ImportJob.objects.create(
            kind="people", filename="list.csv", data=b"email\nann@example.com\n", mapping={"email": "email"}
        ),
    }


# URL names whose pk is not the object their name starts with.
PK_OF = {
    "crm:interaction-create": "client",
    "crm:follow-up-create": "client",
    "prospecting:campaign-step-create": "campaign",
}


def _url(name: str, pattern: URLPattern, objects: dict) -> str:
    if "pk" not in pattern.pattern.converters:
        return reverse(name)
    if name in PK_OF:
        return reverse(name, args=[objects[PK_OF[name]].pk])
    local = name.split(":")[-1]
    prefix = max((key for key in objects if local.startswith(key)), key=len, default="client")
    return reverse(name, args=[objects[prefix].pk])


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
