"""Services of the media pipeline: movies in, clips proposed, clips extracted by a worker.

``movie_register`` stores a file (refusing content the campaign already has) and queues its
probe; ``movie_probe`` records what the file is, or why it does not play. ``clip_propose``
checks segments against the campaign's limits and queues one extraction per clip;
``clip_extract`` is what the task runs: claim the clip with a conditional UPDATE, cut and
normalise it with ``pipeline.media``, crop its faces with ``pipeline.faces``, record.

Media lives in Django's default storage under names that never change: ``clips/<id>.mp4``,
``posters/<id>.jpg``, ``faces/<id>/00001.jpg``…, so a re-run overwrites rather than
duplicates. The ffmpeg work needs the files on a local path (``storage.path``): the local disk
by default, or a volume the web and worker machines share.
"""

from __future__ import annotations

import hashlib
import logging
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone

from labeling.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import Campaign, Clip, Label, MediaStatus, Movie, Role
from pipeline import media
from pipeline.aggregation import duration_bucket

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"}


def stale_claim() -> timedelta:
    """A claim older than this belongs to a worker that died: the task's hard time limit is
    below it (``MEDIA_STALE_CLAIM_SECONDS``, 1,200 s by default)."""
    return timedelta(seconds=getattr(settings, "MEDIA_STALE_CLAIM_SECONDS", 1200))


# Errors worth another try (a busy machine, a storage hiccup); every MediaError is permanent.
TRANSIENT_ERRORS = (subprocess.TimeoutExpired, ConnectionError)


def user_can_extract(user) -> bool:
    from labeling.services import user_has_role

    return bool(user.is_authenticated and (user.is_staff or user_has_role(user, Role.EXTRACTOR)))


def _check_extractor(user) -> None:
    if user is not None and not user_can_extract(user):
        raise Forbidden("Only extractors and staff bring in movies and mark clips.")


# --- movies ---------------------------------------------------------------------------------


def _sha256(file: File) -> str:
    digest = hashlib.sha256()
    file.seek(0)
    for chunk in file.chunks(1 << 20):
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def _duplicate(campaign: Campaign, content_hash: str) -> Conflict | None:
    existing = Movie.objects.filter(campaign=campaign, content_hash=content_hash).first()
    if existing is None:
        return None
    return Conflict(
        f"The same file is already movie {existing.pk} “{existing.title}” in this campaign.",
        {"movie": existing.pk},
    )


