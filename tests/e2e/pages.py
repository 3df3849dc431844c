"""Steps the browser tests share."""

from tests.conftest import PASSWORD


def sign_in(page, live_server, user):
    """Sign ``user`` in on ``page`` through the sign-in form; the page ends on the home page."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill('input[name="username"]', user.username)
    page.fill('input[name="password"]', PASSWORD)
    page.click('button[type="submit"]')
    page.wait_for_url(f"{live_server.url}/")
    return page
