"""Quality-aware aggregation (pipeline/crowd.py), no database: Dawid & Skene's published data,
hand-computed posteriors, and the target on a generated campaign with known truth."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline import agreement, crowd
from pipeline.synthetic import simulate_campaign

# Dawid & Skene (1979), Table 1: 45 patients, 5 observers, 4 classes (1..4); observer 1 rated
# every patient three times. Transcribed from the paper as the reference implementations
# reproduce it (e.g. github.com/dallascard/dawid_skene, generate_sample_data()).
DS_1979 = {
    1: ([1, 1, 1], 1, 1, 1, 1), 2: ([3, 3, 3], 4, 3, 3, 4), 3: ([1, 1, 2], 2, 1, 2, 2),
    4: ([2, 2, 2], 3, 1, 2, 1), 5: ([2, 2, 2], 3, 2, 2, 2), 6: ([2, 2, 2], 3, 3, 2, 2),
    7: ([1, 2, 2], 2, 1, 1, 1), 8: ([3, 3, 3], 3, 4, 3, 3), 9: ([2, 2, 2], 2, 2, 2, 3),
    10: ([2, 3, 2], 2, 2, 2, 3), 11: ([4, 4, 4], 4, 4, 4, 4), 12: ([2, 2, 2], 3, 3, 4, 3),
    13: ([1, 1, 1], 1, 1, 1, 1), 14: ([2, 2, 2], 3, 2, 1, 2), 15: ([1, 2, 1], 1, 1, 1, 1),
    16: ([1, 1, 1], 2, 1, 1, 1), 17: ([1, 1, 1], 1, 1, 1, 1), 18: ([1, 1, 1], 1, 1, 1, 1),
    19: ([2, 2, 2], 2, 2, 2, 1), 20: ([2, 2, 2], 1, 3, 2, 2), 21: ([2, 2, 2], 2, 2, 2, 2),
    22: ([2, 2, 2], 2, 2, 2, 1), 23: ([2, 2, 2], 3, 2, 2, 2), 24: ([2, 2, 1], 2, 2, 2, 2),
    25: ([1, 1, 1], 1, 1, 1, 1), 26: ([1, 1, 1], 1, 1, 1, 1), 27: ([2, 3, 2], 2, 2, 2, 2),
    28: ([1, 1, 1], 1, 1, 1, 1), 29: ([1, 1, 1], 1, 1, 1, 1), 30: ([1, 1, 2], 1, 1, 2, 1),
    31: ([1, 1, 1], 1, 1, 1, 1), 32: ([3, 3, 3], 3, 2, 3, 3), 33: ([1, 1, 1], 1, 1, 1, 1),
    34: ([2, 2, 2], 2, 2, 2, 2), 35: ([2, 2, 2], 3, 2, 3, 2), 36: ([4, 3, 3], 4, 3, 4, 3),
    37: ([2, 2, 1], 2, 2, 3, 2), 38: ([2, 3, 2], 3, 2, 3, 3), 39: ([3, 3, 3], 3, 4, 3, 2),
    40: ([1, 1, 1], 1, 1, 1, 1), 41: ([1, 1, 1], 1, 1, 1, 1), 42: ([1, 2, 1], 2, 1, 1, 1),
    43: ([2, 3, 2], 2, 2, 2, 2), 44: ([1, 2, 1], 1, 1, 1, 1), 45: ([2, 2, 2], 2, 2, 2, 2),
}  # fmt: skip


def ds_1979_long():
    item, rater, label = [], [], []
    for patient, (first, *others) in DS_1979.items():
        for given in first:
            item.append(patient - 1), rater.append(0), label.append(given - 1)
        for observer, given in enumerate(others, start=1):
            item.append(patient - 1), rater.append(observer), label.append(given - 1)
    return np.array(item), np.array(rater), np.array(label)


def textbook_dawid_skene(item, rater, label, n, r, k, iterations=50, smoothing=0.01):
    """Dawid & Skene (1979), equations (2.3)–(2.5), written loop by loop as the paper states
    them, from the same majority-share start and with the same smoothing."""
    votes = np.zeros((n, r, k))
    for i, j, lab in zip(item, rater, label, strict=True):
        votes[i, j, lab] += 1
    t = votes.sum(axis=1) / votes.sum(axis=(1, 2))[:, None]
    for _ in range(iterations):
        p = (t.sum(axis=0) + smoothing) / (n + k * smoothing)
        pi = np.zeros((r, k, k))
        for j in range(r):
            for true in range(k):
                for given in range(k):
                    pi[j, true, given] = (t[:, true] * votes[:, j, given]).sum() + smoothing
                pi[j, true] /= pi[j, true].sum()
        for i in range(n):
            for true in range(k):
                t[i, true] = p[true] * np.prod(pi[:, true, :] ** votes[i])
            t[i] /= t[i].sum()
    return t, p, pi


class DawidSkene1979Tests:
    def test_it_matches_the_papers_equations_on_the_papers_data(self):
        # given: Table 1 of Dawid & Skene (1979)
        item, rater, label = ds_1979_long()
        # when
        fit = crowd.fit("dawid_skene", item, rater, label, 45, 5, 4)
        t, p, pi = textbook_dawid_skene(item, rater, label, 45, 5, 4, fit.iterations)
        # then: the vectorised EM is the paper's EM
        assert fit.posteriors == pytest.approx(t, abs=1e-6)
        assert fit.priors == pytest.approx(p, abs=1e-6)
        assert fit.confusion == pytest.approx(pi, abs=1e-6)

    def test_it_gives_the_classes_the_paper_reports_for_unanimous_patients(self):
        # Patients every assessment puts in one class keep it with near certainty (the paper's
        # Table 4 lists 1.00 for them), e.g. patients 1 and 11.
        item, rater, label = ds_1979_long()
        post = crowd.fit("dawid_skene", item, rater, label, 45, 5, 4).posteriors
        assert post[0, 0] > 0.99 and post[10, 3] > 0.99

    @pytest.mark.parametrize("method", crowd.QUALITY_METHODS)
    def test_every_method_gives_distributions(self, method):
        item, rater, label = ds_1979_long()
        fit = crowd.fit(method, item, rater, label, 45, 5, 4)
        assert fit.posteriors.sum(axis=1) == pytest.approx(np.ones(45))
        assert fit.confusion.sum(axis=2) == pytest.approx(np.ones((5, 4)))
        assert fit.priors.sum() == pytest.approx(1.0)


class PosteriorTests:
    def test_it_weighs_each_vote_by_its_annotators_accuracy(self):
        # By hand: equal priors; annotator 0 is right 90 % of the time, annotator 1 60 %.
        # One says A, the other B: P(A) = .5·.9·.4 / (.5·.9·.4 + .5·.1·.6) = .36/.42 = 6/7.
        confusion = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.6, 0.4], [0.4, 0.6]]])
        post = crowd.posteriors([0, 0], [0, 1], [0, 1], 1, np.array([0.5, 0.5]), confusion)
        assert post[0] == pytest.approx([6 / 7, 1 / 7])

    def test_a_clip_without_votes_gets_the_priors(self):
        post = crowd.posteriors([0], [0], [1], 2, np.array([0.3, 0.7]), np.full((1, 2, 2), 0.5))
        assert post[1] == pytest.approx([0.3, 0.7])

    def test_mace_spam_mixes_the_truth_with_the_spam_distribution(self):
        # MACE: P(l | t) = (1 - theta) [l = t] + theta xi_l. So in each column l every wrong
        # truth gives the same theta xi_l, and the right one (1 - theta) more, whatever l.
        item, rater, label = ds_1979_long()
        fit = crowd.mace(item, rater, label, 45, 5, 4)
        for r in range(5):
            c = fit.confusion[r]
            wrong = [[c[t, lab] for t in range(4) if t != lab] for lab in range(4)]
            assert np.ptp(wrong, axis=1) == pytest.approx(np.zeros(4), abs=1e-12)
            honest = [c[lab, lab] - wrong[lab][0] for lab in range(4)]
            assert np.ptp(honest) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture(scope="module")
def campaign():
    return simulate_campaign(3000, seed=3)


class SyntheticCampaignTests:
    def test_it_finds_the_careless_annotators(self, campaign):
        fit = crowd.fit("one_coin", campaign.item, campaign.rater, campaign.label,
                        campaign.n_items, campaign.n_raters, 7)  # fmt: skip
        accuracy = np.einsum("rkk->rk", fit.confusion)[:, 0]
        assert set(np.argsort(accuracy)[:3]) == set(np.flatnonzero(campaign.careless))

    def test_with_five_votes_an_annotator_model_beats_plurality(self, campaign):
        # The target, on a smaller campaign: with the first five votes of each clip,
        # the quality-aware label matches the truth more often than the plurality vote with
        # ties broken at random.
        c = campaign
        first = np.tile(np.arange(10), c.n_items) < 5
        item, rater, label = c.item[first], c.rater[first], c.label[first]
        counts = agreement.vote_counts(item, label, c.n_items, 7)
        plurality, _ = crowd.labels_and_confidence(counts, np.random.default_rng(0))
        baseline = (plurality == c.truth).mean()
        for method in ("one_coin", "mace"):
            fit = crowd.fit(method, item, rater, label, c.n_items, c.n_raters, 7)
            assert (fit.posteriors.argmax(axis=1) == c.truth).mean() > baseline + 0.003, method

    def test_unknown_method_is_refused(self, campaign):
        with pytest.raises(ValueError, match="unknown aggregation method"):
            crowd.fit("glad", [0], [0], [0], 1, 1, 2)
