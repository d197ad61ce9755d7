from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from labeling.api import exports, movies, views

app_name = "api"

urlpatterns = [
    path("auth/token/", views.TokenApi.as_view(), name="auth-token"),
    path("auth/token/rotate/", views.TokenRotateApi.as_view(), name="auth-token-rotate"),
    path("me/", views.MeApi.as_view(), name="me"),
    path("tasks/next/", views.TaskNextApi.as_view(), name="task-next"),
    path(
        "assignments/<int:assignment_id>/submit/",
        views.AssignmentSubmitApi.as_view(),
        name="assignment-submit",
    ),
    path(
        "assignments/<int:assignment_id>/shown/",
        views.AssignmentShownApi.as_view(),
        name="assignment-shown",
    ),
    path(
        "assignments/<int:assignment_id>/release/",
        views.AssignmentReleaseApi.as_view(),
        name="assignment-release",
    ),
    path(
        "assignments/<int:assignment_id>/report/",
        views.AssignmentReportApi.as_view(),
        name="assignment-report",
    ),
    path(
        "campaigns/<int:campaign_id>/agreement/",
        views.CampaignAgreementApi.as_view(),
        name="campaign-agreement",
    ),
    path(
        "campaigns/<int:campaign_id>/clips/",
        exports.CampaignClipsApi.as_view(),
        name="campaign-clips",
    ),
    path(
        "campaigns/<int:campaign_id>/export/",
        exports.CampaignExportApi.as_view(),
        name="campaign-export",
    ),
    path(
        "campaigns/<int:campaign_id>/annotations/export/",
        exports.CampaignAnnotationsExportApi.as_view(),
        name="campaign-annotations-export",
    ),
    # The media pipeline (labeling/api/movies.py).
    path(
        "campaigns/<int:campaign_id>/movies/",
        movies.CampaignMoviesApi.as_view(),
        name="campaign-movies",
    ),
    path("movies/<int:movie_id>/", movies.MovieDetailApi.as_view(), name="movie-detail"),
    path(
        "movies/<int:movie_id>/clips/",
        movies.MovieClipsProposeApi.as_view(),
        name="movie-clips",
    ),
    path("clips/<int:clip_id>/", movies.ClipDetailApi.as_view(), name="clip-detail"),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
