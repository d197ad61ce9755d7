"""A campaign's dataset release: stored k-fold splits, the rows every export reads, and the
DFEW-format export (labels, votes, face frames, and the compact training format).

Splits are made once and never changed. Exports read the aggregated results (``ClipLabel``)
and a split; they write to a staged folder that is moved into place only when complete.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.db import connection, transaction
from django.db.models import F, FilteredRelation, IntegerField, Q, QuerySet, Value
from django.utils import timezone
from PIL import Image

from labeling.errors import ApplicationError, Forbidden, NotFound
from labeling.models import (
    Annotation,
    Campaign,
    Clip,
    ClipLabel,
    JobStatus,
    Label,
    LabelExport,
    Movie,
    Split,
    SplitClip,
)
from labeling.movies import media_local_copy, media_outputs
from pipeline import dfew
from pipeline.aggregation import BUCKETS
from pipeline.compact import ClipRecord, CompactWriter
from pipeline.csv_safe import sql_neutralise
from pipeline.faces import read_face_frames
from pipeline.folds import assign_folds
from pipeline.media import read_frames

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
STALE_RUN = timedelta(hours=2)


def user_can_export(user) -> bool:
    """Staff, or a user given the ``labeling.export_campaign`` permission."""
    return bool(
        user.is_authenticated and (user.is_staff or user.has_perm("labeling.export_campaign"))
    )


# --- splits --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SplitMade:
    split: Split
    warnings: list[str]


def split_create(
    *,
    campaign: Campaign,
    k: int = 5,
    seed: int = 0,
    group_by_movie: bool = False,
    user=None,
) -> SplitMade:
    """Stores a new k-fold split of the campaign's single-labelled clips, stratified by label
    (scikit-learn), every movie's clips in one fold with ``group_by_movie``.

    Reads the stored results; never changes an existing split. scikit-learn's warnings (a label
    with fewer clips than folds) are returned, not hidden.
    """
    if user is not None and not user_can_export(user):
        raise Forbidden("Only staff or exporters can make splits.")
    if k < 2:
        raise ApplicationError("A split needs at least 2 folds.")
    if not 0 <= seed < 2**31:
        raise ApplicationError(f"The seed must be between 0 and {2**31 - 1}, not {seed}.")
    rows = list(
        ClipLabel.objects.filter(
            clip__campaign=campaign,
            clip__status=Clip.Status.COMPLETE,
            single_label__isnull=False,
        )
        .order_by("clip__number")
        .values_list("clip_id", "clip__movie_id", "single_label_id")
    )
    if len(rows) < k:
        raise ApplicationError(
            f"{len(rows)} single-labelled clips: a {k}-fold split needs at least {k}."
        )
    clip_ids, movies, labels = (np.array(column) for column in zip(*rows, strict=True))
    if group_by_movie and len(set(movies.tolist())) < k:
        raise ApplicationError(
            f"The clips come from {len(set(movies.tolist()))} movies: grouping by movie needs "
            f"at least {k}."
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            folds = assign_folds(labels, groups=movies if group_by_movie else None, k=k, seed=seed)
        except ValueError as exc:  # scikit-learn's own words: e.g. every label too small
            raise ApplicationError(f"Cannot split into {k} folds: {exc}") from exc
    in_code_order = list(campaign.labels.order_by("code").values_list("pk", "name"))
    fold_counts = {
        str(fold): {
            name: int(((folds == fold) & (labels == pk)).sum()) for pk, name in in_code_order
        }
        for fold in range(1, k + 1)
    }
    with transaction.atomic():
        split = Split.objects.create(
            campaign=campaign,
            k=k,
            seed=seed,
            group_by_movie=group_by_movie,
            n_clips=len(rows),
            fold_counts=fold_counts,
            created_by=user,
        )
        SplitClip.objects.bulk_create(
            [
                SplitClip(split=split, clip_id=int(c), label_id=int(label), fold=int(fold))
                for c, label, fold in zip(clip_ids, labels, folds, strict=True)
            ],
            batch_size=5000,
        )
    return SplitMade(split, [str(w.message) for w in caught])


def split_for(campaign: Campaign, split_id: int | None) -> Split | None:
    """The campaign's split ``split_id`` (404 if it is another campaign's or missing)."""
    if split_id is None:
        return None
    split = Split.objects.filter(pk=split_id, campaign=campaign).first()
    if split is None:
        raise NotFound(f"Campaign {campaign.pk} has no split {split_id}.")
    return split


# --- rows every export reads ----------------------------------------------------------------


def clip_rows(campaign: Campaign, split: Split | None = None) -> QuerySet:
    """The campaign's aggregated clips as value rows, ordered by clip number, with the fold of
    ``split`` (None outside it). One query; iterate it with ``.iterator()`` for large campaigns."""
    rows = Clip.objects.filter(campaign=campaign, result__isnull=False)
    fold = Value(None, output_field=IntegerField())
    if split is not None:
        rows = rows.annotate(
            membership=FilteredRelation(
                "split_memberships", condition=Q(split_memberships__split=split)
            )
        )
        fold = F("membership__fold")
    return rows.order_by("number").values(
        "pk",
        "number",
        "movie_id",
        "start_s",
        "end_s",
        "video",
        "faces",
        movie_title=F("movie__title"),
        votes=F("result__votes"),
        distribution=F("result__distribution"),
        single_label=F("result__single_label__name"),
        fold=fold,
    )


def bucket_filter(name: str) -> Q:
    """Clips whose duration falls in a Table 2 bucket (``0-2s``, ``2-5s``, ``5s+``)."""
    for bucket, low, high in BUCKETS:
        if bucket == name:
            q = Q(end_s__isnull=False, end_s__gte=F("start_s") + low)
            return q if high == float("inf") else q & Q(end_s__lt=F("start_s") + high)
    valid = [bucket for bucket, _, _ in BUCKETS]
    raise ApplicationError(
        f"Unknown bucket {name!r}. Valid: {', '.join(valid)}.", {"valid_buckets": valid}
    )


def clip_csv_header(names: list[str]) -> list[str]:
    """The per-clip CSV's columns, whichever way it is written."""
    return [
        "clip",
        "movie",
        "duration_s",
        "bucket",
        *[f"votes_{n}" for n in names],
        "single_label",
        "fold",
    ]


