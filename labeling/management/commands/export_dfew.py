"""python manage.py export_dfew <campaign-slug> <outdir> [--split <id>] [--no-compact]
[--size N]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation_site.errors import ApplicationError
from labeling.management.commands.split_folds import print_fold_counts
from labeling.models import Campaign
from labeling.release.dfew_export import dfew_export_write
from labeling.release.splits import split_create, split_for


class Command(BaseCommand):
    help = (
        "Writes a campaign in DFEW's release layout (label/single_{train,test}set_<k>.csv, "
        "label/votes.csv, data/<clip>/<clip>_<frame>.jpg) plus the compact training format, "
        "from a stored split (a new 5-fold split when --split is not given)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("outdir", type=Path)
        parser.add_argument("--split", type=int, help="id of a stored split")
        parser.add_argument("--no-compact", action="store_true", help="skip compact/")
        parser.add_argument(
            "--size",
            type=int,
            default=112,
            help="compact frame side (112): what the networks take under the DFEW protocol is "
            "112 (r3d_18, mc3_18, c3d, resnet18_lstm), 160 (p3d) or 224 (i3d); train_benchmark "
            "refuses frames smaller than its network's input, so export at the largest you train",
        )

    def handle(self, *args, campaign, outdir, split, no_compact, size, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"no campaign {campaign!r}")
        try:
            chosen = split_for(target, split)
            if chosen is None:
                made = split_create(campaign=target)
                chosen = made.split
                for warning in made.warnings:
                    self.stderr.write(f"warning: {warning}")
                self.stdout.write(f"made split {chosen.pk}:")
                print_fold_counts(self.stdout, chosen)
            bar = tqdm(total=100, desc="exporting", unit="%", disable=None, file=self.stderr._out)

            def progress(fraction: float, stage: str) -> None:
                bar.set_description(stage[:40])
                bar.update(round(fraction * 100) - bar.n)

            try:
                summary = dfew_export_write(
                    campaign=target,
                    split=chosen,
                    out=outdir,
                    compact=not no_compact,
                    compact_size=size,
                    progress=progress,
                )
            finally:
                bar.close()
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"wrote {outdir}: {summary['clips']} clips ({summary['single_labelled_in_split']} "
            f"single-labelled in split {chosen.pk}), {summary['frames']} frames of "
            f"{summary['clips_with_frames']} clips ({summary['clips_with_face_crops']} as face "
            f"crops); {summary['clips_without_media']} clips without media got label rows and "
            f"no frames; compact: {summary['compact_clips']} "
            "clips"
        )
