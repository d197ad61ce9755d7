"""REST API of a model's suggestions (issue 24): what an ML backend posts, what the marking page
shows, accepts and dismisses, and the counts per run. Staff and extractors of the movie's
campaign only (``labeling.media.suggestions``); never annotators or reviewers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_serializer
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling import access
from labeling.api.media import ClipOut
from labeling.api.schema import errors
from labeling.media import suggestions
from labeling.models import Suggestion


class _Extractor(permissions.BasePermission):
    message = "Only extractors and staff see and decide a model's suggestions."

    def has_permission(self, request, view) -> bool:
        return access.can_extract(request.user)


_PERMISSIONS = [permissions.IsAuthenticated, _Extractor]


@extend_schema_serializer(component_name="Suggestion")
class SuggestionOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    movie = serializers.IntegerField(source="movie_id")
    run = serializers.CharField()
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()
    emotion = serializers.CharField(source="emotion.name", help_text="The suggested emotion.")
    rare_score = serializers.FloatField(
        help_text="The campaign's rare labels' probabilities summed: the rank (highest first)."
    )
    probabilities = serializers.DictField(
        child=serializers.FloatField(), help_text="The model's probability per label name."
    )
    status = serializers.ChoiceField(choices=Suggestion.Status.choices)
    decided_by = serializers.CharField(source="decided_by.username", default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    clip = serializers.IntegerField(
        source="clip_id", allow_null=True, help_text="The clip an accepted suggestion became."
    )
    created_at = serializers.DateTimeField()


@extend_schema_serializer(component_name="SuggestedSegmentIn")
class SuggestedSegmentIn(serializers.Serializer):
    start_s = serializers.FloatField(min_value=0)
    end_s = serializers.FloatField(min_value=0)
    probabilities = serializers.DictField(
        child=serializers.FloatField(min_value=0, max_value=1),
        allow_empty=False,
        help_text="Probability per label name of the campaign; they sum to 1.",
    )
    emotion = serializers.CharField(
        max_length=40,
        required=False,
        allow_blank=True,
        help_text="The suggested emotion; default the most probable rare label.",
    )


class MovieSuggestionsApi(APIView):
    """GET: a movie's suggestions, highest rare-class score first (``run`` and ``status``
    filter). POST ``{run, segments: [{start_s, end_s, probabilities, emotion?}]}``: store a
    run's suggestions, all or nothing; a span the run has posted before is kept as it was
    (201 when any is new, 200 when none is)."""

    permission_classes = _PERMISSIONS

    @extend_schema_serializer(component_name="SuggestionsIn")
    class InputSerializer(serializers.Serializer):
        run = serializers.CharField(max_length=100)
        segments = SuggestedSegmentIn(many=True, min_length=1, max_length=suggestions.MAX_SEGMENTS)

    class FilterSerializer(serializers.Serializer):
        run = serializers.CharField(max_length=100, required=False)
        status = serializers.ChoiceField(choices=Suggestion.Status.choices, required=False)

    @extend_schema_serializer(component_name="SuggestionsAdded")
    class AddedSerializer(serializers.Serializer):
        created = serializers.IntegerField(help_text="How many of the spans were new.")
        suggestions = SuggestionOut(many=True)

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: SuggestionOut(many=True), **errors(400, 404)},
    )
    def get(self, request, movie_id: int):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = suggestions.suggestions_of_movie(
            user=request.user, movie_id=movie_id, **query.validated_data
        )
        return Response(SuggestionOut(rows, many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: AddedSerializer, 200: AddedSerializer, **errors(400, 404, 409)},
    )
    def post(self, request, movie_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        added = suggestions.suggestions_add(
            user=request.user,
            movie_id=movie_id,
            run=data.validated_data["run"],
            segments=[
                suggestions.SuggestedSegment(
                    s["start_s"], s["end_s"], s["probabilities"], s.get("emotion") or ""
                )
                for s in data.validated_data["segments"]
            ],
        )
        body = {
            "created": added.created,
            "suggestions": SuggestionOut(added.suggestions, many=True).data,
        }
        return Response(body, status=status.HTTP_201_CREATED if added.created else 200)


class SuggestionAcceptApi(APIView):
    """Accepts an open suggestion: it becomes a proposed clip (extraction queued) with the
    model's emotion as the suspected label. 409 when it is already decided."""

    permission_classes = _PERMISSIONS

    @extend_schema_serializer(component_name="SuggestionAccepted")
    class OutputSerializer(serializers.Serializer):
        suggestion = SuggestionOut()
        clip = ClipOut()

    @extend_schema(request=None, responses={201: OutputSerializer, **errors(400, 404, 409)})
    def post(self, request, suggestion_id: int):
        suggestion = suggestions.suggestion_accept(user=request.user, suggestion_id=suggestion_id)
        body = {
            "suggestion": SuggestionOut(suggestion).data,
            "clip": ClipOut(suggestion.clip, context={"request": request}).data,
        }
        return Response(body, status=status.HTTP_201_CREATED)


