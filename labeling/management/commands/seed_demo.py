"""python manage.py seed_demo [--clips N] [--annotators N] [--password P] [--screening]"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from labeling import services
from labeling.models import Campaign, Clip, Movie, Role
from pipeline.emotions import EMOTION_NAMES
from pipeline.media import write_image, write_video
from pipeline.synthetic import render_clip

DEMO_SLUG = "demo"
FPS = 12


class Command(BaseCommand):
    help = (
        "Creates a demo campaign of generated drawn-face clips, annotator accounts "
        "annotator01…, a reviewer and an admin, and prints the logins. Does nothing on a "
        "database that already has the demo."
    )

    def add_arguments(self, parser):
        parser.add_argument("--clips", type=int, default=21, help="clips to generate (default 21)")
        parser.add_argument(
            "--annotators", type=int, default=12, help="annotator accounts (default 12)"
        )
        parser.add_argument(
            "--password", default="dfer-demo", help="password of every demo account"
        )
        parser.add_argument(
            "--screening",
            action="store_true",
            help="leave the clips waiting for the reviewer instead of open for labelling",
        )
        parser.add_argument("--seed", type=int, default=2020, help="random seed of the faces")

    def handle(self, *args, clips, annotators, password, screening, seed, **options):
        if clips < 1 or annotators < 1:
            raise CommandError("--clips and --annotators must be at least 1")
        names = [f"annotator{i:02d}" for i in range(1, annotators + 1)]
        if Campaign.objects.filter(slug=DEMO_SLUG).exists():
            self.stdout.write("The demo is already seeded; nothing changed.")
            self._print_logins(names, password=None)
            return

        rng = np.random.default_rng(seed)
        media_root = Path(settings.MEDIA_ROOT)
        rendered = []
        for number in tqdm(range(1, clips + 1), desc="rendering demo clips", unit="clip"):
            emotion = EMOTION_NAMES[(number - 1) % len(EMOTION_NAMES)]
            frames = render_clip(emotion, n_frames=int(rng.integers(18, 42)), size=160, rng=rng)
            video = f"clips/{DEMO_SLUG}/{number:05d}.mp4"
            poster = f"posters/{DEMO_SLUG}/{number:05d}.jpg"
            write_video(frames, media_root / video, fps=FPS)
            write_image(frames[len(frames) // 2], media_root / poster)
            rendered.append((number, video, poster, len(frames) / FPS))

        with transaction.atomic():
            campaign = services.campaign_create(
                name="Demo: drawn faces",
                slug=DEMO_SLUG,
                description="Generated clips of drawn faces, one of the seven emotions each.",
            )
            admin = services.user_create(username="admin", password=password, is_staff=True)
            reviewer = services.user_create(
                username="reviewer", password=password, roles=[Role.REVIEWER]
            )
            users = [
                services.user_create(
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
            movies = {}
            per_movie = campaign.clips_per_movie
            clip_rows = []
            for number, video, poster, duration in rendered:
                index = (number - 1) // per_movie + 1
                if index not in movies:
                    movies[index] = Movie.objects.create(
                        campaign=campaign,
                        title=f"Synthetic movie {index}",
                        status=Movie.Status.READY,
                    )
                clip_rows.append(
                    Clip(
                        campaign=campaign,
                        movie=movies[index],
                        number=number,
                        start_s=0.0,
                        end_s=round(duration, 3),
                        video=video,
                        poster=poster,
                        status=Clip.Status.SCREENING if screening else Clip.Status.ANNOTATING,
                    )
                )
            Clip.objects.bulk_create(clip_rows)
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded campaign {campaign.name!r}: {clips} clips, {len(users)} annotators, "
                f"a reviewer ({reviewer.username}) and an admin ({admin.username})."
            )
        )
        self._print_logins(names, password=password)

    def _print_logins(self, names: list[str], password: str | None) -> None:
        shown = password if password is not None else "(the password given when seeding)"
        self.stdout.write("Demo logins:")
        self.stdout.write(f"  admin     / {shown}   (staff: overview, admin)")
        self.stdout.write(f"  reviewer  / {shown}   (screening)")
        self.stdout.write(f"  {names[0]}…{names[-1]} / {shown}   (labelling)")
