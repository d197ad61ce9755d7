"""Movies in and clips proposed: ``movie_register`` probes a file and stores it when it is a
playable video (refusing anything else, and content the campaign already has);
``movie_probe`` probes a stored movie again; ``clip_propose`` checks segments against the
campaign's limits and queues one extraction per clip; ``clips_register_extracted`` registers
clips cut elsewhere."""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils.text import get_valid_filename

from annotation_site.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling import access
from labeling.loop import sql
from labeling.media.storage import movie_local_source
from labeling.models import Campaign, Clip, Label, MediaStatus, Movie
from labeling.models.clips import face_point_problem
from pipeline import media

logger = logging.getLogger(__name__)


VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"}


def _check_extractor(user) -> None:
    if user is not None and not access.can_extract(user):
        raise Forbidden("Only extractors and staff bring in movies and mark clips.")


def _check_campaign(user, campaign: Campaign, missing: str) -> None:
    """Raises NotFound (``missing``, as for an unknown id: nothing says the campaign exists)
    unless ``user`` is None (a command) or the campaign is one of theirs."""
    mine = access.campaigns_for_extractor(user) if user is not None else None
    if mine is not None and not mine.filter(pk=campaign.pk).exists():
        raise NotFound(missing)


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


def _stored_stem(upload: str, content_hash: str) -> str:
    """The stem to store an upload under: its own name made safe for a file name, or, when
    nothing of it survives (``!!!.mp4``, a name of emoji), ``movie-`` and its hash."""
    try:
        stem = get_valid_filename(Path(upload).stem)
    except SuspiciousFileOperation:
        stem = ""
    return stem.strip(".")[:100] or f"movie-{content_hash[:12]}"


@contextmanager
def _upload_on_disk(file: File) -> Iterator[Path]:
    """A path on this machine that holds an upload's bytes under a name of ours (ffmpeg prints
    the name, and an uploader's could hold text that reads like ffmpeg's own lines): a link to
    the file Django streamed a large upload to, or a copy of a small one held in memory."""
    suffix = Path(file.name or "").suffix.lower()
    suffix = suffix if re.fullmatch(r"\.[a-z0-9]{1,5}", suffix) else ""
    with tempfile.TemporaryDirectory(prefix="dfer-upload-") as tmp:
        path = Path(tmp) / f"upload{suffix}"
        on_disk = getattr(file, "temporary_file_path", None)
        if on_disk is not None:
            os.symlink(os.path.abspath(on_disk()), path)
        else:
            file.seek(0)
            with open(path, "wb") as out:
                for chunk in file.chunks(1 << 20):
                    out.write(chunk)
            file.seek(0)
        yield path


# A path as ffmpeg or Python prints it: two or more slash-led segments, not inside a word
# (so "30000/1001" stays).
_PATH = re.compile(r"(?<![\w.])(?:/[^\s/:'\"“”]+){2,}/?")


def failure_reason(exc: Exception, path: Path | str, shown: str) -> str:
    """What a person reads about a movie that failed: the reason in ``pipeline.media``'s words
    (what comes before ``. ffmpeg said:``) with the file called ``shown`` (its upload name or
    title) and no path of the server's; ffmpeg's raw output (several lines, or one too long
    to be a sentence) becomes "cannot be read as a video". The one rule for every failure
    recorded here: an upload's refusal, a failed probe."""
    text = str(exc).split(". ffmpeg said:")[0].strip()
    text = _PATH.sub(shown, text)
    if path:
        text = text.replace(str(path), shown).replace(Path(path).name, shown)
    text = text.rstrip(".")
    if not text or "\n" in text or len(text) > 200:
        return f"{shown} cannot be read as a video"
    return text


def _probe_upload(path: Path, upload: str) -> tuple[media.VideoInfo, media.Container]:
    """What the file at ``path`` is, read from its content: a video in a container we accept
    that plays from start to end; ApplicationError with the reason otherwise, in the words
    a person reads (naming the upload, without ffmpeg's output, which names server paths)."""
    try:
        info = media.probe_movie(path)
    except media.MediaError as exc:
        reason = failure_reason(exc, path, upload)
        raise ApplicationError(f"Not accepted: {reason}.", {"file": upload}) from None
    container = media.video_container(info)
    if container is None:
        raise ApplicationError(
            f"Not accepted: {upload} is not a movie (ffmpeg reads it as "
            f"“{info.container or 'unknown'}”); upload a video file such as MP4, MKV, WebM, "
            "MOV or AVI.",
            {"file": upload},
        )
    return info, container


def _probed(info: media.VideoInfo) -> dict:
    """A movie's fields from its probe."""
    return {
        "status": Movie.Status.READY,
        "error": "",
        "duration_s": info.duration_s,
        "fps": info.fps,
        "width": info.width,
        "height": info.height,
        "codec": info.codec,
    }


def movie_register(*, campaign: Campaign, file: File, title: str = "", user=None) -> Movie:
    """Probes an uploaded movie file and stores it (``_movie_store``)."""
    with _upload_on_disk(file) as path:
        return _movie_store(campaign=campaign, file=file, local=path, title=title, user=user)


