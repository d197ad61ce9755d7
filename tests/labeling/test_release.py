"""Stored splits and the DFEW-format export (commands and services)."""

from __future__ import annotations

import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from labeling.models import Clip, Split, SplitClip
from labeling.release import dfew_export, splits
from labeling.results.aggregation import clips_aggregate
from labeling.results.imports import annotations_import
from pipeline import dfew
from pipeline.compact import open_frames
from pipeline.emotions import EMOTION_NAMES
from pipeline.media import write_video
from pipeline.synthetic import render_clip


def import_votes(
    campaign, per_label: int = 6, movies: int = 10, start: int = 1, split_votes=0, fear: int = -1
):
    """``per_label`` clips per emotion, each with 8 of 10 votes for it (single-labelled), plus
    ``split_votes`` clips split 5/5 (not single-labelled); clip numbers from ``start``."""
    rows, line, number = [], 1, start
    plan = [(e, [e] * 8 + [EMOTION_NAMES[(i + 1) % 7]] * 2) for i, e in enumerate(EMOTION_NAMES)]
    plan = [p for p in plan for _ in range(fear if p[0] == "fear" and fear >= 0 else per_label)]
    plan += [("none", ["happy"] * 5 + ["sad"] * 5)] * split_votes
    for _, votes in plan:
        for r, label in enumerate(votes):
            line += 1
            rows.append(
                (
                    line,
                    {
                        "clip": str(number),
                        "annotator": f"r{r}",
                        "label": label,
                        "movie": f"movie{number % movies}",
                        "duration_s": str(0.5 + number % 9),
                    },
                )
            )
        number += 1
    summary = annotations_import(
        campaign=campaign, header=["clip", "annotator", "label", "movie", "duration_s"], rows=rows
    )
    clips_aggregate(summary.complete_clip_ids)
    return summary


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def _withdraw_one(campaign, label: str) -> None:
    """One clip of ``label`` no longer complete, so a split leaves it out."""
    clip = Clip.objects.filter(campaign=campaign, result__single_label__name=label).first()
    Clip.objects.filter(pk=clip.pk).update(status=Clip.Status.REJECTED)


@pytest.mark.django_db
class SplitFoldsTests:
    def test_it_stratifies_prints_the_counts_and_ends_with_the_split_id(self, campaign):
        import_votes(campaign, per_label=5, split_votes=3)
        out, _ = run("split_folds", campaign.slug)
        split = Split.objects.get()
        assert out.strip().splitlines()[-1] == f"split {split.pk}"
        assert split.n_clips == 35  # the 3 clips without a single label are left out
        # stratified: every fold has one clip of each of the 7 emotions
        for fold, counts in split.fold_counts.items():
            assert counts == dict.fromkeys(EMOTION_NAMES, 1), fold
        assert "happy" in out and "fold" in out

    def test_a_new_split_never_replaces_an_old_one_nor_grows_it(self, campaign):
        import_votes(campaign, per_label=5)
        run("split_folds", campaign.slug, "--seed", "1")
        first = Split.objects.get()
        before = sorted(SplitClip.objects.filter(split=first).values_list("clip_id", "fold"))
        import_votes(campaign, per_label=5, start=100)  # more clips become single-labelled
        run("split_folds", campaign.slug, "--seed", "2")
        assert Split.objects.count() == 2
        assert (
            sorted(SplitClip.objects.filter(split=first).values_list("clip_id", "fold")) == before
        )
        assert Split.objects.latest("pk").n_clips == 70

    def test_grouping_by_movie_keeps_every_movie_in_one_fold(self, campaign):
        import_votes(campaign, per_label=10, movies=14)
        run("split_folds", campaign.slug, "--group-by-movie")
        folds_of_movie = {}
        for movie, fold in SplitClip.objects.values_list("clip__movie_id", "fold"):
            folds_of_movie.setdefault(movie, set()).add(fold)
        assert all(len(f) == 1 for f in folds_of_movie.values())
        assert len({f for fs in folds_of_movie.values() for f in fs}) == 5

    def test_it_refuses_too_few_clips_or_movies_with_a_clear_message(self, campaign):
        with pytest.raises(CommandError, match="0 single-labelled clips"):
            run("split_folds", campaign.slug)
        import_votes(campaign, per_label=2, movies=3)
        with pytest.raises(CommandError, match="3 movies: grouping by movie needs at least 5"):
            run("split_folds", campaign.slug, "--group-by-movie")
        assert not Split.objects.exists()

    def test_it_warns_when_a_label_has_fewer_clips_than_folds(self, campaign):
        import_votes(campaign, per_label=5, fear=3)
        _, err = run("split_folds", campaign.slug)
        # our advice, not scikit-learn's "least populated class"
        assert "warning: fear has 3 clips; at most 3 folds, or label more fear clips." in err
        assert "least populated class" not in err
        assert Split.objects.get().n_clips == 33

    def test_small_data_gets_advice_naming_the_short_label_and_a_k_that_works(self, campaign):
        # the demo's shape: every label smaller than 5, sad the smallest with 2 clips
        import_votes(campaign, per_label=3, fear=4)
        _withdraw_one(campaign, "sad")
        with pytest.raises(CommandError) as raised:
            run("split_folds", campaign.slug)
        message = str(raised.value)
        assert message.startswith("Cannot split into 5 folds: ")
        assert "sad has 2 clips" in message and "fear has 4 clips" in message
        assert "at most 2 folds, or label more" in message
        assert "n_splits" not in message
        assert not Split.objects.exists()
        # and the k it advises works
        run("split_folds", campaign.slug, "--k", "2")
        assert Split.objects.get().k == 2

    def test_a_label_with_one_clip_is_told_to_label_more(self, campaign):
        import_votes(campaign, per_label=3, fear=1)
        _, err = run("split_folds", campaign.slug, "--k", "3")
        assert "warning: fear has 1 clip; label more fear clips" in err


