"""REST API of the media pipeline: upload movies, propose clips, follow their extraction."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from annotation_site.errors import NotFound
from labeling import access
from labeling.access import user_has_role
from labeling.api.schema import errors
from labeling.media import extraction, movies
from labeling.models import Campaign, Clip, Movie, Role
from pipeline import media


class _Extractor(permissions.BasePermission):
    message = "Only extractors and staff bring in movies and mark clips."

    def has_permission(self, request, view) -> bool:
        return access.can_extract(request.user)


class _SeesClips(permissions.BasePermission):
    message = "Only extractors, reviewers and staff follow clips' extraction."

    def has_permission(self, request, view) -> bool:
        return access.can_extract(request.user) or user_has_role(request.user, Role.REVIEWER)


def _get_campaign(request, campaign_id: int) -> Campaign:
    """The campaign, if it is one of the caller's (``access.campaigns_for_extractor``); 404
    otherwise, as for an unknown id."""
    return get_object_or_404(access.campaigns_for_extractor(request.user), pk=campaign_id)


def _get_movie(request, movie_id: int) -> Movie:
    """The movie, if its campaign is one of the caller's (``access.movies_visible``, the rule
    the media view follows for its file); 404 otherwise."""
    return get_object_or_404(access.movies_visible(request.user), pk=movie_id)


def _get_clip(request, clip_id: int) -> Clip:
    """The clip: any for reviewers (they screen every campaign's clips) and staff; for an
    extractor, one of their campaigns' (``access.clips_visible``, as for its media); 404
    otherwise."""
    clips = access.clips_visible(request.user).select_related("suspected_label")
    return get_object_or_404(clips, pk=clip_id)


def _url(request, field) -> str | None:
    return request.build_absolute_uri(field.url) if field else None


@extend_schema_serializer(component_name="Movie")
class MovieOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    campaign = serializers.IntegerField(source="campaign_id")
    title = serializers.CharField()
    status = serializers.CharField()
    error = serializers.CharField()
    duration_s = serializers.FloatField(allow_null=True)
    fps = serializers.FloatField(allow_null=True)
    width = serializers.IntegerField(allow_null=True)
    height = serializers.IntegerField(allow_null=True)
    codec = serializers.CharField()
    frame_rate = serializers.SerializerMethodField(
        help_text="The exact rate as a fraction, e.g. 30000/1001: frame k is at k / rate s."
    )
    video_url = serializers.SerializerMethodField()
    progress = serializers.SerializerMethodField()

    def get_frame_rate(self, movie: Movie) -> str | None:
        return str(media.frame_rate(movie.fps)) if movie.fps else None

    def get_video_url(self, movie: Movie) -> str | None:
        return _url(self.context["request"], movie.source)

    def get_progress(self, movie: Movie) -> dict:
        return movies.movie_progress(movie)


@extend_schema_serializer(component_name="ClipMedia")
class ClipOut(serializers.Serializer):
    id = serializers.IntegerField(source="pk")
    number = serializers.IntegerField()
    movie = serializers.IntegerField(source="movie_id")
    start_s = serializers.FloatField()
    end_s = serializers.FloatField()
    status = serializers.CharField()
    media_status = serializers.CharField()
    suspected_label = serializers.SerializerMethodField(
        help_text="The extractor's (or an accepted suggestion's model's) suspected emotion: "
        "shown to extractors and staff only, never to reviewers, whose verdict stays blind."
    )
    video_url = serializers.SerializerMethodField()
    poster_url = serializers.SerializerMethodField()
    n_frames = serializers.IntegerField(allow_null=True)
    face_ratio = serializers.FloatField(allow_null=True)
    few_faces = serializers.BooleanField()
    face_flags = serializers.ListField(
        child=serializers.CharField(),
        help_text="The screening's face flags: few, lost, second, small.",
    )
    face_point = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="The extractor's face point, [x, y] as shares (0..1) of the movie frame.",
    )
    duration_bucket = serializers.CharField()
    error = serializers.CharField(source="media_error")

    def get_suspected_label(self, clip: Clip) -> str | None:
        if clip.suspected_label is None or not access.can_extract(self.context["request"].user):
            return None
        return clip.suspected_label.name

    def get_video_url(self, clip: Clip) -> str | None:
        return _url(self.context["request"], clip.video)

    def get_poster_url(self, clip: Clip) -> str | None:
        return _url(self.context["request"], clip.poster)


class CampaignMoviesApi(APIView):
    """GET: the campaign's movies with their extraction progress. POST (multipart ``file``,
    optional ``title``): upload a movie, streamed to disk by Django's upload handlers; its
    probe is queued. 409 names the movie that has the same content. An extractor reaches only
    the campaigns they belong to (404 for the others), staff every one."""

    permission_classes = [permissions.IsAuthenticated, _Extractor]
    parser_classes = [MultiPartParser, FormParser]

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField()
        title = serializers.CharField(max_length=300, required=False, allow_blank=True)

    @extend_schema(responses={200: MovieOut(many=True), **errors(404)})
    def get(self, request, campaign_id: int):
        campaign = _get_campaign(request, campaign_id)
        rows = campaign.movies.order_by("-created_at", "-pk")[:200]
        return Response(MovieOut(rows, many=True, context={"request": request}).data)

    @extend_schema(request=InputSerializer, responses={201: MovieOut, **errors(400, 404, 409)})
    def post(self, request, campaign_id: int):
        campaign = _get_campaign(request, campaign_id)
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        movie = movies.movie_register(
            campaign=campaign,
            file=data.validated_data["file"],
            title=data.validated_data.get("title", ""),
            user=request.user,
        )
        return Response(
            MovieOut(movie, context={"request": request}).data, status=status.HTTP_201_CREATED
        )


class MovieDetailApi(APIView):
    """A movie, its extraction progress and its clips (the extractor page polls this)."""

    permission_classes = [permissions.IsAuthenticated, _Extractor]

    @extend_schema(responses={200: MovieOut, **errors(404)})
    def get(self, request, movie_id: int):
        movie = _get_movie(request, movie_id)
        clips = movie.clips.select_related("suspected_label").order_by("start_s", "number")
        context = {"request": request}
        return Response(
            {
                **MovieOut(movie, context=context).data,
                "clips": ClipOut(clips, many=True, context=context).data,
            }
        )


@extend_schema_serializer(component_name="SegmentIn")
class SegmentIn(serializers.Serializer):
    start_s = serializers.FloatField(min_value=0)
    end_s = serializers.FloatField(min_value=0)
    suspected_label = serializers.CharField(
        max_length=40, required=False, allow_blank=True, allow_null=True
    )
    face_point = serializers.ListField(
        child=serializers.FloatField(),
        min_length=2,
        max_length=2,
        required=False,
        allow_null=True,
        help_text=(
            "Optional: the face to follow, [x, y] as shares (0..1) of the movie frame's "
            "width and height (where the extractor clicked)."
        ),
    )


class MovieClipsProposeApi(APIView):
    """Proposes clips of a movie and queues their extraction, all or nothing."""

    permission_classes = [permissions.IsAuthenticated, _Extractor]

    @extend_schema_serializer(component_name="ProposeIn")
    class InputSerializer(serializers.Serializer):
        segments = SegmentIn(many=True, min_length=1, max_length=200)

    @extend_schema(request=InputSerializer, responses={201: ClipOut(many=True), **errors(400)})
    def post(self, request, movie_id: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        proposed = movies.clip_propose(
            user=request.user,
            movie_id=movie_id,
            segments=[
                movies.Segment(
                    s["start_s"],
                    s["end_s"],
                    s.get("suspected_label") or "",
                    tuple(s["face_point"]) if s.get("face_point") is not None else None,
                )
                for s in data.validated_data["segments"]
            ],
        )
        context = {"request": request}
        return Response(
            {
                "clips": ClipOut(proposed.clips, many=True, context=context).data,
                "warnings": proposed.warnings,
            },
            status=status.HTTP_201_CREATED,
        )


class ClipDetailApi(APIView):
    """A clip's status, media URLs, face ratio and extraction error."""

    permission_classes = [permissions.IsAuthenticated, _SeesClips]

    @extend_schema(responses={200: ClipOut, **errors(404)})
    def get(self, request, clip_id: int):
        clip = _get_clip(request, clip_id)
        return Response(ClipOut(clip, context={"request": request}).data)


