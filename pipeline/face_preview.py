"""The face track of any span of a movie, as the extraction would find it
(``manage.py faces_preview``): the same decode (``media.clip_command``: the span's frames,
frame-exact, scaled to at most ``max_height``, as yuv420p planes), the same detector and
tracker (``faces.FaceCrops``), with the boxes given back in the movie's own pixels.

``preview_faces`` gives the per-frame detections; ``write_csv`` writes them as
``frame,x,y,w,h,score`` (frame 0 is the span's first frame: ``media.frame_span``'s rule; x to
score empty for no face); ``write_sheet`` draws the boxes on a contact sheet of the frames.
"""

from __future__ import annotations

import csv
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline import media
from pipeline.face_detectors import Detection
from pipeline.face_sheets import commit, tiled
from pipeline.face_track import scaled
from pipeline.faces import FaceCrops

# The contact sheet: frames this many pixels wide, this many a row.
THUMB_WIDTH = 192
THUMB_COLUMNS = 8


@dataclass
class FacePreview:
    first_frame: int  # the span's first frame in the movie
    fps: float
    width: int  # the movie's
    height: int
    detections: list[Detection | None]  # per frame of the span, in the movie's pixels
    thumbs: list[np.ndarray]  # per frame, RGB, THUMB_WIDTH wide
    second_face_frames: int

    @property
    def n_frames(self) -> int:
        return len(self.detections)


def check_span(info: media.VideoInfo, start_s: float, end_s: float) -> None:
    """Raises ValueError, saying why, for a span that is not within the movie."""
    if not (math.isfinite(start_s) and math.isfinite(end_s)):
        raise ValueError("the span's start and end must be numbers of seconds")
    if start_s < 0 or end_s <= start_s:
        raise ValueError(f"the span {start_s:g}–{end_s:g} s is empty or starts before 0")
    if start_s >= info.duration_s:
        raise ValueError(f"the span starts at {start_s:g} s, after the movie's end")
    _, count = media.frame_span(start_s, min(end_s, info.duration_s), media.frame_rate(info.fps))
    if count < 1:
        raise ValueError(f"{start_s:g}–{end_s:g} s holds no frame at {info.fps:g} fps")


def preview_faces(
    source: str | Path,
    start_s: float,
    end_s: float,
    *,
    detector,
    target: tuple[float, float] | None = None,
    max_height: int = 720,
    detect_every: int = 5,
    hold_s: float | None = 0.2,
) -> FacePreview:
    """The span's face track (module docstring). ``target``: a point in the movie's pixels.
    Raises MediaError for a file that is not a playable video, ValueError for a bad span."""
    source = Path(source)
    if not source.is_file():
        raise ValueError(f"no such file: {source}")
    info = media.probe_movie(source)
    check_span(info, start_s, end_s)
    end_s = min(end_s, info.duration_s)  # a span past the end: up to the end
    rate = media.frame_rate(info.fps)
    first, count = media.frame_span(start_s, end_s, rate)
    width, height = media.output_size(info.width, info.height, max_height)
    sx, sy = info.width / width, info.height / height
    point = None if target is None else (target[0] / sx, target[1] / sy)
    hold = None if hold_s is None else round(hold_s * float(rate))
    crops = FaceCrops(detector, 112, detect_every, None, hold, target=point)
    thumb = (THUMB_WIDTH, max(2, round(THUMB_WIDTH * height / width)))
    thumbs = []
    with tempfile.TemporaryDirectory() as tmp:
        spec = media.ClipSpec(start_s, end_s, max_height=max_height)
        # The extraction's own command: the clip it encodes is thrown away with ``tmp``.
        command = media.clip_command(source, Path(tmp) / "clip.mp4", info, spec, True)
        frames = media.frames_of(command.compile(cmd=media.ffmpeg_binary()), width, height, True)
        for frame in frames:
            crops.add(frame)
            thumbs.append(cv2.resize(frame.rgb(), thumb, interpolation=cv2.INTER_AREA))
    if len(thumbs) != count:
        raise media.MediaError(f"{len(thumbs)} of the span's {count} frames decoded")
    found = [None if d is None else scaled(d, sx, sy) for d in crops.detections]
    return FacePreview(
        first, float(rate), info.width, info.height, found, thumbs, crops.second_face_frames
    )


def write_csv(preview: FacePreview, path: str | Path) -> Path:
    """``frame,x,y,w,h,score`` per frame of the span, x to score empty for no face."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["frame", "x", "y", "w", "h", "score"])
        for k, d in enumerate(preview.detections):
            if d is None:
                writer.writerow([k, "", "", "", "", ""])
            else:
                writer.writerow([k, d.box.x, d.box.y, d.box.w, d.box.h, f"{d.score:.3f}"])
    return commit(tmp, path)


def write_sheet(preview: FacePreview, path: str | Path) -> Path:
    """The span's frames, ``THUMB_COLUMNS`` a row, the target's box drawn on each (green;
    its landmarks as dots), its frame number in the corner; a PNG."""
    path = Path(path)
    scale = THUMB_WIDTH / preview.width
    drawn = []
    for k, (thumb, d) in enumerate(zip(preview.thumbs, preview.detections, strict=True)):
        thumb = thumb.copy()
        if d is not None:
            b = d.box
            top_left = (round(b.x * scale), round(b.y * scale))
            bottom_right = (round((b.x + b.w) * scale), round((b.y + b.h) * scale))
            cv2.rectangle(thumb, top_left, bottom_right, (0, 255, 0), 1)
            for x, y in d.landmarks or ():
                cv2.circle(thumb, (round(x * scale), round(y * scale)), 1, (255, 0, 0), -1)
        cv2.putText(thumb, str(k), (3, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 0), 1)
        drawn.append(thumb)
    sheet = tiled(drawn, min(THUMB_COLUMNS, len(drawn)))
    tmp = path.with_name(f".{path.stem}.tmp.png")
    Image.fromarray(sheet).save(tmp, format="PNG")
    return commit(tmp, path)
