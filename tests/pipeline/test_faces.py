import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.emotions import EMOTION_NAMES
from pipeline.face_sheets import SHEET_COLUMNS, read_face_frames, write_face_sheet
from pipeline.faces import (
    Box,
    FaceCrops,
    HaarFaceDetector,
    crop,
    write_face_frames,
)
from pipeline.media import I420Frame
from pipeline.synthetic_movies import drawn_face_movie, numbered_frames


@pytest.fixture(scope="module")
def face_movie():
    return drawn_face_movie(["happy", "surprise"], 0.5, 12, 160, np.random.default_rng(3))


class NoFace:
    def detect(self, frame, near=None):
        return None


class EveryOther:
    """A stand-in detector: a face at a fixed place on even frames only."""

    def __init__(self):
        self.calls = 0

    def detect(self, frame, near=None):
        self.calls += 1
        return Box(10, 10, 20, 20) if self.calls % 2 else None


class HaarFaceDetectorTests:
    def test_it_finds_the_drawn_face_on_a_downscaled_frame(self, face_movie):
        detector = HaarFaceDetector(detect_height=80)
        boxes = [detector.detect(frame) for frame in face_movie]
        assert sum(box is not None for box in boxes) >= 0.8 * len(boxes)
        box = next(b for b in boxes if b is not None)
        # In the full-size frame's pixels, around the face (radius 30–40 % of the frame).
        assert 40 <= box.w <= 160 and 0 <= box.x < 120

    def test_it_finds_no_face_in_a_flat_grey_frame(self):
        assert HaarFaceDetector().detect(np.full((120, 160, 3), 128, np.uint8)) is None

    def test_a_grey_frame_and_a_hint_of_where_the_face_was_find_the_same_face(self, face_movie):
        detector = HaarFaceDetector()
        grey = [np.ascontiguousarray(f.mean(axis=2).astype(np.uint8)) for f in face_movie]
        whole = [detector.detect(g) for g in grey]
        hints = [b for b in whole if b is not None]
        assert len(hints) >= 0.8 * len(grey)
        for g, box, hint in zip(grey, whole, [hints[0], *whole], strict=False):
            if box is None or hint is None:
                continue
            tracked = detector.detect(g, near=hint)  # where it was in the frame before
            # The same face: centres within 15 % of its size, sizes within one 20 % step of
            # the whole-frame search.
            centre = abs(tracked.x + tracked.w / 2 - box.x - box.w / 2)
            assert centre <= 0.15 * box.w and abs(tracked.w - box.w) <= 0.2 * box.w
        # A hint far from the face (a cut to another shot) falls back to the whole frame.
        assert detector.detect(grey[0], near=Box(0, 0, 20, 20)) == whole[0]

    def test_a_hint_where_no_face_is_finds_nothing(self):
        # Around a hint the search asks fewer windows to agree (3, not 5): still none on
        # frames of painted digits or of noise, at any of these sizes and places.
        detector = HaarFaceDetector()
        hints = [Box(100, 40, 100, 100), Box(20, 20, 60, 60), Box(200, 60, 110, 110)]
        digits = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in numbered_frames(10, 320, 180)]
        noise = np.random.default_rng(0).integers(0, 256, (3, 180, 320), dtype=np.uint8)
        assert [detector.detect(g, near=h) for g in [*digits, *noise] for h in hints] == [None] * 39


class CropTests:
    def test_it_cuts_a_square_around_the_box_with_margin_inside_the_frame(self):
        frame = np.zeros((100, 200, 3), np.uint8)
        frame[40:60, 150:170] = 255
        face = crop(frame, Box(150, 40, 20, 20), size=28, margin=0.2)
        assert face.shape == (28, 28, 3)
        assert face[14, 14].tolist() == [255, 255, 255] and face[0, 0].tolist() == [0, 0, 0]

    def test_a_box_at_the_edge_is_shifted_inside_and_none_is_the_centred_square(self):
        frame = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8)
        assert crop(frame, Box(70, 50, 30, 30), 16).shape == (16, 16, 3)
        assert crop(frame, None, 60).tolist() == frame[:, 10:70].tolist()


