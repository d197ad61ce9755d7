"""Votes made elsewhere come in as clips without media, so aggregation, the agreement report,
folds and exports work on them as on votes collected here.

``annotations_import`` is all or nothing: it checks every row first and writes in one
transaction with bulk inserts (DFEW's 163,720 labels in seconds). Rows already present with the
same label are skipped, so importing a file twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError
from labeling.loop import sql
from labeling.loop.slots import clip_is_done, clip_is_full, stop_rule_of
from labeling.media import movies
from labeling.models import Annotation, Assignment, Campaign, Clip, Movie

User = get_user_model()
DEFAULT_MOVIE = "imported"
REQUIRED_COLUMNS = ("clip", "annotator", "label")
MAX_CLIP_NUMBER = 2**31 - 1  # the database's integer
MAX_TITLE = Movie._meta.get_field("title").max_length


class ImportRowError(ApplicationError):
    """A bad row: the message names its line and nothing was written."""


def shown(value: str, limit: int = 60) -> str:
    """A value from an import file as a message quotes it: its repr, cut to ``limit``
    characters (a 131,072-character field makes no readable message)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _bad(line: int, message: str) -> ImportRowError:
    return ImportRowError(f"line {line}: {message}; nothing was imported.", {"line": line})


class ImportFileError(ApplicationError):
    """A file that cannot be read as CSV at all (missing, a folder, unreadable); the message
    follows the file's name."""


# Bytes that are not UTF-8, as Python's "surrogateescape" decoding keeps them.
_NOT_UTF8 = re.compile("[\udc80-\udcff]")


@contextmanager
def csv_rows(path: str | Path) -> Iterator[tuple[list[str], Iterator[tuple[int, dict]]]]:
    """Opens a CSV file of the import commands: ``(header, rows)``, the header's names stripped
    and lower-cased, each row ``(line number, {column: value})``, blank lines skipped.

    Every way a file can be unreadable is an `ApplicationError` whose message names the line
    (`ImportRowError`) or says what the path is (`ImportFileError`), never a traceback: no such
    file, a folder, no permission; bytes that are not UTF-8 (the line they are on); a field
    over the csv module's limit of 131,072 characters, or a quote never closed; a row with more
    or fewer fields than the header; a NUL character, which no column can hold. Rows are read
    as they are consumed, so a caller that checks every row before writing writes nothing when
    one is bad.
    """
    path = Path(path)
    if not path.exists():
        raise ImportFileError("no such file.")
    if path.is_dir():
        raise ImportFileError("is a folder, not a file; give the CSV file itself.")
    if not path.is_file():
        raise ImportFileError("is not a regular file; give the CSV file itself.")
    try:
        handle = open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise ImportFileError(f"cannot be read: {exc.strerror}.") from None
    with handle:
        reader = csv.reader(handle)

        def read() -> Iterator[tuple[int, list[str]]]:
            while True:
                try:
                    fields = next(reader, None)
                except csv.Error as exc:
                    reason = str(exc)
                    if "field larger than field limit" in reason:
                        reason = (
                            f"a field is longer than the {csv.field_size_limit():,} characters "
                            "a CSV field may have (a quote never closed?)"
                        )
                    raise _bad(max(reader.line_num, 1), reason) from None
                except OSError as exc:
                    raise ImportFileError(f"cannot be read: {exc.strerror}.") from None
                if fields is None:
                    return
                if not fields:
                    continue  # a blank line
                line = reader.line_num
                for value in fields:
                    if _NOT_UTF8.search(value):
                        raise _bad(line, "the line is not UTF-8 text; save the file as UTF-8")
                    if "\x00" in value:
                        raise _bad(line, "a field holds a NUL character (\\x00)")
                yield line, fields

        lines = read()
        first = next(lines, None)
        header = [name.strip().lower() for name in first[1]] if first else []

        def rows() -> Iterator[tuple[int, dict]]:
            for line, fields in lines:
                if len(fields) != len(header):
                    raise _bad(
                        line,
                        f"malformed line ({len(fields)} fields where the header has {len(header)})",
                    )
                yield line, dict(zip(header, fields, strict=True))

        yield header, rows()


