"""The real-face test set (pipeline.real_faces) and the CNN face detector on it."""

import re
from pathlib import Path

import numpy as np
import pytest

from pipeline import face_sheets, faces
from pipeline.real_faces import HEIGHT, PAIR, STRETCHES, WIDTH, localised, real_face_movie

pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def movie():
    return real_face_movie(0)


@pytest.fixture(scope="module")
def frames(movie):
    return list(movie.frames())


def test_ground_truth_is_inside_the_frame_and_sized_as_announced(movie):
    assert movie.n_frames == sum(s.n for s in STRETCHES)
    sides = [t.w for t in movie.truth if t is not None]
    assert 40 <= min(sides) <= 45 and 215 <= max(sides) <= 220
    for box in movie.truth + movie.others:
        if box is not None:
            assert 0 <= box.x and box.x + box.w <= WIDTH
            assert 0 <= box.y and box.y + box.h <= HEIGHT


def test_cutaways_have_no_face_and_the_second_face_is_smaller_and_apart(movie):
    for box, other, name in zip(movie.truth, movie.others, movie.stretch, strict=True):
        assert (box is None) == (name in ("cutaway", "empty_end"))
        assert (other is not None) == (name == "two_faces")
        if other is not None:
            assert other.w < 0.6 * box.w
            assert not localised(other, box)


def test_frames_are_deterministic(movie, frames):
    again = real_face_movie(0)
    assert again.truth == movie.truth
    redrawn = list(again.frames())
    for i in (0, 100, 200, movie.n_frames - 1):
        assert np.array_equal(redrawn[i], frames[i])
    assert frames[0].shape == (HEIGHT, WIDTH, 3) and frames[0].dtype == np.uint8
    assert real_face_movie(1).truth != movie.truth


def test_haar_stays_available_by_name():
    assert isinstance(faces.make_detector("haar"), faces.HaarFaceDetector)
    with pytest.raises(ValueError, match="unknown face detector"):
        faces.make_detector("dlib")


def test_settings_offer_exactly_the_detectors():
    text = (Path(__file__).resolve().parents[2] / "annotation_site/settings.py").read_text()
    offered = re.search(r"FACE_DETECTOR not in \(([^)]*)\)", text).group(1)
    assert set(re.findall(r'"(\w+)"', offered)) == set(faces.DETECTORS)


def test_yuface_finds_the_target_and_says_no_face(movie, frames):
    # bench/faces.py, seed 0: localised 0.968 (Haar 0.718), no-face frames 1.00, never on
    # the second face; the thresholds keep a margin for other builds of the wheel.
    pytest.importorskip("yuface")
    detector = faces.make_detector("yuface")
    found = [detector.detect_one(f) for f in frames]
    face = [i for i, t in enumerate(movie.truth) if t is not None]
    empty = [i for i, t in enumerate(movie.truth) if t is None]
    hits = [localised(found[i] and found[i].box, movie.truth[i]) for i in face]
    assert sum(hits) / len(face) >= 0.93
    assert sum(found[i] is None for i in empty) / len(empty) >= 0.95
    for i, other in enumerate(movie.others):
        if other is not None and found[i] is not None:
            assert not localised(found[i].box, other)
    # Five landmarks, eyes above the mouth, inside the box, on the picture's left first.
    d = next(found[i] for i in face if found[i] is not None)
    assert d.landmarks is not None and len(d.landmarks) == 5
    (lx, ly), (rx, ry), _nose, (mlx, mly), (mrx, mry) = d.landmarks
    assert lx < rx and mlx < mrx and max(ly, ry) < min(mly, mry)
    b = d.box
    assert all(b.x <= x <= b.x + b.w and b.y <= y <= b.y + b.h for x, y in d.landmarks)
    assert 0.5 <= d.score <= 1.0


def test_yuface_reads_luma_and_large_frames(frames):
    pytest.importorskip("yuface")
    import cv2

    detector = faces.make_detector("yuface", detect_height=180)
    frame = frames[10]  # a 165 px face: found at half size, on luma
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    assert detector.detect(grey) is not None
    big = cv2.resize(frame, (1280, 720))
    box = faces.make_detector("yuface").detect(big)
    small = faces.make_detector("yuface").detect(frame)
    assert box is not None and small is not None
    assert abs(box.x - 2 * small.x) <= 0.1 * box.w and abs(box.w - 2 * small.w) <= 0.15 * box.w


