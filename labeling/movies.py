"""Services of the media pipeline: movies in, clips proposed, clips extracted by a worker.

``movie_register`` probes a file and stores it when it is a playable video (refusing anything
else, and content the campaign already has); ``movie_probe`` probes a stored movie again and
records what it is, or why it does not play. ``clip_propose``
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
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import IntegrityError, transaction
from django.db.models import Count, F, Max, Q
from django.utils import timezone
from django.utils.text import get_valid_filename

from labeling import access, rewards, sql
from labeling.errors import ApplicationError, Conflict, Forbidden, NotFound
from labeling.models import Campaign, Clip, Label, MediaStatus, Movie
from pipeline import media
from pipeline.aggregation import duration_bucket

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".avi", ".m4v", ".webm", ".mpg", ".mpeg", ".ts"}


def stale_claim() -> timedelta:
    """A claim older than this belongs to a worker that died: the extraction task's hard time
    limit (a pool process still running then is killed), and a minute more for the kill and
    the clocks of other machines."""
    from labeling.tasks import clip_extract_task

    return timedelta(seconds=clip_extract_task.time_limit + 60)


# Errors worth another try (a busy machine, a storage hiccup); every MediaError is permanent.
TRANSIENT_ERRORS = (subprocess.TimeoutExpired, ConnectionError)


def _check_extractor(user) -> None:
    if user is not None and not access.can_extract(user):
        raise Forbidden("Only extractors and staff bring in movies and mark clips.")


def _check_campaign(user, campaign: Campaign, missing: str) -> None:
    """Raises NotFound (``missing``, as for an unknown id: nothing says the campaign exists)
    unless ``user`` is None (a command) or the campaign is one of theirs."""
    mine = access.campaigns_for_extractor(user) if user is not None else None
    if mine is not None and not mine.filter(pk=campaign.pk).exists():
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
    """A path on this machine that holds an upload's bytes under the upload's own name
    (ffmpeg's messages name the file): a link to the file Django streamed a large upload to,
    or a copy of a small one that Django held in memory."""
    upload = Path(file.name or "").name
    if upload in ("", ".", "..") or len(upload.encode()) > 200:  # no name for a file
        upload = "movie" + Path(upload).suffix[:10]
    with tempfile.TemporaryDirectory(prefix="dfer-upload-") as tmp:
        path = Path(tmp) / upload
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


def _probe_upload(path: Path, upload: str) -> tuple[media.VideoInfo, media.Container]:
    """What the file at ``path`` is, read from its content: a video in a container we accept
    that plays from start to end; ApplicationError with the reason otherwise."""
    try:
        info = media.probe_movie(path)
    except media.MediaError as exc:
        raise ApplicationError(f"Not accepted: {exc}", {"file": upload}) from None
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


# A clip whose extraction killed its worker this many times (the OOM killer, again and again)
# fails rather than take another worker down; staff can retry it.
LOST_CLAIMS_LIMIT = 3
# Where an extraction writes before moving into place: `pipeline.media._atomic_target` and
# `pipeline.faces._stage_sheet` name a partial output `.<stem>.<pid>.tmp<suffix>` beside it.
PARTIAL_FOLDERS = ("clips", "posters", "faces")


def claimant(pid: int | None = None) -> str:
    """This process (or process ``pid`` of this machine) as an extraction claim records it,
    ``host:pid:start``: the start time (the kernel's, in clock ticks since boot) tells the
    process that held a pid from one given the same pid later (a restarted container numbers
    its processes alike)."""
    import socket

    pid = os.getpid() if pid is None else pid
    state = _process(pid)
    return f"{socket.gethostname()}:{pid}:{state[1] if state else ''}"


def _process(pid: int) -> tuple[str, str] | None:
    """Process ``pid``'s state letter and start time from /proc, None when there is no such
    process; where there is no /proc, ``("", "")`` for a process that exists."""
    if not os.path.exists("/proc/self/stat"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return "", ""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return fields[0], fields[19]  # fields 3 (state) and 22 (starttime) of proc(5)


def claimant_gone(recorded: str) -> bool:
    """Whether the process an extraction claim records has ended.

    On this machine it is looked at: gone when no process has its pid, when that process is a
    zombie, or when it started at another time. On another machine nothing can be looked at:
    the same task delivered again means its broker gave it up — a pool process lost (the
    worker requeues at once), or a worker silent past the visibility timeout, which is above
    the task's time limit (`CELERY_VISIBILITY_TIMEOUT`) — so its claimant is taken as gone.
    A claim that records no process (made before claims recorded one) waits to go stale."""
    import socket

    try:
        host, pid, start = recorded.rsplit(":", 2)
        pid_number = int(pid)
    except ValueError:
        return False
    if host != socket.gethostname():
        return True
    state = _process(pid_number)
    return state is None or state[0] == "Z" or bool(start and state[1] and start != state[1])


def clip_partials_remove(clip_id: int) -> int:
    """Removes the partial outputs extractions of the clip left behind (a killed worker's
    half-written video, poster or face sheet); how many."""
    return partial_outputs_remove(clip_ids={clip_id})


def partial_outputs_remove(*, clip_ids: Iterable[int] = (), older_than=None) -> int:
    """Removes the partial outputs of the clips ``clip_ids``, and every one written before
    ``older_than`` (a datetime): no extraction still running writes one that long (it would be
    past its time limit), so that catches what a clip's own clean-up cannot (a killed run's
    ffmpeg that wrote on afterwards, a clip deleted since). One pass over each folder; how many
    were removed. Only a storage with local paths holds any: with another (S3) the outputs are
    written in a temporary folder and saved whole."""
    ids = {str(clip_id) for clip_id in clip_ids}
    before = older_than.timestamp() if older_than is not None else None
    removed = 0
    for folder in PARTIAL_FOLDERS:
        path = media_local_path(folder)
        if path is None:
            return removed
        if not path.is_dir():
            continue
        with os.scandir(path) as entries:
            for entry in entries:
                if not (entry.name.startswith(".") and ".tmp" in entry.name):
                    continue
                try:
                    if not entry.is_file(follow_symlinks=False):
                        continue
                    if entry.name[1:].split(".", 1)[0] in ids or (
                        before is not None and entry.stat(follow_symlinks=False).st_mtime < before
                    ):
                        os.unlink(entry.path)
                        removed += 1
                except FileNotFoundError:  # removed meanwhile (another sweep, a takeover)
                    pass
    return removed


def _failed(message: str) -> dict:
    """The fields of a clip whose extraction failed for good, ``message`` kept for staff."""
    return {
        "media_status": MediaStatus.FAILED,
        "media_error": message[-2000:],
        "status": Clip.Status.FAILED,
        "status_reason": "extraction failed",
        "updated_at": timezone.now(),
    }


def _lost_message(n: int) -> str:
    return (
        f"the worker died during {n} extractions of this clip (killed, e.g. by the "
        "out-of-memory killer); retry to try again"
    )


def clip_claim(clip_id: int, task_id: str = "") -> bool:
    """Takes the clip for this process, with conditional UPDATEs that change the row for
    exactly one claimant: a pending clip, or one whose extraction died mid-way — the same task
    delivered again (``task_id``: a killed worker's message, requeued) while the process its
    claim records is gone (`claimant_gone`), or any claim older than `stale_claim()`.

    A claim taken over counts as lost: its partial outputs are removed, and the clip's
    ``LOST_CLAIMS_LIMIT``-th lost claim fails it instead (False)."""
    now = timezone.now()
    mine = {
        "media_status": MediaStatus.EXTRACTING,
        "media_claimed_at": now,
        "media_claim_task": task_id,
        "media_claim_worker": claimant(),
        "media_attempts": F("media_attempts") + 1,
    }
    if Clip.objects.filter(pk=clip_id, media_status=MediaStatus.PENDING).update(**mine):
        return True
    held = (
        Clip.objects.filter(pk=clip_id, media_status=MediaStatus.EXTRACTING)
        .values("media_claimed_at", "media_claim_task", "media_claim_worker", "media_lost_claims")
        .first()
    )
    if held is None:
        return False
    stale = held["media_claimed_at"] is None or held["media_claimed_at"] < now - stale_claim()
    redelivered = (
        bool(task_id)
        and held["media_claim_task"] == task_id
        and claimant_gone(held["media_claim_worker"])
    )
    if not (stale or redelivered):
        return False
    # Exactly the claim read above: of two that would take it over, one does.
    same = Clip.objects.filter(
        pk=clip_id,
        media_status=MediaStatus.EXTRACTING,
        media_claimed_at=held["media_claimed_at"],
        media_claim_task=held["media_claim_task"],
        media_claim_worker=held["media_claim_worker"],
    )
    lost = held["media_lost_claims"] + 1
    if lost >= LOST_CLAIMS_LIMIT:
        if same.update(**_failed(_lost_message(lost)), media_lost_claims=lost):
            logger.warning("clip %s: its worker died %d times; failed", clip_id, lost)
            clip_partials_remove(clip_id)
        return False
    if not same.update(**mine, media_lost_claims=lost):
        return False
    logger.warning(
        "clip %s: took over the claim of %s (task %s, %s)",
        clip_id,
        held["media_claim_worker"] or "an unknown worker",
        held["media_claim_task"] or "unknown",
        "stale" if stale else "delivered again, its process gone",
    )
    clip_partials_remove(clip_id)
    return True


def clip_extract(clip_id: int, detector=None, *, task_id: str = "") -> bool:
    """Claims (`clip_claim`, as task ``task_id``), cuts, crops and records one clip; False
    when another worker has it or it is done. A MediaError fails the clip with ffmpeg's words;
    a transient error releases the claim and is raised again for the task to retry. Each
    outcome is recorded only while the claim is still this process's."""
    if not clip_claim(clip_id, task_id):
        logger.info("clip %s is not pending (done, failed or taken): skipped", clip_id)
        return False
    me = claimant()
    ours = Clip.objects.filter(
        pk=clip_id,
        media_status=MediaStatus.EXTRACTING,
        media_claim_task=task_id,
        media_claim_worker=me,
    )
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
        clip_extract_fail(clip_id, str(exc), claimant=me)
        return False
    except TRANSIENT_ERRORS:
        ours.update(
            media_status=MediaStatus.PENDING,
            media_claimed_at=None,
            media_claim_task="",
            media_claim_worker="",
        )
        raise
    few = result.face_ratio is not None and result.face_ratio < campaign.min_face_ratio
    opened = Clip.Status.SCREENING if campaign.screen_clips or few else Clip.Status.ANNOTATING
    with transaction.atomic():
        recorded = ours.update(
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
        if not recorded:  # taken over meanwhile (this run outlived its time limit)
            logger.warning("clip %s: the claim was taken over; result not recorded", clip_id)
            return False
        reason = f"few faces found ({result.face_ratio:.0%} of frames)" if few else ""
        # Only a clip still waiting for its media moves on; a re-extracted one keeps its place.
        Clip.objects.filter(
            pk=clip_id, status__in=[Clip.Status.PROPOSED, Clip.Status.FAILED]
        ).update(status=opened, status_reason=reason)
        # A clip that opens for labelling without screening has passed it: its extractor's
        # reward, under the row lock the UPDATE above holds.
        rewards.clips_sync([clip_id])
    return True


def clip_extract_fail(clip_id: int, message: str, *, claimant: str | None = None) -> bool:
    """A permanent failure: the clip keeps the tail of ffmpeg's message for staff, and any
    partial output of it is removed. With ``claimant``, only while that process still holds
    the clip's claim. Whether the clip failed."""
    clips = Clip.objects.filter(pk=clip_id)
    if claimant is not None:
        clips = clips.filter(media_status=MediaStatus.EXTRACTING, media_claim_worker=claimant)
    if not clips.update(**_failed(message)):
        return False
    clip_partials_remove(clip_id)
    return True


def clip_claims_sweep() -> int:
    """Beat: ends the extraction claims older than `stale_claim()`, whose worker died with
    no message coming back in time (a whole worker killed: Redis hands its message on only
    after the visibility timeout, the filesystem broker never): each clip is queued again, or
    failed at its ``LOST_CLAIMS_LIMIT``-th lost claim. Removes their partial outputs, and any
    other older than that. A second run finds nothing. How many claims it ended."""
    cutoff = timezone.now() - stale_claim()
    stale = Q(media_status=MediaStatus.EXTRACTING) & (
        Q(media_claimed_at__lt=cutoff) | Q(media_claimed_at=None)
    )
    from labeling.tasks import clip_extract_task

    with transaction.atomic():
        ids = list(Clip.objects.select_for_update().filter(stale).values_list("pk", flat=True))
        if ids:
            Clip.objects.filter(pk__in=ids, media_lost_claims__gte=LOST_CLAIMS_LIMIT - 1).update(
                **_failed(_lost_message(LOST_CLAIMS_LIMIT)),
                media_lost_claims=F("media_lost_claims") + 1,
            )
            requeued = list(
                Clip.objects.filter(pk__in=ids, media_status=MediaStatus.EXTRACTING).values_list(
                    "pk", flat=True
                )
            )
            Clip.objects.filter(pk__in=requeued).update(
                media_status=MediaStatus.PENDING,
                media_claimed_at=None,
                media_claim_task="",
                media_claim_worker="",
                media_lost_claims=F("media_lost_claims") + 1,
            )
            for clip_id in requeued:
                clip_extract_task.delay_on_commit(clip_id)
            logger.warning(
                "ended %d stale extraction claims: %d queued again, %d failed",
                len(ids),
                len(requeued),
                len(ids) - len(requeued),
            )
    partial_outputs_remove(clip_ids=ids, older_than=cutoff)
    return len(ids)


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
            media_claim_task="",
            media_claim_worker="",
            media_lost_claims=0,  # staff's retry starts the count of dead workers again
            media_error="",
            status=Clip.Status.PROPOSED,
            status_reason="",
        )
        partial_outputs_remove(clip_ids=ids)
        from labeling.tasks import clip_extract_task

        for clip_id in ids:
            clip_extract_task.delay_on_commit(clip_id)
    return len(ids)