@pytest.mark.django_db
class ReleasePageSplitAdviceTests:
    def test_the_release_page_shows_the_advice_not_scikit_learns_words(self, campaign, client):
        from tests.conftest import PASSWORD, make_user

        import_votes(campaign, per_label=3)
        _withdraw_one(campaign, "sad")
        make_user("boss", staff=True)
        assert client.login(username="boss", password=PASSWORD)
        r = client.post(f"/staff/campaigns/{campaign.pk}/splits/", {"k": "5"}, follow=True)
        assert r.status_code == 200
        page = r.content.decode()
        assert "sad has 2 clips; happy, neutral" in page
        assert "at most 2 folds, or label more clips." in page
        assert "n_splits" not in page
        assert not Split.objects.exists()


def add_media(campaign, tmp_media: Path, numbers: list[int], frames: int = 10) -> None:
    rng = np.random.default_rng(0)
    for number in numbers:
        clip = Clip.objects.get(campaign=campaign, number=number)
        emotion = clip.result.single_label.name if clip.result.single_label else "neutral"
        video = f"clips/{number:05d}.mp4"
        write_video(render_clip(emotion, frames, 32, rng), tmp_media / video, fps=10)
        Clip.objects.filter(pk=clip.pk).update(video=video)


@pytest.mark.django_db
class ExportDfewTests:
    def test_it_writes_the_dfew_layout_read_the_way_the_authors_read_it(
        self, campaign, tmp_path, settings
    ):
        # given: 35 single-labelled clips and 2 without a single label, 4 of them with media
        import_votes(campaign, per_label=5, split_votes=2)
        add_media(campaign, Path(settings.MEDIA_ROOT), [1, 2], frames=10)
        add_media(campaign, Path(settings.MEDIA_ROOT), [3, 36], frames=14)
        out_dir = tmp_path / "release"
        # when
        out, _ = run("export_dfew", campaign.slug, str(out_dir), "--size", "32")
        # then: the split made on the way is the one the files follow
        split = Split.objects.get()
        assert f"made split {split.pk}" in out and "33 clips without media" in out
        member = dict(SplitClip.objects.values_list("clip__number", "fold"))
        for fold in range(1, 6):
            test_ids, test_labels = dfew.read_split_like_authors(out_dir, fold, "test")
            train_ids, _ = dfew.read_split_like_authors(out_dir, fold, "train")
            assert sorted(test_ids) == sorted(n for n, f in member.items() if f == fold)
            assert set(train_ids) == set(member) - set(test_ids)
            assert set(test_labels) <= set(range(1, 8))
        votes = (out_dir / "label" / "votes.csv").read_text().splitlines()
        assert votes[0] == "video_name,1happy,2sad,3neutral,4angry,5surprise,6disgust,7fear,label"
        assert len(votes) == 1 + 37 and votes[-1].endswith(",0")  # 5/5 split: label 0
        # frames of every frame of each clip with media, sampled as the authors' loader does
        assert len(list((out_dir / "data" / "00001").glob("*.jpg"))) == 10
        assert (out_dir / "data" / "00036" / "00036_00010.jpg").exists()
        assert not (out_dir / "data" / "00004").exists()
        picked = dfew.sample_like_authors(out_dir, 1, train=False)
        assert [p.name for p in picked][:5] == [f"00001_{i:05d}.jpg" for i in (1, 2, 3, 4, 6)]
        # the compact format of the clips with media: their votes, folds and every frame
        manifest = (out_dir / "compact" / "manifest.csv").read_text().splitlines()
        assert len(manifest) == 1 + 4
        frames, offsets = open_frames(out_dir / "compact")
        rows = [row.split(",") for row in manifest[1:]]
        assert {int(r[0]): int(r[-1]) for r in rows} == {1: 10, 2: 10, 3: 14, 36: 14}
        assert np.diff(offsets).tolist() == [int(r[-1]) for r in rows]
        assert frames.shape == (48, 32, 32, 3)

    def test_a_clip_with_stored_face_crops_exports_its_crops_every_frame_in_order(
        self, campaign, tmp_path, settings
    ):
        from PIL import Image

        from pipeline.face_sheets import write_face_sheet

        # given clip 1 with a 12-frame video and its face sheet: tile k painted k × 20
        import_votes(campaign, per_label=5)
        media = Path(settings.MEDIA_ROOT)
        add_media(campaign, media, [1], frames=12)
        tiles = [np.full((112, 112, 3), k * 20, dtype=np.uint8) for k in range(12)]
        write_face_sheet(tiles, media / "faces" / "1.jpg", 95)
        Clip.objects.filter(campaign=campaign, number=1).update(faces="faces/1.jpg")
        # when
        out, _ = run("export_dfew", campaign.slug, str(tmp_path / "r"), "--size", "32")
        # then each exported frame is that frame's 112-px crop, in order
        written = sorted((tmp_path / "r" / "data" / "00001").glob("*.jpg"))
        assert len(written) == 12
        for k, path in enumerate(written):
            image = np.asarray(Image.open(path).convert("RGB"))
            assert image.shape == (112, 112, 3)
            assert abs(float(image.mean()) - k * 20) < 3, path.name

    def test_exporting_the_same_split_twice_gives_byte_identical_label_files(
        self, campaign, tmp_path
    ):
        import_votes(campaign, per_label=5)
        made = splits.split_create(campaign=campaign)
        run("export_dfew", campaign.slug, str(tmp_path / "a"), "--split", str(made.split.pk))
        run("export_dfew", campaign.slug, str(tmp_path / "b"), "--split", str(made.split.pk))
        names = sorted(p.name for p in (tmp_path / "a" / "label").iterdir())
        assert len(names) == 11
        for name in names:
            a = (tmp_path / "a" / "label" / name).read_bytes()
            assert a == (tmp_path / "b" / "label" / name).read_bytes(), name
        assert Split.objects.count() == 1

    def test_it_refuses_another_campaigns_split(self, campaign, tmp_path):
        with pytest.raises(CommandError, match="has no split 999"):
            run("export_dfew", campaign.slug, str(tmp_path / "x"), "--split", "999")
        assert not (tmp_path / "x").exists()


