import numpy as np
import pytest

from pipeline.emotions import EMOTION_NAMES
from pipeline.synthetic import EXPRESSIONS, render_clip


class SyntheticTests:
    def test_it_renders_uint8_clips_of_the_requested_shape(self):
        clip = render_clip("happy", n_frames=8, size=64, rng=np.random.default_rng(0))
        assert clip.shape == (8, 64, 64, 3) and clip.dtype == np.uint8

    def test_it_is_reproducible_with_a_seed(self):
        a = render_clip("fear", 4, 48, np.random.default_rng(7))
        b = render_clip("fear", 4, 48, np.random.default_rng(7))
        assert np.array_equal(a, b)

    def test_the_onset_is_neutral_and_the_apex_shows_the_emotion(self):
        # Same style (same seed) for two emotions: first frames match up to noise, last differ.
        happy = render_clip("happy", 8, 96, np.random.default_rng(3)).astype(float)
        sad = render_clip("sad", 8, 96, np.random.default_rng(3)).astype(float)
        onset = np.abs(happy[0] - sad[0]).mean()
        apex = np.abs(happy[-1] - sad[-1]).mean()
        assert apex > 3 * onset

    def test_every_dfew_emotion_has_a_distinct_expression(self):
        assert set(EXPRESSIONS) == set(EMOTION_NAMES)
        assert len({e for e in EXPRESSIONS.values()}) == 7

    def test_it_rejects_an_unknown_emotion(self):
        with pytest.raises(ValueError, match="unknown emotion 'joy'"):
            render_clip("joy")


class SimulateCampaignTests:
    def test_it_gives_each_clip_distinct_annotators_in_order_and_a_few_careless(self):
        from pipeline.synthetic import simulate_campaign

        c = simulate_campaign(500, annotators=20, careless=2, seed=5)
        assert len(c.item) == 5000 and (np.diff(c.item) >= 0).all()
        per_clip = c.rater.reshape(500, 10)
        assert all(len(set(row)) == 10 for row in per_clip)
        assert c.careless.sum() == 2 and c.n_raters == 20
        again = simulate_campaign(500, annotators=20, careless=2, seed=5)
        assert (again.label == c.label).all() and (again.truth == c.truth).all()

    def test_about_three_clips_in_four_reach_seven_of_ten(self):
        from pipeline.aggregation import single_labels
        from pipeline.agreement import vote_counts
        from pipeline.synthetic import simulate_campaign

        c = simulate_campaign(4000, seed=2)
        single = single_labels(vote_counts(c.item, c.label, c.n_items, 7), 7)
        assert 0.72 <= (single >= 0).mean() <= 0.85
