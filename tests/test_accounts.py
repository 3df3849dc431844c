"""Accounts: the staff password change lives in the app's own pages."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a-new-and-long-passphrase-2026"


def test_header_links_to_the_password_change(client, staff_user):
    client.force_login(staff_user)
    body = client.get(reverse("intake:home")).content.decode()
    assert f'href="{reverse("password_change")}"' in body


def test_staff_password_change_page_is_the_apps_not_the_admins(client, staff_user):
    client.force_login(staff_user)
    body = client.get(reverse("password_change")).content.decode()
    assert 'action="/accounts/logout/"' in body  # the app's header, with sign-out
    assert 'href="/admin/"' not in body  # staff cannot use the review panel
    assert 'autocomplete="current-password"' in body
    assert body.count('autocomplete="new-password"') == 2


def test_wrong_current_password_is_summarised_and_changes_nothing(client, staff_user):
    client.force_login(staff_user)
    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="error-summary"' in body
    assert 'href="#id_old_password"' in body
    staff_user.refresh_from_db()
    assert staff_user.check_password(PASSWORD)


def test_changed_password_lands_on_the_apps_done_page_still_signed_in(client, staff_user):
    client.force_login(staff_user)
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
        follow=True,
    )
    body = response.content.decode()
    assert response.redirect_chain[-1][0] == reverse("password_change_done")
    assert "Your password was changed." in body
    assert 'href="/admin/"' not in body
    staff_user.refresh_from_db()
    assert staff_user.check_password(NEW_PASSWORD)
    assert client.get(reverse("intake:home")).status_code == 200


def test_the_review_panels_password_change_keeps_the_admin_pages(client, clinician):
    client.force_login(clinician)
    body = client.get(reverse("admin:password_change")).content.decode()
    assert 'id="site-name"' in body