@dataclass
class ImportSummary:
    rows: int = 0
    imported: int = 0
    skipped_existing: int = 0
    clips_created: int = 0
    accounts_created: int = 0
    movies_created: int = 0
    complete_clip_ids: list[int] = field(default_factory=list)
    incomplete_clips: int = 0


@dataclass
class _ClipRows:
    movie: str | None = None
    duration: float | None = None
    votes: list[tuple[int, str, int]] = field(default_factory=list)  # (line, annotator, code)


def _parse(campaign: Campaign, header: list[str], rows: Iterable[tuple[int, dict]]):
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise _bad(1, f"the header repeats the column(s) {', '.join(repeated)}")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise _bad(1, f"the header lacks the column(s) {', '.join(missing)}")
    by_name = {}
    by_code = {}
    for code, name in campaign.labels.values_list("code", "name"):
        by_name[name.lower()] = code
        by_code[str(code)] = code
    valid = ", ".join(sorted(by_name, key=by_name.get))
    usernames = UnicodeUsernameValidator()
    clips: dict[int, _ClipRows] = defaultdict(_ClipRows)
    seen: dict[tuple[int, str], int] = {}
    count = 0
    for line, row in rows:
        count += 1
        # csv.DictReader keys extra fields by None and fills missing ones with None.
        if None in row or any(value is None for value in row.values()):
            raise _bad(line, "malformed line (wrong number of fields)")
        raw_clip, annotator = row["clip"].strip(), row["annotator"].strip()
        raw_label = row["label"].strip()
        try:
            number = int(raw_clip)
        except ValueError:
            raise _bad(line, f"clip {shown(raw_clip)} is not a whole number") from None
        if not 1 <= number <= MAX_CLIP_NUMBER:
            raise _bad(line, f"clip {number} must be between 1 and {MAX_CLIP_NUMBER}")
        if not annotator:
            raise _bad(line, "the annotator is empty")
        try:
            usernames(annotator)
        except ValidationError:
            raise _bad(line, f"{shown(annotator)} is not a valid account name") from None
        if len(annotator) > 150:
            raise _bad(line, "the annotator's name is longer than 150 characters")
        code = by_name.get(raw_label.lower()) or by_code.get(raw_label)
        if code is None:
            raise _bad(line, f"unknown label {shown(raw_label)} (valid: {valid}, or their codes)")
        if (number, annotator) in seen:
            raise _bad(
                line,
                f"{annotator} labels clip {number} twice (also on line {seen[number, annotator]})",
            )
        seen[number, annotator] = line
        clip = clips[number]
        movie = (row.get("movie") or "").strip() or None
        if movie is not None and len(movie) > MAX_TITLE:
            raise _bad(line, f"the movie title is longer than {MAX_TITLE} characters")
        if movie is not None:
            if clip.movie is not None and clip.movie != movie:
                earlier = shown(clip.movie)
                raise _bad(line, f"clip {number} is in movie {earlier} on an earlier line")
            clip.movie = movie
        raw_duration = (row.get("duration_s") or "").strip()
        if raw_duration:
            try:
                duration = float(raw_duration)
            except ValueError:
                raise _bad(line, f"duration_s {shown(raw_duration)} is not a number") from None
            if not math.isfinite(duration) or duration <= 0:
                raise _bad(line, f"duration_s {shown(raw_duration)} must be a positive number")
            if clip.duration is not None and not math.isclose(clip.duration, duration):
                raise _bad(line, f"clip {number} has duration {clip.duration} on an earlier line")
            clip.duration = duration
        clip.votes.append((line, annotator, code))
    return clips, count


