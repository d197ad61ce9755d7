import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.faces import (
    SHEET_COLUMNS,
    Box,
    HaarFaceDetector,
    crop,
    read_face_frames,
    write_face_frames,
    write_face_sheet,
)
from pipeline.media import I420Frame
from pipeline.synthetic_movies import drawn_face_movie


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
        assert (result.n_frames, result.n_found, result.ratio) == (6, 3, 0.5)
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
