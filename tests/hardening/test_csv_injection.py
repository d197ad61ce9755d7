"""Formulas in CSV exports (issue 21, item 3): no CSV the app writes hands a spreadsheet a
cell it would run.

A movie title ``=HYPERLINK(…)`` (set by an extractor), usernames ``-2+3``, ``+41``, ``@SUM``, a
label named ``-fear`` and a campaign slug ``-pay`` go into every CSV export the app offers: the
per-clip export (the Python writer, the REST download, and PostgreSQL's COPY), the annotations
export, the DFEW-format files with the compact manifest, and the payout. Every cell must start
with something other than = + - @ tab CR, or with the quote that ``pipeline.csv_safe`` adds.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest
from rest_framework.authtoken.models import Token

from labeling import campaigns
from labeling.loop import services
from labeling.models import Label, Movie, Role
from labeling.release import dfew_export, rows, splits
from labeling.results.aggregation import clips_aggregate
from labeling.results.imports import annotations_import
from labeling.rewards import payouts
from pipeline.emotions import EMOTION_NAMES
from tests.conftest import make_clips, make_user, need

DANGEROUS = ("=", "+", "-", "@", "\t", "\r")
FORMULA = '=HYPERLINK("http://x","y")'
USERNAMES = ["-2+3", "+41", "@SUM"]
HOSTILE_LABEL = "-fear"
# Titles the import can set (it strips whitespace), then those only the ORM/API can set.
IMPORTED_TITLES = [FORMULA, "+1", "-5", "@cmd", "plain, with a comma"]
SET_LATER = {"tab-title": "\tTAB", "cr-title": "\rCR", "crlf-inside": "a\r\n=b"}
TITLES = IMPORTED_TITLES + list(SET_LATER)


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def assert_no_formula(text: str, where: str) -> list[list[str]]:
    """Every cell of the CSV ``text`` is safe for a spreadsheet; returns the parsed rows."""
    rows = rows_of(text)
    bad = [cell for row in rows for cell in row if cell[:1] in DANGEROUS]
    assert not bad, f"{where}: cells a spreadsheet would run: {bad}"
    return rows


def column(rows: list[list[str]], name: str) -> list[str]:
    index = rows[0].index(name)
    return [row[index] for row in rows[1:]]


def quoted(text: str) -> str:
    return "'" + text if text[:1] in DANGEROUS else text


def headers(user) -> dict:
    token, _ = Token.objects.get_or_create(user=user)
    return {"HTTP_AUTHORIZATION": f"Token {token.key}"}


@pytest.fixture
def hostile(campaign):
    """37 aggregated clips of the hostile titles, each labelled by ten annotators three of whom
    are -2+3, +41 and @SUM; the fear label renamed -fear; a 5-fold split. Returns the split."""
    Label.objects.filter(campaign=campaign, name="fear").update(name=HOSTILE_LABEL)
    names = [HOSTILE_LABEL if n == "fear" else n for n in EMOTION_NAMES]
    for username in USERNAMES:
        campaign.annotators.add(make_user(username, Role.ANNOTATOR))
    annotators = USERNAMES + [f"r{i}" for i in range(len(USERNAMES), 10)]
    rows, line, number = [], 1, 1
    plan = [[n] * 8 + [names[(i + 1) % 7]] * 2 for i, n in enumerate(names) for _ in range(5)]
    plan += [["happy"] * 5 + ["sad"] * 5] * 2  # no single label
    for votes in plan:
        for annotator, label in zip(annotators, votes, strict=True):
            line += 1
            movie = TITLES[number % len(TITLES)]
            rows.append(
                (line, {"clip": str(number), "annotator": annotator, "label": label,
                        "movie": movie, "duration_s": str(0.5 + number % 9)})
            )  # fmt: skip
        number += 1
    summary = annotations_import(
        campaign=campaign, header=["clip", "annotator", "label", "movie", "duration_s"], rows=rows
    )
    clips_aggregate(summary.complete_clip_ids)
    for placeholder, title in SET_LATER.items():
        Movie.objects.filter(campaign=campaign, title=placeholder).update(title=title)
    return splits.split_create(campaign=campaign).split


def label_names(campaign) -> list[str]:
    return list(campaign.labels.order_by("code").values_list("name", flat=True))


def check_clip_csv(text: str, where: str) -> None:
    rows = assert_no_formula(text, where)
    expected = {quoted(t) for t in IMPORTED_TITLES + list(SET_LATER.values())}
    assert set(column(rows, "movie")) == expected, where
    assert quoted(HOSTILE_LABEL) in column(rows, "single_label"), where
    assert f"votes_{HOSTILE_LABEL}" in rows[0], where  # a header cell, safe as written


@pytest.mark.django_db
class ClipExportTests:
    def test_the_python_writer_quotes_titles_and_labels(self, campaign, hostile):
        from labeling.api.release import clip_csv_lines

        for split in (hostile, None):
            text = "".join(clip_csv_lines(campaign, split, label_names(campaign)))
            check_clip_csv(text, "per-clip CSV, Python writer")

    def test_the_rest_download_quotes_titles_and_labels(self, client, campaign, hostile):
        admin = make_user("admin", staff=True)
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/export/?format=csv&split={hostile.pk}",
            **headers(admin),
        )
        assert r.status_code == 200
        check_clip_csv(b"".join(r.streaming_content).decode(), "per-clip CSV over REST")

    def test_postgres_copy_quotes_them_byte_for_byte_as_the_python_writer(self, campaign, hostile):
        from django.db import connection

        from labeling.api.release import clip_csv_lines

        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        names = label_names(campaign)
        for split in (hostile, None):
            copy = b"".join(rows.clip_csv_copy(campaign, split, names))
            python = "".join(clip_csv_lines(campaign, split, names)).encode()
            check_clip_csv(copy.decode(), "per-clip CSV, COPY")
            assert copy == python
        # a CR or LF anywhere in a cell is quoted, so it never starts a row of its own
        assert b'"\'\rCR"' in copy and b'"a\r\n=b"' in copy


@pytest.mark.django_db
class AnnotationsExportTests:
    def test_usernames_and_labels_are_quoted(self, client, campaign, hostile):
        admin = make_user("admin", staff=True)
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/annotations/export/?format=csv", **headers(admin)
        )
        assert r.status_code == 200
        rows = assert_no_formula(b"".join(r.streaming_content).decode(), "annotations CSV")
        assert {quoted(u) for u in USERNAMES} <= set(column(rows, "annotator"))
        assert quoted(HOSTILE_LABEL) in column(rows, "label")

    def test_the_jsonl_form_keeps_the_names_as_they_are(self, client, campaign, hostile):
        import json

        admin = make_user("admin", staff=True)
        r = client.get(
            f"/api/v1/campaigns/{campaign.pk}/annotations/export/?format=jsonl",
            **headers(admin),
        )
        lines = b"".join(r.streaming_content).decode().splitlines()
        assert set(USERNAMES) <= {json.loads(line)["annotator"] for line in lines}


@pytest.mark.django_db
class DfewExportTests:
    def test_label_files_and_the_compact_manifest_hold_no_formula(
        self, campaign, hostile, tmp_path, settings
    ):
        from tests.labeling.test_release import add_media

        # clip 1 (happy) and 36 (no single label) get media: the compact manifest is written
        add_media(campaign, Path(settings.MEDIA_ROOT), [1, 36], frames=4)
        out = tmp_path / "release"
        dfew_export.dfew_export_write(campaign=campaign, split=hostile, out=out, compact_size=16)
        files = sorted(out.glob("label/*.csv")) + [out / "compact" / "manifest.csv"]
        assert len(files) == 2 * hostile.k + 2
        for path in files:
            rows = assert_no_formula(path.read_text(), path.name)
            assert len(rows) > 1 or path.name.startswith("single_")
        votes = rows_of((out / "label" / "votes.csv").read_text())
        assert votes[0][-2] == f"7{HOSTILE_LABEL}"


@pytest.mark.django_db
class PayoutCsvTests:
    def test_usernames_and_the_campaign_slug_are_quoted(self, db):
        # given a campaign whose slug starts with "-", labelled by the hostile usernames
        campaign = campaigns.campaign_create(name="Pay", slug="-pay", min_view_seconds=0)
        make_clips(campaign, 1)
        admin = make_user("admin", staff=True)
        people = [make_user(name, Role.ANNOTATOR) for name in USERNAMES]
        campaign.annotators.add(*people)
        for person in people:
            lease = services.assignment_next(user=person)
            services.annotation_submit(user=person, assignment_id=lease.pk, label_name="happy")
        # when it is paid
        payout = payouts.payout_create(staff=admin, campaign_id=campaign.pk)
        rows = assert_no_formula(payouts.payout_csv(payout), "payout CSV")
        # then every text cell is quoted, the amounts still sum
        assert set(column(rows, "username")) == {quoted(u) for u in USERNAMES}
        assert set(column(rows, "campaign")) == {"'-pay"}
        assert sum(Decimal(a) for a in column(rows, "amount")) == payout.total


class RuleTests:
    def test_text_cells_get_a_quote_numbers_and_safe_text_do_not(self):
        from pipeline.csv_safe import DANGEROUS as RULE
        from pipeline.csv_safe import neutralise

        assert set(RULE) == set(DANGEROUS)
        for char in DANGEROUS:
            assert neutralise(f"{char}x") == f"'{char}x"
        for value in (-1, -1.5, Decimal("-2.50"), 0, None, "", "x=1", "'=already", "1-2"):
            assert neutralise(value) == value
        assert neutralise(neutralise("=x")) == "'=x"

    def test_the_writer_quotes_cr_and_lf_whatever_the_line_terminator(self):
        from pipeline import csv_safe

        for terminator in ("\n", "\r\n"):
            out = io.StringIO()
            writer = csv_safe.writer(out, lineterminator=terminator)
            writer.writerows([["\rCR", "a\nb", -3, None], ["ok", "+1", 2.5, ""]])
            assert out.getvalue() == (f'"\'\rCR","a\nb",-3,{terminator}ok,\'+1,2.5,{terminator}')

    def test_the_sql_twin_lists_the_same_characters(self):
        from pipeline.csv_safe import sql_neutralise

        text = sql_neutralise("m.title")
        assert "'='" in text and "'+'" in text and "'-'" in text and "'@'" in text
        assert "chr(9)" in text and "chr(13)" in text and "'''' || m.title" in text