@pytest.mark.django_db
class LabelExportTaskTests:
    def test_the_task_writes_a_zip_with_its_md5_and_a_rerun_does_nothing(
        self, campaign, admin_user, settings, django_capture_on_commit_callbacks
    ):
        import hashlib
        import zipfile

        from labeling.tasks import label_export_task

        import_votes(campaign, per_label=5)
        with django_capture_on_commit_callbacks(execute=False):
            export = dfew_export.label_export_request(
                campaign=campaign, split=None, user=admin_user
            )
        assert label_export_task(export.pk) is True
        export.refresh_from_db()
        assert export.status == "done" and export.progress == 1.0
        path = Path(settings.MEDIA_ROOT) / export.file.name
        assert hashlib.md5(path.read_bytes()).hexdigest() == export.md5
        names = zipfile.ZipFile(path).namelist()
        assert any(n.endswith("label/single_testset_5.csv") for n in names)
        assert label_export_task(export.pk) is False
        counts = Counter(n.split("/")[1] for n in names if n.count("/") > 1 and n[-1] != "/")
        assert counts["label"] == 11

    def test_with_a_storage_without_local_paths_it_reads_and_stores_through_the_storage(
        self, campaign, admin_user, client, settings, tmp_path, django_capture_on_commit_callbacks
    ):
        import hashlib
        import zipfile

        from django.core.files import File
        from django.core.files.storage import default_storage

        from labeling.tasks import label_export_task
        from pipeline.face_sheets import write_face_sheet

        # given: a storage with no local paths (S3; in memory here) holding clip 1's video
        # (10 frames) and clip 2's video and face sheet (12 crops)
        settings.STORAGES = {
            **settings.STORAGES,
            "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
        }
        import_votes(campaign, per_label=5)
        local = tmp_path / "made"
        add_media(campaign, local, [1], frames=10)
        add_media(campaign, local, [2], frames=12)
        tiles = [np.full((112, 112, 3), k * 20, dtype=np.uint8) for k in range(12)]
        write_face_sheet(tiles, local / "faces" / "2.jpg", 95)
        Clip.objects.filter(campaign=campaign, number=2).update(faces="faces/2.jpg")
        for path in local.rglob("*.*"):
            with open(path, "rb") as handle:
                default_storage.save(path.relative_to(local).as_posix(), File(handle))
        # when
        with django_capture_on_commit_callbacks(execute=False):
            export = dfew_export.label_export_request(
                campaign=campaign, split=None, user=admin_user
            )
        assert label_export_task(export.pk) is True
        # then: the zip is in the storage, and nothing went to MEDIA_ROOT
        export.refresh_from_db()
        assert export.status == "done", export.error
        with default_storage.open(export.file.name, "rb") as stored:
            data = stored.read()
        assert hashlib.md5(data).hexdigest() == export.md5
        assert not Path(settings.MEDIA_ROOT).exists()
        names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        frames = Counter(n.split("/")[2] for n in names if "/data/" in n and n.endswith(".jpg"))
        assert frames == {"00001": 10, "00002": 12}
        assert export.summary["clips_with_face_crops"] == 1
        # and staff download it from the storage
        client.force_login(admin_user)
        response = client.get(f"/staff/exports/{export.pk}/download/")
        assert response.status_code == 200 and b"".join(response.streaming_content) == data


