"""python manage.py suggest_segments --run <run> --campaign <slug> [--movies 3,4] [--window-s 2]
[--stride-s 0.5] [--top N] [--api URL --token T]

Scores the campaign's movies with a trained benchmark network and posts each movie's best
rare-emotion segments as suggestions, over the REST API only (``ml/suggest_api.py``; the
scoring is ``ml/suggest.py``). ``--run`` is a benchmark run's id (``manage.py
train_benchmark`` records it; its folder holds the checkpoints) or a run folder itself.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ml.suggest import SuggestError, load_network
from ml.suggest_api import LabelingApi, SuggestOptions, suggest_campaign


def _ids(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise CommandError(f"--movies {text}: movie ids separated by commas") from None


def run_folder(value: str) -> tuple[Path, str]:
    """(the run's folder, the run id posted with its suggestions) for ``--run``: a benchmark
    run's id (its ``out_dir``), or a run folder (named by itself)."""
    if value.isdigit():
        from django.db import DatabaseError

        from ml.models import BenchmarkRun

        try:
            run = BenchmarkRun.objects.filter(pk=int(value)).first()
        except DatabaseError as exc:
            raise CommandError(f"--run {value}: no run records to read ({exc})") from None
        if run is None:
            raise CommandError(
                f"unknown run {value}: no benchmark run has this id (the runs page, "
                "/staff/benchmarks/, lists them); or give the run's folder"
            )
        return Path(run.out_dir), value
    folder = Path(value)
    if not folder.is_dir():
        raise CommandError(f"unknown run {value}: neither a benchmark run id nor a run folder")
    return folder, folder.resolve().name


class Command(BaseCommand):
    help = (
        "Scores a campaign's movies with a trained benchmark network and posts the segments "
        "most likely to show a rare emotion as suggestions for its extractors."
    )

    def add_arguments(self, parser):
        parser.add_argument("--run", required=True, help="benchmark run id, or a run folder")
        parser.add_argument("--campaign", required=True, help="the campaign's slug")
        parser.add_argument("--movies", type=_ids, help="only these movie ids (e.g. 3,4)")
        parser.add_argument("--window-s", type=float, default=2.0, help="window length (s)")
        parser.add_argument("--stride-s", type=float, default=0.5, help="window step (s)")
        parser.add_argument("--top", type=int, default=10, help="segments posted per movie")
        parser.add_argument(
            "--min-score", type=float, default=0.5, help="rare-class score a window needs"
        )
        parser.add_argument("--fold", type=int, help="the fold whose checkpoint scores")
        parser.add_argument("--device", help="cpu, cuda, … (default: the GPU when present)")
        parser.add_argument("--batch-size", type=int, default=32, help="windows per batch")
        parser.add_argument(
            "--detector", default="yuface", help="face detector (pipeline/faces.py DETECTORS)"
        )
        parser.add_argument(
            "--api",
            default=os.environ.get("DFER_API_URL", "http://127.0.0.1:8000"),
            help="the site's address (default $DFER_API_URL or http://127.0.0.1:8000)",
        )
        parser.add_argument(
            "--token",
            default=os.environ.get("DFER_API_TOKEN", ""),
            help="an API token of staff or an extractor of the campaign ($DFER_API_TOKEN)",
        )
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        from pipeline.faces import make_detector

        if options["top"] < 1:
            raise CommandError("--top must be at least 1")
        folder, run = run_folder(str(options["run"]))
        try:
            api = LabelingApi(options["api"], options["token"])
            network = load_network(folder, fold=options["fold"], device=options["device"])
            self.stdout.write(
                f"Run {run}: {network.config.model} from {network.checkpoint}, on "
                f"{network.device}; labels {', '.join(network.labels)}."
            )
            outcomes = suggest_campaign(
                api,
                network,
                run=run,
                slug=options["campaign"],
                movie_ids=options["movies"],
                options=SuggestOptions(
                    window_s=options["window_s"],
                    stride_s=options["stride_s"],
                    top=options["top"],
                    min_score=options["min_score"],
                    batch_size=options["batch_size"],
                    progress=not options["no_progress"],
                    detector=make_detector(options["detector"]),
                ),
                log=self.stdout.write,
            )
        except (SuggestError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        posted = sum(o.posted for o in outcomes)
        scored = [o for o in outcomes if not o.skipped]
        self.stdout.write(
            self.style.SUCCESS(
                f"{len(scored)} movies scored, {len(outcomes) - len(scored)} skipped; "
                f"{posted} new suggestions from run {run}."
            )
        )
