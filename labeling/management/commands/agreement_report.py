"""python manage.py agreement_report <campaign-slug> [--json]"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from labeling.models import AgreementReport, Campaign
from labeling.results import agreement


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


class Command(BaseCommand):
    help = (
        "Computes a campaign's agreement report in this process (Fleiss' kappa with its "
        "bootstrap interval, kappa per label, Krippendorff's alpha, Table 2, annotators), "
        "stores it in the report history and prints it (--json: the full report as JSON)."
    )

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign slug")
        parser.add_argument("--json", action="store_true", help="print the report as JSON")

    def handle(self, *args, campaign, json: bool, **options):
        target = Campaign.objects.filter(slug=campaign).first()
        if target is None:
            raise CommandError(f"no campaign {campaign!r}")
        report = AgreementReport.objects.create(campaign=target)
        bar = tqdm(
            total=100, desc="agreement report", unit="%", disable=None, file=self.stderr._out
        )

        def progress(fraction: float, stage: str) -> None:
            bar.set_description(stage[:40])
            bar.update(round(fraction * 100) - bar.n)

        try:
            agreement.agreement_report_run(report.pk, progress=progress)
        finally:
            bar.close()
        report.refresh_from_db()
        if json:
            self.stdout.write(_dumps(report.result))
        else:
            self._print(report.result)
        self.stdout.write(f"report {report.pk}")

    def _print(self, r: dict) -> None:
        out = self.stdout.write
        out(f"{r['campaign']['name']}: {r['n_clips']} complete clips, {r['n_annotations']} labels")
        if r["fleiss_kappa"] is None:
            out(f"Fleiss' kappa: undefined ({r['fleiss_kappa_reason']})")
        else:
            low, high = r["fleiss_kappa_ci"] or (None, None)
            out(
                f"Fleiss' kappa: {_fmt(r['fleiss_kappa'])} (95% CI {_fmt(low)}–{_fmt(high)}), "
                f"{r['landis_koch']} agreement"
            )
        out(
            f"observed agreement {_fmt(r['observed_agreement'])}, chance "
            f"{_fmt(r['chance_agreement'])}, Krippendorff's alpha {_fmt(r['krippendorff_alpha'])}"
        )
        out(
            "kappa per label: "
            + ", ".join(f"{name} {_fmt(r['kappa_per_label'][name])}" for name in r["labels"])
        )
        out(
            f"single-labelled: {r['n_single_labelled']} of {r['n_clips']} "
            f"(at least {r['single_label_min_votes']} votes)"
        )
        out("")
        out(f"{'Table 2':<12}{'0-2s':>8}{'2-5s':>8}{'5s+':>8}{'Total':>8}{'Percent':>9}")
        # In code order: a stored report's objects come back from PostgreSQL's jsonb unordered.
        for name in [*r["labels"], "total"]:
            row = r["table2"][name]
            percent = "—" if row["percent"] is None else f"{row['percent']:.2f}"
            out(
                f"{name:<12}{row['0-2s']:>8}{row['2-5s']:>8}{row['5s+']:>8}{row['total']:>8}"
                f"{percent:>9}"
            )
        flagged = [a["annotator"] for a in r["annotators"] if a["flagged"]]
        out("")
        out(f"{len(r['annotators'])} annotators; flagged: {', '.join(flagged) or 'none'}")


def _dumps(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)
