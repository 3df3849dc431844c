"""Test settings: production settings plus only what tests need."""

import os
import tempfile

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-secret-key-not-for-production")

from intake.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

# Tests run over plain http without collectstatic.
SECURE_SSL_REDIRECT = False
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_AUTOREFRESH = True
# A clinic's protocol text, as a deployment sets it (tests of the unset case override it).
SUICIDE_SAFETY_PROTOCOL = "Stay with the patient and call the clinician on duty (test protocol)."
WHITENOISE_USE_FINDERS = True

# A file, not SQLite's shared in-memory database: its table locks ignore the busy
# timeout, so concurrent-submission tests would fail for a reason production (a file
# in WAL mode) does not have. One file per test process, removed after the run.
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    DATABASES["default"]["TEST"] = {  # noqa: F405
        "NAME": os.path.join(tempfile.gettempdir(), f"intake-test-{os.getpid()}.sqlite3")
    }
