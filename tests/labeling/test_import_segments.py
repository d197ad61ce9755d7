"""python manage.py import_segments: bad files and rows end in a message naming the file and the
line, never a traceback, and propose nothing (issue 21, item 9)."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from labeling.models import Clip
from tests.labeling.test_movies import ready_movie

HEADER = "movie,start_s,end_s,suspected_label\n"
GOOD = "film,0,1,\n"


@pytest.fixture
def movie(campaign, tmp_path_factory):
    """A 3 s movie titled "film", probed and ready."""
    return ready_movie(campaign, tmp_path_factory.mktemp("movie"))


def run(path) -> str:
    out = io.StringIO()
    call_command("import_segments", "campaign", str(path), stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.django_db
class ImportSegmentsBadInputTests:
    @pytest.mark.parametrize(
        ("content", "message"),
        [
            # a short row, a long row
            (HEADER + GOOD + "film,1.5\n", "line 3: malformed line (2 fields where the header"),
            (HEADER + GOOD + "film,1.5,2.5,,x\n", "line 3: malformed line (5 fields where"),
            (b"movie,start_s,end_s\nfilm,0,1\nfilm,1.5,2.5\n\xff,0,1\n", "line 4: the line is not"),
            (HEADER.encode() + b"film,0,1,\xe9\n", "line 2: the line is not UTF-8 text"),
            (HEADER + GOOD + "film,1.5,2.5," + "h" * 131_073 + "\n", "line 3: a field is longer"),
            (HEADER + GOOD + "film,1.5,2.5,happy\x00\n", "line 3: a field holds a NUL character"),
            (HEADER + GOOD + "fi\x00lm,1.5,2.5,\n", "line 3: a field holds a NUL character"),
            (HEADER + GOOD + "film,nan,1,\n", "line 3: start_s 'nan' and end_s '1' must be"),
            (HEADER + GOOD + "film,0,1e400,\n", "line 3: start_s '0' and end_s '1e400' must be"),
            (HEADER + GOOD + "film,2,1,\n", "line 3: start_s '2' and end_s '1' must be"),
            (HEADER + GOOD + "film,x,1,\n", "line 3: start_s and end_s must be numbers"),
            (HEADER + GOOD + "nope,0,1,\n", "line 3: no movie 'nope' in campaign"),
            (
                HEADER + GOOD + "film,1.5,2.5,joy\n",
                "line 3: Segment 2 (1.5–2.5 s): unknown emotion",
            ),
            ("movie,start\nfilm,0\n", "line 1: missing columns start_s, end_s"),
            ("", "line 1: missing columns movie, start_s, end_s"),
        ],
    )
    def test_a_bad_row_names_the_file_and_line_and_proposes_nothing(
        self, tmp_path, movie, content, message
    ):
        path = tmp_path / "segments.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        with pytest.raises(CommandError) as raised:
            run(path)
        text = str(raised.value)
        assert text.startswith(f"{path}: ")
        assert message in text
        assert not Clip.objects.exists()

    def test_a_missing_file_is_named(self, tmp_path, movie):
        path = tmp_path / "nope.csv"
        with pytest.raises(CommandError, match=re.escape(f"{path}: no such file")):
            run(path)

    def test_a_folder_is_named(self, tmp_path, movie):
        with pytest.raises(CommandError, match=re.escape(f"{tmp_path}: is a folder, not a file")):
            run(tmp_path)

    def test_good_rows_with_blank_lines_a_bom_and_header_case_are_proposed(self, tmp_path, movie):
        path = tmp_path / "segments.csv"
        path.write_text(
            "\ufeffMovie, Start_s ,END_S\n\nfilm,0,1\n\n" + f"{movie.pk},1.5,2.5\n",
            encoding="utf-8",
        )
        assert "2 clips proposed" in run(path)
        assert Clip.objects.count() == 2


POINTS = "movie,start_s,end_s,face_x,face_y\n"


@pytest.mark.django_db
class ImportSegmentsFacePointTests:
    def test_the_optional_face_point_columns_are_kept_with_each_clip(self, tmp_path, movie):
        path = tmp_path / "segments.csv"
        path.write_text(POINTS + "film,0,1,0.25,0.75\nfilm,1.5,2.5,,\n")
        assert "2 clips proposed" in run(path)
        points = list(Clip.objects.order_by("start_s").values_list("face_x", "face_y"))
        assert points == [(0.25, 0.75), (None, None)]

    @pytest.mark.parametrize(
        ("row", "message"),
        [
            ("film,1.5,2.5,0.5,\n", "line 3: face_x and face_y come together, or neither."),
            ("film,1.5,2.5,,0.5\n", "line 3: face_x and face_y come together, or neither."),
            ("film,1.5,2.5,a,0.5\n", "line 3: face_x 'a' and face_y '0.5' must be numbers."),
            ("film,1.5,2.5,1.2,0.5\n", "line 3: the face point (1.2, 0.5) must lie in the frame"),
            ("film,1.5,2.5,nan,0.5\n", "line 3: the face point (nan, 0.5) must lie in the frame"),
        ],
    )
    def test_a_bad_face_point_names_the_line_and_proposes_nothing(
        self, tmp_path, movie, row, message
    ):
        path = tmp_path / "segments.csv"
        path.write_text(POINTS + "film,0,1,0.5,0.5\n" + row)
        with pytest.raises(CommandError) as raised:
            run(path)
        assert str(raised.value).startswith(f"{path}: ")
        assert message in str(raised.value)
        assert not Clip.objects.exists()
