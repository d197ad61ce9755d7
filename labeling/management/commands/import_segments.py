"""python manage.py import_segments <campaign-slug> FILE.csv"""

from __future__ import annotations

import math
from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation_site.errors import ApplicationError
from labeling.media import movies
from labeling.models import Campaign
from labeling.models.clips import face_point_problem
from labeling.results.imports import csv_rows, shown

REQUIRED = ("movie", "start_s", "end_s")


def _face_point(row: dict, line: int) -> tuple[float, float] | None:
    """The row's optional face point (columns face_x, face_y: both or neither)."""
    x, y = ((row.get(c) or "").strip() for c in ("face_x", "face_y"))
    if not x and not y:
        return None
    if not (x and y):
        raise ApplicationError(f"line {line}: face_x and face_y come together, or neither.")
    try:
        point = (float(x), float(y))
    except ValueError:
        raise ApplicationError(
            f"line {line}: face_x {shown(x)} and face_y {shown(y)} must be numbers."
        ) from None
    if problem := face_point_problem(point):
        raise ApplicationError(f"line {line}: {problem}.")
    return point


class Command(BaseCommand):
    help = (
        "Proposes clips from a CSV (columns movie, start_s, end_s, and optionally "
        "suspected_label and face_x, face_y: the face to follow, as shares 0..1 of the movie "
        "frame's width and height, both or neither; movie is a movie id or title of the "
        "campaign) and queues their extraction. All rows or none: errors name the line."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("file", help="CSV file")

    def handle(self, *args, campaign, file, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        try:
            per_movie = self._read(target, file)
            total = self._propose(per_movie)
        except ApplicationError as exc:
            # Every bad input (the file, a row) names the file and the line; nothing was written.
            raise CommandError(f"{file}: {exc.message}") from None
        self.stdout.write(f"{total} clips proposed; their extraction is queued.")

    def _read(self, target: Campaign, file: str) -> dict[int, list[tuple[int, movies.Segment]]]:
        by_id = {str(m.pk): m for m in target.movies.all()}
        by_title = {m.title: m for m in by_id.values()}
        per_movie = defaultdict(list)
        with csv_rows(file) as (header, rows):
            missing = [c for c in REQUIRED if c not in header]
            if missing:
                raise ApplicationError(f"line 1: missing columns {', '.join(missing)}.")
            for line, row in rows:
                name = row["movie"].strip()
                movie = by_id.get(name) or by_title.get(name)
                if movie is None:
                    raise ApplicationError(f"line {line}: no movie {shown(name)} in {target.slug}.")
                try:
                    start, end = float(row["start_s"]), float(row["end_s"])
                except ValueError:
                    raise ApplicationError(
                        f"line {line}: start_s and end_s must be numbers."
                    ) from None
                if not (math.isfinite(start) and math.isfinite(end) and 0 <= start < end):
                    raise ApplicationError(
                        f"line {line}: start_s {shown(row['start_s'].strip())} and end_s "
                        f"{shown(row['end_s'].strip())} must be numbers of seconds, the end after "
                        "the start, from 0 on."
                    )
                label = (row.get("suspected_label") or "").strip()
                point = _face_point(row, line)
                per_movie[movie.pk].append((line, movies.Segment(start, end, label, point)))
        return per_movie

    def _propose(self, per_movie) -> int:
        total = 0
        with transaction.atomic():
            for movie_id, rows in per_movie.items():
                try:
                    proposed = movies.clip_propose(
                        user=None, movie_id=movie_id, segments=[seg for _, seg in rows]
                    )
                except ApplicationError as exc:
                    index = exc.extra.get("segment")
                    where = f"line {rows[index - 1][0]}" if index else f"movie {movie_id}"
                    raise ApplicationError(f"{where}: {exc.message}") from None
                total += len(proposed.clips)
                for warning in proposed.warnings:
                    self.stderr.write(f"movie {movie_id}: {warning}")
        return total
