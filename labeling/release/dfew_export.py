"""The DFEW-format export: labels, folds and face frames as the DFEW authors released them,
written by a worker (a background job) into one zip in the media storage."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from pathlib import Path

import numpy as np
from django.db import transaction
from PIL import Image

from annotation_site.errors import ApplicationError, Forbidden
from labeling import jobs
from labeling.access import user_can_export
from labeling.media.extraction import face_track_read
from labeling.media.storage import media_local_copy, media_outputs
from labeling.models import (
    Campaign,
    Clip,
    LabelExport,
    Split,
)
from labeling.release.rows import clip_rows
from labeling.release.splits import split_create
from pipeline import dfew
from pipeline.compact import ClipRecord, CompactWriter
from pipeline.face_sheets import read_face_frames
from pipeline.face_track_file import nearest_face
from pipeline.media import read_frames

logger = logging.getLogger(__name__)


Progress = jobs.Progress

# An export still "running" after this long was lost with its worker and may be claimed again.
STALE_SETTING = "LABEL_EXPORT_STALE_SECONDS"


def _compact_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """Every frame of a clip, resized to ``size`` × ``size`` (training samples 16 of them
    afresh each epoch, as the DFEW authors did)."""
    return np.stack(
        [np.asarray(Image.fromarray(f).resize((size, size), Image.BILINEAR)) for f in frames]
    )


# Written into every export folder; only a folder holding it may be replaced by a new export.
MARKER = "dfer-export.json"


def _export_frames(row: dict) -> np.ndarray:
    """The clip's face crops (one per frame, in order) when it has them, else its whole
    decoded frames, read from the media storage (a local copy where it has no paths)."""
    with media_local_copy(row["faces"] or row["video"]) as path:
        return read_face_frames(path) if row["faces"] else read_frames(path)


def _face_track_frames(row: dict, frames: np.ndarray, track_name: str):
    """(frames, track): the clip's track where it has one matching its crops, and its frames
    with each no-face frame's crop replaced by the nearest frame's with the face
    (`nearest_face`: one image per frame, as DFEW's loaders index them); the frames as they
    are and None without a track."""
    track = face_track_read(track_name) if row["faces"] else None
    if track is None:
        return frames, None
    if len(track) != len(frames):
        logger.warning(
            "clip %s: its face track has %d frames, its crops %d; track not exported",
            row["number"],
            len(track),
            len(frames),
        )
        return frames, None
    return frames[nearest_face(track)], track


def _check_split_current(split: Split, members: dict, rows: list[dict], names: dict) -> None:
    """Refuses a split whose clips no longer have the result they were split with (labels
    invalidated since): exporting it would drop clips or contradict the exported votes."""
    current = {row["pk"]: row["single_label"] for row in rows}
    stale = sorted(
        clip_id for clip_id, (code, _) in members.items() if current.get(clip_id, "") != names[code]
    )
    if stale:
        numbers = list(
            Clip.objects.filter(pk__in=stale[:10])
            .order_by("number")
            .values_list("number", flat=True)
        )
        raise ApplicationError(
            f"Split {split.pk} is out of date: {len(stale)} of its clips no longer have the "
            f"single label they were split with (e.g. clips {', '.join(map(str, numbers))}; "
            "labels invalidated since). Make a new split and export that."
        )


def dfew_export_write(
    *,
    campaign: Campaign,
    split: Split,
    out: Path,
    compact: bool = True,
    compact_size: int = 112,
    progress: Progress | None = None,
) -> dict:
    """Writes the DFEW release layout of ``split`` to ``out`` (staged, moved into place when
    complete): ``label/single_{train,test}set_<k>.csv``, ``label/votes.csv``, and
    ``data/<clip>/<clip>_<frame>.jpg`` for every frame of each clip that has media,
    ``faces/<clip>.csv`` for each clip with a face track (`pipeline.dfew.write_face_track`); with
    ``compact`` also ``compact/`` (``pipeline/compact.py``: every frame of each clip with
    media, their votes and folds). Returns a summary. Label files are byte-identical for the
    same split and results.

    A frame is the clip's face crop where the extraction stored them (``Clip.faces``, one per
    frame, as DFEW released face frames and its authors trained on them); a clip without
    crops (registered with its video only) gives its whole decoded frames. A frame where the
    clip's face track has no face gets the nearest frame's crop, and its track row says so.
    """
    step = progress or (lambda fraction, stage: None)
    out = Path(out)
    if out.exists() and not (out / MARKER).is_file():
        raise ApplicationError(
            f"{out} exists and is not an earlier export (no {MARKER} in it): choose a new "
            "folder; nothing was written or removed."
        )
    labels = list(campaign.labels.order_by("code").values_list("code", "name"))
    members = {
        clip_id: (code, fold)
        for clip_id, code, fold in split.members.values_list("clip_id", "label__code", "fold")
    }
    rows = list(clip_rows(campaign).iterator(chunk_size=2000))
    _check_split_current(split, members, rows, dict(labels))
    release, with_media = [], []
    for row in rows:
        votes = tuple(int(row["votes"].get(name, 0)) for _, name in labels)
        # The split is the release: a clip outside it (single-labelled after it was made)
        # keeps its votes and has label 0, so it joins no fold's files.
        label, fold = members.get(row["pk"], (0, 0))
        release.append(dfew.ReleaseClip(number=row["number"], votes=votes, label=label, fold=fold))
        if row["video"]:
            with_media.append((row, release[-1]))
    summary = {
        "split": split.pk,
        "k": split.k,
        "clips": len(release),
        "single_labelled_in_split": len(members),
        "clips_with_frames": len(with_media),
        "clips_without_media": len(release) - len(with_media),
        "frames": 0,
        "clips_with_face_crops": 0,
        "clips_with_face_tracks": 0,
        "no_face_frames": 0,
        "compact_clips": 0,
    }
    tracks = dict(
        Clip.objects.filter(campaign=campaign)
        .exclude(face_track="")
        .values_list("pk", "face_track")
    )
    try:
        with dfew.staged_directory(Path(out)) as root:
            step(0.02, "writing the label files")
            dfew.write_labels(root, release, labels, split.k)
            (root / MARKER).write_text(
                json.dumps({"campaign": campaign.slug, "split": split.pk, "k": split.k}) + "\n"
            )
            writer = None
            if compact and with_media:
                label_names = [name for _, name in labels]
                size = (compact_size, compact_size)
                writer = CompactWriter(root / "compact", label_names, size, campaign.slug)
            # On an error the staged folder, half-written frames included, is removed.
            for i, (row, clip) in enumerate(with_media, start=1):
                frames, track = _face_track_frames(
                    row, _export_frames(row), tracks.get(row["pk"], "")
                )
                if track is not None:
                    dfew.write_face_track(root, clip.number, track)
                    summary["clips_with_face_tracks"] += 1
                    summary["no_face_frames"] += sum(face is None for face in track)
                summary["clips_with_face_crops"] += bool(row["faces"])
                summary["frames"] += dfew.write_frames(root, clip.number, frames)
                if writer:
                    # Fold 0: outside the split. Such a clip trains only distribution targets
                    # (label 0), so a clip labelled after the split never joins its folds.
                    label = clip.label if clip.fold else 0
                    record = ClipRecord(clip.number, row["movie_id"], label, clip.votes, clip.fold)
                    writer.add(record, _compact_frames(frames, compact_size))
                step(0.05 + 0.85 * i / max(1, len(with_media)), f"frames of clip {clip.number}")
            if writer:
                step(0.92, "writing the compact format")
                writer.close()
                summary["compact_clips"] = len(writer.records)
    except ValueError as exc:  # the writers' checks: say what is wrong, write nothing
        raise ApplicationError(f"Cannot export: {exc}") from exc
    step(1.0, "done")
    return summary


def label_export_request(*, campaign: Campaign, split: Split | None, user) -> LabelExport:
    """Queues a DFEW-format export of ``split`` (a new default split when None)."""
    from labeling.tasks import label_export_task  # the tasks module imports this one

    if not user_can_export(user):
        raise Forbidden("Only staff or exporters can export a campaign.")
    if split is None:
        split = split_create(campaign=campaign, user=user).split
    with transaction.atomic():
        export = LabelExport.objects.create(campaign=campaign, split=split, requested_by=user)
        label_export_task.delay_on_commit(export.pk)
    return export


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def label_export_run(export_id: int) -> bool:
    """Writes a queued export as a zip stored in the media storage under
    ``exports/<id>/<name>.zip`` (on the local disk the unzipped folder stays beside it); False
    if it was not claimed (another worker has it). A failure is stored on the row with its
    message (a storage without local paths then receives nothing). A re-run of a stale claim
    replaces the zip (`jobs.claim`)."""
    if not jobs.claim(LabelExport, export_id, stale=STALE_SETTING):
        return False
    export = LabelExport.objects.select_related("campaign", "split").get(pk=export_id)

    def step(fraction: float, stage: str) -> None:
        jobs.step(LabelExport, export_id, fraction, stage)

    name = f"dfew-{export.campaign.slug}-split{export.split_id}"
    stored = f"exports/{export.pk}/{name}.zip"
    with jobs.failing(LabelExport, export_id):
        # A local path for the zip: the storage's own, or a temporary one saved to it after.
        with media_outputs([stored]) as (archive,):
            folder = archive.with_name(name)
            summary = dfew_export_write(
                campaign=export.campaign, split=export.split, out=folder, progress=step
            )
            step(0.99, "zipping")
            shutil.make_archive(
                str(archive.with_suffix("")), "zip", root_dir=folder.parent, base_dir=name
            )
            md5 = _md5(archive)
    jobs.finish(LabelExport, export_id, file=stored, md5=md5, summary=summary)
    return True
