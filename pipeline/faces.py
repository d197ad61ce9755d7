"""Face crops for every frame of a clip, behind a small detector interface.

The default detector is OpenCV's Haar cascade, which ships inside the opencv-python-headless
wheel (pinned below 5: version 5's wheel has no cascades). It looks at a grey copy of the frame
scaled down to ``detect_height`` pixels, which keeps per-frame detection cheap (see
``bench/extraction.py``); the crop is cut from the full-size frame. A better detector replaces
it by offering ``detect(frame) -> Box | None``.

Every frame gets a crop, as the DFEW-format export and the authors' training (16 frames
sampled afresh from all of them each epoch) expect. The detector runs on every
``detect_every``-th frame, and frames in between, or where it found nothing,
take the last box found (before any, the centred square). Measured by
``bench/extraction.py``: detection on every frame costs more than the cut and encode
themselves on a 360p source, while faces in film move little within a fifth of a second, so
the default is every 5th frame. The share of examined frames with a face is the clip's face
ratio.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray) -> Box | None:
        """The main face in an H×W×3 RGB uint8 frame, in its pixels, or None."""


@cache
def _cascade(name: str) -> cv2.CascadeClassifier:
    cascade = cv2.CascadeClassifier(os.path.join(cv2.data.haarcascades, name))
    if cascade.empty():
        raise RuntimeError(f"OpenCV has no Haar cascade {name!r} (opencv-python-headless<5?)")
    return cascade


class HaarFaceDetector:
    """The largest frontal face found by OpenCV's Haar cascade on a downscaled grey frame."""

    def __init__(
        self,
        detect_height: int = 160,
        min_face: float = 0.15,
        scale_factor: float = 1.1,
        min_neighbors: int = 4,
        cascade: str = "haarcascade_frontalface_default.xml",
        cv_threads: int | None = 1,
    ):
        # One OpenCV thread: a worker process per core scales better than threads that
        # compete with ffmpeg and the other workers for the same cores (None: OpenCV's own).
        if cv_threads is not None:
            cv2.setNumThreads(cv_threads)
        self.detect_height = detect_height
        self.min_face = min_face
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.cascade = _cascade(cascade)

    def detect(self, frame: np.ndarray) -> Box | None:
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_height / height)
        grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = shrink(grey, size)
        smallest = max(16, round(min(grey.shape) * self.min_face))
        found = self.cascade.detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(smallest, smallest),
        )
        if len(found) == 0:
            return None
        x, y, w, h = max(found, key=lambda box: box[2] * box[3])
        return Box(*(round(float(v) / scale) for v in (x, y, w, h)))


def crop(frame: np.ndarray, box: Box | None, size: int, margin: float = 0.2) -> np.ndarray:
    """A size×size crop of ``box`` widened by ``margin`` on each side (the centred square of
    the frame when ``box`` is None), kept inside the frame."""
    height, width = frame.shape[:2]
    if box is None:
        side = min(height, width)
        cx, cy = width / 2, height / 2
    else:
        side = min(height, width, round(max(box.w, box.h) * (1 + 2 * margin)))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
    x0 = int(min(max(0, round(cx - side / 2)), width - side))
    y0 = int(min(max(0, round(cy - side / 2)), height - side))
    return shrink(frame[y0 : y0 + side, x0 : x0 + side], (size, size))


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes to ``size`` (width, height): halvings with a Gaussian (pyrDown) while more than
    twice too large, then bilinear. As smooth as INTER_AREA here, at a tenth of its cost."""
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.pyrDown(image)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


@dataclass(frozen=True)
class FaceFrames:
    n_frames: int
    n_found: int
    n_examined: int

    @property
    def ratio(self) -> float:
        return self.n_found / self.n_examined if self.n_examined else 0.0


def face_frame_name(index: int) -> str:
    """The file name of frame ``index`` (0-based) of a clip's face folder."""
    return f"{index + 1:05d}.jpg"


def write_face_frames(
    frames: Iterable[np.ndarray],
    folder: str | Path,
    detector: FaceDetector | None = None,
    size: int = 112,
    quality: int = 90,
    detect_every: int = 5,
) -> FaceFrames:
    """Writes every frame's face crop as ``folder/00001.jpg``…, staged in a sibling folder
    that replaces ``folder`` only when complete (a re-run replaces, never mixes).
    ``n_examined`` frames went through the detector and ``n_found`` of them had a face."""
    detector = detector or HaarFaceDetector()
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    n_frames = n_found = n_examined = 0
    last: Box | None = None
    try:
        for frame in frames:
            if n_frames % detect_every == 0:
                n_examined += 1
                box = detector.detect(frame)
                if box is not None:
                    n_found += 1
                    last = box
            face = crop(frame, last, size)
            ok, jpeg = cv2.imencode(
                ".jpg", cv2.cvtColor(face, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
            )
            if not ok:
                raise RuntimeError("OpenCV could not encode a face crop as JPEG")
            (staged / face_frame_name(n_frames)).write_bytes(jpeg.tobytes())
            n_frames += 1
        _swap_in(staged, folder)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return FaceFrames(n_frames, n_found, n_examined)


def _swap_in(staged: Path, folder: Path) -> None:
    """Moves ``staged`` to ``folder``; an old ``folder`` is moved aside first, then removed."""
    old = folder.with_name(f".{folder.name}.{os.getpid()}.old")
    if folder.exists():
        os.replace(folder, old)
    os.replace(staged, folder)
    shutil.rmtree(old, ignore_errors=True)
