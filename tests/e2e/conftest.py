"""Browser-test fixtures: Debian's Chromium, driven by Playwright, against the live server."""

import os
from pathlib import Path

import pytest

from tests.e2e.pages import sign_in

# Playwright's sync API runs an event loop in this thread; Django's ORM would refuse it.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "wizard"


def require_chromium():
    if not Path(CHROMIUM).exists():
        reason = f"Chromium is not installed at {CHROMIUM}; browser tests cannot run."
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium():
    """Yield a headless Chromium browser for the whole session."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def e2e_staff(transactional_db, django_user_model):
    from django.contrib.auth.models import Group

    from tests.conftest import PASSWORD

    user = django_user_model.objects.create_user(username="e2e-staff", password=PASSWORD)
    user.groups.add(Group.objects.get(name="intake_staff"))
    return user


@pytest.fixture
def browser_context(chromium):
    context = chromium.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="America/New_York"
    )
    context.set_default_timeout(15000)
    yield context
    context.close()


@pytest.fixture
def signed_in_page(browser_context, live_server, e2e_staff):
    """Return a page signed in as an intake staff member, on the home page."""
    return sign_in(browser_context.new_page(), live_server, e2e_staff)


@pytest.fixture
def screenshots():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
