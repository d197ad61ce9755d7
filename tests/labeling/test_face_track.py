"""The face track stored with a clip (issue 19, items 3 and 5): the extractor's face point kept
with the segment, the track written beside the face sheet by the extraction, its flags, the
API that serves it and the DFEW-format export's ``faces/<clip>.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from django.db import IntegrityError, transaction

from labeling.media import extraction
from labeling.models import Clip, Role
from pipeline.face_sheets import read_face_frames, write_face_sheet
from pipeline.face_track_file import TrackFrame, read_track, write_track
from pipeline.faces import Box
from pipeline.synthetic_movies import frame_numbers
from tests.conftest import make_clips, make_user
from tests.labeling.test_extraction import leave_partial_outputs, partial_outputs, propose
from tests.labeling.test_movies import ready_movie


@pytest.fixture
def eve(campaign):
    user = make_user("eve", Role.EXTRACTOR)
    campaign.annotators.add(user, through_defaults={"role": Role.EXTRACTOR})
    return user


class ScriptedDetector:
    """Finds the face it is told to in each frame of `numbered_frames` (read from the frame's
    painted number): the extraction around it is real (ffmpeg, the crops, the files)."""

    wants_rgb = True

    def __init__(self, faces: dict[int, Box]):
        self.faces = faces

    def detect(self, frame, near=None):
        return self.faces.get(frame_numbers(frame[None])[0])


FACE = Box(10, 8, 20, 20)


@pytest.mark.django_db
class FacePointTests:
    def test_the_api_keeps_the_extractors_point_with_the_clip(
        self, client, campaign, eve, tmp_path
    ):
        movie = ready_movie(campaign, tmp_path)
        client.force_login(eve)
        response = client.post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0, "end_s": 1, "face_point": [0.25, 0.75]}]},
            content_type="application/json",
        )
        assert response.status_code == 201, response.content
        clip = Clip.objects.get()
        assert clip.face_point == (0.25, 0.75)
        assert response.json()["clips"][0]["face_point"] == [0.25, 0.75]

    @pytest.mark.parametrize(
        ("point", "message"),
        [
            ([1.5, 0.5], "the face point (1.5, 0.5) must lie in the frame"),
            ([0.5, -0.1], "the face point (0.5, -0.1) must lie in the frame"),
            ([0.5], "at least 2 elements"),
            (["x", 0.5], "valid number"),
        ],
    )
    def test_a_bad_point_is_400_with_the_reason_and_proposes_nothing(
        self, client, campaign, eve, tmp_path, point, message
    ):
        movie = ready_movie(campaign, tmp_path)
        client.force_login(eve)
        response = client.post(
            f"/api/v1/movies/{movie.pk}/clips/",
            {"segments": [{"start_s": 0, "end_s": 1, "face_point": point}]},
            content_type="application/json",
        )
        assert response.status_code == 400
        assert message in response.content.decode()
        assert not Clip.objects.exists()

    def test_the_database_refuses_half_a_point_or_one_outside_the_frame(self, campaign):
        (clip,) = make_clips(campaign, 1)
        for x, y in ((0.5, None), (None, 0.5), (1.01, 0.5)):
            with pytest.raises(IntegrityError), transaction.atomic():
                Clip.objects.filter(pk=clip.pk).update(face_x=x, face_y=y)

    def test_the_point_becomes_pixels_of_the_normalised_clip(self):
        # a 1280 × 720 movie cut at 360 px high is 640 × 360: a share is the same share
        assert extraction.face_target((0.25, 0.5), 640, 360) == (160.0, 180.0)
        assert extraction.face_target(None, 640, 360) is None


@pytest.mark.django_db
class ExtractionTrackTests:
    def test_it_writes_the_track_beside_the_sheet_and_flags_the_clip(
        self, campaign, eve, tmp_path, settings
    ):
        # given: a 64 × 48 movie whose face is seen in frames 0-9 of the clip only, crops
        # of 32 px, and the default flags (lost over 20 % of frames, small under 48 px)
        campaign.face_crop_size = 32
        campaign.save()
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        detector = ScriptedDetector(dict.fromkeys(range(10), FACE))
        # when
        assert extraction.clip_extract(clip.pk, detector) is True
        # then
        clip.refresh_from_db()
        root = Path(settings.MEDIA_ROOT)
        assert clip.face_track == f"faces/{clip.pk}.csv"
        track = read_track(root / clip.face_track)
        assert len(track) == clip.n_frames == 25
        assert track[0] == TrackFrame((10, 8, 20, 20), 1.0, None, False)
        assert all(face is None for face in track[15:])
        assert read_face_frames(root / clip.faces).shape == (25, 32, 32, 3)
        assert (clip.face_lost, clip.face_small, clip.face_second) == (True, True, False)
        assert {"lost", "small"} <= set(clip.face_flags) and "second" not in clip.face_flags
        assert partial_outputs(root) == []

    def test_the_campaigns_thresholds_decide_the_flags(self, campaign, eve, tmp_path):
        campaign.face_lost_share, campaign.face_min_px = 0.9, 16
        campaign.save()
        (clip,) = propose(eve, ready_movie(campaign, tmp_path), (0.0, 1.0))
        extraction.clip_extract(clip.pk, ScriptedDetector(dict.fromkeys(range(10), FACE)))
        clip.refresh_from_db()
        assert (clip.face_lost, clip.face_small, clip.face_second) == (False, False, False)

    def test_a_failure_and_the_sweep_remove_a_partial_track(
        self, campaign, eve, tmp_path, settings
    ):
        root = Path(settings.MEDIA_ROOT)
        movie = ready_movie(campaign, tmp_path)
        (clip,) = propose(eve, movie, (0.0, 1.0))
        leave_partial_outputs(root, clip.pk)
        (root / f"faces/.{clip.pk}.4242.tmp.csv").write_text("frame,x\n0,")
        assert len(partial_outputs(root)) == 4
        assert extraction.clip_partials_remove(clip.pk) == 4
        assert partial_outputs(root) == []


def stored_track(settings, clip, track) -> None:
    write_track(track, Path(settings.MEDIA_ROOT) / f"faces/{clip.pk}.csv")
    Clip.objects.filter(pk=clip.pk).update(
        face_track=f"faces/{clip.pk}.csv", face_ratio=0.5, face_lost=True
    )


MARKS = ((1.0, 2.0), (3.0, 4.0), (5.0, 6.0), (7.0, 8.0), (9.0, 10.0))


@pytest.mark.django_db
class ClipFacesApiTests:
    @pytest.fixture
    def clip(self, campaign, settings):
        (clip,) = make_clips(campaign, 1, status=Clip.Status.SCREENING)
        stored_track(settings, clip, [TrackFrame((4, 5, 30, 32), 0.9, MARKS, True), None])
        return clip

    def test_reviewers_get_the_track_frame_by_frame(self, client, clip, rita):
        client.force_login(rita)
        body = client.get(f"/api/v1/clips/{clip.pk}/faces/").json()
        assert body["clip"] == clip.pk and body["no_face_frames"] == 1
        assert body["face_flags"] == ["lost"] and body["face_ratio"] == 0.5
        assert body["frames"] == [
            {
                "frame": 0,
                "box": [4.0, 5.0, 30.0, 32.0],
                "score": 0.9,
                "landmarks": [list(p) for p in MARKS],
                "aligned": True,
            },
            {"frame": 1, "box": None, "score": None, "landmarks": None, "aligned": False},
        ]

    def test_the_extractors_of_its_campaign_see_it_others_get_404(
        self, client, clip, eve, campaign
    ):
        client.force_login(eve)
        assert client.get(f"/api/v1/clips/{clip.pk}/faces/").status_code == 200
        outsider = make_user("oscar", Role.EXTRACTOR)
        client.force_login(outsider)
        # the same answer as for the clip itself, and as for a clip that does not exist
        assert client.get(f"/api/v1/clips/{clip.pk}/").status_code == 404
        assert client.get(f"/api/v1/clips/{clip.pk}/faces/").status_code == 404
        assert client.get("/api/v1/clips/999999/faces/").status_code == 404

    def test_annotators_and_anonymous_callers_are_refused_as_for_the_clip(
        self, client, clip, alice
    ):
        assert client.get(f"/api/v1/clips/{clip.pk}/faces/").status_code in (401, 403)
        client.force_login(alice)
        assert client.get(f"/api/v1/clips/{clip.pk}/").status_code == 403
        assert client.get(f"/api/v1/clips/{clip.pk}/faces/").status_code == 403

    def test_a_clip_without_a_track_is_404_saying_so(self, client, campaign, rita):
        (clip,) = make_clips(campaign, 1, start_number=5)
        client.force_login(rita)
        response = client.get(f"/api/v1/clips/{clip.pk}/faces/")
        assert response.status_code == 404
        assert "has no face track" in response.json()["detail"]

    def test_post_is_not_allowed(self, client, clip, rita):
        client.force_login(rita)
        assert client.post(f"/api/v1/clips/{clip.pk}/faces/").status_code == 405


@pytest.mark.django_db
class ExportFaceTrackTests:
    def test_the_export_writes_the_track_and_fills_no_face_frames_with_the_nearest_crop(
        self, campaign, tmp_path, settings
    ):
        from PIL import Image

        from tests.labeling.test_release import add_media, import_votes, run

        # given clip 1 with 6 frames, tile k painted k × 40, and no face in frames 1, 2, 5
        import_votes(campaign, per_label=5)
        media = Path(settings.MEDIA_ROOT)
        add_media(campaign, media, [1], frames=6)
        write_face_sheet(
            [np.full((112, 112, 3), k * 40, np.uint8) for k in range(6)], media / "faces/x.jpg"
        )
        clip = Clip.objects.get(campaign=campaign, number=1)
        Clip.objects.filter(pk=clip.pk).update(faces="faces/x.jpg")
        f = TrackFrame((4, 5, 30, 32), 0.9, MARKS, True)
        stored_track(settings, clip, [f, None, None, f, f, None])
        # when
        out, _ = run("export_dfew", campaign.slug, str(tmp_path / "r"), "--size", "32")
        # then: one image per frame; frames 1, 2, 5 are the nearest face frame's crop
        written = sorted((tmp_path / "r" / "data" / "00001").glob("*.jpg"))
        means = [round(float(np.asarray(Image.open(p)).mean()) / 40) for p in written]
        assert means == [0, 0, 3, 3, 4, 4]
        # and faces/00001.csv says which frames those are, numbered as the images
        with open(tmp_path / "r" / "faces" / "00001.csv") as handle:
            rows = list(csv.DictReader(handle))
        assert [r["frame"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
        assert [r["x"] != "" for r in rows] == [True, False, False, True, True, False]
        assert rows[0]["eye_l_x"] == "1" and rows[0]["aligned"] == "1"
        # clips without a track get no file
        assert [p.name for p in (tmp_path / "r" / "faces").iterdir()] == ["00001.csv"]


@pytest.mark.django_db
class CampaignFaceSettingsTests:
    @pytest.mark.parametrize(
        ("changes", "message"),
        [
            ({"face_crop_size": 100}, "The face crop size must be a multiple of 8, 32–512 px."),
            ({"face_crop_size": 24}, "The face crop size must be a multiple of 8, 32–512 px."),
            ({"face_lost_share": 1.5}, "campaign_face_lost_share_0_1"),
        ],
    )
    def test_a_bad_face_setting_is_refused_with_its_reason(self, campaign, changes, message):
        from django.core.exceptions import ValidationError

        for name, value in changes.items():
            setattr(campaign, name, value)
        with pytest.raises(ValidationError, match=message):
            campaign.full_clean()


@pytest.mark.django_db
class ClickedFaceTests:
    """The extractor's click picks the face the extraction follows (issue 19 item 3), through
    the whole path: the point stored with the segment, scaled to the normalised clip, the
    tracker's target, the stored track. Real photographs (``pipeline.real_faces.PAIR``: two
    faces of about one size side by side), real H.264, the default CNN detector."""

    @pytest.mark.parametrize("which", ["left", "right"])
    def test_the_track_follows_the_face_the_extractor_clicked(
        self, campaign, eve, tmp_path, settings, which
    ):
        from labeling.media import movies
        from pipeline import media, real_faces
        from pipeline.faces import make_detector

        # given: a 640 × 360 movie of two faces, the target on the left, the other on the right
        scene = real_faces.real_face_movie(0, real_faces.PAIR)
        path = media.write_video(np.stack(list(scene.frames())), tmp_path / "pair.mp4", crf=18)
        movie = movies.movie_probe(
            movies.movie_register_path(campaign=campaign, path=path, user=eve).pk
        )
        faces = scene.truth if which == "left" else scene.others
        box = faces[0]
        point = ((box.x + box.w / 2) / 640, (box.y + box.h / 2) / 360)
        (clip,) = movies.clip_propose(
            user=eve,
            movie_id=movie.pk,
            segments=[movies.Segment(0.0, 1.6, face_point=point)],
        ).clips
        # when: extracted with the default detector (the clip is scaled to the campaign's height)
        assert extraction.clip_extract(clip.pk, make_detector("yuface")) is True
        # then: every frame's box is on the clicked face, none on the other
        clip.refresh_from_db()
        track = read_track(Path(settings.MEDIA_ROOT) / clip.face_track)
        clip_height = media.output_size(640, 360, campaign.clip_max_height)[1]
        scale = clip_height / 360
        other = scene.others if which == "left" else scene.truth
        on = 0
        for i, face in enumerate(track):
            assert face is not None, f"frame {i} lost the clicked face"
            x, y, w, h = (v / scale for v in face.box)
            seen = Box(round(x), round(y), round(w), round(h))
            on += real_faces.localised(seen, faces[i])
            assert not real_faces.localised(seen, other[i]), f"frame {i} is on the other face"
        assert on >= 0.95 * len(track)