class I420CropTests:
    def test_a_crop_of_the_yuv420p_planes_matches_the_crop_of_the_rgb_frame(self):
        y, x = np.mgrid[0:120, 0:160]
        frame = np.stack([x * 1.5, y * 2, 255 - x - y // 2], axis=2).clip(0, 255).astype(np.uint8)
        yuv = cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420)
        planes = I420Frame(yuv, frame.shape[1], frame.shape[0])
        for box in (None, Box(40, 30, 60, 60), Box(130, 5, 40, 40)):
            got = crop(planes, box, 48).astype(int)
            expected = crop(planes.rgb(), box, 48).astype(int)
            assert got.shape == (48, 48, 3) and np.abs(got - expected).mean() < 3


class FaceSheetTests:
    def test_every_crop_comes_back_in_order_and_tiles_do_not_bleed(self, tmp_path):
        # given: 37 crops (two full rows and a part row), alternately black and white
        crops = [np.full((32, 32, 3), 255 * (i % 2), np.uint8) for i in range(37)]
        crops[5][8:24, 8:24] = (200, 30, 60)
        # when
        write_face_sheet(crops, tmp_path / "faces.jpg")
        # then: one JPEG of 16 tiles a row; each tile decodes as its own crop, edges included
        assert Image.open(tmp_path / "faces.jpg").size == (SHEET_COLUMNS * 32, 3 * 32)
        back = read_face_frames(tmp_path / "faces.jpg")
        assert back.shape == (37, 32, 32, 3)
        assert np.abs(back.astype(int) - np.stack(crops)).max() <= 8

    def test_a_folder_of_one_jpeg_per_frame_still_reads(self, tmp_path):
        folder = tmp_path / "faces"
        folder.mkdir()
        for i in range(3):
            Image.fromarray(np.full((16, 16, 3), 100 * i, np.uint8)).save(
                folder / f"{i + 1:05d}.jpg"
            )
        assert read_face_frames(folder)[:, 0, 0, 0].tolist() == [0, 100, 200]


class WriteFaceFramesTests:
    def test_every_frame_gets_a_crop_and_the_ratio_counts_frames_with_a_face(self, tmp_path):
        frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(6)]
        result = write_face_frames(
            frames, tmp_path / "faces.jpg", EveryOther(), size=32, detect_every=1
        )
        # found on 0, 2, 4; missed on 1 and 3, each found again within the hold (5 frames):
        # bridged; missed on 5, the last: no face
        assert (result.n_frames, result.n_found) == (6, 5)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.jpg"]  # one file
        crops = read_face_frames(tmp_path / "faces.jpg")
        assert crops.shape == (6, 32, 32, 3)
        assert np.abs(crops[:, 16, 16, 0].astype(int) - [0, 40, 80, 120, 160, 200]).max() <= 3

    def test_no_face_anywhere_gives_ratio_zero_and_centred_crops(self, tmp_path):
        result = write_face_frames(
            [np.zeros((48, 64, 3), np.uint8)] * 3, tmp_path / "f.jpg", NoFace()
        )
        assert (result.n_frames, result.ratio) == (3, 0.0)
        assert len(read_face_frames(tmp_path / "f.jpg")) == 3

    def test_a_rerun_replaces_the_sheet_and_a_failure_leaves_the_old_one(self, tmp_path):
        sheet = tmp_path / "faces.jpg"
        write_face_frames([np.zeros((48, 64, 3), np.uint8)] * 5, sheet, NoFace())
        write_face_frames([np.zeros((48, 64, 3), np.uint8)] * 2, sheet, NoFace())
        assert len(read_face_frames(sheet)) == 2

        def broken():
            yield np.zeros((48, 64, 3), np.uint8)
            raise RuntimeError("decoder died")

        with pytest.raises(RuntimeError):
            write_face_frames(broken(), sheet, NoFace())
        assert len(read_face_frames(sheet)) == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == ["faces.jpg"]

    def test_the_haar_default_on_a_drawn_face_movie(self, face_movie, tmp_path):
        result = write_face_frames(face_movie, tmp_path / "faces.jpg")
        assert result.n_frames == len(face_movie) and result.ratio >= 0.8


class DetectEveryTests:
    def test_the_detector_sees_every_nth_frame_and_the_box_carries_over(self, tmp_path):
        detector = EveryOther()
        frames = [np.full((48, 64, 3), i, np.uint8) for i in range(11)]
        result = write_face_frames(frames, tmp_path / "f.jpg", detector, size=16, detect_every=5)
        # Frames 0, 5 and 10 examined: the detector's 1st and 3rd calls find a face.
        assert (detector.calls, result.n_examined, result.n_found, result.n_frames) == (3, 3, 2, 11)
        assert result.ratio == pytest.approx(2 / 3)


def drawn_face_frames(seed: int) -> list[I420Frame]:
    """70 frames (25 fps) of a drawn face going through every expression, 108 px, at
    x 50–158, y 36–144 of a grey 320×180 frame, as the extraction's yuv420p planes."""
    movie = drawn_face_movie(list(EMOTION_NAMES), 0.4, 25, 108, np.random.default_rng(seed))
    frames = []
    for face in movie:
        frame = np.full((180, 320, 3), 96, np.uint8)
        frame[36:144, 50:158] = face
        frames.append(I420Frame(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420), 320, 180))
    return frames


class Counting(HaarFaceDetector):
    """Haar, counting its whole-frame examinations."""

    calls = 0

    def detect_all(self, frame):
        self.calls += 1
        return super().detect_all(frame)


