"""python manage.py import_annotations: votes made elsewhere, all or nothing, idempotent."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from labeling.models import (
    Annotation,
    Assignment,
    Campaign,
    Clip,
    ClipLabel,
    MediaStatus,
    Movie,
)

HEADER = "clip,annotator,label,movie,duration_s\n"


def ten_votes(clip: int, labels: list[str], movie: str = "m1", duration: float = 3.0) -> str:
    return "".join(
        f"{clip},rater{i:02d},{label},{movie},{duration}\n" for i, label in enumerate(labels)
    )


def run(tmp_path, text: str, *args: str) -> str:
    path = tmp_path / "votes.csv"
    path.write_text(text)
    out = io.StringIO()
    call_command("import_annotations", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def counts() -> tuple[int, int, int, int, int]:
    return (
        Clip.objects.count(),
        Annotation.objects.count(),
        Assignment.objects.count(),
        get_user_model().objects.count(),
        Movie.objects.count(),
    )


@pytest.mark.django_db
class ImportAnnotationsTests:
    def test_it_imports_clips_without_media_and_aggregates_complete_ones(self, tmp_path, campaign):
        text = (
            HEADER
            + ten_votes(1, ["happy"] * 8 + ["sad"] * 2)
            + ten_votes(2, ["angry"] * 5 + ["fear"] * 5, movie="m2", duration=6.5)
        )
        out = run(tmp_path, text, "--campaign", campaign.slug)
        assert "20 labels imported" in out and "2 clips complete" in out
        clip = Clip.objects.get(number=2)
        assert clip.status == Clip.Status.COMPLETE and not clip.video
        assert clip.duration_s == 6.5 and clip.movie.title == "m2"
        assert ClipLabel.objects.get(clip__number=1).single_label.name == "happy"
        assert ClipLabel.objects.get(clip__number=2).single_label is None
        rater = get_user_model().objects.get(username="rater03")
        assert not rater.has_usable_password()  # accounts that cannot log in

    def test_labels_may_be_given_as_codes(self, tmp_path, campaign):
        run(tmp_path, HEADER + ten_votes(1, ["7"] * 10), "--campaign", campaign.slug)
        assert ClipLabel.objects.get().single_label.name == "fear"

    def test_importing_the_same_file_twice_changes_nothing(self, tmp_path, campaign):
        text = HEADER + ten_votes(1, ["happy"] * 10) + ten_votes(2, ["sad"] * 10)
        run(tmp_path, text, "--campaign", campaign.slug)
        before = counts()
        out = run(tmp_path, text, "--campaign", campaign.slug)
        assert "0 labels imported, 20 already present" in out
        assert counts() == before

    @pytest.mark.parametrize(
        ("bad_line", "message"),
        [
            ("1,rater99,joy,m1,3.0\n", "line 12: unknown label 'joy'"),
            ("1,rater00,sad,m1,3.0\n", "line 12: rater00 labels clip 1 twice (also on line 2)"),
            ("1,rater10,sad,m1,3.0\n", "more than the campaign's 10 annotators"),
            ("x,rater10,sad,m1,3.0\n", "line 12: clip 'x' is not a whole number"),
            ("2,rater10,sad\n", "line 12: malformed line"),
            ("2,rater10,sad,m1,-1\n", "line 12: duration_s '-1' must be a positive number"),
        ],
    )
    def test_a_bad_row_aborts_with_its_line_and_writes_nothing(
        self, tmp_path, campaign, bad_line, message
    ):
        before = counts()
        with pytest.raises(CommandError, match=re.escape(message)):
            run(
                tmp_path, HEADER + ten_votes(1, ["happy"] * 10) + bad_line, "--campaign", "campaign"
            )
        assert counts() == before

    def test_a_different_label_for_an_imported_vote_is_refused(self, tmp_path, campaign):
        run(tmp_path, HEADER + ten_votes(1, ["happy"] * 10), "--campaign", campaign.slug)
        with pytest.raises(CommandError, match="rater00 already labelled clip 1 with code 1"):
            run(tmp_path, HEADER + "1,rater00,sad,m1,3.0\n", "--campaign", campaign.slug)

    def test_a_header_without_the_required_columns_is_refused(self, tmp_path, campaign):
        with pytest.raises(CommandError, match="lacks the column"):
            run(tmp_path, "clip,who,label\n1,a,happy\n", "--campaign", campaign.slug)

    def test_create_makes_a_campaign_with_its_own_label_set_and_rater_count(self, tmp_path, db):
        # A study of 5 diagnoses rated by 6 raters (the shape of Fleiss 1971).
        rows = "clip,annotator,label\n" + "".join(
            f"{c},dr{r},{'depression' if r < 5 else 'other'}\n" for c in (1, 2) for r in range(6)
        )
        run(
            tmp_path,
            rows,
            "--campaign",
            "psych",
            "--create",
            "--name",
            "Psychiatry",
            "--labels",
            "depression,personality,schizophrenia,neurosis,other",
            "--per-clip",
            "6",
        )
        campaign = Campaign.objects.get(slug="psych")
        assert campaign.annotations_per_clip == 6 and campaign.single_label_min_votes == 5
        assert list(campaign.labels.values_list("name", flat=True))[-1] == "other"
        assert ClipLabel.objects.filter(single_label__name="depression").count() == 2

    def test_a_failed_create_leaves_no_campaign_behind(self, tmp_path, db):
        with pytest.raises(CommandError, match="unknown label"):
            run(
                tmp_path,
                "clip,annotator,label\n1,a,zzz\n",
                "--campaign",
                "x",
                "--create",
                "--labels",
                "a,b",
            )
        assert not Campaign.objects.filter(slug="x").exists()

    def test_fewer_votes_than_the_campaign_needs_stay_out_of_the_pool(self, tmp_path, campaign):
        text = HEADER + ten_votes(1, ["happy"] * 10) + "2,rater00,sad,m1,1.0\n"
        out = run(tmp_path, text, "--campaign", campaign.slug)
        assert "1 with fewer than 10 labels" in out
        clip = Clip.objects.get(number=2)
        assert clip.status == Clip.Status.PROPOSED and "1 of 10" in clip.status_reason

    def test_clips_and_movies_are_registered_as_cut_elsewhere_keeping_numbers_and_movies(
        self, tmp_path, campaign
    ):
        # given: clip 7 in a movie that exists, clip 3 in a new one, clip 12 with neither a
        # movie nor a length
        from labeling.media import movies

        known = movies.movie_register_extracted(campaign=campaign, title="m1")
        text = (
            HEADER
            + ten_votes(7, ["happy"] * 10, movie="m1", duration=1.5)
            + ten_votes(3, ["sad"] * 10, movie="m2", duration=6.5)
            + "12,rater00,fear,,\n"
        )
        # when
        run(tmp_path, text, "--campaign", campaign.slug)
        # then: the services' rows: numbers and movies as in the file, a Table 2 bucket from
        # the length, no media and no extraction job
        rows = Clip.objects.order_by("number").values_list(
            "number", "movie__title", "end_s", "duration_bucket", "media_status", "status"
        )
        assert list(rows) == [
            (3, "m2", 6.5, "5s+", MediaStatus.NONE, Clip.Status.COMPLETE),
            (7, "m1", 1.5, "0-2s", MediaStatus.NONE, Clip.Status.COMPLETE),
            (12, "imported", None, "", MediaStatus.NONE, Clip.Status.PROPOSED),
        ]
        assert Clip.objects.get(number=7).movie_id == known.pk
        assert set(Movie.objects.values_list("status", flat=True)) == {Movie.Status.READY}

    def test_an_import_refreshes_the_planners_statistics_of_what_it_loaded(
        self, tmp_path, campaign
    ):
        # DFEW's 163,720 labels arrive at once: the planner must not keep seeing the empty
        # tables (labeling/loop/sql.py, analyze_after_bulk_load). ANALYZE counts this
        # transaction's own rows, exactly for tables this small.
        from django.db import connection

        from tests.conftest import need

        need(connection.vendor == "postgresql", "needs PostgreSQL (set DATABASE_URL)")
        votes = "".join(ten_votes(n, ["happy"] * 10) for n in range(1, 62))
        run(tmp_path, HEADER + votes, "--campaign", campaign.slug)

        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname, reltuples FROM pg_class WHERE relname IN (%s, %s)",
                [m._meta.db_table for m in (Assignment, Annotation)],
            )
            # (61 clips are under the threshold: their table is left to autovacuum)
            assert sorted(cursor.fetchall()) == sorted(
                [(Assignment._meta.db_table, 610), (Annotation._meta.db_table, 610)]
            )


@pytest.mark.django_db
class ImportAnnotationsInputTests:
    """Found by probing the command with awkward files."""

    def test_a_file_that_is_not_utf8_is_refused_with_a_message(self, tmp_path, campaign):
        path = tmp_path / "latin1.csv"
        path.write_bytes((HEADER + "1,rené,happy,m1,2.0\n").encode("latin-1"))
        with pytest.raises(CommandError, match="is not UTF-8 text"):
            call_command(
                "import_annotations",
                str(path),
                "--campaign",
                campaign.slug,
                stdout=io.StringIO(),
                stderr=io.StringIO(),
            )
        assert counts() == (0, 0, 0, 0, 0)

    @pytest.mark.parametrize(
        ("line", "message"),
        [
            ("3000000000,a,happy,m1,2\n", "line 2: clip 3000000000 must be between 1 and"),
            (f"1,a,happy,{'t' * 301},2\n", "line 2: the movie title is longer than 300"),
        ],
    )
    def test_values_the_database_cannot_hold_are_refused_by_line(
        self, tmp_path, campaign, line, message
    ):
        with pytest.raises(CommandError, match=re.escape(message)):
            run(tmp_path, HEADER + line, "--campaign", campaign.slug)

    def test_a_repeated_header_column_is_refused_and_case_does_not_matter(self, tmp_path, campaign):
        with pytest.raises(CommandError, match="repeats the column"):
            run(tmp_path, "clip,annotator,label,label\n1,a,happy,sad\n", "--campaign", "campaign")
        out = run(tmp_path, "Clip,Annotator,Label\n1,a,happy\n", "--campaign", campaign.slug)
        assert "1 labels imported" in out

    def test_an_invalidated_vote_cannot_come_back_through_an_import(
        self, tmp_path, campaign, admin_user
    ):
        from labeling.results.aggregation import annotator_invalidate

        text = HEADER + ten_votes(1, ["happy"] * 10)
        run(tmp_path, text, "--campaign", campaign.slug)
        annotator_invalidate(
            staff=admin_user, campaign_id=campaign.pk, username="rater03", reason="spam"
        )
        before = counts()
        with pytest.raises(CommandError, match="line 5: rater03's label on clip 1 was invalidated"):
            run(tmp_path, text, "--campaign", campaign.slug)
        assert counts() == before


def call(path, *args: str) -> str:
    out = io.StringIO()
    call_command("import_annotations", str(path), *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


GOOD = "1,a,happy,m1,2\n"


@pytest.mark.django_db
class ImportAnnotationsBadFileTests:
    """Every unreadable file or row ends in a message naming the file and the line, never a
    traceback, and nothing is written (issue 21, item 9)."""

    @pytest.mark.parametrize(
        ("content", "message"),
        [
            # a short row, a long row: the header has five columns
            (
                HEADER + GOOD + "2,b,sad\n",
                "line 3: malformed line (3 fields where the header has 5)",
            ),
            (HEADER + GOOD + "2,b,sad,m1,2,x\n", "line 3: malformed line (6 fields where"),
            # bytes that are not UTF-8, on the line they are on
            ((HEADER + GOOD).encode() + b"2,ren\xe9,sad,m1,2\n", "line 3: the line is not UTF-8"),
            (b"clip,annot\xff\n" + GOOD.encode(), "line 1: the line is not UTF-8 text"),
            # past 8 KiB, where a text file's decoder reads ahead of the csv reader
            (
                (HEADER + "".join(f"{i},a,happy,m1,2\n" for i in range(1, 601))).encode()
                + b"601,\xe9,sad,m1,2\n",
                "line 602: the line is not UTF-8",
            ),
            # a field over the csv module's limit (131,072 characters)
            (HEADER + GOOD + "2,b,sad," + "t" * 131_073 + ",2\n", "line 3: a field is longer"),
            # a quote never closed runs to the end of the file
            (HEADER + GOOD + '2,b,sad,"never closed,2\n2,c,sad,m1,2\n', "line 4: malformed line"),
            # a NUL in a movie title: PostgreSQL cannot store it
            (HEADER + GOOD + "2,b,sad,m\x001,2\n", "line 3: a field holds a NUL character"),
            (HEADER + GOOD + "2,b\x00,sad,m1,2\n", "line 3: a field holds a NUL character"),
        ],
    )
    def test_a_bad_row_names_the_file_and_line_and_imports_nothing(
        self, tmp_path, campaign, content, message
    ):
        path = tmp_path / "votes.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        with pytest.raises(CommandError) as raised:
            call(path, "--campaign", campaign.slug)
        text = str(raised.value)
        assert text.startswith(f"{path}: ")
        assert message in text
        assert counts() == (0, 0, 0, 0, 0)

    def test_a_bad_row_leaves_no_campaign_made_by_create(self, tmp_path, db):
        path = tmp_path / "votes.csv"
        path.write_bytes(HEADER.encode() + b"1,\xff,happy,m1,2\n")
        with pytest.raises(CommandError, match="line 2: the line is not UTF-8"):
            call(path, "--campaign", "new", "--create")
        assert not Campaign.objects.filter(slug="new").exists()

    def test_a_missing_file_is_named(self, tmp_path, campaign):
        path = tmp_path / "nope.csv"
        with pytest.raises(CommandError, match=re.escape(f"{path}: no such file")):
            call(path, "--campaign", campaign.slug)

    def test_a_folder_is_named(self, tmp_path, campaign):
        with pytest.raises(CommandError, match=re.escape(f"{tmp_path}: is a folder, not a file")):
            call(tmp_path, "--campaign", campaign.slug)

    def test_an_empty_file_lacks_the_header(self, tmp_path, campaign):
        path = tmp_path / "votes.csv"
        path.write_text("")
        with pytest.raises(CommandError, match="line 1: the header lacks the column"):
            call(path, "--campaign", campaign.slug)

    def test_blank_lines_and_a_byte_order_mark_are_fine_and_lines_count_them(
        self, tmp_path, campaign
    ):
        path = tmp_path / "votes.csv"
        path.write_text("\ufeff" + HEADER + "\n" + GOOD + "\n\n1,b,sad,m1,2\n", encoding="utf-8")
        assert "2 labels imported" in call(path, "--campaign", campaign.slug)
        path.write_text(HEADER + "\n" + GOOD + "\n\nx,b,sad,m1,2\n")
        with pytest.raises(CommandError, match="line 6: clip 'x' is not a whole number"):
            call(path, "--campaign", campaign.slug)