def annotations_import(
    *,
    campaign: Campaign,
    header: list[str],
    rows: Iterable[tuple[int, dict]],
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Imports ``(line number, row)`` pairs of ``clip,annotator,label[,movie,duration_s]``.

    Creates the clips (no media), movies (by title; "imported" when none given), accounts that
    cannot log in for unknown annotators, and for each vote a submitted assignment and its
    annotation. A clip the campaign's stop rule calls done (`slots.clip_is_done`: all
    ``annotations_per_clip`` votes, or adaptive overlap's decided outcome) becomes complete
    (its ids are returned for aggregation); one with fewer stays proposed, out of the labelling
    pool. Clips that already have media are labelled in the app and cannot receive imported votes.
    """
    step = progress or (lambda stage: None)
    step("checking rows")
    clips, count = _parse(campaign, header, rows)
    summary = ImportSummary(rows=count)
    target = campaign.annotations_per_clip
    labels = dict(campaign.labels.values_list("code", "pk"))
    now = timezone.now()
    with transaction.atomic():
        existing = {
            number: (pk, video)
            for pk, number, video in Clip.objects.select_for_update()
            .filter(campaign=campaign, number__in=list(clips))
            .values_list("pk", "number", "video")
        }
        prior: dict[int, dict[str, tuple[int, int]]] = defaultdict(dict)
        invalidated: set[tuple[int, str]] = set()
        for number, username, code, slot, gone in Annotation.objects.filter(
            clip__campaign=campaign, clip__number__in=list(existing)
        ).values_list(
            "clip__number", "annotator__username", "label__code", "slot", "invalidated_at"
        ):
            if gone is None:
                prior[number][username] = (code, slot)
            else:
                invalidated.add((number, username))
        new_votes: list[tuple[int, str, int, int]] = []  # (number, annotator, code, slot)
        for number, clip in clips.items():
            if number in existing and existing[number][1]:
                line = clip.votes[0][0]
                raise _bad(line, f"clip {number} has media and is labelled in the app")
            held = prior.get(number, {})
            slots = {slot for _, slot in held.values()}
            free = (s for s in range(1, 10**6) if s not in slots)
            added = 0
            for line, annotator, code in clip.votes:
                if (number, annotator) in invalidated:
                    raise _bad(
                        line,
                        f"{annotator}'s label on clip {number} was invalidated by staff; an "
                        "invalidated annotator cannot label the clip again",
                    )
                if annotator in held:
                    if held[annotator][0] != code:
                        raise _bad(
                            line,
                            f"{annotator} already labelled clip {number} with code "
                            f"{held[annotator][0]}, not {code}",
                        )
                    summary.skipped_existing += 1
                    continue
                if clip_is_full(len(held) + added, target):
                    raise _bad(
                        line,
                        f"clip {number} would have more than the campaign's {target} annotators",
                    )
                added += 1
                new_votes.append((number, annotator, code, next(free)))
        if not new_votes:
            step("nothing new")
            return summary

        step("creating accounts and movies")
        names = {annotator for _, annotator, _, _ in new_votes}
        users = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
        fresh = [
            User(username=name, password=make_password(None), is_active=True)
            for name in sorted(names - set(users))
        ]
        User.objects.bulk_create(fresh, batch_size=2000)
        summary.accounts_created = len(fresh)
        if fresh:
            users = dict(User.objects.filter(username__in=names).values_list("username", "pk"))
        titles = {clips[n].movie or DEFAULT_MOVIE for n in clips if n not in existing}
        known = Movie.objects.filter(campaign=campaign, title__in=titles).only("title", "campaign")
        movie_of = {m.title: m for m in known}
        new_movies = movies.movies_register_extracted(
            campaign=campaign, titles=sorted(titles - set(movie_of))
        )
        summary.movies_created = len(new_movies)
        movie_of.update((m.title, m) for m in new_movies)

        step("creating clips")
        # Proposed: out of the labelling pool until the votes below complete them.
        created = movies.clips_register_extracted(
            clips=[
                movies.ExtractedClip(
                    end_s=clip.duration, number=number, movie=movie_of[clip.movie or DEFAULT_MOVIE]
                )
                for number, clip in sorted(clips.items())
                if number not in existing
            ],
            status=Clip.Status.PROPOSED,
        )
        summary.clips_created = len(created)
        clip_pk = {number: pk for number, (pk, _) in existing.items()}
        clip_pk.update((c.number, c.pk) for c in created)

        step("writing labels")
        _insert_rows(
            Assignment,
            ["clip", "annotator", "slot", "status", "leased_at", "expires_at", "finished_at"],
            (
                (clip_pk[n], users[a], slot, Assignment.Status.SUBMITTED, now, now, now)
                for n, a, _, slot in new_votes
            ),
        )
        sql.analyze_after_bulk_load(Assignment, len(new_votes))
        # This import's assignments are the submitted ones leased, expiring and finished at
        # this exact moment (a lease made in the app never expires the moment it is made).
        assignment_of = {
            (clip_id, annotator_id): pk
            for pk, clip_id, annotator_id in Assignment.objects.filter(
                status=Assignment.Status.SUBMITTED, leased_at=now, expires_at=now
            )
            .order_by()
            .values_list("pk", "clip_id", "annotator_id")
        }
        _insert_rows(
            Annotation,
            [
                "assignment",
                "clip",
                "annotator",
                "label",
                "slot",
                "created_at",
                "invalidation_reason",
            ],
            (
                (
                    assignment_of[clip_pk[n], users[a]],
                    clip_pk[n],
                    users[a],
                    labels[code],
                    slot,
                    now,
                    "",
                )
                for n, a, code, slot in new_votes
            ),
        )
        sql.analyze_after_bulk_load(Annotation, len(new_votes))
        summary.imported = len(new_votes)

        step("completing clips")
        # The campaign's stop rule decides which clips are complete, as in the loop: all their
        # slots, or (adaptive overlap) an outcome the remaining votes cannot change.
        rule = stop_rule_of(campaign)
        codes = sorted(labels)
        given: dict[int, list[int]] = {n: [c for c, _ in prior.get(n, {}).values()] for n in clips}
        for number, _, code, _ in new_votes:
            given[number].append(code)
        totals = {n: len(votes) for n, votes in given.items()}
        done = {
            n: clip_is_done(np.bincount(np.searchsorted(codes, v), minlength=len(codes)), rule)
            for n, v in given.items()
        }
        full = [clip_pk[n] for n, total in totals.items() if done[n]]
        short = {n: total for n, total in totals.items() if not done[n]}
        Clip.objects.filter(pk__in=full).update(
            status=Clip.Status.COMPLETE, status_reason="", updated_at=now
        )
        by_total: dict[int, list[int]] = defaultdict(list)
        for number, total in short.items():
            by_total[total].append(clip_pk[number])
        for total, pks in by_total.items():
            Clip.objects.filter(pk__in=pks).update(
                status=Clip.Status.PROPOSED,
                status_reason=f"imported with {total} of {target} labels",
                updated_at=now,
            )
        # The bulk insert above bypassed `labeling.loop.slots`: the held slots (and tallies)
        # are recounted here, for the whole campaign.
        sql.campaign_counts_rebuild(campaign.pk)
        summary.complete_clip_ids = sorted(full)
        summary.incomplete_clips = len(short)
    return summary


def _insert_rows(model, fields: list[str], rows: Iterable[tuple]) -> None:
    """Inserts many rows of ``model`` without building model instances: PostgreSQL's COPY, or
    ``executemany`` elsewhere. Every row was checked before; the database's constraints still
    apply. (``bulk_create`` spent most of an import of DFEW's 163,720 labels in Python.)"""
    columns = [model._meta.get_field(name).column for name in fields]
    table = connection.ops.quote_name(model._meta.db_table)
    names = ", ".join(connection.ops.quote_name(c) for c in columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            adapt = connection.ops.adapt_datetimefield_value
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(
                f"INSERT INTO {table} ({names}) VALUES ({marks})",
                [tuple(adapt(v) if isinstance(v, datetime) else v for v in row) for row in rows],
            )
