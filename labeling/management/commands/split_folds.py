"""python manage.py split_folds <campaign-slug> [--k 5] [--seed S] [--group-by-movie]"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from annotation_site.errors import ApplicationError
from labeling.models import Campaign
from labeling.release.splits import split_create


def print_fold_counts(out, split) -> None:
    """The per-fold class counts of a split, one row per fold."""
    names = list(next(iter(split.fold_counts.values())).keys())
    width = max(8, *(len(n) + 1 for n in names))
    out.write("fold" + "".join(f"{n:>{width}}" for n in names) + f"{'total':>{width}}")
    for fold, counts in split.fold_counts.items():
        row = "".join(f"{counts[n]:>{width}}" for n in names)
        out.write(f"{fold:<4}{row}{sum(counts.values()):>{width}}")


class Command(BaseCommand):
    help = (
        "Makes and stores a k-fold split of a campaign's single-labelled clips, stratified by "
        "label (scikit-learn); --group-by-movie keeps each movie's clips in one fold. Existing "
        "splits are never changed. The last line is `split <id>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--k", type=int, default=5, help="folds (default 5, as DFEW)")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--group-by-movie", action="store_true")

    def handle(self, *args, campaign, k, seed, group_by_movie, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"no campaign {campaign!r}")
        try:
            made = split_create(campaign=target, k=k, seed=seed, group_by_movie=group_by_movie)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for warning in made.warnings:
            self.stderr.write(f"warning: {warning}")
        print_fold_counts(self.stdout, made.split)
        self.stdout.write(f"split {made.split.pk}")
