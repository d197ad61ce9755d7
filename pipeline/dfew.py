"""The DFEW release layout: an export that code written for DFEW trains on unchanged.

The layout (``/work/shared/reference/dfew-release-format.md``)::

    <root>/data/<clip:05d>/<clip:05d>_<frame:05d>.jpg     every frame of every clip, 1-based
    <root>/label/single_trainset_<f>.csv                   f = 1..k, columns video_name,label
    <root>/label/single_testset_<f>.csv
    <root>/label/votes.csv                                 video_name, 1happy … 7fear, label
    <root>/faces/<clip:05d>.csv                            per frame (1-based, as the images)
                                                           the face's box, score, landmarks;
                                                           empty fields: no face in that frame

Only single-labelled clips (``label > 0``) appear in the split files; fold f's test set is the
clips of fold f, its train set the clips of the other folds. ``votes.csv`` holds every clip,
with ``label`` 0 for a clip that is not single-labelled.

Writers: :func:`write_labels`, :func:`write_frames`, and :func:`staged_directory`, which builds
an export beside its final place and moves it in only when complete. The ``*_like_authors``
functions are reference readers (tests, docs): they read the way the DFEW authors' loader
(``libs/DFEW_Dataset.py``) does, so a test can check an export against that loader's behaviour
without torch.
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline import csv_safe

# The authors' loader samples this many frames per clip.
AUTHORS_FRAMES = 16
# Frame numbers are zero-padded to 5 digits; past 99999 the names no longer sort numerically.
MAX_FRAMES = 99_999


@dataclass(frozen=True)
class ReleaseClip:
    """One clip of a release."""

    number: int  # the clip number (DFEW video_name), >= 1
    votes: tuple[int, ...]  # votes per label, in label-code order
    label: int  # 1-based single-label code, 0 when not single-labelled
    fold: int  # 1..k for a single-labelled clip in the split, 0 otherwise


def label_columns(labels: Sequence[tuple[int, str]]) -> list[str]:
    """DFEW's vote-table column names ``<code><name>``: ``(1, "happy")`` -> ``"1happy"``."""
    return [f"{code}{name}" for code, name in labels]


def _check_labels(labels: Sequence[tuple[int, str]]) -> None:
    codes = [code for code, _ in labels]
    if not codes:
        raise ValueError("no labels: a release needs at least one label")
    if codes != list(range(1, len(codes) + 1)):
        raise ValueError(
            f"label codes must be 1..{len(codes)} in order (the loader uses code - 1 as the "
            f"class index), got {codes}"
        )


