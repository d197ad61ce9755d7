"""REST API v1. Each view: validate input → one service or selector → shape output → respond."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import selectors, services
from labeling.models import Assignment, ClipReport


class _CommaIntegers(serializers.CharField):
    def to_internal_value(self, data):
        text = super().to_internal_value(data)
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise serializers.ValidationError("Expected comma-separated assignment ids.") from None


class TaskNextApi(APIView):
    """The next clip for the calling annotator: a lease on one of its ten slots."""

    class FilterSerializer(serializers.Serializer):
        campaign = serializers.IntegerField(required=False, min_value=1)
        skip = _CommaIntegers(required=False, allow_blank=True)

    class OutputSerializer(serializers.Serializer):
        assignment = serializers.IntegerField(source="pk")
        campaign = serializers.IntegerField(source="clip.campaign_id")
        clip = serializers.SerializerMethodField()
        labels = serializers.SerializerMethodField()
        expires_at = serializers.DateTimeField()
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

        def get_progress(self, assignment: Assignment) -> dict:
            return {"submitted": self.context["submitted"]}

    @extend_schema(
        parameters=[FilterSerializer],
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="Nothing left for you."),
        },
    )
    def get(self, request):
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        assignment = services.assignment_next(
            user=request.user,
            campaign_id=filters.validated_data.get("campaign"),
            skip=filters.validated_data.get("skip", []),
        )
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        labels, submitted = selectors.labels_and_submitted_count(
            user=request.user, campaign_id=assignment.clip.campaign_id
        )
        context = {"request": request, "labels": labels, "submitted": submitted}
        return Response(self.OutputSerializer(assignment, context=context).data)


class AssignmentSubmitApi(APIView):
    class InputSerializer(serializers.Serializer):
        label = serializers.CharField(max_length=40)

    class OutputSerializer(serializers.Serializer):
        annotation = serializers.IntegerField(source="pk")
        assignment = serializers.IntegerField(source="assignment_id")
        clip = serializers.IntegerField(source="clip_id")
        label = serializers.CharField(source="label.name")
        submitted_at = serializers.DateTimeField(source="created_at")

    @extend_schema(
        request=InputSerializer, responses={201: OutputSerializer, 200: OutputSerializer}
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


class AssignmentReleaseApi(APIView):
    @extend_schema(request=None, responses={204: None})
    def post(self, request, assignment_id: int):
        services.assignment_release(user=request.user, assignment_id=assignment_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AssignmentReportApi(APIView):
    """ "Problem with this clip": no face, broken video, or none of the emotions."""

    class InputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=ClipReport.Kind.choices)
        note = serializers.CharField(required=False, allow_blank=True, max_length=2000)

    @extend_schema(
        request=InputSerializer,
        responses={201: inline_serializer("ReportOut", {"report": serializers.IntegerField()})},
    )
    def post(self, request, assignment_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        report = services.clip_report_problem(
            user=request.user, assignment_id=assignment_id, **data.validated_data
        )
        return Response({"report": report.pk}, status=status.HTTP_201_CREATED)
