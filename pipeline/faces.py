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
the default is every 5th frame. Once a face is found, the next examined frame is searched
around it first, for a face of about its size, on a window scaled so that face measures
``TRACK_SIDE`` pixels (2–3 ms instead of 9–15 ms for the whole frame with a face in it); the
whole frame is searched again only where that finds nothing. The share of examined frames
with a face is the clip's face ratio.

Frames come as RGB arrays or, from the extraction, as ffmpeg's own yuv420p planes
(``media.I420Frame``): the detector then reads the luma plane as its grey frame and a crop
is cut from the planes and only its few pixels are converted to RGB, so no whole frame is
ever converted.

A clip's crops are stored as **one file**, a JPEG contact sheet (``write_face_frames``): the
crops as tiles of ``size`` × ``size`` pixels, ``SHEET_COLUMNS`` a row, in frame order, the
frame count in the JPEG's comment. Tiles are a multiple of 8 pixels and the chroma is not
subsampled, so every tile decodes from its own JPEG blocks, exactly as if it were a JPEG of
its own; ``read_face_frames`` gives back the T × size × size × 3 stack. One file per clip,
instead of one per frame, is what lets the extraction keep pace with the cut and encode
alone (``bench/extraction.py``), and it is one object to copy to or from an S3 store.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from pipeline.media import I420Frame


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


class FaceDetector(Protocol):
    def detect(self, frame: np.ndarray, near: Box | None = None) -> Box | None:
        """The main face in an H×W×3 RGB or H×W grey (luma) uint8 frame, in its pixels, or
        None. ``near`` is where the face was a few frames before, if anywhere: a detector may
        look around it first. Extraction hands the luma plane unless the detector sets
        ``wants_rgb = True``."""


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
        scale_factor: float = 1.2,
        track_scale_factor: float = 1.1,
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
        # The whole-frame search steps its window 20 % at a time (half the scales of 10 %, at
        # half the cost, and it found the same drawn faces); around a known face, where the
        # search is cheap, 10 % steps fit the box closer.
        self.scale_factor = scale_factor
        self.track_scale_factor = track_scale_factor
        self.min_neighbors = min_neighbors
        self.cascade = _cascade(cascade)

    def detect(self, frame: np.ndarray, near: Box | None = None) -> Box | None:
        """The largest face; with ``near``, first among faces of about its size (⅔ to 3/2)
        in a window of one face size around it, which costs a fraction of the whole search
        (faces move little between examined frames); the whole frame when none is there."""
        height, width = frame.shape[:2]
        scale = min(1.0, self.detect_height / height)
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            grey = shrink(grey, size)
        smallest = max(16, round(min(grey.shape) * self.min_face))
        if near is not None:
            box = self._near(grey, scale, near, smallest)
            if box is not None:
                return box
        box = self._largest(grey, (smallest, smallest), (0, 0), self.scale_factor)
        return None if box is None else Box(*(round(float(v) / scale) for v in box))

    # Around a known face the window is scaled so that the face measures about this many
    # pixels: the cascade's own 24-pixel window fits it, and a large face costs no more to
    # find than a small one.
    TRACK_SIDE = 48

    def _near(self, grey: np.ndarray, scale: float, near: Box, smallest: int) -> Box | None:
        """A face of ⅔ to 3/2 the size of ``near`` within one face size around it."""
        x, y, w, h = (round(v * scale) for v in (near.x, near.y, near.w, near.h))
        side = max(w, h)
        x0, y0 = max(0, x - side), max(0, y - side)
        window = grey[y0 : y + h + side, x0 : x + w + side]
        zoom = min(1.0, self.TRACK_SIDE / max(1, side))
        low = max(24, round(max(smallest, side * 2 / 3) * zoom))
        high = round(side * 3 / 2 * zoom)
        if zoom < 1.0:
            size = (max(1, round(window.shape[1] * zoom)), max(1, round(window.shape[0] * zoom)))
            window = shrink(window, size)
        if low > high or min(window.shape) < low:
            return None
        found = self._largest(window, (low, low), (high, high), self.track_scale_factor)
        if found is None:
            return None
        fx, fy, fw, fh = (v / zoom for v in found)
        return Box(*(round(float(v) / scale) for v in (x0 + fx, y0 + fy, fw, fh)))

    def _largest(self, grey: np.ndarray, min_size, max_size, step: float) -> tuple | None:
        found = self.cascade.detectMultiScale(
            grey,
            scaleFactor=step,
            minNeighbors=self.min_neighbors,
            minSize=min_size,
            maxSize=max_size,
        )
        if len(found) == 0:
            return None
        return tuple(max(found, key=lambda box: box[2] * box[3]))


def _square(
    width: int, height: int, box: Box | None, margin: float, even: bool = False
) -> tuple[int, int, int]:
    """(x0, y0, side) of the crop square: ``box`` widened by ``margin`` on each side (the
    centred square when None), inside the frame; ``even`` puts it on the chroma grid."""
    if box is None:
        side = min(height, width)
        cx, cy = width / 2, height / 2
    else:
        side = min(height, width, round(max(box.w, box.h) * (1 + 2 * margin)))
        cx, cy = box.x + box.w / 2, box.y + box.h / 2
    if even:
        side = max(2, side - side % 2)
    x0 = int(min(max(0, round(cx - side / 2)), width - side))
    y0 = int(min(max(0, round(cy - side / 2)), height - side))
    if even:
        x0, y0 = x0 - x0 % 2, y0 - y0 % 2
    return x0, y0, side


