"""Settings for the ketamine-therapy intake screening app.

Every value that differs between machines is read from the environment
through ``env()``, each with an explicit default. Production (debug off)
refuses to start without ``DJANGO_SECRET_KEY``.
"""

import datetime as dt
import os
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env(name, default, cast=str):
    """Return environment variable ``name`` cast to ``cast``, or ``default`` when unset."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    if cast is bool:
        value = raw.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}.")
    if cast is list:
        return [item.strip() for item in raw.split(",") if item.strip()]
    try:
        return cast(raw)
    except (TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"{name} has an invalid value {raw!r}.") from exc


DEBUG = env("DJANGO_DEBUG", False, bool)

SECRET_KEY = env("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off (production)."
        )
    SECRET_KEY = "insecure-development-key-only-used-with-debug-on"

ALLOWED_HOSTS = env("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [], list)
CSRF_TRUSTED_ORIGINS = env("DJANGO_CSRF_TRUSTED_ORIGINS", [], list)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "formtools",
    "crispy_forms",
    "crispy_bootstrap5",
    "bootstrap",
    "intake.apps.IntakeConfig",
    "intake.apps.SignInLockoutsConfig",  # django-axes
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the request's data (the CSRF check, the session's views).
    "intake.security.NulFreeInputMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # No page with patient data stays in a browser's or proxy's cache.
    "intake.security.NoStoreMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    # Inside the CSP middleware, so the page it draws has the policy too.
    "intake.security.MethodNotAllowedPageMiddleware",
    # Last, so it can turn a lockout signalled by the backend into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "intake.urls"
WSGI_APPLICATION = "intake.wsgi.application"
ASGI_APPLICATION = "intake.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "intake.context_processors.clinic",
                "intake.security.idle_timeout",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Keep a worker's connection between requests (checked before reuse):
        # opening one per request costs each page a connect and its setup.
        conn_max_age=env("DJANGO_CONN_MAX_AGE", 60, int),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# SQLite (the local run): write-ahead log, and by default synchronous=NORMAL,
# SQLite's advice for WAL: never corrupts, and a commit survives the app or
# server process crashing, but one made in the last moment before a power cut
# or OS crash may roll back. Its fsync on every commit was a quarter of a
# wizard step's time. FULL keeps that last moment too; PostgreSQL (production)
# is not affected by this setting.
SQLITE_SYNCHRONOUS = env("DJANGO_SQLITE_SYNCHRONOUS", "NORMAL").upper()
if SQLITE_SYNCHRONOUS not in {"NORMAL", "FULL", "EXTRA"}:
    raise ImproperlyConfigured(
        f"DJANGO_SQLITE_SYNCHRONOUS must be NORMAL, FULL or EXTRA, got {SQLITE_SYNCHRONOUS!r}."
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={SQLITE_SYNCHRONOUS};",
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

AUTHENTICATION_BACKENDS = [
    "intake.security.LockoutBackend",
    "intake.security.RoleBackend",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "intake:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("DJANGO_TIME_ZONE", "America/New_York")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves hashed, compressed files through WhiteNoise (run collectstatic first).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
CSRF_FAILURE_VIEW = "intake.security.csrf_failure"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

# Idle timeout: the session ends after this many minutes without a request
# (sliding expiry) and when the browser closes; idle.js warns before the end.
IDLE_TIMEOUT_MINUTES = env("IDLE_TIMEOUT_MINUTES", 15, int)
IDLE_WARNING_SECONDS = env("IDLE_WARNING_SECONDS", 120, int)
SESSION_COOKIE_AGE = IDLE_TIMEOUT_MINUTES * 60
SESSION_SAVE_EVERY_REQUEST = True
# Database sessions; the refresh on every request is one UPDATE (intake/sessions.py).
SESSION_ENGINE = "intake.sessions"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# HTTPS only in production; DJANGO_DEBUG=1 runs over plain http.
SECURE_SSL_REDIRECT = env("DJANGO_SECURE_SSL_REDIRECT", not DEBUG, bool)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env("DJANGO_SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000, int)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True, bool)
# Preloading commits the whole parent domain to HTTPS in browsers for months and
# is the domain owner's decision, so it is opt-in and its deploy check is silenced.
SECURE_HSTS_PRELOAD = env("DJANGO_SECURE_HSTS_PRELOAD", False, bool)
SILENCED_SYSTEM_CHECKS = ["security.W021"]
# Trust X-Forwarded-Proto only behind a proxy that always sets it.
if env("DJANGO_SECURE_PROXY_SSL_HEADER", False, bool):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Everything from our own origin; no inline script or style anywhere.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
        "object-src": [NONE],
    },
}

# Sign-in lockout (django-axes): per username and client address together.
AXES_FAILURE_LIMIT = env("AXES_FAILURE_LIMIT", 5, int)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env("AXES_COOLOFF_MINUTES", 15, int))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The cool-off runs from the lockout; tries during it do not restart the clock.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_LOCKOUT_CALLABLE = "intake.security.lockout_response"
# Attempts are kept under the account's username, never under text that names no account.
AXES_USERNAME_CALLABLE = "intake.security.lockout_username"
# axes' database handler, also auditing the lockouts it clears once their cool-off ended.
AXES_HANDLER = "intake.security.LockoutHandler"
# Non-verbose: axes' log lines name only the (masked) lockout parameters and the path.
AXES_VERBOSE = False

# Clinic configuration shown on screens and on the PDF.
CLINIC_NAME = env("CLINIC_NAME", "Ketamine Therapy Clinic")
# The clinic's own protocol text, shown under SUI-01's message (which says to
# start it). No default: text of the app's own shown as the clinic's protocol
# would present the app as the protocol. Unset, the banner says it is not entered
# and the deploy check warns (intake.W001).
SUICIDE_SAFETY_PROTOCOL = env("CLINIC_SUICIDE_SAFETY_PROTOCOL", "").strip()
PDF_PAGE_SIZE = env("PDF_PAGE_SIZE", "Letter")
DRAFT_MAX_AGE_DAYS = env("DRAFT_MAX_AGE_DAYS", 30, int)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_client_error_tracebacks": {"()": "intake.logfilters.NoTracebackForClientErrors"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "filters": ["no_client_error_tracebacks"],
        }
    },
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", "WARNING")},
}
