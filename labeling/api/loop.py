"""REST API of the labelling loop: next, submit, shown, release, report."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import MethodNotAllowed
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.schema import errors
from labeling.loop import selectors, services
from labeling.models import ClipReport


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

    # Serializes a `services.Lease`: the assignment and the campaign's minimum viewing time.
    # (A docstring here would become the schema component's description.)
    @extend_schema_serializer(component_name="TaskNext")
    class OutputSerializer(serializers.Serializer):
        assignment = serializers.IntegerField(source="assignment.pk")
        campaign = serializers.IntegerField(source="assignment.clip.campaign_id")
        clip = serializers.SerializerMethodField()
        labels = serializers.SerializerMethodField()
        expires_at = serializers.DateTimeField(source="assignment.expires_at")
        min_view_seconds = serializers.FloatField(
            help_text="A label is accepted once the clip has been shown this long.",
        )
        progress = serializers.SerializerMethodField()

        def get_clip(self, lease: services.Lease) -> dict:
            clip = lease.assignment.clip
            request = self.context["request"]
            return {
                "id": clip.pk,
                "number": clip.number,
                "video_url": request.build_absolute_uri(clip.video.url) if clip.video else None,
                "poster_url": request.build_absolute_uri(clip.poster.url) if clip.poster else None,
                "duration": round(clip.duration_s, 3),
            }

        def get_labels(self, lease: services.Lease) -> list[dict]:
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
        def get_progress(self, lease: services.Lease) -> dict:
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
        lease = services.lease_next(
            user=request.user,
            campaign_id=data.validated_data.get("campaign"),
            skip=data.validated_data.get("skip", []),
        )
        if lease is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        campaign_id = lease.assignment.clip.campaign_id
        labels, submitted = selectors.labels_and_submitted_count(
            user=request.user, campaign_id=campaign_id
        )
        clips = selectors.campaign_pool_size(campaign_id=campaign_id)
        context = {"request": request, "labels": labels, "submitted": submitted, "clips": clips}
        return Response(self.OutputSerializer(lease, context=context).data)

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