def clip_csv_copy(campaign: Campaign, split: Split | None, names: list[str]) -> Iterator[bytes]:
    """The per-clip CSV as PostgreSQL's ``COPY … TO STDOUT WITH CSV HEADER`` writes it, block by
    block: the same columns and values as the generic writer (a test holds them equal), text
    cells neutralised by ``pipeline.csv_safe``'s rule in SQL.

    PostgreSQL only. bench/export.py measured the generic writer at 4.6× this COPY's time for
    DFEW's 16,372 clips (JSON decoding and row shaping in Python); this runs near the bound.
    """
    from psycopg import sql

    votes = [
        sql.SQL("COALESCE((r.votes ->> {})::int, 0) AS {}").format(
            sql.Literal(name), sql.Identifier(f"votes_{name}")
        )
        for name in names
    ]
    buckets = sql.SQL(" ").join(
        sql.SQL("WHEN c.end_s - c.start_s >= {} AND c.end_s - c.start_s < {} THEN {}").format(
            sql.Literal(low), sql.Literal(high), sql.Literal(name)
        )
        for name, low, high in BUCKETS
    )
    query = sql.SQL(
        "COPY (SELECT c.number AS clip, {movie_cell} AS movie, "
        "round((c.end_s - c.start_s)::numeric, 3)::float8 AS duration_s, "
        "CASE {buckets} END AS bucket, {votes}, "
        # NULL, not an empty string: COPY writes NULL as an empty unquoted field, as csv does.
        "{label_cell} AS single_label, s.fold AS fold "
        "FROM {clip} c JOIN {result} r ON r.clip_id = c.id JOIN {movie} m ON m.id = c.movie_id "
        "LEFT JOIN {label} l ON l.id = r.single_label_id "
        "LEFT JOIN {member} s ON s.clip_id = c.id AND s.split_id = {split} "
        "WHERE c.campaign_id = {campaign} ORDER BY c.number) TO STDOUT WITH CSV HEADER"
    ).format(
        # Text cells a spreadsheet would run get a leading quote, as the Python writer does.
        movie_cell=sql.SQL(sql_neutralise("m.title")),
        label_cell=sql.SQL(sql_neutralise("l.name")),
        buckets=buckets,
        votes=sql.SQL(", ").join(votes),
        clip=sql.Identifier(Clip._meta.db_table),
        result=sql.Identifier(ClipLabel._meta.db_table),
        movie=sql.Identifier(Movie._meta.db_table),
        label=sql.Identifier(Label._meta.db_table),
        member=sql.Identifier(SplitClip._meta.db_table),
        split=sql.Literal(split.pk if split is not None else None),
        campaign=sql.Literal(campaign.pk),
    )
    # COPY hands over one row per block: send ~64 KiB at a time, not one write per row.
    buffer = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for block in copy:
            buffer += block
            if len(buffer) >= 1 << 16:
                yield bytes(buffer)
                buffer.clear()
    yield bytes(buffer)


def annotation_rows(campaign: Campaign) -> QuerySet:
    """One row per valid label of the campaign: clip number, annotator, label, submitted at."""
    return (
        Annotation.objects.valid()
        .filter(clip__campaign=campaign)
        .order_by("clip__number", "slot")
        .values_list("clip__number", "annotator__username", "label__name", "created_at")
    )


# --- the DFEW-format export -----------------------------------------------------------------


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
    ``data/<clip>/<clip>_<frame>.jpg`` for every frame of each clip that has media; with
    ``compact`` also ``compact/`` (``pipeline/compact.py``: every frame of each clip with
    media, their votes and folds). Returns a summary. Label files are byte-identical for the
    same split and results.

    A frame is the clip's face crop where the extraction stored them (``Clip.faces``, one per
    frame, as DFEW released face frames and its authors trained on them); a clip without
    crops (registered with its video only) gives its whole decoded frames.
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
        "compact_clips": 0,
    }
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
                frames = _export_frames(row)
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
    replaces the zip."""
    now = timezone.now()
    claimed = LabelExport.objects.filter(
        Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RUNNING, started_at__lt=now - STALE_RUN),
        pk=export_id,
    ).update(status=JobStatus.RUNNING, started_at=now, progress=0.0, stage="starting")
    if not claimed:
        return False
    export = LabelExport.objects.select_related("campaign", "split").get(pk=export_id)

    def step(fraction: float, stage: str) -> None:
        LabelExport.objects.filter(pk=export_id).update(
            progress=round(min(fraction, 0.99), 4), stage=stage[:100]
        )

    name = f"dfew-{export.campaign.slug}-split{export.split_id}"
    stored = f"exports/{export.pk}/{name}.zip"
    try:
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
    except Exception as exc:
        LabelExport.objects.filter(pk=export_id).update(
            status=JobStatus.FAILED, error=str(exc)[:5000], finished_at=timezone.now()
        )
        raise
    LabelExport.objects.filter(pk=export_id).update(
        status=JobStatus.DONE,
        file=stored,
        md5=md5,
        summary=summary,
        progress=1.0,
        stage="done",
        finished_at=timezone.now(),
    )
    return True