def crop(
    frame: np.ndarray | I420Frame, box: Box | None, size: int, margin: float = 0.2
) -> np.ndarray:
    """A size×size RGB crop of ``box`` widened by ``margin`` on each side (the centred square
    of the frame when ``box`` is None), kept inside the frame.

    From an ``I420Frame`` the square is cut from each plane and shrunk there (luma to
    ``size``, chroma to ``size / 2``); only the crop's pixels are converted to RGB."""
    if isinstance(frame, I420Frame):
        if size % 2:
            raise ValueError(f"a crop of a yuv420p frame needs an even size, got {size}")
        x0, y0, side = _square(frame.width, frame.height, box, margin, even=True)
        half, c0, r0 = size // 2, x0 // 2, y0 // 2
        planes = np.empty((size * 3 // 2, size), np.uint8)
        planes[:size] = shrink(frame.y[y0 : y0 + side, x0 : x0 + side], (size, size))
        u = shrink(frame.u[r0 : r0 + side // 2, c0 : c0 + side // 2], (half, half))
        v = shrink(frame.v[r0 : r0 + side // 2, c0 : c0 + side // 2], (half, half))
        planes[size : size + size // 4] = u.reshape(size // 4, size)
        planes[size + size // 4 :] = v.reshape(size // 4, size)
        return cv2.cvtColor(planes, cv2.COLOR_YUV2RGB_I420)
    height, width = frame.shape[:2]
    x0, y0, side = _square(width, height, box, margin)
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


# A clip's contact sheet: this many tiles a row (16 × 112 px = 1,792 px wide), and its JPEG
# comment, which carries the frame count (the last row may be part empty).
SHEET_COLUMNS = 16
_SHEET_COMMENT = re.compile(rb"dfer-faces frames=(\d+) size=(\d+)")


def write_face_sheet(crops: list[np.ndarray], path: str | Path, quality: int = 90) -> Path:
    """Writes equal square RGB crops as one JPEG contact sheet (see the module's docstring),
    to a temporary file moved into place, so a re-run replaces the old sheet whole."""
    if not crops:
        raise ValueError("a face sheet needs at least one crop")
    size = crops[0].shape[0]
    if size % 8:
        raise ValueError(f"face crops tile on the 8-pixel JPEG grid: {size} is not a multiple")
    columns = min(SHEET_COLUMNS, len(crops))
    rows = math.ceil(len(crops) / columns)
    sheet = np.zeros((rows * size, columns * size, 3), np.uint8)
    for i, face in enumerate(crops):
        r, c = divmod(i, columns)
        sheet[r * size : (r + 1) * size, c * size : (c + 1) * size] = face
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        Image.fromarray(sheet).save(
            tmp,
            format="JPEG",
            quality=quality,
            subsampling=0,  # 4:4:4: no chroma shared across tile edges
            comment=f"dfer-faces frames={len(crops)} size={size}".encode(),
        )
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def read_face_frames(path: str | Path) -> np.ndarray:
    """A clip's face crops as a T × size × size × 3 uint8 RGB stack, in frame order, from its
    contact sheet (or from a folder of one JPEG per frame, ``00001.jpg``…, the layout clips
    extracted before the sheet have)."""
    path = Path(path)
    if path.is_dir():
        names = sorted(p for p in path.iterdir() if p.suffix == ".jpg")
        return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in names])
    with Image.open(path) as image:
        found = _SHEET_COMMENT.search(image.info.get("comment", b""))
        if found is None:
            raise ValueError(f"{path.name} is not a face sheet (no frame count in its comment)")
        sheet = np.asarray(image.convert("RGB"))
    count, size = int(found.group(1)), int(found.group(2))
    columns = sheet.shape[1] // size
    tiles = sheet.reshape(sheet.shape[0] // size, size, columns, size, 3).swapaxes(1, 2)
    return np.ascontiguousarray(tiles.reshape(-1, size, size, 3)[:count])


def write_face_frames(
    frames: Iterable[np.ndarray | I420Frame],
    path: str | Path,
    detector: FaceDetector | None = None,
    size: int = 112,
    quality: int = 90,
    detect_every: int = 5,
) -> FaceFrames:
    """Crops every frame's face and writes the crops as one contact sheet at ``path``
    (``write_face_sheet``; nothing is written when ``frames`` raises, so a failed run leaves
    the old sheet). ``n_examined`` frames went through the detector and ``n_found`` of them
    had a face."""
    detector = detector or HaarFaceDetector()
    wants_rgb = getattr(detector, "wants_rgb", False)
    crops: list[np.ndarray] = []
    n_found = n_examined = 0
    last: Box | None = None
    for frame in frames:
        if len(crops) % detect_every == 0:
            n_examined += 1
            if isinstance(frame, I420Frame):
                seen = frame.rgb() if wants_rgb else frame.y
            else:
                seen = frame
            box = detector.detect(seen, near=last)
            if box is not None:
                n_found += 1
                last = box
        crops.append(crop(frame, last, size))
    if crops:  # no frame, no sheet: the caller reports the empty clip
        write_face_sheet(crops, path, quality)
    return FaceFrames(len(crops), n_found, n_examined)