@pytest.mark.django_db
class ExportSafetyTests:
    """Found by probing the release as a careful user would."""

    def test_it_never_replaces_a_folder_that_is_not_an_earlier_export(self, campaign, tmp_path):
        import_votes(campaign, per_label=5)
        precious = tmp_path / "thesis"
        precious.mkdir()
        (precious / "chapter1.tex").write_text("years of work")
        with pytest.raises(CommandError, match="is not an earlier export"):
            run("export_dfew", campaign.slug, str(precious))
        assert (precious / "chapter1.tex").read_text() == "years of work"
        # an earlier export is replaced
        run("export_dfew", campaign.slug, str(tmp_path / "release"))
        run("export_dfew", campaign.slug, str(tmp_path / "release"))
        assert (tmp_path / "release" / "dfer-export.json").is_file()

    def test_clips_single_labelled_after_the_split_join_no_fold(self, campaign, tmp_path):
        import_votes(campaign, per_label=5)
        split = splits.split_create(campaign=campaign).split
        import_votes(campaign, per_label=1, start=200)  # seven more single-labelled clips
        run("export_dfew", campaign.slug, str(tmp_path / "out"), "--split", str(split.pk))
        votes = (tmp_path / "out" / "label" / "votes.csv").read_text().splitlines()
        assert len(votes) == 1 + 42
        later = [line for line in votes[1:] if int(line.split(",")[0]) >= 200]
        assert len(later) == 7 and all(line.endswith(",0") for line in later)
        tested = set()
        for fold in range(1, 6):
            tested |= set(dfew.read_split_like_authors(tmp_path / "out", fold, "test")[0])
        assert tested == set(range(1, 36))

    def test_a_split_whose_labels_were_invalidated_since_is_refused_by_name(
        self, campaign, admin_user, tmp_path
    ):
        from labeling.results.aggregation import annotator_invalidate

        import_votes(campaign, per_label=5)
        split = splits.split_create(campaign=campaign).split
        annotator_invalidate(staff=admin_user, campaign_id=campaign.pk, username="r0", reason="x")
        with pytest.raises(CommandError, match=f"Split {split.pk} is out of date: 35 of its"):
            run("export_dfew", campaign.slug, str(tmp_path / "out"), "--split", str(split.pk))
        assert not (tmp_path / "out").exists()

    def test_a_seed_out_of_the_databases_range_is_refused(self, campaign):
        import_votes(campaign, per_label=5)
        with pytest.raises(CommandError, match="seed must be between 0 and 2147483647"):
            run("split_folds", campaign.slug, "--seed", "3000000000")
        assert not Split.objects.exists()
