from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path, re_path

from labeling.media import serve

urlpatterns = [
    path("", include("labeling.urls")),
    path("api/v1/", include("labeling.api.urls")),
    path("", include("ml.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    # Always routed through the access check, in production too (nginx then sends the bytes
    # via X-Accel-Redirect): a front server must never serve /media/ directly.
    re_path(rf"^{settings.MEDIA_URL.lstrip('/')}(?P<path>.+)$", serve.media, name="media"),
]

# Under /api/ every error is JSON, including those raised before a view runs.
handler400 = "annotation_site.errors.bad_request"
handler403 = "annotation_site.errors.permission_denied"
handler404 = "annotation_site.errors.not_found"
handler500 = "annotation_site.errors.server_error"