@extend_schema_serializer(component_name="FaceFrame")
class FaceFrameOut(serializers.Serializer):
    frame = serializers.IntegerField(help_text="0 = the clip's first frame.")
    box = serializers.ListField(
        child=serializers.FloatField(),
        allow_null=True,
        help_text="[x, y, w, h] in the clip video's pixels; null: no face in this frame.",
    )
    score = serializers.FloatField(allow_null=True)
    landmarks = serializers.ListField(
        child=serializers.ListField(child=serializers.FloatField()),
        allow_null=True,
        help_text="Five [x, y]: eye on the picture's left, eye on its right, nose, mouth "
        "left and right corners; null where the detector gives none.",
    )
    aligned = serializers.BooleanField()


@extend_schema_serializer(component_name="ClipFaces")
class ClipFacesOut(serializers.Serializer):
    clip = serializers.IntegerField()
    number = serializers.IntegerField()
    face_ratio = serializers.FloatField(allow_null=True)
    face_flags = serializers.ListField(child=serializers.CharField())
    no_face_frames = serializers.IntegerField()
    frames = FaceFrameOut(many=True)


class ClipFacesApi(APIView):
    """The clip's face track: per frame the target face's box, score and landmarks, or no
    face; who may see it is who may see the clip (``ClipDetailApi``); 404 for a clip without
    a stored track (extracted before tracks were stored, or not yet)."""

    permission_classes = [permissions.IsAuthenticated, _SeesClips]

    @extend_schema(responses={200: ClipFacesOut, **errors(404)})
    def get(self, request, clip_id: int):
        clip = _get_clip(request, clip_id)
        track = extraction.clip_face_track(clip)
        if track is None:
            raise NotFound(f"Clip {clip.number:05d} has no face track.")
        frames = [
            {"frame": i, **(face.as_json() if face else _NO_FACE)} for i, face in enumerate(track)
        ]
        body = {
            "clip": clip.pk,
            "number": clip.number,
            "face_ratio": clip.face_ratio,
            "face_flags": clip.face_flags,
            "no_face_frames": sum(face is None for face in track),
            "frames": frames,
        }
        return Response(ClipFacesOut(body).data)


_NO_FACE = {"box": None, "score": None, "landmarks": None, "aligned": False}