def movie_register(*, campaign: Campaign, file: File, title: str = "", user=None) -> Movie:
    """Stores a movie file (read in chunks, never whole into memory) and queues its probe.

    The same bytes twice in one campaign are refused with the movie already there; a database
    constraint backs the check against two uploads racing.
    """
    _check_extractor(user)
    name = Path(file.name or "movie").name
    content_hash = _sha256(file)
    if duplicate := _duplicate(campaign, content_hash):
        raise duplicate
    movie = Movie(
        campaign=campaign,
        title=(title or Path(name).stem)[:300],
        content_hash=content_hash,
        size_bytes=file.size,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    movie.source.save(f"{campaign.slug}/{name}", file, save=False)
    try:
        with transaction.atomic():
            movie.save()
            from labeling.tasks import movie_probe_task

            movie_probe_task.delay_on_commit(movie.pk)
    except IntegrityError:
        movie.source.delete(save=False)
        raise _duplicate(campaign, content_hash) or Conflict(
            "This movie is already here."
        ) from None
    return movie


def movie_register_path(*, campaign: Campaign, path: str | Path, user=None) -> Movie:
    """`movie_register` for a file on the server (``import_movies``)."""
    with open(path, "rb") as handle:
        return movie_register(campaign=campaign, file=File(handle, name=Path(path).name), user=user)


def movie_probe(movie_id: int) -> Movie | None:
    """Records a movie's duration, rate, size and codec, or marks it failed with the reason a
    person reads (not a video, truncated, empty, sound only). A re-run probes again."""
    movie = Movie.objects.filter(pk=movie_id).first()
    if movie is None:
        logger.info("movie %s is gone; nothing to probe", movie_id)
        return None
    try:
        if not movie.source:
            raise media.MediaError("the movie has no file")
        info = media.probe_movie(default_storage.path(movie.source.name))
    except media.MediaError as exc:
        Movie.objects.filter(pk=movie.pk).update(status=Movie.Status.FAILED, error=str(exc))
    else:
        Movie.objects.filter(pk=movie.pk).update(
            status=Movie.Status.READY,
            error="",
            duration_s=info.duration_s,
            fps=info.fps,
            width=info.width,
            height=info.height,
            codec=info.codec,
        )
    movie.refresh_from_db()
    return movie


def movie_progress(movie: Movie) -> dict[str, int]:
    """How many of the movie's clips are pending, extracting, ready and failed."""
    counts = dict(
        movie.clips.exclude(media_status=MediaStatus.NONE)
        .values_list("media_status")
        .annotate(n=Count("pk"))
    )
    return {status: counts.get(status, 0) for status in MediaStatus.values if status}


# --- proposing clips ------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    suspected_label: str = ""


@dataclass
class Proposed:
    clips: list[Clip]
    warnings: list[str] = field(default_factory=list)


def _check_segments(
    movie: Movie, campaign: Campaign, segments: Sequence[Segment], labels: dict[str, Label]
) -> list[str]:
    """Raises on the first segment outside the movie or the campaign's length bounds; returns
    the overlap warnings."""
    rate = media.frame_rate(movie.fps)
    for i, seg in enumerate(segments, start=1):
        where = f"Segment {i} ({seg.start_s:g}–{seg.end_s:g} s)"
        if not seg.start_s >= 0 or not seg.end_s > seg.start_s:
            raise ApplicationError(f"{where}: the end must come after the start, from 0 s on.")
        if seg.end_s > movie.duration_s + 1e-6:
            raise ApplicationError(
                f"{where} ends after the movie ({movie.duration_s:g} s).", {"segment": i}
            )
        length = seg.end_s - seg.start_s
        if not campaign.clip_min_seconds <= length <= campaign.clip_max_seconds:
            raise ApplicationError(
                f"{where} lasts {length:g} s; clips of this campaign last "
                f"{campaign.clip_min_seconds:g}–{campaign.clip_max_seconds:g} s.",
                {"segment": i},
            )
        if media.frame_span(seg.start_s, seg.end_s, rate)[1] < 1:
            raise ApplicationError(f"{where} holds no frame of the movie.", {"segment": i})
        if seg.suspected_label and seg.suspected_label not in labels:
            raise ApplicationError(
                f"{where}: unknown emotion {seg.suspected_label!r}; one of "
                f"{', '.join(labels)} or none.",
                {"segment": i},
            )
    spans = [(s.start_s, s.end_s, f"segment {i}") for i, s in enumerate(segments, start=1)]
    existing = movie.clips.exclude(media_status=MediaStatus.FAILED).order_by("start_s")
    spans += [(c.start_s, c.end_s, f"clip {c.number:05d}") for c in existing if c.end_s]
    spans.sort()
    return [
        f"{a[2]} ({a[0]:g}–{a[1]:g} s) overlaps {b[2]} ({b[0]:g}–{b[1]:g} s)."
        for i, a in enumerate(spans)
        for b in spans[i + 1 :]
        if b[0] < a[1]
    ]


def clip_propose(*, user, movie_id: int, segments: Sequence[Segment]) -> Proposed:
    """Creates one clip per segment and queues its extraction, all or nothing.

    Enforced here: the movie is ready, every segment lies inside it and within the campaign's
    length bounds, and the movie keeps at most ``clips_per_movie`` clips (failed ones do not
    count). Overlaps are allowed and returned as warnings.
    """
    _check_extractor(user)
    if not segments:
        raise ApplicationError("Send at least one segment.")
    with transaction.atomic():
        movie = Movie.objects.select_for_update().filter(pk=movie_id).first()
        if movie is None:
            raise NotFound(f"Movie {movie_id} not found.")
        if movie.status != Movie.Status.READY:
            raise Conflict(f"Movie {movie.pk} is {movie.get_status_display().lower()}.")
        # The campaign row orders clip numbers: one proposer numbers at a time.
        campaign = Campaign.objects.select_for_update().get(pk=movie.campaign_id)
        labels = {label.name: label for label in campaign.labels.all()}
        warnings = _check_segments(movie, campaign, segments, labels)
        kept = movie.clips.exclude(media_status=MediaStatus.FAILED).count()
        if kept + len(segments) > campaign.clips_per_movie:
            raise ApplicationError(
                f"Movie {movie.pk} has {kept} clips and this campaign allows "
                f"{campaign.clips_per_movie} per movie: {len(segments)} more are too many.",
                {"clips": kept, "limit": campaign.clips_per_movie},
            )
        number = (campaign.clips.aggregate(n=Max("number"))["n"] or 0) + 1
        clips = []
        for offset, seg in enumerate(segments):
            clip = Clip(
                campaign=campaign,
                movie=movie,
                number=number + offset,
                start_s=seg.start_s,
                end_s=seg.end_s,
                suspected_label=labels.get(seg.suspected_label),
                proposed_by=user if user is not None and user.is_authenticated else None,
                status=Clip.Status.PROPOSED,
                media_status=MediaStatus.PENDING,
                duration_bucket=duration_bucket(seg.end_s - seg.start_s) or "",
            )
            clip.full_clean(validate_unique=False)
            clips.append(clip)
        Clip.objects.bulk_create(clips)
        clips = list(movie.clips.filter(number__gte=number).order_by("number"))
        from labeling.tasks import clip_extract_task

        for clip in clips:
            clip_extract_task.delay_on_commit(clip.pk)
    return Proposed(clips, warnings)


# --- extraction -----------------------------------------------------------------------------


def clip_media_names(clip: Clip) -> tuple[str, str, str]:
    """Storage names of a clip's video, poster and face folder: fixed by its id."""
    return f"clips/{clip.pk}.mp4", f"posters/{clip.pk}.jpg", f"faces/{clip.pk}"


def clip_claim(clip_id: int) -> bool:
    """Takes a pending clip (or one whose worker died mid-way) for this worker: a conditional
    UPDATE that changes one row for exactly one claimant."""
    now = timezone.now()
    return bool(
        Clip.objects.filter(pk=clip_id)
        .filter(
            Q(media_status=MediaStatus.PENDING)
            | Q(media_status=MediaStatus.EXTRACTING, media_claimed_at__lt=now - stale_claim())
        )
        .update(
            media_status=MediaStatus.EXTRACTING,
            media_claimed_at=now,
            media_attempts=F("media_attempts") + 1,
        )
    )


def clip_extract(clip_id: int, detector=None) -> bool:
    """Claims, cuts, crops and records one clip; False when another worker has it or it is
    done. A MediaError fails the clip with ffmpeg's words; a transient error releases the
    claim and is raised again for the task to retry."""
    if not clip_claim(clip_id):
        logger.info("clip %s is not pending (done, failed or taken): skipped", clip_id)
        return False
    clip = Clip.objects.select_related("movie", "campaign").get(pk=clip_id)
    campaign, movie = clip.campaign, clip.movie
    video, poster, faces = clip_media_names(clip)
    try:
        info = media.VideoInfo(movie.width, movie.height, movie.fps, movie.duration_s, movie.codec)
        result = media.extract_clip(
            default_storage.path(movie.source.name),
            info,
            media.ClipSpec(
                clip.start_s,
                clip.end_s,
                max_height=campaign.clip_max_height,
                fps=campaign.clip_fps,
            ),
            video_path=default_storage.path(video),
            poster_path=default_storage.path(poster),
            faces_dir=default_storage.path(faces),
            detector=detector,
        )
    except media.MediaError as exc:
        clip_extract_fail(clip_id, str(exc))
        return False
    except TRANSIENT_ERRORS:
        Clip.objects.filter(pk=clip_id, media_status=MediaStatus.EXTRACTING).update(
            media_status=MediaStatus.PENDING, media_claimed_at=None
        )
        raise
    few = result.face_ratio is not None and result.face_ratio < campaign.min_face_ratio
    opened = Clip.Status.SCREENING if campaign.screen_clips or few else Clip.Status.ANNOTATING
    with transaction.atomic():
        Clip.objects.filter(pk=clip_id, media_status=MediaStatus.EXTRACTING).update(
            media_status=MediaStatus.READY,
            media_error="",
            video=video,
            poster=poster,
            faces=faces,
            first_frame=result.first_frame,
            n_frames=result.n_frames,
            face_ratio=result.face_ratio,
            few_faces=few,
            duration_bucket=duration_bucket(clip.end_s - clip.start_s) or "",
            updated_at=timezone.now(),
        )
        reason = f"few faces found ({result.face_ratio:.0%} of frames)" if few else ""
        # Only a clip still waiting for its media moves on; a re-extracted one keeps its place.
        Clip.objects.filter(
            pk=clip_id, status__in=[Clip.Status.PROPOSED, Clip.Status.FAILED]
        ).update(status=opened, status_reason=reason)
    return True


def clip_extract_fail(clip_id: int, message: str) -> None:
    """A permanent failure: the clip keeps the tail of ffmpeg's message for staff."""
    Clip.objects.filter(pk=clip_id).update(
        media_status=MediaStatus.FAILED,
        media_error=message[-2000:],
        status=Clip.Status.FAILED,
        status_reason="extraction failed",
        updated_at=timezone.now(),
    )


def clips_extract_retry(*, user, clip_ids: Iterable[int]) -> int:
    """Queues failed clips (and ones whose worker died) again; staff only."""
    if not user.is_staff:
        raise Forbidden("Staff only.")
    now = timezone.now()
    with transaction.atomic():
        ids = list(
            Clip.objects.filter(pk__in=list(clip_ids))
            .filter(
                Q(media_status=MediaStatus.FAILED)
                | Q(media_status=MediaStatus.EXTRACTING, media_claimed_at__lt=now - stale_claim())
            )
            .values_list("pk", flat=True)
        )
        Clip.objects.filter(pk__in=ids).update(
            media_status=MediaStatus.PENDING,
            media_claimed_at=None,
            media_error="",
            status=Clip.Status.PROPOSED,
            status_reason="",
        )
        from labeling.tasks import clip_extract_task

        for clip_id in ids:
            clip_extract_task.delay_on_commit(clip_id)
    return len(ids)
