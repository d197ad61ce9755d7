"""The composed agreement report and its plots, on arrays (no database)."""

import json

import numpy as np
import pytest

from pipeline import agreement
from pipeline.plots import report_plots
from pipeline.report import Votes, agreement_report

NAMES = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]


def votes_from_counts(counts, durations=None, raters_per_clip=None) -> Votes:
    """Long-form votes of an N×K count table; rater r of each clip is annotator r (mod R)."""
    counts = np.asarray(counts)
    item, label = [], []
    for i, row in enumerate(counts):
        for k, n in enumerate(row):
            item += [i] * int(n)
            label += [k] * int(n)
    m = int(counts[0].sum()) if len(counts) else 0
    raters = raters_per_clip or m
    rater = [j % raters for i in range(len(counts)) for j in range(m)]
    n = len(counts)
    return Votes(
        item=np.array(item, dtype=np.int64),
        rater=np.array(rater, dtype=np.int64),
        label=np.array(label, dtype=np.int64),
        seconds=np.full(len(item), 4.0),
        clip_ids=np.arange(100, 100 + n),
        clip_numbers=np.arange(1, n + 1),
        durations=np.asarray(durations if durations is not None else [1.0] * n, dtype=float),
        rater_names=[f"r{j}" for j in range(raters)],
        label_names=NAMES[: counts.shape[1]] if counts.ndim == 2 else NAMES,
    )


class AgreementReportTests:
    def test_its_figures_are_the_agreement_modules_and_json_ready(self):
        # Wikipedia "Fleiss' kappa" worked example (10 subjects, 14 raters, 5 categories).
        table = np.array(
            [
                [0, 0, 0, 0, 14],
                [0, 2, 6, 4, 2],
                [0, 0, 3, 5, 6],
                [0, 3, 9, 2, 0],
                [2, 2, 8, 1, 1],
                [7, 7, 0, 0, 0],
                [3, 2, 6, 3, 0],
                [2, 5, 3, 2, 2],
                [6, 5, 2, 1, 0],
                [0, 2, 2, 3, 7],
            ]
        )
        report = agreement_report(votes_from_counts(table), min_votes=8)
        assert report["fleiss_kappa"] == pytest.approx(0.210, abs=5e-4)
        assert report["observed_agreement"] == pytest.approx(0.378, abs=5e-4)
        assert report["chance_agreement"] == pytest.approx(0.213, abs=5e-4)
        assert report["landis_koch"] == "fair"
        low, high = report["fleiss_kappa_ci"]
        assert low <= report["fleiss_kappa"] <= high
        assert report["n_clips"] == 10 and report["n_annotations"] == 140
        # 8 of 14 votes or more: clips 1 (14 surprise), 4 (9 neutral) and 5 (8 neutral).
        assert report["n_single_labelled"] == 3
        assert report["single_per_label"]["surprise"] == 1
        assert report["single_per_label"]["neutral"] == 2
        assert report["table2"]["total"]["0-2s"] == 3
        # The lowest-agreement clip first: clip 8 (votes 2 5 3 2 2) has the smallest share.
        assert report["lowest_agreement_clips"][0]["clip"] == 8
        expected = agreement.fleiss(table).per_category
        assert list(report["kappa_per_label"].values()) == [round(v, 4) for v in expected]
        assert len(report["annotators"]) == 14
        json.dumps(report)  # stored as JSON: no numpy scalars, no NaN

    def test_one_label_everywhere_is_null_with_a_reason_not_a_crash(self):
        counts = np.zeros((5, 7), dtype=int)
        counts[:, 0] = 10
        report = agreement_report(votes_from_counts(counts), min_votes=7)
        assert report["fleiss_kappa"] is None and report["fleiss_kappa_ci"] is None
        assert "one label" in report["fleiss_kappa_reason"]
        assert report["landis_koch"] is None and report["krippendorff_alpha"] is None
        assert report["n_single_labelled"] == 5
        assert set(report_plots(report)) == {"kappa_per_label", "share_histogram", "annotators"}

    def test_a_campaign_without_complete_clips_reports_nothing_undefined_as_null(self):
        report = agreement_report(votes_from_counts(np.zeros((0, 7), dtype=int)), min_votes=7)
        assert report["n_clips"] == 0 and report["fleiss_kappa"] is None
        assert report["fleiss_kappa_reason"]
        assert report["annotators"] == [] and report["table2"]["total"]["total"] == 0
        json.dumps(report)
        plots = report_plots(report)
        assert all(svg.startswith("<svg") for svg in plots.values())

    def test_progress_is_reported_in_order_up_to_the_end(self):
        seen = []
        counts = np.array([[7, 3, 0, 0, 0, 0, 0], [0, 10, 0, 0, 0, 0, 0], [2, 2, 6, 0, 0, 0, 0]])
        agreement_report(
            votes_from_counts(counts), 7, progress=lambda f, stage: seen.append((f, stage))
        )
        fractions = [f for f, _ in seen]
        assert fractions == sorted(fractions) and fractions[-1] >= 0.9
        assert all(stage for _, stage in seen)
