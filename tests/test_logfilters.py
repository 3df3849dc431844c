"""Logging: a refused page is logged in one line, a server error with its traceback."""

import io
import logging

import pytest
from django.urls import reverse

from intake.logfilters import NoTracebackForClientErrors


@pytest.fixture
def console():
    """Yield what the app's console log handler writes during the test."""
    [handler] = [
        handler
        for handler in logging.getLogger().handlers
        if any(isinstance(f, NoTracebackForClientErrors) for f in handler.filters)
    ]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    yield stream
    handler.setStream(previous)


@pytest.mark.django_db
def test_a_refused_admin_page_logs_one_line_without_traceback(client, clinician, console):
    client.force_login(clinician)
    response = client.get(reverse("admin:auth_user_changelist"))
    assert response.status_code == 403
    logged = console.getvalue()
    assert "Forbidden (Permission denied): /admin/auth/user/" in logged
    assert "Traceback" not in logged


def record(status_code):
    try:
        raise ValueError("boom")
    except ValueError as error:
        exc_info = (type(error), error, error.__traceback__)
    entry = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "m", (), exc_info)
    entry.status_code = status_code
    return entry


def test_server_errors_keep_their_traceback():
    entry = record(500)
    assert NoTracebackForClientErrors().filter(entry)
    assert entry.exc_info is not None


@pytest.mark.parametrize("status_code", [400, 403, 404])
def test_client_errors_lose_their_traceback_but_are_still_logged(status_code):
    entry = record(status_code)
    assert NoTracebackForClientErrors().filter(entry)
    assert entry.exc_info is None
