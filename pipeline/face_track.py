"""One person through a clip: which face is the target, which detection is still it, and a
look around it between the detector's examinations of the whole frame.

- **The target** (``choose_target``): with a point (the extractor's click, in the frames'
  pixels), the face containing it, else the nearest within ``POINT_REACH`` of its sides;
  without, the largest face near the centre (sides weighed down by their distance from the
  centre, ``CENTRE_WEIGHT``). Chosen at the first examination that finds a face that fits.
- **Continuity** (``match``): a detection is the target only if its centre lies within
  ``GATE`` of the target's side from where the target was expected (its last place, moved at
  its last speed), widened by ``GATE_PER_FRAME`` for each frame since it was last seen, and
  its side is within ``SIZE_RATIO`` of the target's. Two faces side by side are at least a
  face's side apart, so the gate never takes the next face for the target; of several
  within it, the closest in place and size.
- **Found again** (``reacquire``): once lost for longer than the hold (``faces.FaceCrops``),
  the target is taken back only where a face is within ``REACQUIRE_GATE`` sides of where it
  was last seen, of a side within ``REACQUIRE_RATIO`` of its last: a cut back to the same
  shot finds it; another face elsewhere, or a different shot, stays "no face".
- **A look around it** (``look_near``): a window of ``WINDOW`` target sides around where the
  target is expected, cut from the frame (from the yuv420p planes, converted only there) and
  scaled so the face measures the detector's ``track_side`` pixels. yuface on such a window
  (96 px) takes about 2 ms on one core, against 23 ms for a 640 × 360 frame, so the target is
  looked for on every frame, and a small face is seen enlarged (at most ``MAX_ZOOM`` times).
- **Steadier** (``smoothed``): a detection averaged with where the target was expected.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.face_detectors import Box, Detection, shrink
from pipeline.face_sheets import i420
from pipeline.media import I420Frame

POINT_REACH = 2.0
CENTRE_WEIGHT = 1.0
GATE = 0.5
GATE_PER_FRAME = 0.1
GATE_MAX = 1.0
SIZE_RATIO = 1.5
REACQUIRE_GATE = 1.5
REACQUIRE_RATIO = 2.5  # a cut from a medium shot to a close-up of the same person
WINDOW = 2.0
MAX_ZOOM = 2.0
MAX_GROW = 1.05  # per frame: a zoom from 220 to 60 px in 2 s is 0.974


def side(box: Box) -> float:
    """A box's size as one length: the geometric mean of its width and height."""
    return math.sqrt(max(1, box.w) * max(1, box.h))


def centre(box: Box) -> tuple[float, float]:
    return box.x + box.w / 2, box.y + box.h / 2


def distance(a: Box, b: Box) -> float:
    (ax, ay), (bx, by) = centre(a), centre(b)
    return math.hypot(ax - bx, ay - by)


def choose_target(
    found: list[Detection], width: int, height: int, point: tuple[float, float] | None = None
) -> Detection | None:
    """The face to follow among ``found`` (see the module's docstring), or None."""
    if not found:
        return None
    if point is not None:
        px, py = point
        inside = [
            d
            for d in found
            if d.box.x <= px <= d.box.x + d.box.w and d.box.y <= py <= d.box.y + d.box.h
        ]
        if inside:
            return min(inside, key=lambda d: side(d.box))  # the innermost: a face, not a poster
        near = [
            (math.hypot(centre(d.box)[0] - px, centre(d.box)[1] - py) / side(d.box), d)
            for d in found
        ]
        reach, best = min(near, key=lambda pair: pair[0])
        return best if reach <= POINT_REACH else None
    half_diagonal = math.hypot(width, height) / 2

    def weight(d: Detection) -> float:
        off = math.hypot(centre(d.box)[0] - width / 2, centre(d.box)[1] - height / 2)
        return side(d.box) * (1 - CENTRE_WEIGHT * 0.5 * off / half_diagonal)

    return max(found, key=weight)


