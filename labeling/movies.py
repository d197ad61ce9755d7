"""Services of the media pipeline: movies in, clips proposed, clips extracted by a worker.

``movie_register`` stores a file (refusing content the campaign already has) and queues its
probe; ``movie_probe`` records what the file is, or why it does not play. ``clip_propose``
checks segments against the campaign's limits and queues one extraction per clip;
``clip_extract`` is what the task runs: claim the clip with a conditional UPDATE, cut and
normalise it with ``pipeline.media``, crop its faces with ``pipeline.faces``, record.

Media lives in Django's default storage under names that never change: ``clips/<id>.mp4``,
``posters/<id>.jpg`` and ``faces/<id>.jpg`` (every frame's face crop on one contact sheet,
read back with ``pipeline.faces.read_face_frames``), so a re-run overwrites rather than
duplicates. ffmpeg works on local paths: with a storage that has them (the local disk, or a
volume every machine mounts) it reads and writes the stored files themselves; with one that
has none (an S3-compatible store), a worker copies the movie once into its cache
(``MEDIA_CACHE_DIR``), writes the outputs to a temporary folder and saves them to the storage
when all are complete.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, QuerySet
from django.utils import timezone

from labeling import rewards, sql
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


def campaigns_for_extractor(user) -> QuerySet[Campaign]:
    """The campaigns whose movies and clips ``user`` sees and marks: every one for staff; for
    an extractor, those whose member list (``Campaign.annotators``, the one membership the
    models have) holds them, and those they brought a movie into; none for anyone else."""
    if not user_can_extract(user):
        return Campaign.objects.none()
    if user.is_staff:
        return Campaign.objects.all()
    member = Campaign.annotators.through.objects.filter(campaign=OuterRef("pk"), user=user)
    brought = Movie.objects.filter(campaign=OuterRef("pk"), created_by=user)
    return Campaign.objects.filter(Exists(member) | Exists(brought))


def _check_campaign(user, campaign: Campaign, missing: str) -> None:
    """Raises NotFound (``missing``, as for an unknown id: nothing says the campaign exists)
    unless ``user`` is None (a command) or the campaign is one of theirs."""
    if user is not None and not campaigns_for_extractor(user).filter(pk=campaign.pk).exists():
        raise NotFound(missing)


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
    constraint backs the check against two uploads racing. A user (None: a command) must be
    staff or an extractor of the campaign (``campaigns_for_extractor``).
    """
    _check_extractor(user)
    _check_campaign(user, campaign, f"Campaign {campaign.pk} not found.")
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


def media_local_path(name: str) -> Path | None:
    """The stored file's path on this machine, for a storage on the file system (a local disk
    or a mounted volume); None for any other (S3), which is read and written as files.

    Raises SuspiciousFileOperation for a name outside the storage's folder."""
    if not isinstance(default_storage, FileSystemStorage):
        return None
    return Path(default_storage.path(name))


