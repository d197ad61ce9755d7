"""One tracked person per clip (pipeline.face_track, FaceCrops): the target rule, the gate that
never takes another face, no face after the hold, the way back after a loss.

The "faces" are white squares on black, and the detector finds every square (connected
components), with five landmarks placed on the square as ArcFace's template places them on a
112 px crop: a detector whose every answer is known, on real frames, windows included."""

import cv2
import numpy as np

from pipeline import face_align, face_track
from pipeline.face_detectors import Box, Detection
from pipeline.faces import FaceCrops
from pipeline.media import I420Frame

W, H = 320, 180


class Squares:
    """Every white square of the frame (RGB or grey), landmarks on it as the template's."""

    def __init__(self, landmarks=True):
        self.landmarks = landmarks
        self.whole = self.windows = 0

    def detect_all(self, frame):
        grey = frame if frame.ndim == 2 else frame[..., 0]
        if grey.shape == (H, W):
            self.whole += 1
        else:
            self.windows += 1
        n, _, stats, _ = cv2.connectedComponentsWithStats((grey > 128).astype(np.uint8))
        found = []
        for x, y, w, h, area in stats[1:n]:
            if area < 30 or min(w, h) < 6:
                continue
            points = None
            if self.landmarks:
                points = tuple(
                    (x + w * px / 112, y + h * py / 112) for px, py in face_align.ARCFACE_112
                )
            found.append(Detection(Box(int(x), int(y), int(w), int(h)), 0.9, points))
        return found


def frame_of(*squares):
    """An RGB frame with squares (x, y, side)."""
    frame = np.zeros((H, W, 3), np.uint8)
    for x, y, s in squares:
        frame[y : y + s, x : x + s] = 255
    return frame


def track(frames, detector=None, **kwargs):
    crops = FaceCrops(detector or Squares(), size=32, **kwargs)
    for frame in frames:
        crops.add(frame)
    return crops


def on(box, x, y, s, slack=2):
    return (
        box is not None
        and abs(box.x - x) <= slack
        and abs(box.y - y) <= slack
        and abs(box.w - s) <= slack
    )


class TargetRuleTests:
    A, B = Detection(Box(20, 60, 40, 40)), Detection(Box(200, 50, 60, 60))

    def test_without_a_point_the_largest_face_near_the_centre(self):
        centre = Detection(Box(140, 70, 44, 44))
        assert face_track.choose_target([self.A, centre], W, H) == centre
        # a face much larger wins even off centre
        assert face_track.choose_target([self.A, self.B], W, H) == self.B

    def test_a_point_picks_the_face_containing_it_else_the_nearest_within_reach(self):
        assert face_track.choose_target([self.A, self.B], W, H, point=(40, 80)) == self.A
        assert face_track.choose_target([self.A, self.B], W, H, point=(90, 80)) == self.A
        # too far from every face (more than POINT_REACH sides): none yet
        assert face_track.choose_target([self.A], W, H, point=(300, 170)) is None

    def test_the_gate_takes_the_target_moved_and_never_the_face_beside_it(self):
        seen = face_track.Seen(Detection(Box(100, 60, 40, 40)), 10)
        moved = Detection(Box(106, 62, 42, 42))
        beside = Detection(Box(145, 60, 38, 38))  # touching it, about its size
        assert face_track.match([beside, moved], seen, 11) == moved
        assert face_track.match([beside], seen, 11) is None
        # nor a face of another size at its place
        assert face_track.match([Detection(Box(90, 50, 64, 64))], seen, 11) is None

    def test_interpolation_is_linear_in_box_and_landmarks(self):
        a = Detection(Box(0, 0, 10, 10), 0.9, ((0.0, 0.0),) * 5)
        b = Detection(Box(10, 20, 30, 30), 0.7, ((10.0, 20.0),) * 5)
        mid = face_track.interpolate(a, b, 0.5)
        assert mid.box == Box(5, 10, 20, 20) and mid.score == 0.7
        assert mid.landmarks == ((5.0, 10.0),) * 5


