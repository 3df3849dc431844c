from django.contrib import admin
from django.urls import include, path

from intake import security

urlpatterns = [
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("session/keepalive/", security.keepalive, name="session_keepalive"),
    path("", include("intake.app_urls")),
]
