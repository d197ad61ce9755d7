"""python manage.py payout <campaign-slug> --csv FILE [--dry-run]"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation_site.errors import ApplicationError
from labeling.models import Campaign
from labeling.rewards import earnings, payouts


class Command(BaseCommand):
    help = (
        "Pays a campaign's unpaid, unheld rewards as the staff page's 'create payout' does (one "
        "transaction; run twice, the second pays nothing) and writes the payout's CSV for "
        "finance: one row per person. --dry-run lists what would be paid and changes nothing. "
        "The last line is `payout <id> <total> <currency>`."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--csv", type=Path, help="where to write the payout's CSV")
        parser.add_argument("--dry-run", action="store_true", help="show, pay nothing")

    def handle(self, *args, campaign, csv, dry_run, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"no campaign {campaign!r}")
        if dry_run:
            for person in earnings.totals_by_person(target.pk):
                held = f" (held {person.held}: {person.hold_reason})" if person.on_hold else ""
                self.stdout.write(f"{person.username}: pending {person.pending}{held}")
            return
        if csv is None:
            raise CommandError("say where the CSV goes: --csv FILE (or --dry-run)")
        if csv.exists():
            raise CommandError(f"{csv} exists; nothing was paid (choose a new file)")
        try:
            csv.parent.mkdir(parents=True, exist_ok=True)
            csv.touch()  # fails now, before anything is paid, if the folder is not writable
        except OSError as exc:
            raise CommandError(f"cannot write {csv}: {exc}; nothing was paid") from exc
        try:
            payout = payouts.payout_create(staff=None, campaign_id=target.pk)
        except ApplicationError as exc:
            csv.unlink(missing_ok=True)
            raise CommandError(exc.message) from exc
        csv.write_text(payouts.payout_csv(payout), encoding="utf-8")
        self.stdout.write(f"{payout.people} people, {payout.entries} entries; CSV: {csv}")
        self.stdout.write(f"payout {payout.pk} {payout.total} {payout.currency}")
