import math

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score

from pipeline.agreement import (
    bootstrap_kappa_ci,
    check_counts,
    dawid_skene,
    fleiss,
    krippendorff_alpha,
    landis_koch,
    leave_one_out_majority,
    rater_stats,
    share_histogram,
    vote_counts,
)

# Fleiss, J. L. (1971). Measuring nominal scale agreement among many raters. Psychological
# Bulletin 76(5), 378-382, Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses (depression,
# personality disorder, schizophrenia, neurosis, other). Counted from R irr's `diagnoses` data
# (the same table in raw rater form, as copied into statsmodels' test_inter_rater.py).
FLEISS_1971 = [
    [0, 0, 0, 6, 0], [0, 3, 0, 0, 3], [0, 1, 4, 0, 1], [0, 0, 0, 0, 6], [0, 3, 0, 3, 0],
    [2, 0, 4, 0, 0], [0, 0, 4, 0, 2], [2, 0, 3, 1, 0], [2, 0, 0, 4, 0], [0, 0, 0, 0, 6],
    [1, 0, 0, 5, 0], [1, 1, 0, 4, 0], [0, 3, 3, 0, 0], [1, 0, 0, 5, 0], [0, 2, 0, 3, 1],
    [0, 0, 5, 0, 1], [3, 0, 0, 1, 2], [5, 1, 0, 0, 0], [0, 2, 0, 4, 0], [1, 0, 2, 0, 3],
    [0, 0, 0, 0, 6], [0, 1, 0, 5, 0], [0, 2, 0, 1, 3], [2, 0, 0, 4, 0], [1, 0, 0, 4, 1],
    [0, 5, 0, 1, 0], [4, 0, 0, 0, 2], [0, 2, 0, 4, 0], [1, 0, 5, 0, 0], [0, 0, 0, 0, 6],
]  # fmt: skip

