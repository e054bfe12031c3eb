"""Top-level URL map: the CRM at the root, authentication, language switching and the Django admin."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from django.views.decorators.http import require_POST
from django.views.i18n import set_language

urlpatterns = [
    path("", include("crm.urls")),
    path("scoring/", include("scoring.urls")),
    path("prospecting/", include("prospecting.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/setlang/", login_not_required(require_POST(set_language)), name="set_language"),
    path("admin/", admin.site.urls),
]
