"""The screening's face flags of a clip, from its face track: the one rule, called by the
extraction (``labeling.media.extraction``), which stores them on the clip for the reviewer to
filter by. Pure: no Django."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.face_track_file import TrackFrame


@dataclass(frozen=True)
class FaceFlags:
    lost: bool  # no face in more than the allowed share of the frames
    second: bool  # another face as large as the target was seen
    small: bool  # the face's median side is under the smallest size allowed


def face_flags(
    track: Sequence[TrackFrame | None],
    *,
    lost_share: float,
    min_px: float,
    second_face_frames: int = 0,
) -> FaceFlags:
    """The flags of a clip whose target face is ``track`` (one entry per frame):

    - **lost** when the frames without the face are more than ``lost_share`` of all frames
      (a clip with no frame is lost);
    - **second** when the tracker saw another face as large as the target in at least one
      frame (``second_face_frames``, ``pipeline.faces.FaceCrops``'s count);
    - **small** when the median side (the box's longer side) over the frames with the face is
      under ``min_px`` pixels of the clip: a few far-off frames do not flag a close-up, a clip
      mostly far off is flagged. A clip with no face is not also "small".
    """
    sides = [face.side for face in track if face is not None]
    missing = len(track) - len(sides)
    return FaceFlags(
        lost=not track or missing > lost_share * len(track),
        second=second_face_frames > 0,
        small=bool(sides) and statistics.median(sides) < min_px,
    )
