"""Role resolution from groups."""

from django.contrib.auth.models import Group

from crm import roles
from tests.factories import UserFactory


def test_role_is_the_highest_group(db):
    user = UserFactory(username="both", role=roles.REP)
    user.groups.add(Group.objects.get(name=roles.MANAGER))
    assert roles.role_of(user) == roles.MANAGER


def test_user_without_group_has_no_role(outsider):
    assert roles.role_of(outsider) is None


def test_superuser_is_admin(db):
    assert roles.role_of(UserFactory(username="root", is_superuser=True)) == roles.ADMIN


def test_inactive_user_has_no_role(db):
    assert roles.role_of(UserFactory(username="gone", role=roles.MANAGER, is_active=False)) is None
