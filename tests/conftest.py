"""Shared fixtures: the three roles plus an outsider, clients owned by two reps, and the integration gates.

Integration tests carry a marker (postgresql, redis, browser). When the service they need is not configured they are
skipped with the reason, and ``--fail-on-skip`` (used by CI) turns any skip into a failed run.
"""

import os
import shutil

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import translation

from crm import roles
from tests.factories import ClientFactory, UserFactory

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")


def pytest_addoption(parser):
    parser.addoption("--fail-on-skip", action="store_true", help="fail the run if any test was skipped")


def _unavailable_reason(marker_name: str) -> str | None:
    if marker_name == "postgresql" and not settings.IS_POSTGRESQL:
        return "integration: needs PostgreSQL, set DATABASE_URL=postgres://..."
    if marker_name == "redis" and not settings.CELERY_BROKER_URL.startswith("redis"):
        return "integration: needs Redis and a Celery worker, set CELERY_BROKER_URL=redis://..."
    if marker_name == "browser" and not shutil.which(CHROMIUM):
        return f"integration: needs headless Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


def pytest_collection_modifyitems(config, items):
    for item in items:
        for marker_name in ("postgresql", "redis", "browser"):
            if item.get_closest_marker(marker_name) and (reason := _unavailable_reason(marker_name)):
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_sessionfinish(session, exitstatus):
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if session.config.getoption("--fail-on-skip") and skipped:
        reporter.write_line(f"--fail-on-skip: {len(skipped)} test(s) were skipped; none may be in CI.", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(autouse=True)
def _language_restored():
    """A request with Accept-Language leaves its language active in the thread: each test starts in the default."""
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(scope="module")
def role_groups_restored(django_db_blocker):
    """For modules with transactional tests: their closing flush removes the role groups (made by a migration)
    that later tests of the run expect."""
    yield
    with django_db_blocker.unblock():
        for name in roles.ROLES:
            Group.objects.get_or_create(name=name)


@pytest.fixture
def rep(db):
    return UserFactory(username="alice", role=roles.REP)


@pytest.fixture
def other_rep(db):
    return UserFactory(username="bob", role=roles.REP)


@pytest.fixture
def manager(db):
    return UserFactory(username="martine", role=roles.MANAGER)


@pytest.fixture
def admin_member(db):
    return UserFactory(username="adele", role=roles.ADMIN, is_staff=True)


@pytest.fixture
def outsider(db):
    """A logged-in account without any role: it must see nothing."""
    return UserFactory(username="charlie")


@pytest.fixture
def rep_client(rep):
    return ClientFactory(owner=rep, first_name="Ann", last_name="Martin", email="ann@example.com")


@pytest.fixture
def other_client(other_rep):
    return ClientFactory(owner=other_rep, first_name="Yves", last_name="Durand", email="yves@example.com")


@pytest.fixture
def client_as(client):
    """Log the Django test client in as a given user: ``client_as(rep).get(...)``."""

    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture
def tasks_inline():
    """Run Celery tasks in-process for this test, even when the suite is given a real broker.

    Restored by hand rather than through ``monkeypatch``, which some tests undo themselves halfway.
    """
    from portfolio.celery import app as celery_app

    eager, celery_app.conf.task_always_eager = celery_app.conf.task_always_eager, True
    yield
    celery_app.conf.task_always_eager = eager
