"""python manage.py import_annotations FILE.csv --campaign SLUG [--create --name NAME
--labels dfew|name,name,… --per-clip N [--single-label-votes K]]"""

from __future__ import annotations

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from annotation_site.errors import ApplicationError
from labeling import campaigns
from labeling.models import Campaign
from labeling.results import aggregation
from labeling.results.imports import annotations_import, csv_rows
from pipeline.emotions import DFEW_EMOTIONS, DFEW_RARE


def _label_set(text: str) -> tuple[list[tuple[int, str]], tuple[str, ...]]:
    if text.strip().lower() == "dfew":
        return list(DFEW_EMOTIONS), DFEW_RARE
    names = [name.strip().lower() for name in text.split(",") if name.strip()]
    if len(names) < 2 or len(set(names)) != len(names):
        raise CommandError("--labels needs two or more distinct names, e.g. --labels a,b,c")
    return list(enumerate(names, start=1)), ()


class Command(BaseCommand):
    help = (
        "Imports votes made elsewhere (CSV with header: clip,annotator,label[,movie,duration_s]; "
        "label as a name or a code) as clips without media. All or nothing: a bad row stops "
        "the import with its line number. Re-importing the same file changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--campaign", required=True, help="campaign slug")
        parser.add_argument("--create", action="store_true", help="create the campaign first")
        parser.add_argument("--name", help="campaign name (with --create)")
        parser.add_argument(
            "--labels", default="dfew", help="dfew, or comma-separated names (with --create)"
        )
        parser.add_argument("--per-clip", type=int, default=10, help="annotators per clip")
        parser.add_argument(
            "--single-label-votes",
            type=int,
            help="votes one label needs to be the single label (default: more than 70%%)",
        )

    def handle(self, *args, file, campaign, create, name, labels, per_clip, **options):
        try:
            summary, target = self._import(file, campaign, create, name, labels, per_clip, options)
        except ApplicationError as exc:
            # Every bad input (the file, a row) names the file and the line; nothing was written.
            raise CommandError(f"{file}: {exc.message}") from None
        bar = tqdm(
            total=len(summary.complete_clip_ids), desc="aggregating", unit=" clips", disable=None
        )
        aggregation.clips_aggregate(
            summary.complete_clip_ids, progress=lambda done, total: bar.update(done - bar.n)
        )
        bar.close()
        self.stdout.write(
            f"{summary.rows} rows: {summary.imported} labels imported, "
            f"{summary.skipped_existing} already present; {summary.clips_created} clips, "
            f"{summary.accounts_created} accounts and {summary.movies_created} movies created; "
            f"{len(summary.complete_clip_ids)} clips complete and aggregated, "
            f"{summary.incomplete_clips} with fewer than {target.annotations_per_clip} labels."
        )

    def _import(self, file, campaign, create, name, labels, per_clip, options):
        with csv_rows(file) as (header, rows), transaction.atomic():
            # One transaction: a bad row leaves nothing behind, a campaign made by --create too.
            target = self._campaign(campaign, create, name, labels, per_clip, options)
            rows = tqdm(rows, desc="reading", unit=" rows", disable=None)
            try:
                summary = annotations_import(
                    campaign=target,
                    header=header,
                    rows=rows,
                    progress=lambda stage: rows.set_description(stage),
                )
            finally:
                rows.close()
        return summary, target

    def _campaign(self, slug, create, name, labels, per_clip, options) -> Campaign:
        if not create:
            campaign = Campaign.objects.filter(slug=slug).first()
            if campaign is None:
                raise CommandError(f"no campaign {slug!r} (use --create to make one)")
            return campaign
        if Campaign.objects.filter(slug=slug).exists():
            raise CommandError(f"campaign {slug!r} already exists; drop --create")
        label_set, rare = _label_set(labels)
        votes = options["single_label_votes"] or (per_clip * 7 + 9) // 10  # DFEW: 7 of 10
        try:
            return campaigns.campaign_create(
                name=name or slug,
                slug=slug,
                labels=label_set,
                rare=rare,
                annotations_per_clip=per_clip,
                single_label_min_votes=votes,
            )
        except (ValidationError, ApplicationError) as exc:
            raise CommandError(f"cannot create campaign {slug!r}: {exc}") from exc
