from django.contrib import admin
from django.urls import include, path

from intake import accounts, security, views

urlpatterns = [
    # No self-service password reset: it would be a public form that sends mail;
    # a clinic admin resets passwords (admin or the create_user command).
    path("accounts/login/", accounts.LoginView.as_view(), name="login"),
    path("accounts/logout/", accounts.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password_change/",
        accounts.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password_change/done/",
        accounts.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("admin/", admin.site.urls),
    path("session/keepalive/", security.keepalive, name="session_keepalive"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("intake.app_urls")),
]