class FaceCropsTests:
    def test_on_the_drawn_face_source_every_crop_is_around_the_face(self):
        found = examined = calls = 0
        for seed in range(4):
            frames = drawn_face_frames(seed)
            detector = Counting()
            crops = FaceCrops(detector)
            for frame in frames:
                crops.add(frame)
            # every frame's box on the face (centre 104, 90, 108 px); Haar's box wavers more
            # in size than in place
            for box in crops.boxes:
                if box is not None:
                    assert 0.7 * 108 <= box.w <= 1.4 * 108
                    assert abs(box.x + box.w / 2 - 104) + abs(box.y + box.h / 2 - 90) <= 0.35 * 108
            assert crops.found.n_frames == len(crops.tiles) == 70
            # Haar misses one drawn expression of seed 0 (frames 42-47, the whole-frame search
            # as well): longer than the hold, so no face there, not a carried box
            assert len(crops.no_face) <= 6
            found, examined = found + crops.n_found, examined + crops.n_examined
            calls += detector.calls
        # the face on (nearly) every 5th frame, and the whole frame examined on fewer, the
        # face staying put (followed in a window around it in between)
        assert examined == 4 * 14 and found >= 0.9 * examined
        assert calls <= 0.75 * examined

    def test_the_steady_ratio_is_the_every_5th_frame_ratio_give_or_take(self):
        for seed in (2, 9):
            frames = drawn_face_frames(seed)
            steady, every_5th = FaceCrops(), FaceCrops(steady_every=5)
            for frame in frames:
                steady.add(frame)
                every_5th.add(frame)
            assert abs(steady.found.ratio - every_5th.found.ratio) <= 0.1

    def test_a_steady_face_is_examined_every_10th_frame_and_a_moving_one_every_5th(self):
        class Still:
            calls = 0

            def detect(self, frame, near=None):
                self.calls += 1
                return Box(10, 10, 20, 20)

        class Moving(Still):
            def detect(self, frame, near=None):
                self.calls += 1
                return Box(10 + 5 * self.calls, 10, 20, 20)

        frames = [np.zeros((48, 64, 3), np.uint8)] * 31
        for detector, calls in ((Still(), 4), (Moving(), 7), (NoFace(), None)):
            crops = FaceCrops(detector, size=16)
            for frame in frames:
                crops.add(frame)
            # frames 0, 5, 15, 25 (steady from the 2nd look on), or every 5th; all 7 of the
            # 5th frames count as examined, with what the last look found
            assert crops.n_examined == 7
            if calls is not None:
                assert (detector.calls, crops.n_found) == (calls, 7)
            else:
                assert crops.n_found == 0

    def test_steady_every_is_a_multiple_of_detect_every(self):
        with pytest.raises(ValueError, match="multiple"):
            FaceCrops(NoFace(), detect_every=5, steady_every=12)


class Scripted:
    """A detector that finds what it is told, one answer per call."""

    def __init__(self, *answers):
        self.answers = list(answers)

    def detect(self, frame, near=None):
        return self.answers.pop(0)


class NoFaceIsAFactTests:
    BOX = Box(10, 10, 20, 20)
    MOVED = Box(30, 10, 20, 20)

    def boxes(self, detector, n, **kwargs):
        crops = FaceCrops(detector, size=16, **kwargs)
        for _ in range(n):
            crops.add(np.zeros((48, 64, 3), np.uint8))
        assert len(crops.tiles) == len(crops.boxes) == n  # a tile for every frame still
        return crops

    def test_after_the_face_goes_the_box_is_held_at_most_hold_frames(self):
        # Examined: 0 (face), 5 (moved: not steady), 10 (none), 15 (none, steady from there).
        crops = self.boxes(Scripted(self.BOX, self.MOVED, None, None), 20, hold=2)
        # between two looks that found it, the box moves from one to the other
        assert [b.x for b in crops.boxes[:6]] == [10, 14, 18, 22, 26, 30]
        assert crops.boxes[5:8] == [self.MOVED] * 3  # frames 5, 6, 7: within 2 of frame 5
        assert crops.no_face == list(range(8, 20))
        assert crops.n_found == 2

    def test_a_steady_face_is_held_between_its_examinations(self):
        # Steady from frame 5 on: the next look is at 15; the face is there, so nothing is
        # taken back, though 15 - 5 frames is more than the hold.
        crops = self.boxes(Scripted(self.BOX, self.BOX, self.BOX, self.BOX), 26, hold=2)
        assert crops.no_face == []

    def test_a_steady_face_that_goes_is_taken_back_after_the_hold(self):
        # Looks at 0, 5, then 15 (steady): nothing at 15; frames 8..14 had the box on trust.
        crops = self.boxes(Scripted(self.BOX, self.BOX, None), 16, hold=2)
        assert crops.no_face == list(range(8, 16))

    def test_no_hold_bound_keeps_the_box_to_the_next_look(self):
        crops = self.boxes(Scripted(self.BOX, self.BOX, None), 16, hold=None)
        assert crops.no_face == [15]

    def test_before_any_face_every_frame_is_no_face(self):
        # Looks at 0 and 5 (nothing), then at 15 (steady): the face.
        crops = self.boxes(Scripted(None, None, self.BOX), 17)
        assert crops.no_face == list(range(15)) and crops.boxes[15:] == [self.BOX] * 2
