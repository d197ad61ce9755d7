"""A clip's face track as one small CSV file: per frame the target face's box, detector score,
five landmarks and whether its crop is aligned, or nothing where the frame has no face.

Columns (`COLUMNS`)::

    frame,x,y,w,h,score,eye_l_x,eye_l_y,eye_r_x,eye_r_y,nose_x,nose_y,
    mouth_l_x,mouth_l_y,mouth_r_x,mouth_r_y,aligned

``frame`` numbers every frame of the clip in order (from 0 in the stored track, where frame 0
is the clip's first frame, the extraction's frame rule; from 1 in the DFEW-format export, as
its ``<clip>_<frame>.jpg`` images are numbered); ``x, y, w, h`` is the box and the landmarks
are points, all in the pixels of the normalised clip (the extraction's video); the landmarks
are, as ``pipeline.faces.Detection`` gives them, the eye on the picture's left, the eye on its
right, the nose tip, the mouth's left and right corners. A frame without a face has every
field after ``frame`` empty; a face without landmarks (the Haar fallback) has them empty and
``aligned`` 0 (its crop is the box's, not aligned to the template).

Written under a temporary name beside its place and moved in (``stage_track`` +
``pipeline.face_sheets.commit``), so a reader never sees half a track. Pure: no Django.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.face_sheets import commit

LANDMARKS = ("eye_l", "eye_r", "nose", "mouth_l", "mouth_r")
COLUMNS = (
    "frame",
    "x",
    "y",
    "w",
    "h",
    "score",
    *(f"{name}_{axis}" for name in LANDMARKS for axis in "xy"),
    "aligned",
)


@dataclass(frozen=True)
class TrackFrame:
    """The target face in one frame: its box (x, y, w, h), score (0..1), five landmarks
    ((x, y) each, in `LANDMARKS` order) or None, and whether its crop is aligned."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None
    aligned: bool = False

    @property
    def side(self) -> float:
        return max(self.box[2], self.box[3])

    def as_json(self) -> dict:
        return {
            "box": list(self.box),
            "score": self.score,
            "landmarks": None if self.landmarks is None else [list(p) for p in self.landmarks],
            "aligned": self.aligned,
        }


Track = list[TrackFrame | None]


def from_detections(detections: Sequence, aligned: Sequence[bool] | None = None) -> Track:
    """A track from per-frame detections (``pipeline.faces.Detection``: ``box`` with x, y, w,
    h; ``score``; ``landmarks`` or None) or None, and per-frame ``aligned`` flags."""
    track: Track = []
    for i, det in enumerate(detections):
        if det is None:
            track.append(None)
            continue
        box = det.box
        marks = getattr(det, "landmarks", None)
        track.append(
            TrackFrame(
                (box.x, box.y, box.w, box.h),
                float(getattr(det, "score", 1.0)),
                None if marks is None else tuple((float(x), float(y)) for x, y in marks),
                bool(aligned[i]) if aligned is not None else False,
            )
        )
    return track


def _number(value: float, digits: int) -> str:
    value = round(float(value), digits)
    return str(int(value)) if value == int(value) else f"{value:.{digits}f}".rstrip("0")


def track_rows(track: Iterable[TrackFrame | None], first_frame: int = 0) -> Iterable[list[str]]:
    """The CSV rows (without the header) of ``track``, frames numbered from ``first_frame``."""
    empty = [""] * (len(COLUMNS) - 1)
    for i, face in enumerate(track, start=first_frame):
        if face is None:
            yield [str(i), *empty]
            continue
        marks = (
            [_number(v, 1) for point in face.landmarks for v in point]
            if face.landmarks is not None
            else [""] * (2 * len(LANDMARKS))
        )
        yield [
            str(i),
            *(_number(v, 1) for v in face.box),
            _number(face.score, 3),
            *marks,
            "1" if face.aligned else "0",
        ]


def write_track_to(stream: IO[str], track: Iterable[TrackFrame | None], first_frame: int = 0):
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(track_rows(track, first_frame))


def stage_track(track: Sequence[TrackFrame | None], path: str | Path, first_frame: int = 0) -> Path:
    """Writes the track to a temporary file beside ``path`` (``.<stem>.<pid>.tmp.csv``, the
    partial-output name the extraction's sweep knows) and returns it, for the caller to move
    into place (``commit``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        with open(tmp, "w", newline="", encoding="ascii") as stream:
            write_track_to(stream, track, first_frame)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def write_track(track: Sequence[TrackFrame | None], path: str | Path, first_frame: int = 0) -> Path:
    """Writes the track at ``path`` whole (staged, then moved into place)."""
    return commit(stage_track(track, path, first_frame), path)


def _float(row: dict, name: str, line: int) -> float:
    try:
        value = float(row[name])
    except ValueError:
        raise ValueError(f"line {line}: {name} {row[name]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"line {line}: {name} {row[name]!r} is not a finite number")
    return value


def read_track(source: str | Path | IO[str], first_frame: int = 0) -> Track:
    """A track from its CSV (a path or a text stream), one entry per frame in order. Raises
    ValueError, naming the line, for another header, frames out of order, or a face row with
    a missing or non-numeric field."""
    if isinstance(source, (str, Path)):
        with open(source, newline="", encoding="ascii") as stream:
            return read_track(stream, first_frame)
    text = source.read()
    if isinstance(text, bytes):
        text = text.decode("ascii")
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise ValueError(f"line 1: the columns are not a face track's ({','.join(COLUMNS)})")
    track: Track = []
    for line, row in enumerate(reader, start=2):
        if row["frame"] != str(first_frame + len(track)):
            raise ValueError(
                f"line {line}: frame {row['frame']!r}, expected {first_frame + len(track)}"
            )
        if row["x"] == "":
            track.append(None)
            continue
        box = tuple(_float(row, name, line) for name in "xywh")
        marks = None
        if row["eye_l_x"] != "":
            marks = tuple(
                (_float(row, f"{n}_x", line), _float(row, f"{n}_y", line)) for n in LANDMARKS
            )
        track.append(TrackFrame(box, _float(row, "score", line), marks, row["aligned"] == "1"))
    return track


def nearest_face(track: Sequence[TrackFrame | None]) -> list[int]:
    """Per frame, the frame whose crop stands for it: itself where it has a face; otherwise
    the nearest frame with one (the earlier of two as near); itself when no frame has a face.
    The DFEW-format export keeps one image per frame this way (its loaders index frames)."""
    n = len(track)
    before = [-1] * n
    last = -1
    for i, face in enumerate(track):
        if face is not None:
            last = i
        before[i] = last
    nearest = list(range(n))
    after = -1
    for i in range(n - 1, -1, -1):
        if track[i] is not None:
            after = i
            continue
        b, a = before[i], after
        if b < 0 and a < 0:
            continue
        if a < 0 or (b >= 0 and i - b <= a - i):
            nearest[i] = b
        else:
            nearest[i] = a
    return nearest