@dataclass(frozen=True)
class Seen:
    """The target where it was last found: its detection, the frame, and its motion per frame
    (centre x, y in pixels, side as a ratio) from the find before."""

    detection: Detection
    frame: int
    dx: float = 0.0
    dy: float = 0.0
    grow: float = 1.0

    def then(self, detection: Detection, frame: int) -> Seen:
        """The target found again at ``frame``."""
        gap = max(1, frame - self.frame)
        (ax, ay), (bx, by) = centre(self.detection.box), centre(detection.box)
        grow = (side(detection.box) / side(self.detection.box)) ** (1 / gap)
        # Averaged with the motion before (a detector's box wavers by a few per cent from
        # frame to frame, and a wavering size fed back into the next window would grow it).
        return Seen(
            detection,
            frame,
            (self.dx + (bx - ax) / gap) / 2,
            (self.dy + (by - ay) / gap) / 2,
            min(MAX_GROW, max(1 / MAX_GROW, math.sqrt(self.grow * grow))),
        )

    def expected(self, frame: int) -> Box:
        """Where the target should be at ``frame``, moving as it last moved."""
        gap = frame - self.frame
        box = self.detection.box
        cx, cy = centre(box)
        cx, cy = cx + self.dx * gap, cy + self.dy * gap
        zoom = min(2.0, max(0.5, self.grow**gap))
        w, h = box.w * zoom, box.h * zoom
        return Box(round(cx - w / 2), round(cy - h / 2), max(1, round(w)), max(1, round(h)))


def match(found: list[Detection], seen: Seen, frame: int) -> Detection | None:
    """The detection that continues the target at ``frame`` (module docstring), or None."""
    expected = seen.expected(frame)
    gap = max(1, frame - seen.frame)
    reach = min(GATE_MAX, GATE + GATE_PER_FRAME * (gap - 1)) * side(expected)
    return _closest(found, expected, reach, SIZE_RATIO)


def reacquire(found: list[Detection], seen: Seen) -> Detection | None:
    """A detection taken for the target after it was lost: near its last place and size."""
    last = seen.detection.box
    return _closest(found, last, REACQUIRE_GATE * side(last), REACQUIRE_RATIO)


def _closest(found: list[Detection], box: Box, reach: float, ratio: float) -> Detection | None:
    best, best_cost = None, math.inf
    for d in found:
        apart = distance(d.box, box)
        size = abs(math.log(side(d.box) / side(box)))
        if apart > reach or size > math.log(ratio):
            continue
        cost = apart / side(box) + size
        if cost < best_cost:
            best, best_cost = d, cost
    return best


def interpolate(a: Detection, b: Detection, t: float) -> Detection:
    """The detection a share ``t`` of the way from ``a`` to ``b``: box and landmarks linear
    (landmarks only where both have them), the lower of the two scores."""
    box = Box(
        *(round((1 - t) * p + t * q) for p, q in zip(_xywh(a.box), _xywh(b.box), strict=True))
    )
    landmarks = None
    if a.landmarks is not None and b.landmarks is not None:
        landmarks = tuple(
            ((1 - t) * px + t * qx, (1 - t) * py + t * qy)
            for (px, py), (qx, qy) in zip(a.landmarks, b.landmarks, strict=True)
        )
    return Detection(box, min(a.score, b.score), landmarks)


def _xywh(box: Box) -> tuple[int, int, int, int]:
    return box.x, box.y, box.w, box.h


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    if size[0] < image.shape[1]:
        return shrink(image, size)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


def scaled(d: Detection, sx: float, sy: float) -> Detection:
    """``d`` in pixels ``sx`` × ``sy`` times as large (a frame scaled to another size)."""
    box = Box(round(d.box.x * sx), round(d.box.y * sy), round(d.box.w * sx), round(d.box.h * sy))
    points = None if d.landmarks is None else tuple((x * sx, y * sy) for x, y in d.landmarks)
    return Detection(box, d.score, points)


