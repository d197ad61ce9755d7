from django.urls import path
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import serializers
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.parsers import JSONParser

from labeling.api import exports, views
from labeling.api.schema import ERROR

app_name = "api"


class TokenApi(ObtainAuthToken):
    """POST {username, password} → {token}."""

    parser_classes = [JSONParser]

    @extend_schema(
        responses={
            200: inline_serializer("Token", {"token": serializers.CharField()}),
            400: OpenApiResponse(response=ERROR, description="Bad credentials."),
        }
    )
    def post(self, request, *args, **kwargs):
        return super().post(request, *args, **kwargs)


urlpatterns = [
    path("auth/token/", TokenApi.as_view(), name="auth-token"),
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
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api:schema"), name="docs"),
]