class SuggestionDismissApi(APIView):
    """Dismisses an open suggestion. 409 when it is already decided."""

    permission_classes = _PERMISSIONS

    @extend_schema(request=None, responses={200: SuggestionOut, **errors(404, 409)})
    def post(self, request, suggestion_id: int):
        suggestion = suggestions.suggestion_dismiss(user=request.user, suggestion_id=suggestion_id)
        return Response(SuggestionOut(suggestion).data)


@extend_schema_serializer(component_name="SuggestionRunStats")
class RunStatsOut(serializers.Serializer):
    run = serializers.CharField()
    suggested = serializers.IntegerField()
    accepted = serializers.IntegerField()
    dismissed = serializers.IntegerField()
    ignored = serializers.IntegerField(help_text="Still open: neither accepted nor dismissed.")
    judged = serializers.IntegerField(
        help_text="Accepted, and the clip has its final result (or was rejected at screening)."
    )
    hits = serializers.IntegerField(help_text="Judged, with the suggested emotion as single label.")
    precision = serializers.FloatField(
        allow_null=True, help_text="hits / judged; null before any accepted clip is judged."
    )


class SuggestionStatsApi(APIView):
    """Per run: suggestions made, accepted, dismissed and ignored, and the precision of the
    accepted ones once their clips have their final labels, over the movies you see."""

    permission_classes = _PERMISSIONS

    class FilterSerializer(serializers.Serializer):
        run = serializers.CharField(max_length=100, required=False)
        campaign = serializers.IntegerField(min_value=1, required=False)

    @extend_schema(
        parameters=[
            OpenApiParameter("run", str, description="One run only."),
            OpenApiParameter("campaign", int, description="One campaign only."),
        ],
        responses={200: RunStatsOut(many=True), **errors(400)},
    )
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = suggestions.suggestion_stats(
            user=request.user,
            run=query.validated_data.get("run"),
            campaign_id=query.validated_data.get("campaign"),
        )
        return Response(RunStatsOut(rows, many=True).data)


@extend_schema_serializer(component_name="SuggestionLabel")
class LabelOut(serializers.Serializer):
    code = serializers.IntegerField()
    name = serializers.CharField()
    is_rare = serializers.BooleanField()


@extend_schema_serializer(component_name="SuggestionCampaign")
class CampaignOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    slug = serializers.CharField()
    name = serializers.CharField()
    clip_min_seconds = serializers.FloatField()
    clip_max_seconds = serializers.FloatField()
    clips_per_movie = serializers.IntegerField()
    labels = LabelOut(many=True, source="labels.all")


class SuggestionCampaignsApi(APIView):
    """The campaigns whose movies you may score and post suggestions for (``slug`` picks
    one): their clip length bounds and labels, rare ones marked. Their movies are listed by
    ``GET /api/v1/campaigns/<id>/movies/``."""

    permission_classes = _PERMISSIONS

    class FilterSerializer(serializers.Serializer):
        slug = serializers.SlugField(max_length=100, required=False)

    @extend_schema(
        parameters=[FilterSerializer], responses={200: CampaignOut(many=True), **errors(400)}
    )
    def get(self, request):
        query = self.FilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        rows = access.campaigns_for_extractor(request.user).prefetch_related("labels")
        if slug := query.validated_data.get("slug"):
            rows = rows.filter(slug=slug)
        return Response(CampaignOut(rows.order_by("slug"), many=True).data)