def look_near(
    detector, frame: np.ndarray | I420Frame, box: Box, rgb: bool, track_side: int
) -> list[Detection]:
    """Every face the detector finds in a window of ``WINDOW`` sides of ``box`` around it,
    the window scaled so ``box`` measures ``track_side`` pixels (at most ``MAX_ZOOM`` times
    enlarged), in the frame's pixels."""
    if isinstance(frame, I420Frame):
        width, height = frame.width, frame.height
    else:
        height, width = frame.shape[:2]
    reach = side(box) * WINDOW / 2
    cx, cy = centre(box)
    # On the chroma grid, a multiple of 4 rows and columns (yuv420p's planes, ``i420``).
    x0 = max(0, int(cx - reach)) & ~3
    y0 = max(0, int(cy - reach)) & ~3
    x1 = min(width, int(math.ceil(cx + reach)))
    y1 = min(height, int(math.ceil(cy + reach)))
    x1, y1 = x0 + ((x1 - x0) & ~3), y0 + ((y1 - y0) & ~3)
    if x1 - x0 < 8 or y1 - y0 < 8:
        return []
    zoom = min(MAX_ZOOM, track_side / side(box))
    # The window's size, on the chroma grid too (even; a multiple of 4 rows for ``i420``).
    size = (max(8, round((x1 - x0) * zoom / 4) * 4), max(8, round((y1 - y0) * zoom / 4) * 4))
    if isinstance(frame, I420Frame):
        # Each plane scaled on its own and only the scaled window converted: a face of 400 px
        # in a 720p frame costs no more than one of 60.
        y = _resize(frame.y[y0:y1, x0:x1], size)
        if rgb:
            half = (size[0] // 2, size[1] // 2)
            u = _resize(frame.u[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], half)
            v = _resize(frame.v[y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], half)
            window = cv2.cvtColor(i420(y, u, v), cv2.COLOR_YUV2RGB_I420)
        else:
            window = y
    else:
        window = frame[y0:y1, x0:x1]
        if not rgb and window.ndim == 3:
            window = cv2.cvtColor(window, cv2.COLOR_RGB2GRAY)
        elif rgb and window.ndim == 2:
            window = cv2.cvtColor(window, cv2.COLOR_GRAY2RGB)
        window = _resize(window, size)
    sx, sy = (x1 - x0) / size[0], (y1 - y0) / size[1]
    found = []
    # A detector may search such a window its own way (Haar: only sizes near ``track_side``).
    search = getattr(detector, "detect_window", detector.detect_all)
    for d in search(np.ascontiguousarray(window)):
        d = scaled(d, sx, sy)
        box = Box(d.box.x + x0, d.box.y + y0, d.box.w, d.box.h)
        points = None
        if d.landmarks is not None:
            points = tuple((px + x0, py + y0) for px, py in d.landmarks)
        found.append(Detection(box, d.score, points))
    return found


def smoothed(seen: Seen, found: Detection, frame: int, weight: float) -> Detection:
    """``found`` averaged with where the target was expected (``seen`` moved at its speed, its
    landmarks with it, at its size: a size carried at its rate of growth would feed a
    detector's wavering size back into itself): ``weight`` of the detection, the rest of the
    expectation."""
    before = seen.detection
    gap = frame - seen.frame
    expected = Box(
        round(before.box.x + seen.dx * gap),
        round(before.box.y + seen.dy * gap),
        *_xywh(before.box)[2:],
    )
    (bx, by), (ex, ey) = centre(before.box), centre(expected)
    w = weight
    box = Box(
        *(
            round((1 - w) * p + w * q)
            for p, q in zip(_xywh(expected), _xywh(found.box), strict=True)
        )
    )
    points = found.landmarks
    if before.landmarks is not None and found.landmarks is not None:
        points = tuple(
            ((1 - w) * (ex + px - bx) + w * fx, (1 - w) * (ey + py - by) + w * fy)
            for (px, py), (fx, fy) in zip(before.landmarks, found.landmarks, strict=True)
        )
    return Detection(box, found.score, points)
