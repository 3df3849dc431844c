"""The session backend: the every-request refresh is one UPDATE outside a transaction."""

import datetime as dt
from unittest import mock

import pytest
from django.conf import settings
from django.contrib.sessions.backends.base import CreateError, UpdateError
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from intake.sessions import DatabaseSessionStore, SessionStore


def test_the_app_uses_its_session_backend():
    assert settings.SESSION_ENGINE == "intake.sessions"


def new_session(**data):
    store = SessionStore()
    store.update(data)
    store.create()
    return store


@pytest.mark.django_db(transaction=True)
def test_a_refresh_outside_a_transaction_is_one_update_and_no_transaction():
    store = new_session(colour="blue")
    Session.objects.filter(pk=store.session_key).update(
        expire_date=timezone.now() + dt.timedelta(seconds=30)
    )
    store = SessionStore(store.session_key)
    store["colour"] = "green"

    with (
        mock.patch.object(transaction, "atomic", wraps=transaction.atomic) as atomic,
        CaptureQueriesContext(connection) as queries,
    ):
        store.save()

    assert atomic.call_count == 0
    assert len(queries) == 1
    assert queries[0]["sql"].startswith('UPDATE "django_session"')
    row = Session.objects.get(pk=store.session_key)
    assert row.get_decoded() == {"colour": "green"}
    assert row.expire_date - timezone.now() > dt.timedelta(minutes=14)


def deleted_meanwhile():
    """Return a loaded session store whose row was deleted since (signed out elsewhere)."""
    store = new_session(colour="blue")
    Session.objects.filter(pk=store.session_key).delete()
    store = SessionStore(store.session_key)
    store._session_cache = {"colour": "green"}
    return store


@pytest.mark.django_db(transaction=True)
def test_a_refresh_of_a_session_deleted_meanwhile_fails_as_djangos_does():
    store = deleted_meanwhile()

    with pytest.raises(UpdateError):
        store.save()

    assert not Session.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_inside_a_transaction_a_failed_refresh_leaves_the_callers_transaction_usable():
    store = deleted_meanwhile()

    with transaction.atomic():
        with pytest.raises(UpdateError):
            store.save()
        # Django's savepoint path: the outer transaction goes on.
        assert Session.objects.count() == 0
        kept = new_session(colour="red")

    assert SessionStore(kept.session_key)["colour"] == "red"


@pytest.mark.django_db(transaction=True)
def test_creating_a_session_never_overwrites_another():
    first = new_session(colour="blue")
    clash = SessionStore()
    clash._session_key = first.session_key
    clash._session_cache = {"colour": "green"}

    with pytest.raises(CreateError):
        clash.save(must_create=True)

    assert SessionStore(first.session_key)["colour"] == "blue"


@pytest.mark.django_db(transaction=True)
def test_a_signed_in_page_slides_the_session_with_one_statement(client, staff_user):
    client.force_login(staff_user)
    key = client.session.session_key
    Session.objects.filter(pk=key).update(expire_date=timezone.now() + dt.timedelta(seconds=30))

    with (
        mock.patch.object(DatabaseSessionStore, "save") as djangos_save,
        CaptureQueriesContext(connection) as queries,
    ):
        assert client.get(reverse("intake:home")).status_code == 200

    assert djangos_save.call_count == 0  # its BEGIN, UPDATE, COMMIT

    session_writes = [
        q["sql"]
        for q in queries
        if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")
    ]
    assert len(session_writes) == 1
    assert session_writes[0].startswith('UPDATE "django_session"')
    remaining = Session.objects.get(pk=key).expire_date - timezone.now()
    assert dt.timedelta(minutes=14) < remaining <= dt.timedelta(minutes=15)
