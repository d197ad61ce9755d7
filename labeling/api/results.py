"""REST API of results: a campaign's agreement report."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import (
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.errors import NotFound
from labeling.api.schema import errors
from labeling.loop import selectors
from labeling.models import Campaign
from labeling.results import agreement


class _StaffOnly(permissions.BasePermission):
    """Staff only: annotators and other roles get 403, anonymous callers 401."""

    message = "Only staff can read a campaign's agreement report."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_staff)


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        raise NotFound(f"Campaign {campaign_id} not found.")
    return campaign


class CampaignAgreementApi(APIView):
    """The campaign's agreement report: the latest finished one, or computed now if none.

    GET reads only (a report computed now is not stored); POST queues a new report, which a
    worker computes and adds to the history.
    """

    permission_classes = [permissions.IsAuthenticated, _StaffOnly]

    @extend_schema_serializer(component_name="CampaignAgreement")
    class ReportOut(serializers.Serializer):
        report = serializers.IntegerField(allow_null=True)
        status = serializers.CharField()
        computed_at = serializers.DateTimeField(allow_null=True)
        result = serializers.DictField()

    @extend_schema_serializer(component_name="AgreementQueued")
    class QueuedOut(serializers.Serializer):
        report = serializers.IntegerField()
        status = serializers.CharField()
        url = serializers.CharField()

    @extend_schema(
        responses={
            200: ReportOut,
            **errors(404),
        }
    )
    def get(self, request, campaign_id: int):
        campaign = _campaign_or_404(campaign_id)
        latest = selectors.agreement_report_latest(campaign=campaign)
        if latest is not None:
            data = {
                "report": latest.pk,
                "status": latest.status,
                "computed_at": latest.finished_at,
                "result": latest.result,
            }
        else:
            data = {
                "report": None,
                "status": "computed-now",
                "computed_at": timezone.now(),
                "result": agreement.campaign_agreement(campaign),
            }
        return Response(self.ReportOut(data).data)

    @extend_schema(
        request=None,
        responses={
            202: QueuedOut,
            **errors(404),
        },
    )
    def post(self, request, campaign_id: int):
        campaign = _campaign_or_404(campaign_id)
        report = agreement.agreement_report_request(campaign=campaign, user=request.user)
        return Response(
            {
                "report": report.pk,
                "status": report.status,
                "url": request.build_absolute_uri(
                    reverse("campaign-agreement-report", args=[campaign.pk, report.pk])
                ),
            },
            status=status.HTTP_202_ACCEPTED,
        )