def _movie_store(*, campaign: Campaign, file: File, local: Path, title: str, user) -> Movie:
    """Probes a movie file and stores it, ready for clips; refuses anything that is not a
    playable video (ApplicationError, with the reason a person reads) before it reaches the
    storage, so no stored movie is anything but a probed video.

    The file is read in chunks, never whole into memory. What it is comes from its content
    (``pipeline.media.probe_movie``), never from its name: the stored name's suffix is the
    probed container's. The same bytes twice in one campaign are refused with the movie
    already there; a database constraint backs the check against two uploads racing. A user
    (None: a command) must be staff or an extractor of the campaign
    (``access.campaigns_for_extractor``).
    """
    _check_extractor(user)
    _check_campaign(user, campaign, f"Campaign {campaign.pk} not found.")
    upload = Path(file.name or "movie").name
    content_hash = _sha256(file)
    if duplicate := _duplicate(campaign, content_hash):
        raise duplicate
    info, container = _probe_upload(local, upload)
    name = f"{_stored_stem(upload, content_hash)}{media.stored_suffix(container, upload)}"
    movie = Movie(
        campaign=campaign,
        title=(title or Path(upload).stem or name)[:300],
        content_hash=content_hash,
        size_bytes=file.size,
        created_by=user if user is not None and user.is_authenticated else None,
        **_probed(info),
    )
    movie.source.save(f"{campaign.slug}/{name}", file, save=False)
    try:
        with transaction.atomic():
            movie.save()
    except IntegrityError:
        movie.source.delete(save=False)
        raise _duplicate(campaign, content_hash) or Conflict(
            "This movie is already here."
        ) from None
    return movie


def movie_register_path(*, campaign: Campaign, path: str | Path, user=None) -> Movie:
    """`movie_register` for a file on the server (``import_movies``). Only a regular file is
    read, never through a symbolic link (opened with ``O_NOFOLLOW``, so a link swapped in after
    a check is refused too): a link in an import folder would copy any file the server can
    read into the media store, where extractors download movies. Nothing else is registered
    (a folder, a FIFO, a device), each refused with what it is."""
    path = Path(path)
    try:
        # O_NONBLOCK: a FIFO named like a movie opens at once (then is refused) instead of
        # waiting for a writer; it changes nothing for a regular file.
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ApplicationError(f"{path.name}: no such file.") from None
    except OSError as exc:
        if path.is_symlink():
            raise ApplicationError(f"{path.name} is a symbolic link: not imported.") from None
        raise ApplicationError(f"{path.name} cannot be read ({exc.strerror}).") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ApplicationError(f"{path.name} is not a regular file: not imported.")
    with os.fdopen(fd, "rb") as handle:
        file = File(handle, name=path.name)
        return _movie_store(campaign=campaign, file=file, local=path, title="", user=user)


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
        reason = failure_reason(exc, movie.source.name, movie.title or "the movie")
        Movie.objects.filter(pk=movie.pk).update(status=Movie.Status.FAILED, error=reason)
    else:
        Movie.objects.filter(pk=movie.pk).update(**_probed(info))
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
                    duration_bucket=Clip.bucket_of(spec.start_s, spec.end_s),
                )
            )
        made = Clip.objects.bulk_create(rows, batch_size=batch_size)
        sql.analyze_after_bulk_load(Clip, len(made))
        return made


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    suspected_label: str = ""
    # The face to follow, as shares (0..1) of the movie frame (`Clip.face_x`, `face_y`).
    face_point: tuple[float, float] | None = None


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
        if problem := face_point_problem(seg.face_point):
            raise ApplicationError(f"{where}: {problem}.", {"segment": i})
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
                face_x=seg.face_point[0] if seg.face_point else None,
                face_y=seg.face_point[1] if seg.face_point else None,
                proposed_by=user if user is not None and user.is_authenticated else None,
                status=Clip.Status.PROPOSED,
                media_status=MediaStatus.PENDING,
                duration_bucket=Clip.bucket_of(seg.start_s, seg.end_s),
            )
            clip.full_clean(validate_unique=False)
            clips.append(clip)
        Clip.objects.bulk_create(clips)
        clips = list(movie.clips.filter(number__gte=number).order_by("number"))
        from labeling.tasks import clip_extract_task

        for clip in clips:
            clip_extract_task.delay_on_commit(clip.pk)
    return Proposed(clips, warnings)


def clip_withdraw(*, user, clip_id: int) -> int:
    """Withdraws a proposed clip whose extraction has not started: its row is deleted, so its
    span and its place among the movie's ``clips_per_movie`` are free again. Returns the
    clip's number.

    Who may: staff, and the extractor who proposed it (403 for another extractor who sees it;
    404 for anyone who does not, as for an unknown id). Once a worker has claimed the clip
    (``media_status`` past pending) it is too late: Conflict (409). One transaction; the
    DELETE is conditional on the clip still pending, and the worker's claim is a conditional
    UPDATE on the same condition, so the database lets exactly one of them through. The
    queued extraction then finds no row and does nothing."""
    _check_extractor(user)
    with transaction.atomic():
        clip = access.clips_visible(user).select_for_update().filter(pk=clip_id).first()
        if clip is None:
            raise NotFound(f"Clip {clip_id} not found.")
        if not user.is_staff and clip.proposed_by_id != user.pk:
            raise Forbidden(f"Clip {clip.number:05d} was proposed by someone else.")
        if clip.status != Clip.Status.PROPOSED or clip.media_status != MediaStatus.PENDING:
            raise Conflict(
                f"Clip {clip.number:05d} can no longer be withdrawn: its extraction has "
                f"started ({clip.get_media_status_display().lower()}).",
                {"media_status": clip.media_status},
            )
        deleted, _ = Clip.objects.filter(
            pk=clip.pk, status=Clip.Status.PROPOSED, media_status=MediaStatus.PENDING
        ).delete()
        if not deleted:  # pragma: no cover - the row lock above keeps this from happening
            raise Conflict(f"Clip {clip.number:05d} can no longer be withdrawn.")
    return clip.number
