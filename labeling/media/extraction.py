"""Extraction of a proposed clip on a media worker: claim it with a conditional UPDATE that
records the task and the process, cut and normalise it with ``pipeline.media``, crop its faces
with ``pipeline.faces``, record; take over a dead claimant's clip, sweep stale claims and
partial outputs. Media names are fixed by the clip's id (``clips/<id>.mp4``,
``posters/<id>.jpg``, ``faces/<id>.jpg``, and the face track ``faces/<id>.csv``)."""

from __future__ import annotations

import functools
import io
import logging
import os
import subprocess
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from annotation_site.errors import Forbidden
from labeling import jobs
from labeling.media.storage import media_local_path, media_outputs, movie_local_source
from labeling.models import Clip, MediaStatus
from labeling.rewards import ledger
from pipeline import media
from pipeline.face_flags import face_flags
from pipeline.face_track_file import Track, from_detections, read_track, write_track
from pipeline.faces import FaceDetector, make_detector

logger = logging.getLogger(__name__)


def stale_claim() -> timedelta:
    """A claim older than this belongs to a worker that died: ``EXTRACTION_STALE_SECONDS``
    (`jobs.stale_after`), by default the extraction task's hard time limit (a pool process
    still running then is killed) and a minute more for the kill and the clocks of other
    machines; a system check keeps it above that limit."""
    return jobs.stale_after("EXTRACTION_STALE_SECONDS")


# Errors worth another try (a busy machine, a storage hiccup); every MediaError is permanent.
TRANSIENT_ERRORS = (subprocess.TimeoutExpired, ConnectionError)


def clip_media_names(clip: Clip) -> tuple[str, str, str, str]:
    """Storage names of a clip's video, poster, face sheet and face track: fixed by its id."""
    pk = clip.pk
    return f"clips/{pk}.mp4", f"posters/{pk}.jpg", f"faces/{pk}.jpg", f"faces/{pk}.csv"


def face_target(point: tuple[float, float] | None, width: int, height: int):
    """The extractor's face point (shares 0..1 of the movie frame) in the pixels of the
    normalised clip's frames, ``width`` × ``height`` (``media.output_size``: the whole movie
    frame scaled, no crop and no padding, so a share of the one is the same share of the
    other); None without a point."""
    if point is None:
        return None
    return (point[0] * width, point[1] * height)


def _observed_faces(crops) -> tuple[Track, int]:
    """The clip's track (``pipeline.face_track_file``) and its second-face frame count, from
    the extraction's ``FaceCrops``."""
    return from_detections(crops.detections, crops.aligned), crops.second_face_frames


# A clip whose extraction killed its worker this many times (the OOM killer, again and again)
# fails rather than take another worker down; staff can retry it.
LOST_CLAIMS_LIMIT = 3


# Where an extraction writes before moving into place: `pipeline.media._atomic_target` and
# `pipeline.face_sheets.stage_sheet` name a partial output `.<stem>.<pid>.tmp<suffix>` beside it.
PARTIAL_FOLDERS = ("clips", "posters", "faces")  # faces: the sheet's and the track's


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


@functools.cache
def face_detector(name: str) -> FaceDetector:
    """The extraction's face detector called ``name`` (settings.FACE_DETECTOR), built once a
    process."""
    return make_detector(name)


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
    video, poster, faces, track_name = clip_media_names(clip)
    track: Track | None = None
    second = 0
    try:
        info = media.VideoInfo(movie.width, movie.height, movie.fps, movie.duration_s, movie.codec)
        names = [video, poster, faces, track_name]
        with media_outputs(names) as (video_path, poster_path, faces_path, track_path):
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
                detector=detector or face_detector(settings.FACE_DETECTOR),
                face_size=campaign.face_crop_size,
                face_hold_s=settings.FACE_HOLD_SECONDS,
                face_target=face_target(
                    clip.face_point,
                    *media.output_size(info.width, info.height, campaign.clip_max_height),
                ),
            )
            if result.face_crops is not None:
                track, second = _observed_faces(result.face_crops)
                # Staged and moved into place like the sheet; a killed run's partial file is
                # `faces/.<id>.<pid>.tmp.csv`, which the clean-ups remove.
                write_track(track, track_path)
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
    flags = (
        face_flags(
            track,
            lost_share=campaign.face_lost_share,
            min_px=campaign.face_min_px,
            second_face_frames=second,
        )
        if track is not None
        else None
    )
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
            face_track=track_name if track is not None else "",
            face_lost=bool(flags and flags.lost),
            face_second=bool(flags and flags.second),
            face_small=bool(flags and flags.small),
            duration_bucket=Clip.bucket_of(clip.start_s, clip.end_s),
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
        ledger.clips_sync([clip_id])
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


def clip_face_track(clip: Clip) -> Track | None:
    """The clip's stored face track (``Clip.face_track``, read from the media storage), None
    when it has none. The caller has checked who may see the clip."""
    return face_track_read(clip.face_track)


def face_track_read(name: str) -> Track | None:
    """The face track stored as ``name`` (``Clip.face_track``), None for "" or a missing
    file (logged)."""
    if not name:
        return None
    try:
        with default_storage.open(name, "rb") as stream:
            return read_track(io.TextIOWrapper(stream, encoding="ascii", newline=""))
    except FileNotFoundError:
        logger.warning("the face track %s is missing", name)
        return None