def _check_clips(clips: Sequence[ReleaseClip], n_labels: int, k: int) -> None:
    seen: set[int] = set()
    for clip in clips:
        if clip.number < 1:
            raise ValueError(f"clip {clip.number}: clip numbers start at 1")
        if clip.number in seen:
            raise ValueError(f"clip {clip.number}: duplicate clip number")
        seen.add(clip.number)
        if len(clip.votes) != n_labels:
            raise ValueError(
                f"clip {clip.number}: {len(clip.votes)} vote counts for {n_labels} labels"
            )
        if any(v < 0 for v in clip.votes):
            raise ValueError(f"clip {clip.number}: negative vote count in {clip.votes}")
        if not 0 <= clip.label <= n_labels:
            raise ValueError(
                f"clip {clip.number}: label code {clip.label} is not one of the label codes "
                f"1..{n_labels} (or 0 for not single-labelled)"
            )
        if not 0 <= clip.fold <= k:
            raise ValueError(f"clip {clip.number}: fold {clip.fold} is outside 0..{k}")
    singles = [clip for clip in clips if clip.label > 0]
    if any(clip.fold > 0 for clip in singles):
        unassigned = sorted(clip.number for clip in singles if clip.fold == 0)
        if unassigned:
            shown = ", ".join(map(str, unassigned[:10])) + (", …" if len(unassigned) > 10 else "")
            raise ValueError(
                f"single-labelled clip(s) {shown} have fold 0 while other clips have folds: "
                f"every single-labelled clip must be in the split"
            )


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[int]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as f:
        # Numbers only today; any text cell (the header) goes through the one CSV rule.
        writer = csv_safe.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def write_labels(
    root: Path, clips: Sequence[ReleaseClip], labels: Sequence[tuple[int, str]], k: int
) -> list[Path]:
    """Writes the split files and the vote table under ``root/label``.

    For f = 1..k: ``single_trainset_<f>.csv`` and ``single_testset_<f>.csv``, columns exactly
    ``video_name,label``, holding only single-labelled clips with a fold; the test set of fold
    f is fold f, the train set the other folds; rows sorted by ``video_name``. Then
    ``votes.csv``: ``video_name``, the :func:`label_columns`, ``label`` (0 when not
    single-labelled), every clip, sorted. The same input gives byte-identical files.

    ``labels`` must have the codes 1..K in order (DFEW: 1 happy … 7 fear). A clip that is not
    single-labelled may carry any fold in 0..k: it is left out of the split files regardless.
    When no clip has a fold, the split files hold just their header.

    Everything is checked before anything is written; a bad input raises ValueError and writes
    nothing. Returns the paths written: trainset_1, testset_1, …, trainset_k, testset_k, votes.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    _check_labels(labels)
    _check_clips(clips, len(labels), k)

    out = Path(root) / "label"
    out.mkdir(parents=True, exist_ok=True)
    ordered = sorted(clips, key=lambda clip: clip.number)
    in_split = [clip for clip in ordered if clip.label > 0 and clip.fold > 0]
    written: list[Path] = []
    for fold in range(1, k + 1):
        train = [(clip.number, clip.label) for clip in in_split if clip.fold != fold]
        test = [(clip.number, clip.label) for clip in in_split if clip.fold == fold]
        for split, rows in (("train", train), ("test", test)):
            path = out / f"single_{split}set_{fold}.csv"
            _write_csv(path, ["video_name", "label"], rows)
            written.append(path)
    votes = out / "votes.csv"
    _write_csv(
        votes,
        ["video_name", *label_columns(labels), "label"],
        ((clip.number, *(int(v) for v in clip.votes), clip.label) for clip in ordered),
    )
    written.append(votes)
    return written


def clip_folder(root: Path, number: int) -> Path:
    """``root/data/<number:05d>``, the folder of one clip's frames."""
    return Path(root) / "data" / f"{number:05d}"


def write_frames(root: Path, number: int, frames: Iterable[np.ndarray], quality: int = 95) -> int:
    """Writes a clip's frames as ``root/data/<n:05d>/<n:05d>_<i:05d>.jpg``, i = 1.., and returns
    how many.

    Each frame is an H×W×3 uint8 RGB array, saved as a JPEG by Pillow. The frames are written
    into a staged folder that replaces the clip's folder only once every frame is written: a
    rewrite leaves exactly the new frames, and a bad frame (ValueError) leaves the old folder
    as it was. A clip needs at least one frame (the authors' loader cannot read an empty one)
    and at most 99,999 (the 5-digit names must sort in frame order).
    """
    from PIL import Image

    if number < 1:
        raise ValueError(f"clip {number}: clip numbers start at 1")
    if not 1 <= quality <= 100:
        raise ValueError(f"JPEG quality must be 1..100, got {quality}")
    final = clip_folder(root, number)
    count = 0
    with staged_directory(final) as staging:
        for count, frame in enumerate(frames, start=1):
            frame = np.asarray(frame)
            if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                raise ValueError(
                    f"clip {number}, frame {count}: expected an H×W×3 uint8 RGB array, got "
                    f"{frame.shape} {frame.dtype}"
                )
            if count > MAX_FRAMES:
                raise ValueError(f"clip {number}: more than {MAX_FRAMES} frames")
            name = f"{number:05d}_{count:05d}.jpg"
            Image.fromarray(frame).save(staging / name, format="JPEG", quality=quality)
        if count == 0:
            raise ValueError(f"clip {number}: no frames")
    return count


