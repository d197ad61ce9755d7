"""A real-face test set: real photographs moved through generated movies with known boxes.

The photographs ship inside packages we already install, so the set needs no download and no
file in the repository: Grace Hopper from matplotlib's sample data (the target) and Eileen
Collins (``skimage.data.astronaut``, scikit-image is a dev dependency) as the smaller second
face. Each photograph's face box (``PHOTOS``) is a square centred on the face, its side the
geometric mean of the boxes MTCNN, libfacedetection and Haar draw on the still photograph, so
no detector's own convention is the truth.

``real_face_movie(seed)`` lays out a movie of stretches (``STRETCHES``): a zoom from 220 px
faces down to 60 px, small faces of 40–60 px moving, a zoom back in, a dark scene, a whip pan
with motion blur while the face shrinks, a dark blurred pan, a cutaway to an empty shot, the
target beside a second, smaller face, and an empty end. The photograph is pasted with a
feathered ellipse (head and a little of the shoulders) on a smooth seeded background. The
ground truth (``truth``: the target's box or None, per frame; ``others``: the second face's
box) is computed before any frame is drawn; ``frames()`` draws them one at a time (340
frames of 640×360 RGB take 235 MB at once), the same pixels for the same seed.

Used by ``bench/faces.py`` (the detectors' figures) and ``tests/pipeline/test_real_faces.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from pipeline.faces import Box

# name -> (face centre x, y, square side) in the photograph's pixels.
PHOTOS = {
    "grace_hopper": (267.0, 225.0, 200.0),
    "astronaut": (223.0, 118.0, 100.0),
}

WIDTH, HEIGHT, FPS = 640, 360, 25


@cache
def photo(name: str) -> np.ndarray:
    """The photograph as an H×W×3 uint8 RGB array (read-only, cached)."""
    if name == "grace_hopper":
        from matplotlib.cbook import get_sample_data
        from PIL import Image

        with get_sample_data("grace_hopper.jpg") as f:
            image = np.asarray(Image.open(f).convert("RGB"))
    elif name == "astronaut":
        from skimage import data

        image = np.asarray(data.astronaut())[..., :3]
    else:
        raise KeyError(name)
    image = np.ascontiguousarray(image)
    image.setflags(write=False)
    return image


@cache
def _alpha(name: str) -> np.ndarray:
    """A feathered ellipse over head and hair in the photograph's pixels, 0..1 float32."""
    image = photo(name)
    cx, cy, side = PHOTOS[name]
    mask = np.zeros(image.shape[:2], np.float32)
    centre = (round(cx), round(cy + 0.1 * side))
    cv2.ellipse(mask, centre, (round(0.85 * side), round(1.05 * side)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(mask, (0, 0), 0.08 * side)


@dataclass(frozen=True)
class Stretch:
    """``n`` frames: the target's side going from ``side[0]`` to ``side[1]`` px (geometric),
    its centre from ``start`` to ``end``; ``light`` multiplies the picture, ``blur`` is
    the length of a horizontal motion blur (px), ``face`` False for an empty shot, and
    ``second`` the second face's (side, x, y), if any."""

    name: str
    n: int
    side: tuple[float, float] = (100, 100)
    start: tuple[float, float] = (320, 180)
    end: tuple[float, float] = (320, 180)
    light: float = 1.0
    blur: int = 0
    face: bool = True
    second: tuple[float, float, float] | None = None
    background: int = 0


STRETCHES = (
    Stretch("zoom_out", 50, (220, 60), (320, 180), (220, 170)),
    Stretch("small", 40, (45, 40), (200, 170), (440, 200)),
    Stretch("zoom_in", 30, (50, 160), (440, 200), (330, 180)),
    Stretch("dark", 40, (120, 90), (330, 180), (260, 190), light=0.22),
    Stretch("blur_shrink", 40, (160, 60), (150, 180), (480, 170), blur=21),
    Stretch("dark_blur", 30, (100, 100), (470, 190), (200, 180), light=0.3, blur=15),
    Stretch("cutaway", 40, face=False, background=1),
    Stretch("two_faces", 50, (130, 130), (220, 190), (250, 185), second=(70, 470, 150)),
    Stretch("empty_end", 20, face=False, background=2),
)


def _box(cx: float, cy: float, side: float) -> Box:
    return Box(round(cx - side / 2), round(cy - side / 2), round(side), round(side))


@dataclass
class RealFaceMovie:
    seed: int
    truth: list[Box | None]  # the target's box per frame, None for no face
    others: list[Box | None]  # the second face's box per frame, None where there is none
    stretch: list[str]  # each frame's stretch name
    _plan: list[tuple]

    @property
    def n_frames(self) -> int:
        return len(self.truth)

    def frames(self) -> Iterator[np.ndarray]:
        """Every frame in order, H×W×3 uint8 RGB (the same pixels for the same seed)."""
        for i, plan in enumerate(self._plan):
            yield _draw(self.seed, i, *plan)


# Two faces of about one size side by side, for the target rule (a click picks either) and
# the second-face count; not part of the test set's figures.
PAIR = (
    Stretch("pair", 40, (110, 110), (200, 190), (215, 185), second=(100, 450, 170)),
    Stretch("pair_cut", 10, face=False, background=2),
)


def real_face_movie(seed: int = 0, stretches: tuple[Stretch, ...] = STRETCHES) -> RealFaceMovie:
    """The test set's movie for ``seed`` (the seed moves faces by a few pixels and draws the
    backgrounds and the sensor noise), made of ``stretches``."""
    rng = np.random.default_rng(seed)
    truth, others, names, plan = [], [], [], []
    for stretch in stretches:
        jitter = rng.uniform(-8, 8, size=2)
        for k in range(stretch.n):
            t = k / max(1, stretch.n - 1)
            names.append(stretch.name)
            if not stretch.face:
                truth.append(None)
                others.append(None)
                plan.append((stretch.background, None, None, stretch.light, stretch.blur, t))
                continue
            side = math.exp((1 - t) * math.log(stretch.side[0]) + t * math.log(stretch.side[1]))
            cx = (1 - t) * stretch.start[0] + t * stretch.end[0] + jitter[0]
            cy = (1 - t) * stretch.start[1] + t * stretch.end[1] + jitter[1]
            target = (cx, cy, side)
            second = None
            if stretch.second is not None:
                s2, x2, y2 = stretch.second
                second = (x2 + 10 * math.sin(6 * t), y2, s2)
            truth.append(_box(*target))
            others.append(None if second is None else _box(*second))
            plan.append((stretch.background, target, second, stretch.light, stretch.blur, t))
    return RealFaceMovie(seed, truth, others, names, plan)


@cache
def _background(seed: int, which: int) -> np.ndarray:
    """A smooth coloured background, twice the frame's width (a pan slides along it)."""
    rng = np.random.default_rng([seed, which, 17])
    coarse = rng.uniform(40, 200, size=(5, 10, 3)).astype(np.float32)
    smooth = cv2.resize(coarse, (2 * WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    fine = cv2.GaussianBlur(
        rng.normal(0, 18, size=(HEIGHT, 2 * WIDTH, 3)).astype(np.float32), (0, 0), 1.5
    )
    return np.clip(smooth + fine, 0, 255).astype(np.float32)


def _paste(frame: np.ndarray, name: str, cx: float, cy: float, side: float) -> None:
    """Pastes the photograph's face scaled to ``side`` px, centred at (cx, cy), in place."""
    fx, fy, fside = PHOTOS[name]
    z = side / fside
    matrix = np.float32([[z, 0, cx - z * fx], [0, z, cy - z * fy]])
    size = (frame.shape[1], frame.shape[0])
    face = cv2.warpAffine(
        photo(name), matrix, size, flags=cv2.INTER_AREA if z < 1 else cv2.INTER_LINEAR
    )
    alpha = cv2.warpAffine(_alpha(name), matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    frame *= 1 - alpha
    frame += alpha * face.astype(np.float32)


def _draw(seed: int, i: int, background: int, target, second, light: float, blur: int, t: float):
    pan = round(t * WIDTH * 0.5) if blur else 0
    frame = _background(seed, background)[:, pan : pan + WIDTH].copy()
    if target is not None:
        _paste(frame, "grace_hopper", *target)
    if second is not None:
        _paste(frame, "astronaut", second[0], second[1], second[2])
    if blur:
        kernel = np.zeros((1, blur), np.float32)
        kernel[0, :] = 1.0 / blur
        frame = cv2.filter2D(frame, -1, kernel, borderType=cv2.BORDER_REFLECT)
    if light != 1.0:
        frame *= light
    rng = np.random.default_rng([seed, i])
    frame += rng.normal(0, 2.0 if light == 1.0 else 4.0, size=frame.shape).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def side(box: Box) -> float:
    """A box's size as one length: the geometric mean of its width and height."""
    return math.sqrt(box.w * box.h)


def localised(box: Box | None, truth: Box) -> bool:
    """The issue's rule: the centre within a quarter of the face's side of the truth's, and
    the size within 0.7–1.5× of it."""
    if box is None:
        return False
    s = side(truth)
    dx = box.x + box.w / 2 - (truth.x + truth.w / 2)
    dy = box.y + box.h / 2 - (truth.y + truth.h / 2)
    return math.hypot(dx, dy) <= s / 4 and 0.7 <= side(box) / s <= 1.5


def iou(a: Box | None, b: Box | None) -> float:
    if a is None or b is None:
        return 0.0
    w = min(a.x + a.w, b.x + b.w) - max(a.x, b.x)
    h = min(a.y + a.h, b.y + b.h) - max(a.y, b.y)
    inter = max(0, w) * max(0, h)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union else 0.0
