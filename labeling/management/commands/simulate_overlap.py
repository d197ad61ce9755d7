"""python manage.py simulate_overlap SLUG --min K [--confidence C] [--orders R] [--seed S] --json"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from labeling.models import Campaign
from labeling.results.overlap import campaign_overlap_simulation


class Command(BaseCommand):
    help = (
        "Replays each complete clip's votes in submission order (and R random orders, seeded) "
        "with the adaptive-overlap rule, and prints how many labels it would have saved and how "
        "many clips keep the single label all their votes give them. Changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--min", type=int, required=True, dest="min_votes",
                            help="votes a clip has before it may stop (K)")  # fmt: skip
        parser.add_argument("--confidence", type=float, default=None,
                            help="also stop at this outcome probability (C)")  # fmt: skip
        parser.add_argument("--orders", type=int, default=0, help="random orders")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--json", action="store_true", help="print JSON")

    def handle(self, *args, campaign, min_votes, confidence, orders, seed, json: bool, **opts):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"no campaign {campaign!r}")
        if not 1 <= min_votes <= target.annotations_per_clip:
            raise CommandError(f"--min must lie in 1..{target.annotations_per_clip}")
        if confidence is not None and not 0.5 <= confidence <= 1:
            raise CommandError("--confidence must lie in 0.5..1")
        if orders < 0:
            raise CommandError("--orders cannot be negative")
        result = campaign_overlap_simulation(
            target, min_votes=min_votes, confidence=confidence, orders=orders, seed=seed
        )
        if json:
            self.stdout.write(_dumps(result))
            return
        self.stdout.write(
            f"{result['n_clips']} clips: {result['labels_used']} of {result['labels_full']} "
            f"labels ({100 * result['saved_fraction']:.1f} % saved), "
            f"{100 * (result['single_label_agreement'] or 0):.2f} % keep their single label, "
            f"{result['decided_early']} decided early"
        )


def _dumps(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
