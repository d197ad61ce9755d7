"""python manage.py import_movies <campaign-slug> <folder>"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_site.errors import ApplicationError
from labeling.media import movies
from labeling.models import Campaign


class Command(BaseCommand):
    help = (
        "Registers every video file of a server folder as a movie of the campaign: each is "
        "probed here and refused, with the reason, when it is not a playable video, when the "
        "campaign has the same content already, or when it is a symbolic link or anything but "
        "a regular file."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("folder", help="folder whose video files to import")

    def handle(self, *args, campaign, folder, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"No campaign with slug {campaign!r}.")
        root = Path(folder)
        if not root.is_dir():
            raise CommandError(f"{folder} is not a folder.")
        # By name only: whether each is a regular file is the service's to say (it opens it
        # without following links), so a link or a folder named like a video is named.
        paths = sorted(p for p in root.iterdir() if p.suffix.lower() in movies.VIDEO_SUFFIXES)
        registered = refused = 0
        for path in paths:
            try:
                movie = movies.movie_register_path(campaign=target, path=path)
            except ApplicationError as exc:
                refused += 1
                named = path.name in exc.message  # the service's words name it already
                self.stderr.write(exc.message if named else f"{path.name}: {exc.message}")
                continue
            registered += 1
            self.stdout.write(
                f"{path.name}: movie {movie.pk}, {movie.duration_s:.1f} s, "
                f"{movie.width}x{movie.height} at {movie.fps:g} fps ({movie.codec})"
            )
        summary = f"{registered} registered, {refused} refused, of {len(paths)} videos."
        if paths and not registered:  # a script sees that nothing came in
            raise CommandError(summary)
        self.stdout.write(summary)
