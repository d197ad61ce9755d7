"""python manage.py seed_demo [--clips N] [--annotators N] [--password P] [--screening]
[--extract-now] [--seed S]"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from annotation_site.errors import ApplicationError
from labeling import campaigns
from labeling.media import extraction, movies
from labeling.models import Campaign, Role
from pipeline.emotions import EMOTION_NAMES
from pipeline.media import write_video
from pipeline.synthetic_movies import drawn_face_movie

DEMO_SLUG = "demo"
FPS = 12
SEGMENT_S = 3  # each emotion of a synthetic movie lasts this long


class Command(BaseCommand):
    help = (
        "Creates a demo campaign, annotator accounts annotator01…, a reviewer and an admin, "
        "and prints the logins. Its clips come through the real media pipeline: synthetic "
        "movies of a drawn face whose expression changes every few seconds are imported, "
        "probed, marked one segment per emotion, and extracted by the worker (or here with "
        "--extract-now). Does nothing on a database that already has the demo."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clips", type=int, default=21, help="clips to make (default 21)")
        parser.add_argument(
            "--annotators", type=int, default=12, help="annotator accounts (default 12)"
        )
        parser.add_argument(
            "--password", default="dfer-demo", help="password of every demo account"
        )
        parser.add_argument(
            "--screening",
            action="store_true",
            help="send the clips to the reviewer instead of opening them for labelling",
        )
        parser.add_argument(
            "--extract-now",
            action="store_true",
            help="extract the clips in this process instead of queueing them for the worker",
        )
        parser.add_argument("--seed", type=int, default=2020, help="random seed of the faces")

    def handle(self, *args, clips, annotators, password, screening, extract_now, seed, **options):
        if clips < 1 or annotators < 1:
            raise CommandError("--clips and --annotators must be at least 1")
        names = [f"annotator{i:02d}" for i in range(1, annotators + 1)]
        if Campaign.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("The demo is already seeded; nothing changed.")
            self._print_logins(names, password=None)
            return

        with transaction.atomic():
            campaign = campaigns.campaign_create(
                name="Demo: drawn faces",
                slug=DEMO_SLUG,
                description="Synthetic movies of drawn faces, one clip per emotion segment.",
                screen_clips=screening,
            )
            admin = campaigns.user_create(username="admin", password=password, is_staff=True)
            reviewer = campaigns.user_create(
                username="reviewer", password=password, roles=[Role.REVIEWER]
            )
            users = [
                campaigns.user_create(
                    username=name,
                    password=password,
                    roles=[Role.ANNOTATOR],
                    region="demo",
                    cultural_background="demo",
                    languages="en,zh",
                )
                for name in names
            ]
            campaign.annotators.add(*users)

        proposed = self._movies_and_segments(campaign, clips, np.random.default_rng(seed))
        if extract_now:
            for clip in proposed:
                extraction.clip_extract(clip.pk)
            where = "extracted"
        else:
            where = "queued for the worker's extraction"
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded campaign {campaign.name!r}: {len(proposed)} clips {where}, "
                f"{len(users)} annotators, a reviewer ({reviewer.username}) and an admin "
                f"({admin.username})."
            )
        )
        self._print_logins(names, password=password)

    def _movies_and_segments(self, campaign, clips: int, rng: np.random.Generator) -> list:
        """Imports synthetic movies (one segment per emotion) and proposes one clip per
        segment, through the same services as the upload (with its probe) and the API."""
        per_movie = len(EMOTION_NAMES)
        proposed = []
        with tempfile.TemporaryDirectory() as folder:
            for index, first in enumerate(range(0, clips, per_movie), start=1):
                count = min(per_movie, clips - first)
                emotions = [EMOTION_NAMES[(first + i) % per_movie] for i in range(count)]
                frames = drawn_face_movie(emotions, SEGMENT_S, FPS, 160, rng)
                path = write_video(frames, Path(folder) / f"synthetic-movie-{index}.mp4", FPS)
                try:  # probed on the way in
                    movie = movies.movie_register_path(campaign=campaign, path=path)
                except ApplicationError as exc:
                    raise CommandError(f"{path.name}: {exc.message}") from None
                segments = []
                for s, emotion in enumerate(emotions):
                    start = s * SEGMENT_S * FPS + int(rng.integers(1, 6))
                    length = int(rng.integers(18, SEGMENT_S * FPS - 6))
                    segments.append(
                        movies.Segment(
                            round(start / FPS, 3), round((start + length) / FPS, 3), emotion
                        )
                    )
                proposed += movies.clip_propose(
                    user=None, movie_id=movie.pk, segments=segments
                ).clips
        return proposed

    def _print_logins(self, names: list[str], password: str | None) -> None:
        shown = password if password is not None else "(the password given when seeding)"
        self.stdout.write("Demo logins:")
        self.stdout.write(f"  admin     / {shown}   (staff: overview, admin)")
        self.stdout.write(f"  reviewer  / {shown}   (screening)")
        self.stdout.write(f"  {names[0]}…{names[-1]} / {shown}   (labelling)")