def test_yuface_crops_a_clip(frames, tmp_path):
    pytest.importorskip("yuface")
    found = faces.write_face_frames(
        frames[:50], tmp_path / "sheet.jpg", detector=faces.make_detector("yuface")
    )
    assert found.n_frames == 50 and found.ratio == 1.0
    assert face_sheets.read_face_frames(tmp_path / "sheet.jpg").shape == (50, 112, 112, 3)


def as_yuv420p(frames):
    """The frames as the extraction hands them to FaceCrops: ffmpeg's yuv420p planes."""
    import cv2

    from pipeline.media import I420Frame

    return [I420Frame(cv2.cvtColor(f, cv2.COLOR_RGB2YUV_I420), WIDTH, HEIGHT) for f in frames]


@pytest.mark.parametrize("skip", [0, 3])
def test_the_tracked_target_meets_issue_19s_targets(movie, frames, skip):
    # FaceCrops as the extraction runs it (yuface, the whole frame every 5th frame, every
    # 10th while steady, the target followed in a window around it in between; misses
    # bridged within 5 frames: 0.2 s at 25 fps), on yuv420p planes. ``skip`` 3: the cuts then
    # fall between two whole-frame examinations instead of on one. Issue 19's targets: the
    # box on the target in >= 95 % of face frames (seed 0: 0.993; yuface alone, per frame,
    # 0.968), never on the other face, >= 90 % of the frames without a face said so (1.00).
    pytest.importorskip("yuface")
    crops = faces.FaceCrops(faces.make_detector("yuface"), hold=5)
    for frame in as_yuv420p(frames[skip:]):
        crops.add(frame)
    truth, others = movie.truth[skip:], movie.others[skip:]
    found = crops.detections
    face = [i for i, t in enumerate(truth) if t is not None]
    empty = [i for i, t in enumerate(truth) if t is None]
    hits = [localised(found[i] and found[i].box, truth[i]) for i in face]
    assert sum(hits) / len(face) >= 0.95
    for stretch in {s.name for s in STRETCHES if s.face}:  # dark, blurred, small: each
        mine = [h for h, i in zip(hits, face, strict=True) if movie.stretch[i + skip] == stretch]
        assert sum(mine) / len(mine) >= 0.85, stretch
    assert not any(o and found[i] and localised(found[i].box, o) for i, o in enumerate(others))
    assert sum(found[i] is None for i in empty) / len(empty) >= 0.9
    # aligned on the landmarks wherever the target is; the second face is about half its
    # size, so not counted as a second face
    assert all(crops.aligned[i] for i in range(len(found)) if found[i] is not None)
    assert crops.second_face_frames == 0
    assert len(crops.tiles) == len(found) == len(truth)


def test_a_click_on_the_second_face_follows_it_and_the_first_counts_as_a_second_face():
    pytest.importorskip("yuface")
    pair = real_face_movie(0, PAIR)
    x, y, w, h = (lambda b: (b.x, b.y, b.w, b.h))(pair.others[0])
    crops = faces.FaceCrops(faces.make_detector("yuface"), target=(x + w / 2, y + h / 2))
    for frame in as_yuv420p(pair.frames()):
        crops.add(frame)
    found = crops.detections
    for i, (other, truth) in enumerate(zip(pair.others, pair.truth, strict=True)):
        if other is None:
            assert found[i] is None  # the empty shot at the end
        else:
            assert localised(found[i].box, other) and not localised(found[i].box, truth)
    # the whole frame examined on 0, 5, then every 10th (steady): each saw the other face,
    # larger than the target
    assert crops.second_face_frames >= 4
    unclicked = faces.FaceCrops(faces.make_detector("yuface"))
    for frame in pair.frames():
        unclicked.add(frame)
    assert localised(unclicked.detections[0].box, pair.truth[0])  # the larger, nearer the centre


def test_yuface_runs_openmp_at_one_thread_and_leaves_the_environment_alone():
    # In a fresh process, as a worker builds it: yuface's own libgomp at one thread, and no
    # OMP_NUM_THREADS left behind for what the process loads later (PyTorch).
    pytest.importorskip("yuface")
    pytest.importorskip("threadpoolctl")
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json, os; from pipeline import faces; faces.make_detector('yuface'); "
        "from threadpoolctl import threadpool_info; "
        "print(json.dumps([os.environ.get('OMP_NUM_THREADS'), "
        "[i['num_threads'] for i in threadpool_info() if i['user_api'] == 'openmp']]))"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, check=True
    )
    left, threads = json.loads(out.stdout)
    assert left is None and threads and set(threads) == {1}