def write_face_track(root: Path, number: int, track) -> Path:
    """Writes a clip's face track (``pipeline.face_track_file``) as
    ``root/faces/<number:05d>.csv``, frames numbered from 1 like its ``data/`` images; a
    frame whose fields are empty has no face (its image is the nearest frame's crop)."""
    from pipeline.face_track_file import write_track

    if number < 1:
        raise ValueError(f"clip {number}: clip numbers start at 1")
    return write_track(track, Path(root) / "faces" / f"{number:05d}.csv", first_frame=1)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """Yields a fresh, empty folder beside ``final`` (same parent, a hidden name with the pid);
    when the block ends without an exception, moves it to ``final``.

    If ``final`` exists it is renamed aside, the new folder renamed in, and the old one removed:
    a reader sees either the old folder or the complete new one, never a half-written one (on
    one filesystem, renames are atomic; between the two renames ``final`` is briefly absent).
    If the block raises, the staged folder is removed, ``final`` is untouched, and the exception
    propagates. The parent folder is created if missing.
    """
    final = Path(final)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging = parent / f".{final.name}.staging-{tag}"
    staging.mkdir()  # mode from the umask, unlike tempfile.mkdtemp's 0o700
    try:
        yield staging
        if os.path.lexists(final):
            aside = parent / f".{final.name}.old-{tag}"
            os.rename(final, aside)
            try:
                os.rename(staging, final)
            except BaseException:
                os.rename(aside, final)
                raise
            _remove(aside)
        else:
            os.rename(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def read_split_like_authors(root: Path, fold: int, split: str) -> tuple[list[int], list[int]]:
    """Not for production: reads a split file the way the authors' loader does,
    ``pandas.read_csv(root/"label"/f"single_{split}set_{fold}.csv")`` then ``df["video_name"]``
    and ``df["label"]``. Returns ``(video_names, labels)``."""
    import pandas as pd

    if split not in ("train", "test"):
        raise ValueError(f"split is 'train' or 'test', got {split!r}")
    df = pd.read_csv(Path(root) / "label" / f"single_{split}set_{fold}.csv")
    return [int(v) for v in df["video_name"]], [int(v) for v in df["label"]]


def indices_like_authors(
    n_frames: int, train: bool, rng: random.Random | None = None, count: int = AUTHORS_FRAMES
) -> list[int]:
    """The authors' frame choice (``generate_index``, non-consecutive): indices into a clip's
    sorted frame list.

    A clip with fewer than ``count`` frames has its index list repeated, whole, until it is at
    least ``count`` long (10 frames -> 20 entries, 0..9 0..9). Then, at test time, the entries
    at ``numpy.linspace(0, len - 1, count).astype(int)``; at training time, the entries at
    ``sorted(rng.sample(range(len), count))``. ``rng`` defaults to the ``random`` module, as
    the authors' code uses.
    """
    if n_frames <= 0:
        raise ValueError("a clip with no frames (the authors' loader fails on it)")
    base = list(range(n_frames))
    entries = list(base)
    while len(entries) < count:
        entries += base
    if train:
        positions = sorted((rng or random).sample(range(len(entries)), count))
    else:
        positions = np.linspace(0, len(entries) - 1, count).astype(int).tolist()
    return [entries[p] for p in positions]


def sample_like_authors(
    root: Path, number: int, train: bool, rng: random.Random | None = None
) -> list[Path]:
    """Not for production: the 16 frame paths the authors' loader would read for clip
    ``number``: ``sorted(glob(data/<number:05d>/*))`` indexed by :func:`indices_like_authors`."""
    paths = sorted(glob.glob(str(clip_folder(root, number) / "*")))
    if not paths:
        raise ValueError(f"clip {number}: no frames under {clip_folder(root, number)}")
    return [Path(paths[i]) for i in indices_like_authors(len(paths), train, rng)]
