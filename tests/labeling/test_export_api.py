"""The REST export: the clip list, the per-clip and per-label streams, and who may read them."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token

from labeling.release import dfew_export, rows, splits
from tests.conftest import make_user
from tests.labeling.test_release import import_votes

NAMES = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def headers(user) -> dict:
    token, _ = Token.objects.get_or_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Token {token.key}"}


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.fixture
def exporter(db):
    """Not staff, but given the export permission."""
    user = make_user("erin")
    user.user_permissions.add(Permission.objects.get(codename="export_campaign"))
    return user


@pytest.fixture
def released(campaign):
    import_votes(campaign, per_label=5, split_votes=2)
    return campaign, splits.split_create(campaign=campaign).split


@pytest.mark.django_db
class CampaignClipsApiTests:
    def test_it_pages_clips_with_votes_distribution_label_and_fold(
        self, client, released, admin_user
    ):
        campaign, split = released
        url = f"/api/v1/campaigns/{campaign.pk}/clips/?split={split.pk}&page_size=10"
        seen = []
        while url:
            r = client.get(url, **headers(admin_user))
            assert r.status_code == 200, r.content
            seen += r.json()["results"]
            url = r.json()["next"]
        assert [c["clip"] for c in seen] == list(range(1, 38))
        first = seen[0]
        assert first["votes"]["happy"] == 8 and first["distribution"]["happy"] == 0.8
        assert first["single_label"] == "happy" and 1 <= first["fold"] <= 5
        assert first["bucket"] == "0-2s" and first["duration_s"] == 1.5
        assert seen[-1]["single_label"] is None and seen[-1]["fold"] is None

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("label=fear", 5),
            ("single=false", 2),
            ("single=true", 35),
            ("bucket=5s%2B", None),
            ("fold=2", 7),
        ],
    )
    def test_filters(self, client, released, admin_user, query, expected):
        campaign, split = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/clips/?split={split.pk}&page_size=1000&{query}",
            **headers(admin_user),
        )
        results = r.json()["results"]
        if expected is None:
            assert results and all(c["duration_s"] >= 5 for c in results)
        else:
            assert len(results) == expected

    def test_bad_filters_are_400_with_the_reason(self, client, released, admin_user):
        campaign, _ = released
        base = f"/api/v1/campaigns/{campaign.pk}/clips/"
        r = client.get(base + "?fold=2", **headers(admin_user))
        assert r.status_code == 400 and "fold needs split" in r.json()["detail"]
        r = client.get(base + "?bucket=1-3s", **headers(admin_user))
        assert r.status_code == 400 and "bucket" in r.json()["detail"]
        assert client.get(base + "?split=999", **headers(admin_user)).status_code == 404

    def test_who_may_read_it(self, client, released, admin_user, exporter, alice):
        campaign, _ = released
        url = f"/api/v1/campaigns/{campaign.pk}/clips/"
        assert client.get(url, **headers(exporter)).status_code == 200
        assert client.get(url, **headers(alice)).status_code == 403
        assert client.get(url).status_code == 401
        assert client.get("/api/v1/campaigns/999/clips/", **headers(admin_user)).status_code == 404
        assert client.post(url, **headers(admin_user)).status_code == 405


@pytest.mark.django_db
class CampaignExportApiTests:
    def test_csv_has_one_row_per_clip_with_the_named_columns(self, client, released, admin_user):
        campaign, split = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/export/?format=csv&split={split.pk}",
            **headers(admin_user),
        )
        assert r.status_code == 200 and r["Content-Type"].startswith("text/csv")
        assert r.streaming
        rows = list(csv.DictReader(io.StringIO(body(r).decode())))
        assert len(rows) == 37
        assert list(rows[0]) == [
            "clip",
            "movie",
            "duration_s",
            "bucket",
            *[f"votes_{n}" for n in NAMES],
            "single_label",
            "fold",
            # issue 22: how many votes, and every quality-aware method's label and confidence
            "n_votes",
            "closed_early",
            *[
                f"{m}_{c}"
                for m in ("dawid_skene", "one_coin", "mace")
                for c in ("label", "confidence")
            ],  # noqa: E501
        ]
        assert rows[0]["votes_happy"] == "8" and rows[0]["single_label"] == "happy"
        assert rows[-1]["single_label"] == "" and rows[-1]["fold"] == ""
        assert sum(1 for row in rows if row["fold"]) == 35

    def test_jsonl_has_the_same_rows(self, client, released, admin_user):
        campaign, _ = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/export/?format=jsonl", **headers(admin_user)
        )
        lines = [json.loads(line) for line in body(r).decode().splitlines()]
        assert len(lines) == 37 and lines[0]["votes"]["happy"] == 8
        assert lines[0]["fold"] is None  # no split asked for

    def test_an_unknown_format_is_400(self, client, released, admin_user):
        campaign, _ = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/export/?format=xlsx", **headers(admin_user)
        )
        assert r.status_code == 400 and "format" in r.json()["detail"]

    def test_annotators_get_403(self, client, released, alice):
        campaign, _ = released
        url = f"/api/v1/campaigns/{campaign.pk}/export/"
        assert client.get(url, **headers(alice)).status_code == 403
        url = f"/api/v1/campaigns/{campaign.pk}/annotations/export/"
        assert client.get(url, **headers(alice)).status_code == 403


@pytest.mark.django_db
class CampaignAnnotationsExportApiTests:
    def test_it_streams_one_row_per_valid_label(self, client, released, admin_user):
        campaign, _ = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/annotations/export/?format=csv", **headers(admin_user)
        )
        rows = list(csv.DictReader(io.StringIO(body(r).decode())))
        assert len(rows) == 370
        assert list(rows[0]) == ["clip", "annotator", "label", "submitted_at"]
        assert rows[0]["clip"] == "1" and rows[0]["annotator"] == "r0"
        assert rows[0]["label"] == "happy" and "T" in rows[0]["submitted_at"]

    def test_jsonl(self, client, released, exporter):
        campaign, _ = released
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/annotations/export/?format=jsonl", **headers(exporter)
        )
        first = json.loads(body(r).decode().splitlines()[0])
        assert set(first) == {"clip", "annotator", "label", "submitted_at"}


@pytest.mark.django_db
class ReleasePageTests:
    def test_staff_see_splits_with_fold_counts_and_can_queue_an_export(
        self, client, released, admin_user
    ):
        from labeling.models import LabelExport
        from tests.conftest import PASSWORD

        campaign, split = released
        client.login(username=admin_user.username, password=PASSWORD)
        html = client.get(f"/staff/campaigns/{campaign.pk}/release/").content.decode()
        assert f'id="split-{split.pk}"' in html and "<th>fear</th>" in html
        r = client.post(f"/staff/campaigns/{campaign.pk}/exports/", {"split": split.pk})
        assert r.status_code == 302
        assert LabelExport.objects.get().split == split

    def test_annotators_are_refused(self, client, released, alice):
        from tests.conftest import PASSWORD

        campaign, _ = released
        client.login(username=alice.username, password=PASSWORD)
        assert client.get(f"/staff/campaigns/{campaign.pk}/release/").status_code == 403
        assert client.post(f"/staff/campaigns/{campaign.pk}/splits/").status_code == 403


@pytest.mark.django_db
class ClipCsvCopyTests:
    def test_postgres_copy_writes_the_same_bytes_as_the_python_writer(self, campaign):
        from django.db import connection

        from labeling.api.release import clip_csv_lines
        from labeling.models import Clip, Movie
        from tests.conftest import need

        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        # given: awkward titles, whole and fractional durations, an unknown one, clips outside
        # the split and without a single label
        import_votes(campaign, per_label=5, split_votes=2)
        Movie.objects.filter(title="movie3").update(title='Say "cheese", please')
        Clip.objects.filter(number=4).update(start_s=1.0, end_s=3.0)
        Clip.objects.filter(number=5).update(start_s=0.0, end_s=1.99951)
        Clip.objects.filter(number=6).update(end_s=None)
        split = splits.split_create(campaign=campaign).split
        names = list(campaign.labels.order_by("code").values_list("name", flat=True))
        for chosen in (split, None):
            # when
            python = "".join(clip_csv_lines(campaign, chosen, names)).encode()
            copy = b"".join(rows.clip_csv_copy(campaign, chosen, names))
            # then
            assert copy == python
        assert b'"Say ""cheese"", please"' in python and b"\n4,movie4,2,2-5s," in python
        assert b"\n5,movie5,2,0-2s," in python  # 1.99951 s: bucket of the raw duration


@pytest.mark.django_db
class ExportDownloadTests:
    def test_staff_and_exporters_download_the_finished_zip_others_are_refused(
        self, client, released, admin_user, exporter, alice, django_capture_on_commit_callbacks
    ):
        import hashlib

        from labeling.tasks import label_export_task
        from tests.conftest import PASSWORD

        campaign, split = released
        with django_capture_on_commit_callbacks(execute=False):
            export = dfew_export.label_export_request(
                campaign=campaign, split=split, user=admin_user
            )
        url = f"/staff/exports/{export.pk}/download/"
        client.login(username=admin_user.username, password=PASSWORD)
        assert client.get(url).status_code == 404  # not written yet
        label_export_task(export.pk)
        export.refresh_from_db()
        for user in (admin_user, exporter):
            client.login(username=user.username, password=PASSWORD)
            r = client.get(url)
            assert r.status_code == 200
            assert hashlib.md5(b"".join(r.streaming_content)).hexdigest() == export.md5
        client.login(username=alice.username, password=PASSWORD)
        assert client.get(url).status_code == 403


@pytest.mark.django_db
class ExportDownloadMissingTests:
    def test_a_finished_export_whose_file_is_gone_is_404_not_500(
        self, client, released, admin_user, settings, django_capture_on_commit_callbacks
    ):
        from pathlib import Path

        from labeling.tasks import label_export_task
        from tests.conftest import PASSWORD

        campaign, split = released
        with django_capture_on_commit_callbacks(execute=False):
            export = dfew_export.label_export_request(
                campaign=campaign, split=split, user=admin_user
            )
        label_export_task(export.pk)
        export.refresh_from_db()
        (Path(settings.MEDIA_ROOT) / export.file.name).unlink()
        client.login(username=admin_user.username, password=PASSWORD)
        assert client.get(f"/staff/exports/{export.pk}/download/").status_code == 404
