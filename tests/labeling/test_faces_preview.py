"""python manage.py faces_preview: the extraction's decode, detector and tracker over a span of
a movie, the target's box per frame of the span in the movie's pixels.

The movie is made of the real-face test set (pipeline.real_faces: Grace Hopper zooming out,
a cutaway to an empty shot, then beside a smaller second face), drawn at twice its size
(1280 × 720), so the boxes must come back from the 360p decode to the movie's pixels."""

import csv
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.management import CommandError, call_command
from PIL import Image

from pipeline.face_detectors import Box
from pipeline.face_preview import THUMB_COLUMNS, THUMB_WIDTH
from pipeline.media import write_video
from pipeline.real_faces import STRETCHES, localised, real_face_movie

pytest.importorskip("skimage")
pytest.importorskip("yuface")

ROOT = Path(__file__).resolve().parents[2]
PARTS = tuple(s for s in STRETCHES if s.name in ("zoom_out", "cutaway", "two_faces"))


def doubled(box):
    return None if box is None else Box(2 * box.x, 2 * box.y, 2 * box.w, 2 * box.h)


@pytest.fixture(scope="module")
def movie(tmp_path_factory):
    """(path, the real-face movie): frames 0-49 the face, 50-89 none, 90-139 two faces."""
    made = real_face_movie(0, PARTS)
    frames = np.stack([cv2.resize(f, (1280, 720)) for f in made.frames()])
    path = write_video(frames, tmp_path_factory.mktemp("movie") / "movie.mp4", fps=25, crf=18)
    return path, made


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def preview(*args, **kwargs):
    call_command("faces_preview", *[str(a) for a in args], **kwargs)


def test_it_writes_the_targets_box_per_frame_of_the_span_in_the_movies_pixels(movie, tmp_path):
    # given: the span 1.6-4.4 s: movie frames 40-109 (the face, the cutaway, two faces)
    path, made = movie
    out, png = tmp_path / "boxes.csv", tmp_path / "sheet.png"
    # when: decoded at 360p, as a campaign with clips of at most 360 px would extract it
    preview(path, "--start-s", 1.6, "--end-s", 4.4, "--csv", out, "--png", png, max_height=360)
    # then: a row per frame of the span, frame 0 its first
    table = rows(out)
    assert table[0] == ["frame", "x", "y", "w", "h", "score"]
    assert [int(r[0]) for r in table[1:]] == list(range(70))
    face = empty = hits = said_none = 0
    for row in table[1:]:
        k = int(row[0])
        truth, other = doubled(made.truth[40 + k]), doubled(made.others[40 + k])
        box = None if row[1] == "" else Box(*(int(v) for v in row[1:5]))
        assert (row[1] == "") == (row[5] == "")  # x..score all empty, or none
        if truth is None:
            empty += 1
            said_none += box is None
        else:
            face += 1
            hits += localised(box, truth)
            assert other is None or not localised(box, other)
            assert box is None or 0.5 <= float(row[5]) <= 1.0
    # issue 19's targets on the frames of the span
    assert hits / face >= 0.95 and said_none / empty >= 0.9
    # the contact sheet: every frame, 8 a row, 192 px wide each
    sheet = Image.open(png)
    assert sheet.format == "PNG"
    assert sheet.size == (THUMB_COLUMNS * THUMB_WIDTH, 9 * 108)


def test_a_target_point_follows_the_face_it_is_on(movie, tmp_path):
    # the span 3.6-5.2 s: movie frames 90-129, two faces; the point on the smaller one
    path, made = movie
    other = doubled(made.others[90])
    point = f"{other.x + other.w / 2:.0f},{other.y + other.h / 2:.0f}"
    out = tmp_path / "boxes.csv"
    preview(path, "--start-s", 3.6, "--end-s", 5.2, "--csv", out, "--target", point)
    table = rows(out)[1:]
    assert len(table) == 40
    for row in table:
        k = int(row[0])
        box = Box(*(int(v) for v in row[1:5]))
        assert localised(box, doubled(made.others[90 + k]))


class RefusalTests:
    @pytest.mark.parametrize(
        "span, message",
        [
            ((2.0, 2.0), "empty"),
            ((-1.0, 2.0), "before 0"),
            ((9.0, 10.0), "after the movie's end"),
        ],
    )
    def test_a_bad_span_is_refused(self, movie, tmp_path, span, message):
        out = tmp_path / "boxes.csv"
        with pytest.raises(CommandError, match=message):
            preview(movie[0], "--start-s", span[0], "--end-s", span[1], "--csv", out)
        assert not out.exists()

    def test_a_missing_file_and_a_file_that_is_no_video_are_refused(self, tmp_path):
        out = tmp_path / "boxes.csv"
        with pytest.raises(CommandError, match="no such file"):
            preview(tmp_path / "nope.mp4", "--start-s", 0, "--end-s", 1, "--csv", out)
        text = tmp_path / "notes.mp4"
        text.write_text("not a video\n" * 100)
        with pytest.raises(CommandError, match="notes.mp4"):
            preview(text, "--start-s", 0, "--end-s", 1, "--csv", out)
        assert not out.exists()

    def test_a_bad_target_is_refused(self, movie, tmp_path):
        with pytest.raises(CommandError, match="X,Y"):
            preview(
                movie[0], "--start-s", 0, "--end-s", 1, "--csv", tmp_path / "b.csv",
                "--target", "middle",
            )  # fmt: skip

    def test_manage_py_exits_non_zero_with_the_message_and_no_traceback(self, tmp_path):
        env = dict(os.environ, VAR_DIR=str(tmp_path))
        proc = subprocess.run(
            [sys.executable, "manage.py", "faces_preview", str(tmp_path / "nope.mp4"),
             "--start-s", "0", "--end-s", "1", "--csv", str(tmp_path / "b.csv")],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode != 0
        assert "no such file" in proc.stderr and "Traceback" not in proc.stderr
