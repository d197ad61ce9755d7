"""python manage.py import_segments <campaign-slug> FILE.csv"""

from __future__ import annotations

import csv
from collections import defaultdict

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from labeling import movies
from labeling.errors import ApplicationError
from labeling.models import Campaign

REQUIRED = ("movie", "start_s", "end_s")


class Command(BaseCommand):
    help = (
        "Proposes clips from a CSV (columns movie, start_s, end_s, and optionally "
        "suspected_label; movie is a movie id or title of the campaign) and queues their "
        "extraction. All rows or none: errors name the line."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("file", help="CSV file")

    def handle(self, *args, campaign, file, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        by_id = {str(m.pk): m for m in target.movies.all()}
        by_title = {m.title: m for m in by_id.values()}
        per_movie = defaultdict(list)
        with open(file, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
            if missing:
                raise CommandError(f"{file}: missing columns {', '.join(missing)}.")
            for line, row in enumerate(reader, start=2):
                movie = by_id.get(row["movie"].strip()) or by_title.get(row["movie"].strip())
                if movie is None:
                    raise CommandError(f"line {line}: no movie {row['movie']!r} in {campaign}.")
                try:
                    start, end = float(row["start_s"]), float(row["end_s"])
                except ValueError:
                    raise CommandError(f"line {line}: start_s and end_s must be numbers.") from None
                label = (row.get("suspected_label") or "").strip()
                per_movie[movie.pk].append((line, movies.Segment(start, end, label)))
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
                    raise CommandError(f"{where}: {exc.message}") from None
                total += len(proposed.clips)
                for warning in proposed.warnings:
                    self.stderr.write(f"movie {movie_id}: {warning}")
        self.stdout.write(f"{total} clips proposed; their extraction is queued.")
