"""python manage.py import_movies <campaign-slug> <folder> [--probe-now]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from labeling import movies
from labeling.errors import ApplicationError
from labeling.models import Campaign


class Command(BaseCommand):
    help = (
        "Registers every video file of a server folder as a movie of the campaign (the same "
        "content twice is refused, naming the movie already there) and queues its probe."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("folder", help="folder whose video files to import")
        parser.add_argument(
            "--probe-now",
            action="store_true",
            help="probe each movie here and now instead of on a worker",
        )

    def handle(self, *args, campaign, folder, probe_now, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        root = Path(folder)
        if not root.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        paths = sorted(
            p for p in root.iterdir() if p.is_file() and p.suffix.lower() in movies.VIDEO_SUFFIXES
        )
        registered = refused = 0
        for path in paths:
            try:
                movie = movies.movie_register_path(campaign=target, path=path)
            except ApplicationError as exc:
                refused += 1
                self.stderr.write(f"{path.name}: {exc.message}")
                continue
            registered += 1
            if probe_now:
                movie = movies.movie_probe(movie.pk)
                state = movie.status if not movie.error else f"{movie.status}: {movie.error}"
            else:
                state = "queued for its probe"
            self.stdout.write(f"{path.name}: movie {movie.pk} ({state})")
        self.stdout.write(f"{registered} registered, {refused} refused, of {len(paths)} videos.")
