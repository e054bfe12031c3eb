"""Headless Chromium (Debian's package) driven by Playwright, against the live test server."""

import os

import pytest
from django.db import connections

from tests.conftest import CHROMIUM


@pytest.fixture
def page(live_server):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls made by the test itself are safe.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"],
        )
        context = browser.new_context(locale="en-GB", base_url=live_server.url)
        context.set_default_timeout(15_000)
        yield context.new_page()
        browser.close()
        # With Playwright's event loop running, the test body gets database connections of its own (asgiref's
        # context-local storage): close them here, or they outlive the test database.
        connections.close_all()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
