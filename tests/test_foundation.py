import pytest
from django.contrib.auth.models import Group
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

from intake.models import Role
from intake.settings import env


def test_env_helper_reads_defaults_and_casts(monkeypatch):
    monkeypatch.delenv("SOME_SETTING", raising=False)
    assert env("SOME_SETTING", 5, int) == 5
    monkeypatch.setenv("SOME_SETTING", "yes")
    assert env("SOME_SETTING", False, bool) is True
    monkeypatch.setenv("SOME_SETTING", "a, b,,c")
    assert env("SOME_SETTING", [], list) == ["a", "b", "c"]
    monkeypatch.setenv("SOME_SETTING", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env("SOME_SETTING", False, bool)


def test_production_settings_refuse_to_start_without_secret_key():
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import intake.settings"],
        env={"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "0"},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY must be set" in result.stderr


def test_wsgi_loads_the_views_and_freezes_them_out_of_the_garbage_collector():
    import subprocess
    import sys

    probe = (
        "import gc, sys; import intake.wsgi; print(gc.get_freeze_count(), "
        "'intake.app_urls' in sys.modules, 'intake.admin' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PATH": "/usr/bin:/bin", "DJANGO_DEBUG": "0", "DJANGO_SECRET_KEY": "x" * 50},
        capture_output=True,
        text=True,
        check=True,
    )
    frozen, urls_loaded, admin_loaded = result.stdout.split()
    assert int(frozen) > 10_000
    assert urls_loaded == admin_loaded == "True"


SQLITE_PROBE = (
    "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'intake.settings'; django.setup(); "
    "from django.db import connection; cursor = connection.cursor(); "
    "print(cursor.execute('PRAGMA journal_mode').fetchone()[0], "
    "cursor.execute('PRAGMA synchronous').fetchone()[0])"
)


@pytest.mark.parametrize(
    ("setting", "expected"), [(None, "wal 1"), ("full", "wal 2"), ("EXTRA", "wal 3")]
)
def test_sqlite_runs_write_ahead_with_the_chosen_synchronous_level(tmp_path, setting, expected):
    import subprocess
    import sys

    env_ = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "x" * 50,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'probe.sqlite3'}",
    }
    if setting is not None:
        env_["DJANGO_SQLITE_SYNCHRONOUS"] = setting
    result = subprocess.run(
        [sys.executable, "-c", SQLITE_PROBE], env=env_, capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == expected.split()


def test_sqlite_synchronous_off_is_refused(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-c", "import intake.settings"],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_DEBUG": "0",
            "DJANGO_SECRET_KEY": "x" * 50,
            "DJANGO_SQLITE_SYNCHRONOUS": "OFF",
        },
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0
    assert "DJANGO_SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA" in result.stderr


@pytest.mark.django_db
def test_roles_exist_with_expected_permissions():
    perms = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.all()
    }
    assert set(perms) >= {r.value for r in Role}
    assert perms["intake_staff"] == {"intake.conduct_screening"}
    assert "intake.review_screening" in perms["clinician"]
    assert "intake.unlock_screening" not in perms["clinician"]
    assert {"intake.unlock_screening", "intake.export_screening"} <= perms["clinic_admin"]
    assert perms["clinician"] < perms["clinic_admin"]


@pytest.mark.django_db
def test_create_user_command_reads_password_from_environment(monkeypatch):
    from django.contrib.auth import authenticate

    monkeypatch.setenv("NEW_PW", "a-long-enough-password-42")
    call_command("create_user", "nurse1", "--role", "intake_staff", "--password-env", "NEW_PW")
    user = authenticate(username="nurse1", password="a-long-enough-password-42")
    assert user is not None
    assert not user.is_staff
    assert list(user.groups.values_list("name", flat=True)) == ["intake_staff"]


@pytest.mark.django_db
def test_create_user_gives_admin_access_to_clinicians(monkeypatch):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("NEW_PW", "a-long-enough-password-42")
    call_command("create_user", "doc", "--role", "clinician", "--password-env", "NEW_PW")
    assert get_user_model().objects.get(username="doc").is_staff


@pytest.mark.django_db
def test_seed_demo_creates_one_account_per_role(monkeypatch, capsys):
    from django.contrib.auth import get_user_model

    monkeypatch.setenv("DEMO_PASSWORD", "demo-password-123")
    call_command("seed_demo")
    call_command("seed_demo")
    users = get_user_model().objects.filter(username__startswith="demo-")
    assert users.count() == 3
    assert "already exists" in capsys.readouterr().out


@pytest.mark.django_db
def test_login_page_is_public_and_home_requires_login(client):
    assert client.get(reverse("login")).status_code == 200
    response = client.get(reverse("intake:home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
