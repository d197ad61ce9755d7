"""python manage.py seed_demo [--clips N] [--annotators N] [--password P] [--screening]
[--extract-now] [--votes] [--seed S]"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from annotation_site.errors import ApplicationError
from labeling import campaigns
from labeling.loop import services as loop
from labeling.media import extraction, movies
from labeling.models import Annotation, Assignment, Campaign, Clip, MediaStatus, Role
from labeling.results import agreement
from labeling.results.aggregation import clips_aggregate
from pipeline.emotions import EMOTION_NAMES
from pipeline.media import write_video
from pipeline.synthetic_movies import drawn_face_movie

DEMO_SLUG = "demo"
FPS = 12
SEGMENT_S = 3  # each emotion of a synthetic movie lasts this long
# Six clips per emotion: once voted (--votes), at least five of each get a single label, so the
# demo can be split into the usual 5 folds.
DEFAULT_CLIPS = 6 * len(EMOTION_NAMES)
# Emotions annotators confuse with each segment's (DFEW's confusion matrix, roughly).
CONFUSED_WITH = {
    "happy": ("neutral", "surprise"),
    "sad": ("neutral", "fear"),
    "neutral": ("sad", "happy"),
    "angry": ("disgust", "sad"),
    "surprise": ("fear", "happy"),
    "disgust": ("angry", "sad"),
    "fear": ("surprise", "sad"),
}


class Command(BaseCommand):
    help = (
        "Creates a demo campaign, annotator accounts annotator01…, a reviewer and an admin, "
        "and prints the logins. Its clips come through the real media pipeline: synthetic "
        "movies of a drawn face whose expression changes every few seconds are imported, "
        "probed, marked one segment per emotion, and extracted by the worker (or here with "
        "--extract-now). With --votes every clip is extracted here and gets its votes through the "
        "labelling loop's services (mostly the segment's emotion, some confusion between "
        "neighbours, a few careless annotators), then results, an agreement report and rewards. "
        "On a database that already has the demo it changes nothing, except that --votes fills "
        "the votes the demo's clips still lack."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--clips",
            type=int,
            default=DEFAULT_CLIPS,
            help=f"clips to make, one per emotion in turn (default {DEFAULT_CLIPS}: enough for "
            "a 5-fold split once voted)",
        )
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
        parser.add_argument(
            "--votes",
            action="store_true",
            help="fill every clip's votes (implies --extract-now; not with --screening), then "
            "aggregate them and run an agreement report, so the staff pages show data",
        )
        parser.add_argument(
            "--seed", type=int, default=2020, help="random seed of the faces and the votes"
        )

    def handle(
        self, *args, clips, annotators, password, screening, extract_now, votes, seed, **options
    ):
        if clips < 1 or annotators < 1:
            raise CommandError("--clips and --annotators must be at least 1")
        if votes and screening:
            raise CommandError("--votes labels the clips; it cannot leave them in screening.")
        names = [f"annotator{i:02d}" for i in range(1, annotators + 1)]
        existing = Campaign.objects.filter(slug=DEMO_SLUG).first()
        if existing is not None:
            if votes:
                self._extract_pending(existing)
                self._vote_and_report(existing, np.random.default_rng(seed))
            else:
                self.stdout.write("The demo is already seeded; nothing changed.")
            self._print_logins(names, password=None)
            return
        if votes:
            needed = Campaign._meta.get_field("annotations_per_clip").default
            if annotators < needed:
                raise CommandError(
                    f"--votes needs at least {needed} annotators (each clip gets {needed} votes "
                    f"from different people), not {annotators}."
                )
            extract_now = True

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
            extractor = campaigns.user_create(
                username="extractor", password=password, roles=[Role.EXTRACTOR]
            )
            # The team by role (the Team page and every access rule read memberships).
            for person, role in ((reviewer, Role.REVIEWER), (extractor, Role.EXTRACTOR)):
                campaigns.membership_add(campaign=campaign, user=person, role=role, added_by=admin)
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
                f"{len(users)} annotators, a reviewer ({reviewer.username}), an extractor "
                f"({extractor.username}) and an admin ({admin.username})."
            )
        )
        if votes:
            self._vote_and_report(campaign, np.random.default_rng(seed))
        self._print_logins(names, password=password)

    def _extract_pending(self, campaign: Campaign) -> None:
        """Extracts here the demo's clips the worker has not done yet (a demo seeded by
        `make run` before the worker ran); one the worker holds is left to it."""
        pending = Clip.objects.filter(campaign=campaign, media_status=MediaStatus.PENDING)
        for pk in pending.order_by("pk").values_list("pk", flat=True):
            extraction.clip_extract(pk)

    def _vote_and_report(self, campaign: Campaign, rng: np.random.Generator) -> None:
        """Fills the votes every open clip still lacks through the loop's own services
        (`lease_next`, `annotation_submit`: slots, tallies, rewards and completion as in the
        app), the annotators taking turns; then aggregates and runs an agreement report.
        Clips the face detector sent to screening are accepted by the reviewer first.

        Careful annotators vote the segment's emotion, now and then a neighbour
        (`CONFUSED_WITH`); the last sixth (two at most) are careless (any label, fast), so the
        report has someone to flag. Five of every six clips of an emotion stay clear (at least
        the campaign's single-label votes for it, whatever the careless said); the sixth is
        ambiguous. Re-running adds nothing: no one is offered a clip twice."""
        # The drawn faces are faces: the reviewer opens the clips the detector flagged.
        reviewer = get_user_model().objects.filter(username="reviewer").first()
        flagged = Clip.objects.filter(campaign=campaign, status=Clip.Status.SCREENING)
        if reviewer is not None:
            for pk in flagged.order_by("pk").values_list("pk", flat=True):
                loop.clip_screen(reviewer=reviewer, clip_id=pk, shows_face=True, shows_emotion=True)
        people = list(
            get_user_model()
            .objects.filter(memberships__campaign=campaign, memberships__role=Role.ANNOTATOR)
            .order_by("username")
        )
        # At most two careless people, so a clear clip's careful votes can always outvote them.
        careless = {p.pk for p in people[len(people) - max(1, min(2, len(people) // 6)) :]}
        target, needed = campaign.annotations_per_clip, campaign.single_label_min_votes
        clips = {
            c.pk: c
            for c in Clip.objects.filter(campaign=campaign).select_related("suspected_label")
        }
        order = {pk: i for i, pk in enumerate(sorted(clips))}
        right = dict.fromkeys(clips, 0)
        given = dict.fromkeys(clips, 0)
        for clip_id, label in (
            Annotation.objects.valid()
            .filter(clip__campaign=campaign)
            .values_list("clip_id", "label__name")
        ):
            given[clip_id] += 1
            right[clip_id] += label == clips[clip_id].suspected_label.name
        names = list(campaign.labels.order_by("code").values_list("name", flat=True))
        added = 0
        waiting = list(people)
        while waiting:
            for user in list(waiting):
                lease = loop.lease_next(user=user, campaign_id=campaign.pk)
                if lease is None:
                    waiting.remove(user)
                    continue
                clip = clips[lease.assignment.clip_id]
                truth = clip.suspected_label.name
                clear = order[clip.pk] // len(EMOTION_NAMES) % 6 != 5
                left = target - given[clip.pk] - 1  # votes still to come after this one
                if user.pk in careless:
                    label = str(rng.choice(names))
                    seconds = float(rng.uniform(0.6, 1.2))
                else:
                    confused = rng.random() < (0.12 if clear else 0.45)
                    if clear and right[clip.pk] + left - len(careless) < needed:
                        confused = False  # keeps the clear clip single-labelled
                    label = str(rng.choice(CONFUSED_WITH[truth])) if confused else truth
                    seconds = float(rng.uniform(1.8, 6.0))
                # Watched for `seconds` (the page would report when it showed the clip).
                Assignment.objects.filter(pk=lease.assignment.pk).update(
                    shown_at=timezone.now() - timedelta(seconds=seconds)
                )
                loop.annotation_submit(
                    user=user, assignment_id=lease.assignment.pk, label_name=label
                )
                given[clip.pk] += 1
                right[clip.pk] += label == truth
                added += 1
        results = clips_aggregate(clips)
        report = agreement.agreement_report_request(campaign=campaign)
        agreement.agreement_report_run(report.pk)
        self.stdout.write(
            self.style.SUCCESS(
                f"Voted: {added} labels added, {results} clip results, agreement report "
                f"{report.pk}."
            )
        )

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
        self.stdout.write(f"  extractor / {shown}   (marking clips in movies)")
        self.stdout.write(f"  {names[0]}…{names[-1]} / {shown}   (labelling)")