# Wikipedia, "Fleiss' kappa", worked example: 10 subjects, 14 raters, 5 categories.
WIKIPEDIA = [
    [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
    [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
]  # fmt: skip


def simulate(rng, accuracy, n_items, per_item, prior):
    """Long-form labels: each item labelled by `per_item` distinct random raters, rater r
    right with probability accuracy[r], otherwise uniformly one of the other labels."""
    n_labels = len(prior)
    truth = rng.choice(n_labels, n_items, p=prior)
    order = np.argsort(rng.random((n_items, len(accuracy))), axis=1)
    rater = order[:, :per_item].ravel()
    item = np.repeat(np.arange(n_items), per_item)
    wrong = (truth[item] + rng.integers(1, n_labels, len(item))) % n_labels
    label = np.where(rng.random(len(item)) < accuracy[rater], truth[item], wrong)
    return truth, item, rater, label


class VoteCountsTests:
    def test_it_counts_labels_per_item(self):
        counts = vote_counts([0, 0, 1, 1, 1, 2], [2, 2, 0, 1, 1, 0], n_items=4, n_labels=3)
        assert counts.dtype == np.int64
        assert counts.tolist() == [[0, 0, 2], [1, 2, 0], [1, 0, 0], [0, 0, 0]]

    def test_it_rejects_a_label_out_of_range(self):
        # Out of range, label 3 of item 0 would silently count as label 0 of item 1.
        with pytest.raises(ValueError, match="label must lie in 0..2"):
            vote_counts([0], [3], n_items=2, n_labels=3)


class CheckCountsTests:
    def test_it_returns_the_table_as_int64(self):
        checked = check_counts(np.array(WIKIPEDIA, dtype=float))
        assert checked.dtype == np.int64 and checked.tolist() == WIKIPEDIA

    def test_it_rejects_unequal_raters_per_clip(self):
        with pytest.raises(ValueError, match=r"unequal numbers of raters per clip: \[5, 6\]"):
            check_counts([[3, 3], [2, 3]])

    def test_it_rejects_a_single_rater_negative_counts_and_fractions(self):
        with pytest.raises(ValueError, match="at least 2 raters"):
            check_counts([[1, 0], [0, 1]])
        with pytest.raises(ValueError, match="non-negative"):
            check_counts([[3, -1], [1, 1]])
        with pytest.raises(ValueError, match="whole numbers"):
            check_counts([[1.5, 0.5]])
        with pytest.raises(ValueError, match="2-D"):
            check_counts([2, 2])


class FleissTests:
    def test_it_reproduces_fleiss_1971_table_1(self):
        assert all(sum(row) == 6 for row in FLEISS_1971)
        result = fleiss(FLEISS_1971)
        # Fleiss (1971): kappa = .430; R irr's kappam.fleiss(diagnoses) gives 0.4302445.
        assert round(result.kappa, 3) == 0.430
        assert result.kappa == pytest.approx(0.4302445, abs=1e-7)
        # Fleiss (1971), per-category kappas of Table 1.
        assert [round(k, 3) for k in result.per_category] == [0.245, 0.245, 0.520, 0.471, 0.566]
        assert result.reason is None

    def test_it_reproduces_the_wikipedia_worked_example(self):
        # Wikipedia, "Fleiss' kappa", worked example: P-bar 0.378, P-bar-e 0.213, kappa 0.210.
        result = fleiss(WIKIPEDIA)
        assert round(result.observed, 3) == 0.378
        assert round(result.chance, 3) == 0.213
        assert round(result.kappa, 3) == 0.210

    def test_it_gives_1_for_perfect_agreement_over_several_labels(self):
        # Fleiss (1971): kappa = 1 when every clip's raters all agree (P-bar = 1).
        result = fleiss([[4, 0, 0], [0, 4, 0], [0, 0, 4], [4, 0, 0]])
        assert result.kappa == pytest.approx(1.0)
        assert result.per_category == pytest.approx([1.0, 1.0, 1.0])
        assert landis_koch(result.kappa) == "almost perfect"

    def test_it_is_undefined_when_every_vote_is_for_one_label(self):
        # Chance agreement is 1, so Fleiss' kappa is 0/0.
        result = fleiss([[5, 0, 0], [5, 0, 0]])
        assert result.kappa is None
        assert result.reason == "every vote is for one label (chance agreement is 1)"
        assert result.observed == 1.0 and result.chance == 1.0
        assert result.per_category == [None, None, None]
        assert landis_koch(result.kappa) is None

    def test_it_is_undefined_without_clips(self):
        result = fleiss(np.zeros((0, 7), dtype=np.int64))
        assert result.kappa is None and result.observed is None and result.chance is None
        assert result.reason == "no complete clip"
        assert result.per_category == [None] * 7

    def test_it_leaves_a_category_nobody_used_undefined(self):
        # The Wikipedia table with an extra, never-chosen category: same kappa, p_j = 0 -> None.
        table = [row + [0] for row in WIKIPEDIA]
        result = fleiss(table)
        assert round(result.kappa, 3) == 0.210
        assert result.per_category[-1] is None

    def test_it_rejects_unequal_raters_per_clip(self):
        with pytest.raises(ValueError, match="unequal numbers of raters per clip"):
            fleiss([[6, 0], [3, 2]])


class BootstrapKappaCiTests:
    def test_it_contains_the_point_estimate(self):
        # Wikipedia, "Fleiss' kappa", worked example: kappa 0.210.
        low, high = bootstrap_kappa_ci(WIKIPEDIA, n_resamples=2000, seed=1)
        assert low < 0.210 < high

    def test_it_is_reproducible_with_a_seed_and_varies_with_another(self):
        first = bootstrap_kappa_ci(FLEISS_1971, n_resamples=500, seed=3)
        assert bootstrap_kappa_ci(FLEISS_1971, n_resamples=500, seed=3) == first
        assert bootstrap_kappa_ci(FLEISS_1971, n_resamples=500, seed=4) != first

    def test_it_narrows_with_more_items(self):
        # Same rater population, 20 times the clips: the interval should shrink ~sqrt(20) times.
        rng = np.random.default_rng(0)
        prior = [0.4, 0.3, 0.2, 0.1]
        widths = []
        for n_items in (100, 2000):
            _, item, _, label = simulate(rng, np.full(12, 0.7), n_items, 6, prior)
            low, high = bootstrap_kappa_ci(vote_counts(item, label, n_items, 4), 500, seed=0)
            widths.append(high - low)
        assert widths[1] < widths[0] / 2

    def test_it_drops_resamples_where_kappa_is_undefined(self):
        # Half the resamples of these two clips draw one clip twice: all votes in one label.
        # The rest have perfect agreement, so the interval is exactly (1, 1), not NaN.
        assert bootstrap_kappa_ci([[3, 0], [0, 3]], n_resamples=200) == (1.0, 1.0)

    def test_it_is_none_when_kappa_is_undefined(self):
        assert bootstrap_kappa_ci([[5, 0], [5, 0]]) is None
        assert bootstrap_kappa_ci(np.zeros((0, 3))) is None


class LandisKochTests:
    def test_it_uses_the_landis_koch_1977_bands(self):
        # Landis & Koch (1977), Biometrics 33(1), Table: <0 poor, 0-.20 slight, .21-.40 fair,
        # .41-.60 moderate, .61-.80 substantial, .81-1.00 almost perfect.
        cases = {
            -0.01: "poor", 0.0: "slight", 0.2: "slight", 0.2001: "fair", 0.4: "fair",
            0.41: "moderate", 0.6: "moderate", 0.61: "substantial", 0.8: "substantial",
            0.8001: "almost perfect", 1.0: "almost perfect",
        }  # fmt: skip
        assert {k: landis_koch(k) for k in cases} == cases

    def test_it_rates_the_fleiss_1971_example_moderate(self):
        # Fleiss (1971) Table 1 kappa .430 lies in Landis & Koch's .41-.60 band.
        assert landis_koch(fleiss(FLEISS_1971).kappa) == "moderate"

    def test_it_has_no_band_for_an_undefined_kappa(self):
        assert landis_koch(None) is None
        assert landis_koch(math.nan) is None


class KrippendorffAlphaTests:
    def test_it_reproduces_krippendorffs_nominal_example_with_missing_values(self):
        # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4
        # observers, 12 units, values 1-5, missing data; nominal alpha = 0.743. These are the
        # example's values-by-units counts (unit 12 has one value, so it is not pairable).
        counts = [
            [3, 0, 0, 0, 0], [0, 3, 1, 0, 0], [0, 0, 4, 0, 0], [0, 0, 4, 0, 0],
            [0, 4, 0, 0, 0], [1, 1, 1, 1, 0], [0, 0, 0, 4, 0], [3, 1, 0, 0, 0],
            [0, 4, 0, 0, 0], [0, 0, 0, 0, 3], [2, 0, 0, 0, 0], [0, 0, 1, 0, 0],
        ]  # fmt: skip
        assert round(krippendorff_alpha(counts), 3) == 0.743

    def test_it_is_none_when_undefined(self):
        assert krippendorff_alpha(np.zeros((0, 4))) is None
        assert krippendorff_alpha([[1, 0, 0], [0, 1, 0]]) is None  # no unit with 2 values
        assert krippendorff_alpha([[3, 0], [2, 0]]) is None  # a single value used


class LeaveOneOutMajorityTests:
    def test_it_gives_the_other_raters_top_label(self):
        # Clip 0: labels 0, 0, 1 -> the first two see {0: 1, 1: 1} (tie), the third sees 0 twice.
        # Clip 1: labels 2, 2, 2, 1 -> the 2s see 2 twice (beats 1 once), the 1 sees 2 three times.
        # Clip 2: one rater -> nobody else.
        item = [0, 0, 0, 1, 1, 1, 1, 2]
        label = [0, 0, 1, 2, 2, 2, 1, 1]
        result = leave_one_out_majority(item, label, n_items=3, n_labels=3)
        assert result.tolist() == [-1, -1, 0, 2, 2, 2, 2, -1]


class DawidSkeneTests:
    def test_it_recovers_rater_accuracies_and_beats_majority_vote(self):
        # Dawid & Skene (1979): simulated crowd, 30 raters of known accuracy 0.40 to 0.95.
        rng = np.random.default_rng(0)
        accuracy = np.linspace(0.4, 0.95, 30)
        prior = [0.35, 0.2, 0.15, 0.1, 0.1, 0.06, 0.04]
        truth, item, rater, label = simulate(rng, accuracy, 2000, 10, prior)
        result = dawid_skene(item, rater, label, n_items=2000, n_raters=30, n_labels=7)
        assert np.corrcoef(result.accuracy, accuracy)[0, 1] > 0.95
        counts = vote_counts(item, label, 2000, 7)
        top = counts == counts.max(axis=1, keepdims=True)
        # Majority vote with ties broken at random: its expected accuracy.
        majority_accuracy = (top[np.arange(2000), truth] / top.sum(axis=1)).mean()
        assert (result.posteriors.argmax(axis=1) == truth).mean() > majority_accuracy
        assert result.priors == pytest.approx(prior, abs=0.03)
        assert result.posteriors.sum(axis=1) == pytest.approx(np.ones(2000))
        assert result.confusion.sum(axis=2) == pytest.approx(np.ones((30, 7)))

    def test_it_trusts_raters_who_always_agree(self):
        item = np.repeat(np.arange(6), 3)
        rater = np.tile(np.arange(3), 6)
        label = np.repeat([0, 1, 2, 0, 1, 2], 3)
        result = dawid_skene(item, rater, label, n_items=6, n_raters=4, n_labels=3)
        assert result.accuracy[:3] == pytest.approx(np.ones(3), abs=0.01)
        assert math.isnan(result.accuracy[3])  # rater 3 gave no labels
        assert result.posteriors.argmax(axis=1).tolist() == [0, 1, 2, 0, 1, 2]
        assert result.iterations < 100


class RaterStatsTests:
    def test_it_flags_a_spammer_among_good_raters(self):
        rng = np.random.default_rng(5)
        accuracy = rng.uniform(0.8, 0.9, 12)
        accuracy[4] = 1 / 7  # uniform random labels over 7
        _, item, rater, label = simulate(rng, accuracy, 400, 10, np.full(7, 1 / 7))
        stats = rater_stats(item, rater, label, n_items=400, n_raters=12, n_labels=7)
        assert np.flatnonzero(stats.flagged).tolist() == [4]
        good = np.delete(stats.dawid_skene_accuracy, 4)
        assert stats.dawid_skene_accuracy[4] < 0.3 and good.min() > 0.6
        # Below min_labels labels a rater is never judged.
        assert not rater_stats(item, rater, label, 400, 12, 7, min_labels=1000).flagged.any()

    def test_it_scales_the_bar_to_a_widely_spread_crowd(self):
        # Honest raters from 0.50 to 0.95 accurate: several sit more than 0.10 below the median,
        # but within 3 robust standard deviations (MAD), so none is flagged.
        rng = np.random.default_rng(7)
        accuracy = np.linspace(0.5, 0.95, 12)
        _, item, rater, label = simulate(rng, accuracy, 400, 10, np.full(5, 1 / 5))
        stats = rater_stats(item, rater, label, n_items=400, n_raters=12, n_labels=5)
        agreement = stats.agreement_with_majority
        assert (agreement < np.median(agreement) - 0.10).sum() >= 2
        assert not stats.flagged.any()

    def test_it_flags_nobody_when_all_raters_are_good(self):
        rng = np.random.default_rng(6)
        _, item, rater, label = simulate(rng, rng.uniform(0.8, 0.9, 12), 400, 10, [0.5, 0.3, 0.2])
        stats = rater_stats(item, rater, label, n_items=400, n_raters=12, n_labels=3)
        assert not stats.flagged.any()
        assert (stats.n_labels == np.bincount(rater, minlength=12)).all()

    def test_it_gives_cohens_kappa_against_the_others_majority(self):
        # Wikipedia, "Cohen's kappa", worked example: 50 grant proposals, readers A and B:
        # both yes 20, A yes B no 5, A no B yes 10, both no 15 -> p_o 0.7, p_e 0.5, kappa 0.4.
        # Rater 0 is A; raters 1 and 2 both give B's answer, so B's answer is rater 0's
        # leave-one-out majority on every clip.
        reader_a = np.array([0] * 20 + [0] * 5 + [1] * 10 + [1] * 15)
        reader_b = np.array([0] * 20 + [1] * 5 + [0] * 10 + [1] * 15)
        item = np.repeat(np.arange(50), 3)
        rater = np.tile(np.arange(3), 50)
        label = np.column_stack([reader_a, reader_b, reader_b]).ravel()
        stats = rater_stats(item, rater, label, n_items=50, n_raters=3, n_labels=2)
        assert stats.cohen_kappa_vs_majority[0] == pytest.approx(0.4)
        assert stats.cohen_kappa_vs_majority[0] == pytest.approx(
            cohen_kappa_score(reader_a, reader_b)
        )
        assert stats.agreement_with_majority[0] == pytest.approx(0.7)
        # For raters 1 and 2 the others are A and B: a tie where they differ, so only the 35
        # clips where A and B agree count, and there each agrees with the majority.
        assert stats.agreement_with_majority[1:].tolist() == [1.0, 1.0]

    def test_it_leaves_kappa_undefined_for_too_few_or_one_label_rows(self):
        # Rater 0 has one row; raters 1 and 2 have two, all label 0 against majority 0, so
        # Cohen's p_e is 1 and kappa is 0/0; rater 3 gave nothing.
        item = [0, 0, 0, 1, 1]
        rater = [0, 1, 2, 1, 2]
        stats = rater_stats(item, rater, [0] * 5, n_items=2, n_raters=4, n_labels=2)
        assert stats.cohen_kappa_vs_majority == [None, None, None, None]
        assert np.isnan(stats.agreement_with_majority[3])

    def test_it_takes_each_raters_median_seconds(self):
        item = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
        rater = [0, 1, 0, 1, 0, 1, 1, 2, 1, 2]
        seconds = [3.0, 4.0, 1.0, np.nan, 2.0, 10.0, 6.0, np.nan, 8.0, np.nan]
        stats = rater_stats(item, rater, [0] * 10, 5, 4, 2, seconds=seconds)
        # Rater 0: 1, 2, 3 -> 2. Rater 1: 4, 6, 8, 10 (NaN ignored) -> 7. Raters 2, 3: none.
        assert stats.median_seconds[:2].tolist() == [2.0, 7.0]
        assert np.isnan(stats.median_seconds[2:]).all()
        unknown = rater_stats(item, rater, [0] * 10, 5, 4, 2)
        assert np.isnan(unknown.median_seconds).all()


class ShareHistogramTests:
    def test_it_bins_shares_on_their_exact_edges(self):
        # Shares 3/10, 7/10 and 10/10: np.histogram's float edges (0.30000000000000004, ...)
        # would put the first two one bin low.
        counts = [[3, 3, 2, 2], [7, 1, 1, 1], [0, 10, 0, 0], [0, 0, 7, 3]]
        histogram, edges = share_histogram(counts, bins=10)
        assert histogram == [0, 0, 0, 1, 0, 0, 0, 2, 0, 1]
        assert edges == [j / 10 for j in range(11)]

    def test_it_is_empty_without_clips(self):
        assert share_histogram(np.zeros((0, 3)), bins=4)[0] == [0, 0, 0, 0]
