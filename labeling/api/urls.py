from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from labeling.api import account as account_api
from labeling.api import loop as loop_api
from labeling.api import media, release
from labeling.api import results as results_api
from labeling.api import segments as segments_api
from labeling.api import suggestions as suggestions_api

app_name = "api"

urlpatterns = [
    path("auth/token/", account_api.TokenApi.as_view(), name="auth-token"),
    path("auth/token/rotate/", account_api.TokenRotateApi.as_view(), name="auth-token-rotate"),
    path("me/", account_api.MeApi.as_view(), name="me"),
    path("tasks/next/", loop_api.TaskNextApi.as_view(), name="task-next"),
    path(
        "assignments/<int:assignment_id>/submit/",
        loop_api.AssignmentSubmitApi.as_view(),
        name="assignment-submit",
    ),
    path(
        "assignments/<int:assignment_id>/shown/",
        loop_api.AssignmentShownApi.as_view(),
        name="assignment-shown",
    ),
    path(
        "assignments/<int:assignment_id>/release/",
        loop_api.AssignmentReleaseApi.as_view(),
        name="assignment-release",
    ),
    path(
        "assignments/<int:assignment_id>/report/",
        loop_api.AssignmentReportApi.as_view(),
        name="assignment-report",
    ),
    path(
        "campaigns/<int:campaign_id>/agreement/",
        results_api.CampaignAgreementApi.as_view(),
        name="campaign-agreement",
    ),
    path(
        "campaigns/<int:campaign_id>/clips/",
        release.CampaignClipsApi.as_view(),
        name="campaign-clips",
    ),
    path(
        "campaigns/<int:campaign_id>/export/",
        release.CampaignExportApi.as_view(),
        name="campaign-export",
    ),
    path(
        "campaigns/<int:campaign_id>/annotations/export/",
        release.CampaignAnnotationsExportApi.as_view(),
        name="campaign-annotations-export",
    ),
    # The media pipeline (labeling/api/media.py).
    path(
        "campaigns/<int:campaign_id>/movies/",
        media.CampaignMoviesApi.as_view(),
        name="campaign-movies",
    ),
    path("movies/<int:movie_id>/", media.MovieDetailApi.as_view(), name="movie-detail"),
    path(
        "movies/<int:movie_id>/clips/",
        media.MovieClipsProposeApi.as_view(),
        name="movie-clips",
    ),
    path("clips/<int:clip_id>/", media.ClipDetailApi.as_view(), name="clip-detail"),
    path("clips/<int:clip_id>/faces/", media.ClipFacesApi.as_view(), name="clip-faces"),
    # A model's suggestions of rare-emotion segments (labeling/api/suggestions.py).
    path(
        "movies/<int:movie_id>/suggestions/",
        suggestions_api.MovieSuggestionsApi.as_view(),
        name="movie-suggestions",
    ),
    path(
        "suggestions/<int:suggestion_id>/accept/",
        suggestions_api.SuggestionAcceptApi.as_view(),
        name="suggestion-accept",
    ),
    path(
        "suggestions/<int:suggestion_id>/dismiss/",
        suggestions_api.SuggestionDismissApi.as_view(),
        name="suggestion-dismiss",
    ),
    path(
        "suggestions/stats/", suggestions_api.SuggestionStatsApi.as_view(), name="suggestion-stats"
    ),
    path(
        "suggestions/campaigns/",
        suggestions_api.SuggestionCampaignsApi.as_view(),
        name="suggestion-campaigns",
    ),
    path(
        "clips/<int:clip_id>/withdraw/",
        segments_api.ClipWithdrawApi.as_view(),
        name="clip-withdraw",
    ),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script (CSP).
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema"), name="docs"),
]
