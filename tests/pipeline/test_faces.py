import numpy as np
import pytest
from PIL import Image

from pipeline.faces import Box, HaarFaceDetector, crop, face_frame_name, write_face_frames
from pipeline.synthetic_movies import drawn_face_movie


@pytest.fixture(scope="module")
def face_movie():
    return drawn_face_movie(["happy", "surprise"], 0.5, 12, 160, np.random.default_rng(3))


class NoFace:
    def detect(self, frame):
        return None


class EveryOther:
    """A stand-in detector: a face at a fixed place on even frames only."""

    def __init__(self):
        self.calls = 0

    def detect(self, frame):
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


class WriteFaceFramesTests:
    def test_every_frame_gets_a_crop_and_the_ratio_counts_frames_with_a_face(self, tmp_path):
        frames = [np.full((48, 64, 3), i, np.uint8) for i in range(6)]
        result = write_face_frames(
            frames, tmp_path / "faces", EveryOther(), size=32, detect_every=1
        )
        assert (result.n_frames, result.n_found, result.ratio) == (6, 3, 0.5)
        names = sorted(p.name for p in (tmp_path / "faces").iterdir())
        assert (
            names == [face_frame_name(i) for i in range(6)] == [f"{i:05d}.jpg" for i in range(1, 7)]
        )
        assert Image.open(tmp_path / "faces" / "00002.jpg").size == (32, 32)

    def test_no_face_anywhere_gives_ratio_zero_and_centred_crops(self, tmp_path):
        result = write_face_frames([np.zeros((48, 64, 3), np.uint8)] * 3, tmp_path / "f", NoFace())
        assert (result.n_frames, result.ratio) == (3, 0.0)
        assert len(list((tmp_path / "f").iterdir())) == 3

    def test_a_rerun_replaces_the_folder_and_a_failure_leaves_the_old_one(self, tmp_path):
        folder = tmp_path / "faces"
        write_face_frames([np.zeros((48, 64, 3), np.uint8)] * 5, folder, NoFace())
        write_face_frames([np.zeros((48, 64, 3), np.uint8)] * 2, folder, NoFace())
        assert len(list(folder.iterdir())) == 2

        def broken():
            yield np.zeros((48, 64, 3), np.uint8)
            raise RuntimeError("decoder died")

        with pytest.raises(RuntimeError):
            write_face_frames(broken(), folder, NoFace())
        assert len(list(folder.iterdir())) == 2
        assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]

    def test_the_haar_default_on_a_drawn_face_movie(self, face_movie, tmp_path):
        result = write_face_frames(face_movie, tmp_path / "faces")
        assert result.n_frames == len(face_movie) and result.ratio >= 0.8


class DetectEveryTests:
    def test_the_detector_sees_every_nth_frame_and_the_box_carries_over(self, tmp_path):
        detector = EveryOther()
        frames = [np.full((48, 64, 3), i, np.uint8) for i in range(11)]
        result = write_face_frames(frames, tmp_path / "f", detector, size=16, detect_every=5)
        # Frames 0, 5 and 10 examined: the detector's 1st and 3rd calls find a face.
        assert (detector.calls, result.n_examined, result.n_found, result.n_frames) == (3, 3, 2, 11)
        assert result.ratio == pytest.approx(2 / 3)