class FollowTests:
    def test_it_follows_the_target_and_never_jumps_to_the_other_face(self):
        # given: the target (40 px) walks right towards a second face (36 px: 0.9 of it)
        # and is gone from frame 30 on; the second face stays
        frames = [frame_of((20 + 4 * k, 70, 40), (240, 60, 36)) for k in range(30)]
        frames += [frame_of((240, 60, 36))] * 20
        # when
        crops = track(frames, hold=3)
        # then: on the target on every frame it is there, on the other face never
        for k, d in enumerate(crops.detections[:30]):
            assert on(d.box, 20 + 4 * k, 70, 40), k
        assert crops.detections[30:] == [None] * 20
        assert crops.no_face == list(range(30, 50))
        # whole frames examined on 0, 5, ..., 45, each seeing the second face as large
        assert crops.second_face_frames == crops.detector.whole
        assert crops.second_face_frames >= 5

    def test_a_point_on_the_other_face_follows_that_one(self):
        frames = [frame_of((20 + 2 * k, 70, 40), (240, 60, 36)) for k in range(20)]
        crops = track(frames, target=(250, 70))
        assert all(on(d.box, 240, 60, 36) for d in crops.detections)

    def test_between_examinations_every_frame_has_its_own_box(self):
        # A face moving 6 px a frame: the box carried from the last examination would be
        # up to 24 px behind; looked for around it on every frame, it is where it is.
        frames = [frame_of((10 + 6 * k, 60, 40)) for k in range(40)]
        detector = Squares()
        crops = track(frames, detector)
        assert all(on(d.box, 10 + 6 * k, 60, 40) for k, d in enumerate(crops.detections))
        assert detector.windows >= 30 and detector.whole <= 8

    def test_a_miss_within_the_hold_is_bridged_and_a_longer_one_is_no_face(self):
        # frames 10-11 without the face (2 ≤ hold 3): interpolated; frames 20-27 without it
        # (8 > 3): no face, every one of them, not only those after the hold
        present = [k not in (10, 11) and not 20 <= k < 28 for k in range(40)]
        frames = [frame_of((60 + k, 60, 40)) if p else frame_of() for k, p in enumerate(present)]
        crops = track(frames, hold=3)
        assert on(crops.detections[10].box, 70, 60, 40) and on(crops.detections[11].box, 71, 60, 40)
        assert crops.no_face == list(range(20, 28))
        assert on(crops.detections[28].box, 88, 60, 40)

    def test_after_a_loss_it_is_taken_back_near_its_place_and_followed_back(self):
        # Gone for frames 10-29; back at frame 32 where it was; the whole frame is examined
        # at 35 (or 40), and the frames since the examination before are looked at backwards
        frames = [frame_of((100, 60, 40))] * 10 + [frame_of()] * 22
        frames += [frame_of((104, 62, 40))] * 18
        crops = track(frames, hold=3)
        assert crops.no_face == list(range(10, 32))
        assert all(on(d.box, 104, 62, 40) for d in crops.detections[32:])

    def test_a_face_elsewhere_after_a_loss_is_not_taken_for_the_target(self):
        frames = [frame_of((20, 60, 40))] * 10 + [frame_of()] * 10
        frames += [frame_of((250, 60, 40))] * 20  # far from where the target was
        crops = track(frames, hold=3)
        assert crops.no_face == list(range(10, 40))

    def test_no_more_frames_wait_than_between_two_examinations(self):
        # Frames wait (are kept) only until the target is decided: through a long empty
        # stretch, before any face and after a loss, never more than ``steady_every``.
        frames = [frame_of()] * 30 + [frame_of((100, 60, 40))] * 10 + [frame_of()] * 100
        crops = FaceCrops(Squares(), size=32, hold=3)
        most = 0
        for frame in frames:
            crops.add(frame)
            most = max(most, len(crops._pending))
        assert most <= crops.steady_every
        assert crops.no_face == list(range(30)) + list(range(40, 140))

    def test_yuv420p_frames_are_followed_as_rgb_ones_are(self):
        rgb = [frame_of((20 + 3 * k, 60, 40)) for k in range(20)]
        yuv = [I420Frame(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), W, H) for f in rgb]
        a, b = track(rgb), track(yuv)
        assert [d.box for d in a.detections] == [d.box for d in b.detections]
        assert all(b.aligned) and len(b.tiles) == 20


class AlignedCropTests:
    def test_landmarks_give_aligned_crops_where_the_square_fills_the_tile(self):
        # The landmarks sit on the square as the template sits on the crop: the aligned
        # crop is the square itself, white to its edges.
        crops = track([frame_of((100, 50, 64))] * 3)
        assert crops.aligned == [True] * 3
        tile = crops.tiles[0]
        assert tile.shape == (32, 32, 3) and tile[2:-2, 2:-2].min() >= 240

    def test_without_landmarks_the_box_crop_and_not_aligned(self):
        crops = track([frame_of((100, 50, 64))] * 3, Squares(landmarks=False))
        assert crops.aligned == [False] * 3
        tile = crops.tiles[0]
        # the box widened by a fifth each side: black border around the white square
        assert tile[0].max() == 0 and tile[16, 16].min() == 255

    def test_no_face_frames_are_not_aligned(self):
        crops = track([frame_of((100, 50, 64))] * 2 + [frame_of()] * 10, hold=2)
        assert crops.aligned == [True, True] + [False] * 10
        assert crops.detections[2:] == [None] * 10
