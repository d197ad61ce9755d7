"""A clip's face crops, one per frame, of one tracked person, aligned where the detector gives
landmarks (``FaceCrops``), stored as one contact sheet (``pipeline.face_sheets``).

The detectors (``pipeline.face_detectors``, re-exported here) find faces; the tracker's rules
(``pipeline.face_track``) say which one is the target and whether a detection still is it;
``pipeline.face_align`` cuts the aligned crop. This module runs them frame by frame:

- The whole frame is examined on every ``detect_every``-th frame (every ``steady_every``-th
  while the picture stays the same: the target where it was, or no face), as before the
  tracker: every face it finds counts (the target, and a second face as large).
- Between those examinations, while the target is being followed, the detector looks for it
  in a window around where it is expected (``face_track.look_near``) on every frame: the box
  of every frame is a detection of that frame, not a box carried from another. The window
  costs a tenth of a whole-frame look (``bench/extraction.py``). A detection on the frame
  after the last one is averaged with where the target was expected (``SMOOTHING``), which
  steadies the aligned crops.
- Where it is missed, the frame waits: found again within ``hold`` frames, the frames
  between are interpolated (a blurred frame, a blink of the detector); not found again
  within ``hold`` frames, every frame it was missed on is "no face" (no face is a fact, not
  a guess: a face that went is not carried past its last frame). Frames the detector did not
  look at (a detector with ``detect`` only, examined on the schedule and not tracked) keep
  the last box, for at most ``hold`` frames when the next look misses.
- Lost, the target is looked for on the schedule only, taken back where ``reacquire`` allows
  (never another face), and followed back over the frames since the last examination.

The crops: where the frame's detection has landmarks, the aligned crop (``face_align``:
ArcFace's template, scaled to ``size``), and ``aligned`` says so; else the box, widened by a
fifth of its size each side (``crop``); a frame without a face is cut as the last frame with
one was (before any, the centred square): one tile per frame, as DFEW's loaders index them.

Frames come as RGB arrays or, from the extraction, as ffmpeg's own yuv420p planes
(``media.I420Frame``): the detector then reads the luma plane (or the RGB conversion, where
it ``wants_rgb``), a window is converted on its own, and crops are cut from the planes
(``crop_planes``, ``face_align.warp_planes``) and tiled into the sheet as planes, converted
to RGB once for the whole sheet. FaceCrops keeps up to ``steady_every`` frames while it
waits to decide them: the frames given must not be buffers that are reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pipeline import face_align, face_track
from pipeline.face_detectors import (  # noqa: F401  (the detectors' names, re-exported)
    DETECTORS,
    Box,
    Detection,
    FaceDetector,
    HaarFaceDetector,
    MtcnnFaceDetector,
    YuFaceDetector,
    make_detector,
    shrink,
)
from pipeline.face_sheets import (
    SHEET_COLUMNS,
    FaceFrames,
    commit,
    i420,
    plane_sheet,
    stage_sheet,
    tiled,
)
from pipeline.face_track import Seen
from pipeline.media import I420Frame

# A face other than the target counts as a second face (``FaceCrops.second_face_frames``)
# from this share of the target's side.
SECOND_FACE_SHARE = 0.8
# and from this many of the target's sides away from it: nearer, it is the target's ghost (a
# motion-blurred face is sometimes found twice, overlapping), not another face beside it.
SECOND_FACE_APART = 0.75
# A detection on the frame after the last is averaged with where the target was expected,
# this much of it (face_track.smoothed): the box's frame-to-frame wobble in % of the face's
# side on the real-face set (bench/faces.py, seeds 0 and 1) goes from 3.1 to 2.0, its
# localisation from 0.993 and 1.000 to 0.993 and 0.996 (1.0: no averaging).
SMOOTHING = 0.6


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
    sheet (``stage``); the module's docstring says how.

    ``target``: a point (x, y) in the pixels of the frames given, on the face to follow
    (None: the largest face near the centre). Per frame, once the frames are in:
    ``detections`` (the target's box, score and landmarks, or None: no face), ``boxes``,
    ``aligned``, ``no_face``; ``second_face_frames`` counts the examined frames where a face
    other than the target, at least ``SECOND_FACE_SHARE`` of its side, was found.
    ``n_examined`` counts every ``detect_every``-th frame, ``found`` those of them with the
    target (the clip's face ratio); ``n_looks`` counts the detector's calls.

    Reading the per-frame lists settles every frame given so far as if the clip ended there."""

    def __init__(
        self,
        detector: FaceDetector | None = None,
        size: int = 112,
        detect_every: int = 5,
        steady_every: int | None = None,
        hold: int | None = 5,
        *,
        target: tuple[float, float] | None = None,
        align: bool = True,
    ):
        self.steady_every = steady_every or 2 * detect_every
        if self.steady_every % detect_every:
            raise ValueError(f"steady_every ({steady_every}) is not a multiple of {detect_every}")
        self.detector = detector or HaarFaceDetector()
        self.wants_rgb = getattr(self.detector, "wants_rgb", False)
        self.tracked = hasattr(self.detector, "detect_all")
        self.track_side = getattr(self.detector, "track_side", 64)
        self.size, self.detect_every, self.hold = size, detect_every, hold
        self.target, self.align = target, align
        self.n_examined = self.n_looks = self.second_face_frames = 0
        self.last: Box | None = None  # the target's last box found
        self._detections: list[Detection | None] = []  # per frame decided
        self._aligned: list[bool] = []
        self._tiles: list = []  # RGB crops, or (y, u, v) planes of the crops of yuv420p frames
        self._pending: list[tuple] = []  # (frame, looked) of frames not yet decided, in order
        self._missed = False  # whether a pending frame was looked at and the target missed
        self._track: Seen | None = None  # where the target was last found
        self._lost = False  # missed for longer than the hold: looked for on the schedule only
        self._geometry: tuple | None = None  # how the last face frame was cut
        self._seen: Box | None = _NOT_YET  # what the last examination found (the schedule)
        self._next_detection = 0

    # -- taking frames ---------------------------------------------------------------------

    def add(self, frame: np.ndarray | I420Frame) -> None:
        i = len(self._detections) + len(self._pending)
        found, looked, whole = None, False, False
        alive = self._track is not None and not self._lost
        if i % self.detect_every == 0:
            self.n_examined += 1
            if i >= self._next_detection:
                looked = whole = True
                found = self._examine(frame, i, alive)
                box = None if found is None else found.box
                steady = self._seen is not _NOT_YET and _same_place(box, self._seen)
                self._next_detection = i + (self.steady_every if steady else self.detect_every)
                self._seen = box
        if not looked and alive and self.tracked:
            looked = True
            found = self._near(frame, i)
        if found is not None:
            self._found(frame, i, found)
            return
        self._pending.append((frame, looked))
        self._missed = self._missed or looked
        if alive and self._missed:
            # Not found within the hold (without one: by the whole frame's examination), the
            # frames it was missed on have no face.
            if whole if self.hold is None else i - self._track.frame > self.hold:
                self._settle_unbridged()
                self._lost = True
        elif not alive and whole:
            # No target here: the frames waiting since the examination before have none
            # either (only a target found would follow it back over them). So FaceCrops never
            # keeps more than ``steady_every`` frames.
            self._settle_none()

    def _look(self, frame) -> np.ndarray:
        if isinstance(frame, I420Frame):
            return frame.rgb() if self.wants_rgb else frame.y
        return frame

    def _whole(self, frame) -> list[Detection]:
        """Every face of the whole frame. A yuv420p frame larger than the detector looks at
        (``detect_height``) is scaled plane by plane and only then converted to RGB."""
        limit = getattr(self.detector, "detect_height", None)
        if not (isinstance(frame, I420Frame) and self.wants_rgb and limit and frame.height > limit):
            return self.detector.detect_all(self._look(frame))
        height = max(4, limit - limit % 4)
        width = max(4, round(frame.width * height / frame.height / 4) * 4)
        y = shrink(frame.y, (width, height))
        u = shrink(frame.u, (width // 2, height // 2))
        v = shrink(frame.v, (width // 2, height // 2))
        small = cv2.cvtColor(i420(y, u, v), cv2.COLOR_YUV2RGB_I420)
        sx, sy = frame.width / width, frame.height / height
        return [face_track.scaled(d, sx, sy) for d in self.detector.detect_all(small)]

    def _examine(self, frame, i: int, alive: bool) -> Detection | None:
        """The whole frame examined: the target among its faces (chosen, followed or taken
        back), else, while followed, looked for around where it is expected."""
        self.n_looks += 1
        if not self.tracked:  # a detector with ``detect`` only: its main face is the target
            box = self.detector.detect(self._look(frame), near=self.last)
            return None if box is None else Detection(box)
        faces = self._whole(frame)
        if self._track is None:
            width, height = _frame_size(frame)
            found = face_track.choose_target(faces, width, height, self.target)
        elif alive:
            # Followed: the detection that continues it; else, as after a loss, one near its
            # last place and size (a cut to another shot of the same person).
            found = face_track.match(faces, self._track, i) or face_track.reacquire(
                faces, self._track
            )
        else:
            found = face_track.reacquire(faces, self._track)
        reference = found or (self._track and self._track.detection)
        if reference is not None:
            side = face_track.side(reference.box)
            if any(
                face_track.side(d.box) >= SECOND_FACE_SHARE * side
                and face_track.distance(d.box, reference.box) > SECOND_FACE_APART * side
                for d in faces
            ):
                self.second_face_frames += 1
        if found is None and alive:
            found = self._near(frame, i)
        return found

    def _near(self, frame, i: int) -> Detection | None:
        self.n_looks += 1
        expected = self._track.expected(i)
        faces = face_track.look_near(
            self.detector, frame, expected, self.wants_rgb, self.track_side
        )
        found = face_track.match(faces, self._track, i)
        if found is None and i - self._track.frame > 1:
            # Missed where its motion would have taken it: looked for where it was last seen
            # (a jump, not a motion, overshoots).
            still = Seen(self._track.detection, self._track.frame)
            if still.expected(i) != expected:
                self.n_looks += 1
                faces = face_track.look_near(
                    self.detector, frame, still.expected(i), self.wants_rgb, self.track_side
                )
                found = face_track.match(faces, still, i)
        return found

    def _found(self, frame, i: int, found: Detection) -> None:
        track = self._track
        if SMOOTHING < 1 and track is not None and not self._lost and i - track.frame == 1:
            found = face_track.smoothed(track, found, i, SMOOTHING)
        if self._pending:
            bridged = (
                track is not None
                and not self._lost
                and (not self._missed or self.hold is None or i - track.frame - 1 <= self.hold)
            )
            if bridged:
                base = len(self._detections)
                for k, (f, _) in enumerate(self._pending):
                    t = (base + k - track.frame) / (i - track.frame)
                    self._decide(f, face_track.interpolate(track.detection, found, t))
                self._pending.clear()
            elif track is not None and not self._lost:
                self._settle_unbridged()
            else:
                self._follow_back(found)
        self._decide(frame, found)
        if track is None or self._lost:
            self._track = Seen(found, i)
        else:
            self._track = track.then(found, i)
        self._lost = self._missed = False
        self.last = found.box

    def _follow_back(self, found: Detection) -> None:
        """The target found after no face (lost, or not yet chosen): the frames waiting since
        the last examination are looked at backwards from it while it is still there."""
        back: list[Detection | None] = [None] * len(self._pending)
        later, base = found, len(self._detections)
        if self.tracked:
            for k in range(len(self._pending) - 1, -1, -1):
                self.n_looks += 1
                faces = face_track.look_near(
                    self.detector, self._pending[k][0], later.box, self.wants_rgb, self.track_side
                )
                d = face_track.match(faces, Seen(later, base + k + 1), base + k)
                if d is None:
                    break
                back[k] = later = d
        for (f, _), d in zip(self._pending, back, strict=True):
            self._decide(f, d)
        self._pending.clear()

    def _settle_unbridged(self) -> None:
        """The waiting frames, the target not found again within the hold: those the detector
        did not look at before it first missed keep the last box (at most ``hold`` frames
        after it was found); the rest have no face."""
        track, base = self._track, len(self._detections)
        missed = False
        for k, (f, looked) in enumerate(self._pending):
            missed = missed or looked
            held = (
                track is not None
                and not missed
                and (self.hold is None or base + k - track.frame <= self.hold)
            )
            self._decide(f, track.detection if held else None)
        self._pending.clear()
        self._missed = False

    def _decide(self, frame, detection: Detection | None) -> None:
        """The frame's detection settled: its crop is cut."""
        aligned = False
        if detection is not None:
            self._geometry = ("box", detection.box)
            if self.align and detection.landmarks is not None:
                try:
                    matrix = face_align.similarity(detection.landmarks, self.size)
                except ValueError:
                    pass
                else:
                    self._geometry, aligned = ("align", matrix), True
        self._detections.append(detection)
        self._aligned.append(aligned)
        kind, how = self._geometry or ("box", None)
        if kind == "align":
            if isinstance(frame, I420Frame):
                tile = face_align.warp_planes(frame.y, frame.u, frame.v, how, self.size)
            else:
                tile = face_align.warp(frame, how, self.size)
        elif isinstance(frame, I420Frame):
            tile = crop_planes(frame, how, self.size)
        else:
            tile = crop(frame, how, self.size)
        self._tiles.append(tile)

    def _settle(self) -> None:
        if self._pending:
            if self._track is not None and not self._lost:
                self._settle_unbridged()
            else:
                self._settle_none()

    def _settle_none(self) -> None:
        for f, _ in self._pending:
            self._decide(f, None)
        self._pending.clear()
        self._missed = False

    # -- what came of them -----------------------------------------------------------------

    @property
    def detections(self) -> list[Detection | None]:
        """Per frame: the target's detection (box, score, landmarks in the frames' pixels;
        interpolated or held between looks), or None: no face."""
        self._settle()
        return list(self._detections)

    @property
    def boxes(self) -> list[Box | None]:
        """Per frame: the target's box, or None (no face)."""
        return [None if d is None else d.box for d in self.detections]

    @property
    def aligned(self) -> list[bool]:
        """Per frame: whether its crop is aligned on the landmarks (else the box's crop, or,
        for a frame without a face, cut as the last face frame was)."""
        self._settle()
        return list(self._aligned)

    @property
    def tiles(self) -> list:
        self._settle()
        return self._tiles

    @property
    def no_face(self) -> list[int]:
        """The frames without a face, in order."""
        return [i for i, d in enumerate(self.detections) if d is None]

    @property
    def n_found(self) -> int:
        """The examined frames (every ``detect_every``-th) with the target."""
        return sum(d is not None for d in self.detections[:: self.detect_every])

    @property
    def found(self) -> FaceFrames:
        return FaceFrames(len(self.tiles), self.n_found, self.n_examined)

    def stage(self, path: str | Path, quality: int = 90) -> Path:
        """Writes the contact sheet to a temporary file beside ``path`` and returns it, for
        the caller to move into place (``os.replace``) once the clip is known to be whole."""
        tiles = self.tiles
        if not tiles:
            raise ValueError("a face sheet needs at least one crop")
        if all(isinstance(t, tuple) for t in tiles):
            sheet = plane_sheet(tiles)
        else:  # frames of both kinds: each plane crop converted on its own
            rgb = [
                cv2.cvtColor(i420(*t), cv2.COLOR_YUV2RGB_I420) if isinstance(t, tuple) else t
                for t in tiles
            ]
            sheet = Image.fromarray(tiled(rgb, min(SHEET_COLUMNS, len(rgb))))
        return stage_sheet(sheet, len(tiles), self.size, path, quality)


def _frame_size(frame) -> tuple[int, int]:
    if isinstance(frame, I420Frame):
        return frame.width, frame.height
    return frame.shape[1], frame.shape[0]


def write_face_frames(
    frames: Iterable[np.ndarray | I420Frame],
    path: str | Path,
    detector: FaceDetector | None = None,
    size: int = 112,
    quality: int = 90,
    detect_every: int = 5,
    steady_every: int | None = None,
    *,
    target: tuple[float, float] | None = None,
) -> FaceFrames:
    """Crops every frame's face (``FaceCrops``) and writes the crops as one contact sheet at
    ``path`` (nothing is written when ``frames`` raises, so a failed run leaves the old
    sheet)."""
    crops = FaceCrops(detector, size, detect_every, steady_every, target=target)
    for frame in frames:
        crops.add(frame)
    if crops.tiles:  # no frame, no sheet: the caller reports the empty clip
        commit(crops.stage(path, quality), path)
    return crops.found