def _download(name: str, dest: Path) -> None:
    """Copies the stored file ``name`` to ``dest`` whole or not at all: written under a
    temporary name beside it, then moved into place."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with default_storage.open(name, "rb") as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def media_local_copy(name: str) -> Iterator[Path]:
    """A local path to read the stored file ``name`` from (ffmpeg and PIL read paths): the
    storage's own when it has paths; otherwise a copy in a temporary folder, removed when the
    block ends (unlike ``movie_local_source``'s cache: an export reads each file once)."""
    local = media_local_path(name)
    if local is not None:
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dfer-media-") as tmp:
        copy = Path(tmp) / Path(name).name
        _download(name, copy)
        yield copy


def movie_local_source(movie: Movie) -> Path:
    """A local path to the movie's file, for ffmpeg: the storage's own when it has paths;
    otherwise this machine's copy in ``MEDIA_CACHE_DIR`` (named by the content hash, copied on
    first use, then kept while recent: a movie's clips are extracted together)."""
    local = media_local_path(movie.source.name)
    if local is not None:
        return local
    cache = Path(settings.MEDIA_CACHE_DIR)
    cache.mkdir(parents=True, exist_ok=True)
    copy = cache / f"{movie.content_hash}{Path(movie.source.name).suffix.lower()}"
    if copy.exists():
        os.utime(copy)  # recently used: the trim keeps it
        return copy
    _download(movie.source.name, copy)
    _cache_trim(cache, keep=copy)
    return copy


def _cache_trim(cache: Path, keep: Path) -> None:
    """Removes the least recently used copies while the cache holds more than
    ``MEDIA_CACHE_GB``; a copy used in the last hour stays (another process may be reading
    it)."""
    limit = settings.MEDIA_CACHE_GB * 1024**3
    copies = []
    for path in cache.iterdir():
        try:
            stat = path.stat()
        except FileNotFoundError:  # another worker's trim removed it meanwhile
            continue
        if not path.name.startswith("."):
            copies.append((stat.st_mtime, stat.st_size, path))
    copies.sort()
    total = sum(size for _, size, _ in copies)
    recent = time.time() - 3600
    for used, size, path in copies:
        if total <= limit or used > recent:
            break
        if path != keep:
            total -= size
            path.unlink(missing_ok=True)


@contextmanager
def media_outputs(names: Sequence[str]) -> Iterator[list[Path]]:
    """Local paths to write the stored files ``names`` to: the storage's own when it has paths
    (the pipeline writes each to a temporary name and moves it into place); otherwise files in
    a temporary folder, saved to the storage under the same names once the block succeeded
    (nothing is saved when it raises)."""
    local = [media_local_path(name) for name in names]
    if all(path is not None for path in local):
        yield local
        return
    with tempfile.TemporaryDirectory(prefix="dfer-media-") as tmp:
        paths = [Path(tmp) / f"{i}-{Path(name).name}" for i, name in enumerate(names)]
        yield paths
        for name, path in zip(names, paths, strict=True):
            default_storage.delete(name)  # the name never changes: replace, never rename
            with open(path, "rb") as handle:
                saved = default_storage.save(name, File(handle, name=path.name))
            if saved != name:
                raise media.MediaError(f"the storage saved {name} as {saved}")


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
        info = media.probe_movie(movie_local_source(movie))
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


# --- clips whose media exist already ---------------------------------------------------------


@dataclass(frozen=True)
class ExtractedClip:
    """A clip cut elsewhere, its media already in the storage under ``video`` and ``poster``
    (a test's fixture, a benchmark), or with none (votes imported from elsewhere, where
    ``end_s`` is None when the file gave no length). ``number`` and ``movie``, when given,
    replace the call's numbering and movie: an import keeps its file's numbers and movies."""

    end_s: float | None
    start_s: float = 0.0
    video: str = ""
    poster: str = ""
    number: int | None = None
    movie: Movie | None = None


def movies_register_extracted(*, campaign: Campaign, titles: Sequence[str]) -> list[Movie]:
    """Movies whose clips were cut elsewhere: no file to probe, ready for their clips, in one
    INSERT (an import of DFEW's votes brings some 1,500 movies). A re-run registers them again:
    titles are not unique."""
    made = [
        Movie(campaign=campaign, title=title[:300], status=Movie.Status.READY) for title in titles
    ]
    for movie in made:
        # No query per movie: the campaign is a saved row, and the one constraint (unique
        # content) spares movies without a file.
        movie.full_clean(exclude=["campaign"], validate_unique=False, validate_constraints=False)
    return Movie.objects.bulk_create(made)


def movie_register_extracted(*, campaign: Campaign, title: str) -> Movie:
    """One movie whose clips were cut elsewhere (``movies_register_extracted``)."""
    return movies_register_extracted(campaign=campaign, titles=[title])[0]


def clips_register_extracted(
    *,
    movie: Movie | None = None,
    clips: Sequence[ExtractedClip],
    status: str = Clip.Status.ANNOTATING,
    first_number: int | None = None,
    batch_size: int = 5000,
) -> list[Clip]:
    """Registers clips whose media exist already (or that have none), in ``movie`` unless a
    clip names its own, numbered on from ``first_number`` (the campaign's next number when
    None) unless a clip brings its own number, in as few INSERTs as ``batch_size`` allows, so
    a DFEW-size campaign (16,372 clips) takes seconds. No extraction is queued: their
    ``media_status`` stays empty, as for every clip that came without an extraction job.

    Checked here, for all clips before any is written: a movie for each, all of one campaign;
    spans from 0 s on, ending after they start (or with no end); and a known ``status`` (any:
    an import brings complete clips with their votes, a test sets the stage it needs). Not
    checked: that the named media exist (the caller made them). A re-run registers the clips
    again under new numbers, or fails on the campaign's unique numbers when numbers repeat.
    """
    if status not in Clip.Status.values:
        raise ApplicationError(f"Unknown clip status {status!r}.")
    campaigns = set()
    for i, spec in enumerate(clips, start=1):
        if (spec.movie or movie) is None:
            raise ApplicationError(f"Clip {i} has no movie.")
        campaigns.add((spec.movie or movie).campaign_id)
        if not spec.start_s >= 0 or (spec.end_s is not None and not spec.start_s < spec.end_s):
            end = "…" if spec.end_s is None else f"{spec.end_s:g}"
            raise ApplicationError(f"Clip {i}: {spec.start_s:g}–{end} s is no span.")
    if len(campaigns) > 1:
        raise ApplicationError("Clips registered together belong to one campaign.")
    if not clips:
        return []
    (campaign_id,) = campaigns
    with transaction.atomic():
        if first_number is None and any(spec.number is None for spec in clips):
            # The campaign row orders clip numbers, as in clip_propose.
            Campaign.objects.select_for_update().filter(pk=campaign_id).first()
            latest = Clip.objects.filter(campaign_id=campaign_id).aggregate(n=Max("number"))
            first_number = (latest["n"] or 0) + 1
        rows = []
        for i, spec in enumerate(clips):
            length = None if spec.end_s is None else spec.end_s - spec.start_s
            rows.append(
                Clip(
                    campaign_id=campaign_id,
                    movie=spec.movie or movie,
                    number=first_number + i if spec.number is None else spec.number,
                    start_s=spec.start_s,
                    end_s=spec.end_s,
                    video=spec.video,
                    poster=spec.poster,
                    status=status,
                    duration_bucket=duration_bucket(length) or "",
                )
            )
        made = Clip.objects.bulk_create(rows, batch_size=batch_size)
        sql.analyze_after_bulk_load(Clip, len(made))
        return made


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
    count). Overlaps are allowed and returned as warnings. A user (None: a command) must be
    staff or an extractor of the movie's campaign; to anyone else the movie does not exist.
    """
    _check_extractor(user)
    if not segments:
        raise ApplicationError("Send at least one segment.")
    with transaction.atomic():
        movie = Movie.objects.select_for_update().filter(pk=movie_id).first()
        if movie is None:
            raise NotFound(f"Movie {movie_id} not found.")
        _check_campaign(user, movie.campaign, f"Movie {movie_id} not found.")
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
    """Storage names of a clip's video, poster and face sheet: fixed by its id."""
    return f"clips/{clip.pk}.mp4", f"posters/{clip.pk}.jpg", f"faces/{clip.pk}.jpg"


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
        with media_outputs([video, poster, faces]) as (video_path, poster_path, faces_path):
            result = media.extract_clip(
                movie_local_source(movie),
                info,
                media.ClipSpec(
                    clip.start_s,
                    clip.end_s,
                    max_height=campaign.clip_max_height,
                    fps=campaign.clip_fps,
                ),
                video_path=video_path,
                poster_path=poster_path,
                faces_path=faces_path,
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
        # A clip that opens for labelling without screening has passed it: its extractor's
        # reward, under the row lock the UPDATE above holds.
        rewards.clips_sync([clip_id])
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
