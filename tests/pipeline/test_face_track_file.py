"""pipeline/face_track_file.py: a clip's face track as a CSV (write, read, nearest crop) and
pipeline/face_flags.py: the screening's face flags from it (issue 19, item 5)."""

from __future__ import annotations

import io
import os

import pytest

from pipeline.face_flags import face_flags
from pipeline.face_track_file import (
    COLUMNS,
    TrackFrame,
    from_detections,
    nearest_face,
    read_track,
    stage_track,
    write_track,
)
from pipeline.faces import Box, Detection

MARKS = ((30.5, 40.25), (50.0, 40.0), (40.0, 50.0), (33.0, 60.0), (47.0, 60.0))


def face(x=20, y=30, side=40, score=0.875, marks=MARKS, aligned=True) -> TrackFrame:
    return TrackFrame((x, y, side, side), score, marks, aligned)


class TrackFileTests:
    def test_it_writes_the_issues_columns_with_empty_fields_for_no_face(self, tmp_path):
        track = [face(), None, face(marks=None, aligned=False, score=1.0)]
        path = write_track(track, tmp_path / "faces" / "7.csv")
        lines = path.read_text().splitlines()
        assert lines[0] == (
            "frame,x,y,w,h,score,eye_l_x,eye_l_y,eye_r_x,eye_r_y,nose_x,nose_y,"
            "mouth_l_x,mouth_l_y,mouth_r_x,mouth_r_y,aligned"
        )
        assert lines[1] == "0,20,30,40,40,0.875,30.5,40.2,50,40,40,50,33,60,47,60,1"
        assert lines[2] == "1" + "," * (len(COLUMNS) - 1)
        assert lines[3] == "2,20,30,40,40,1,,,,,,,,,,,0"
        assert os.listdir(tmp_path / "faces") == ["7.csv"]  # no partial file left

    def test_what_is_written_reads_back_frame_for_frame(self, tmp_path):
        track = [None, face(), face(x=21.5, marks=None, aligned=False), None]
        write_track(track, tmp_path / "t.csv")
        back = read_track(tmp_path / "t.csv")
        assert back[0] is None and back[3] is None
        assert back[1].box == (20, 30, 40, 40) and back[1].aligned
        assert back[1].landmarks == ((30.5, 40.2), (50, 40), (40, 50), (33, 60), (47, 60))
        assert back[2].box == (21.5, 30, 40, 40) and back[2].landmarks is None
        assert not back[2].aligned

    def test_the_exports_track_numbers_frames_from_one(self, tmp_path):
        write_track([face(), None], tmp_path / "t.csv", first_frame=1)
        assert [line.split(",")[0] for line in (tmp_path / "t.csv").read_text().splitlines()] == [
            "frame",
            "1",
            "2",
        ]
        assert read_track(tmp_path / "t.csv", first_frame=1)[1] is None

    def test_a_staged_track_has_the_partial_name_the_sweep_removes(self, tmp_path):
        tmp = stage_track([face()], tmp_path / "12.csv")
        assert tmp.name == f".12.{os.getpid()}.tmp.csv"
        assert not (tmp_path / "12.csv").exists()

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("frame,x,y\n0,1,2\n", "line 1: the columns are not a face track's"),
            (",".join(COLUMNS) + "\n1" + "," * 16 + "\n", "line 2: frame '1', expected 0"),
            (",".join(COLUMNS) + "\n0,a,1,2,3,1" + "," * 11 + "\n", "line 2: x 'a' is not a"),
            (",".join(COLUMNS) + "\n0,1,1,2,3,inf" + "," * 11 + "\n", "line 2: score 'inf' is"),
        ],
    )
    def test_a_bad_file_is_refused_naming_the_line(self, text, message):
        with pytest.raises(ValueError, match=message):
            read_track(io.StringIO(text))

    def test_detections_become_a_track(self):
        detections = [Detection(Box(1, 2, 3, 4)), None, Detection(Box(5, 6, 7, 8), 0.5, MARKS)]
        track = from_detections(detections, [False, False, True])
        assert track[0] == TrackFrame((1, 2, 3, 4), 1.0, None, False)
        assert track[1] is None
        assert track[2] == TrackFrame((5, 6, 7, 8), 0.5, MARKS, True)


class NearestFaceTests:
    def test_a_no_face_frame_takes_the_nearest_face_frame_the_earlier_on_a_tie(self):
        f = face()
        assert nearest_face([None, f, None, None, f, None]) == [1, 1, 1, 4, 4, 4]
        assert nearest_face([f, None, f]) == [0, 0, 2]
        assert nearest_face([None, None, f]) == [2, 2, 2]

    def test_without_any_face_every_frame_keeps_its_own_crop(self):
        assert nearest_face([None, None, None]) == [0, 1, 2]
        assert nearest_face([]) == []


class FaceFlagsTests:
    def test_lost_is_more_missing_frames_than_the_share_allowed(self):
        # 2 of 10 missing is 20 %: not more than 0.2; 3 of 10 is
        two = [face()] * 8 + [None] * 2
        three = [face()] * 7 + [None] * 3
        assert not face_flags(two, lost_share=0.2, min_px=10).lost
        assert face_flags(three, lost_share=0.2, min_px=10).lost
        assert face_flags([], lost_share=0.2, min_px=10).lost

    def test_small_is_the_median_side_under_the_size(self):
        # sides 30, 30, 60 (median 30) against 40; a close-up with two far-off frames is not
        far = [face(side=30), face(side=30), face(side=60)]
        near = [face(side=30), face(side=60), face(side=60)]
        assert face_flags(far, lost_share=0.5, min_px=40).small
        assert not face_flags(near, lost_share=0.5, min_px=40).small
        assert not face_flags([None, None], lost_share=0.5, min_px=40).small

    def test_second_is_any_frame_with_another_face_as_large(self):
        track = [face()] * 4
        assert not face_flags(track, lost_share=0.2, min_px=10).second
        assert face_flags(track, lost_share=0.2, min_px=10, second_face_frames=1).second
