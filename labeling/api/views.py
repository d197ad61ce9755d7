"""REST API v1. Each view: validate input → one service or selector → shape output → respond."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import exceptions, permissions, serializers, status, throttling
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import agreement, rewards, selectors, services
from labeling.api import auth
from labeling.api.errors import JSONParser
from labeling.api.schema import ERROR, errors
from labeling.errors import NotFound
from labeling.models import Annotation, Assignment, Campaign, ClipReport


class TaskNextApi(APIView):
    """The next clip for the calling annotator: a lease on one of its ten slots.

    Leasing changes data, so it is a POST; a GET changes nothing and answers 405 saying so
    (prefetchers, crawlers and link previews must not take slots).
    """

    @extend_schema_serializer(component_name="TaskNextIn")
    class InputSerializer(serializers.Serializer):
        campaign = serializers.IntegerField(required=False, min_value=1)
        skip = serializers.ListField(
            child=serializers.IntegerField(min_value=1),
            required=False,
            max_length=100,
            help_text="Your own live leases not to return again (the page's prefetched clip).",
        )

    @extend_schema_serializer(component_name="TaskNext")
    class OutputSerializer(serializers.Serializer):
        assignment = serializers.IntegerField(source="pk")
        campaign = serializers.IntegerField(source="clip.campaign_id")
        clip = serializers.SerializerMethodField()
        labels = serializers.SerializerMethodField()
        expires_at = serializers.DateTimeField()
        min_view_seconds = serializers.FloatField(
            source="clip.min_view_seconds",
            help_text="A label is accepted once the clip has been shown this long.",
        )
        progress = serializers.SerializerMethodField()

        def get_clip(self, assignment: Assignment) -> dict:
            clip = assignment.clip
            request = self.context["request"]
            return {
                "id": clip.pk,
                "number": clip.number,
                "video_url": request.build_absolute_uri(clip.video.url) if clip.video else None,
                "poster_url": request.build_absolute_uri(clip.poster.url) if clip.poster else None,
                "duration": round(clip.duration_s, 3),
            }

        def get_labels(self, assignment: Assignment) -> list[dict]:
            return [
                {"code": label.code, "name": label.name, "display_name": label.display_name}
                for label in self.context["labels"]
            ]

        @extend_schema_field(
            inline_serializer(
                "TaskProgress",
                {
                    "submitted": serializers.IntegerField(help_text="Your labels here."),
                    "clips": serializers.IntegerField(help_text="Clips in the pool (≤1 min old)."),
                },
            )
        )
        def get_progress(self, assignment: Assignment) -> dict:
            return {"submitted": self.context["submitted"], "clips": self.context["clips"]}

    @extend_schema(
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="Nothing left for you."),
            **errors(400, 404, 429),
        },
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assignment = services.assignment_next(
            user=request.user,
            campaign_id=data.validated_data.get("campaign"),
            skip=data.validated_data.get("skip", []),
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        labels, submitted = selectors.labels_and_submitted_count(
            user=request.user, campaign_id=assignment.clip.campaign_id
        )
        clips = selectors.campaign_pool_size(campaign_id=assignment.clip.campaign_id)
        context = {"request": request, "labels": labels, "submitted": submitted, "clips": clips}
        return Response(self.OutputSerializer(assignment, context=context).data)

    def http_method_not_allowed(self, request, *args, **kwargs):
        raise MethodNotAllowed(
            request.method,
            detail="Leasing a clip changes data, so it is a POST: POST /api/v1/tasks/next/ "
            '{"campaign": <id>, "skip": [<assignment ids>]}.',
        )


class AssignmentSubmitApi(APIView):
    @extend_schema_serializer(component_name="SubmitIn")
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=40)

    @extend_schema_serializer(component_name="Annotation")
    class OutputSerializer(serializers.Serializer):
        annotation = serializers.IntegerField(source="pk")
        assignment = serializers.IntegerField(source="assignment_id")
        clip = serializers.IntegerField(source="clip_id")
        label = serializers.CharField(source="label.name")
        submitted_at = serializers.DateTimeField(source="created_at")

    @extend_schema(
        request=InputSerializer,
        responses={201: OutputSerializer, 200: OutputSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, assignment_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.annotation_submit(
            user=request.user, assignment_id=assignment_id, label_name=data.validated_data["label"]
        )
        return Response(
            self.OutputSerializer(result.annotation).data,
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
            headers={"Location": reverse("api:assignment-submit", args=[assignment_id])},
        )


class AssignmentShownApi(APIView):
    """The page shows this leased clip now: its lease runs from now (a prefetched clip never
    arrives already expired)."""

    @extend_schema(
        request=None,
        responses={
            200: inline_serializer(
                "Shown",
                {
                    "assignment": serializers.IntegerField(),
                    "expires_at": serializers.DateTimeField(),
                },
            ),
            **errors(404, 409),
        },
    )
    def post(self, request, assignment_id: int):
        assignment = services.assignment_show(user=request.user, assignment_id=assignment_id)
        return Response({"assignment": assignment.pk, "expires_at": assignment.expires_at})


class AssignmentReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None, **errors(404, 409)})
    def post(self, request, assignment_id: int):
        services.assignment_release(user=request.user, assignment_id=assignment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssignmentReportApi(APIView):
    """ "Problem with this clip": no face, broken video, or none of the emotions."""

    @extend_schema_serializer(component_name="ReportIn")
    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ClipReport.Kind.choices)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={
            201: inline_serializer("ReportOut", {"report": serializers.IntegerField()}),
            **errors(400, 404, 409),
        },
    )
    def post(self, request, assignment_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.clip_report_problem(
            user=request.user, assignment_id=assignment_id, **data.validated_data
        )
        return Response({"report": report.pk}, status=status.HTTP_201_CREATED)


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


_TOKEN_OUT = inline_serializer(
    "Token",
    {"token": serializers.CharField(), "expires_at": serializers.DateTimeField()},
)
_TOO_MANY = OpenApiResponse(
    response=ERROR,
    description="Too many attempts, or locked out after failed logins; Retry-After says when "
    "to try again.",
)


def _token_answer(token) -> Response:
    return Response({"token": token.key, "expires_at": token.created + settings.API_TOKEN_TTL})


class TokenApi(ObtainAuthToken):
    """POST {username, password} → {token, expires_at}."""

    parser_classes = [JSONParser]
    throttle_classes = [throttling.ScopedRateThrottle, auth.UsernameRateThrottle]
    throttle_scope = "auth-token"

    @extend_schema(
        responses={
            200: _TOKEN_OUT,
            400: OpenApiResponse(response=ERROR, description="Bad credentials."),
            429: _TOO_MANY,
        }
    )
    def post(self, request, *args, **kwargs):
        data = self.get_serializer(data=request.data)
        if not data.is_valid():
            # axes flags the request it refused (too many failures for this user or address).
            if getattr(request, "axes_locked_out", False):
                wait = auth.cool_off_seconds(request)
                raise exceptions.Throttled(wait=wait, detail=auth.lockout_message(wait))
            raise exceptions.ValidationError(data.errors)
        return _token_answer(auth.token_issue(data.validated_data["user"]))


class TokenRotateApi(APIView):
    """A new token for the caller; the one used until now stops working."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses={200: _TOKEN_OUT, **errors()})
    def post(self, request):
        return _token_answer(auth.token_rotate(request.user))


class MeApi(APIView):
    """Who you are, how many of your labels stand, and what you have earned (amounts are
    decimal strings in the ledger's currency; only ever your own)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema_serializer(component_name="Me")
    class OutputSerializer(serializers.Serializer):
        username = serializers.CharField()
        annotations = serializers.IntegerField(
            help_text="Your labels that stand (not invalidated)."
        )
        earnings = inline_serializer(
            "Earnings",
            {
                "currency": serializers.CharField(help_text="ISO 4217 code, e.g. CNY."),
                **{
                    name: serializers.CharField(help_text=text)
                    for name, text in (
                        ("today", "Earned today (local day), net of reversals."),
                        ("total", "Earned in all, net of reversals: pending + paid + held."),
                        ("pending", "Not paid yet."),
                        ("paid", "Paid out."),
                        ("held", "Not paid yet and held by staff pending review."),
                    )
                },
            },
        )

    @extend_schema(responses={200: OutputSerializer, **errors()})
    def get(self, request):
        user = request.user
        return Response(
            {
                "username": user.get_username(),
                "annotations": Annotation.objects.valid().filter(annotator=user).count(),
                "earnings": rewards.earnings_of(user).as_json(),
            }
        )
