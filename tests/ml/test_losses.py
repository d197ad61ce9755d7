import math

import pytest
import torch

from ml.losses import CenterLoss, ECSTFLLoss, SoftTargetCrossEntropy, ec_stfl


class EcStflTests:
    def test_it_equals_the_hand_computed_value(self):
        # Three 1-D features: a=0, b=1 labelled 0; c=4 labelled 1. Label sets: {a, b} (size 2)
        # and {c} (size 1).
        # Numerator, pairs (i, j) with j in i's set, over i's set size:
        #   (a,b) 1/2 + (b,a) 1/2 + self-pairs 0           = 1
        # Denominator, pairs with different labels, over j's set size:
        #   (a,c) 4/1 + (b,c) 3/1 + (c,a) 0→4/2 + (c,b) 3/2 = 4 + 3 + 2 + 1.5 = 10.5
        features = torch.tensor([[0.0], [1.0], [4.0]])
        labels = torch.tensor([0, 0, 1])
        assert ec_stfl(features, labels).item() == pytest.approx(1 / 10.5, rel=1e-5)

    def test_it_matches_a_pairwise_loop_on_a_random_batch(self):
        torch.manual_seed(1)
        features, labels = torch.randn(9, 5), torch.tensor([0, 1, 2, 0, 1, 0, 2, 2, 1])
        counts = {int(c): int((labels == c).sum()) for c in labels.unique()}
        num = den = 0.0
        for i in range(9):
            for j in range(9):
                d = (features[i] - features[j]).norm().item()
                if labels[i] == labels[j]:
                    num += d / counts[int(labels[i])]
                else:
                    den += d / counts[int(labels[j])]
        assert ec_stfl(features, labels).item() == pytest.approx(num / den, rel=1e-4)

    def test_a_batch_with_one_label_gives_zero_and_finite_gradients(self):
        features = torch.randn(4, 3, requires_grad=True)
        loss = ec_stfl(features, torch.tensor([2, 2, 2, 2]))
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(features.grad, torch.zeros(4, 3))

    def test_gradients_are_finite_with_duplicate_features(self):
        features = torch.tensor([[1.0, 2.0], [1.0, 2.0], [3.0, 0.0]], requires_grad=True)
        ec_stfl(features, torch.tensor([0, 0, 1])).backward()
        assert torch.isfinite(features.grad).all()

    def test_lowering_it_tightens_classes_relative_to_each_other(self):
        torch.manual_seed(0)
        labels = torch.arange(4).repeat_interleave(6)
        features = torch.randn(24, 8, requires_grad=True)

        def spread(f):
            centres = torch.stack([f[labels == c].mean(0) for c in range(4)])
            within = torch.stack(
                [(f[labels == c] - centres[c]).norm(dim=1).mean() for c in range(4)]
            ).mean()
            between = torch.pdist(centres).mean()
            return (within / between).item()

        before = spread(features.detach())
        optimizer = torch.optim.Adam([features], lr=0.05)
        for _ in range(200):
            optimizer.zero_grad()
            ECSTFLLoss()(features, labels).backward()
            optimizer.step()
        assert spread(features.detach()) < 0.5 * before


class EcStflReleaseTests:
    def test_it_equals_the_hand_computed_value_of_the_2024_release(self):
        # The same three features, L1 distances: d(a,b) = 1, d(a,c) = 4, d(b,c) = 3.
        # Per sample: mean same-label distance (itself included) × inverse other-label
        # distances summed over (other count + 1), each divided by the batch size 3:
        #   a: (0 + 1)/2 · (1/4)/2 = 1/16;  b: (1 + 0)/2 · (1/3)/2 = 1/12;  c: 0/1 · … = 0
        # averaged: (1/16 + 1/12 + 0) / 3 / 3.
        features = torch.tensor([[0.0], [1.0], [4.0]])
        labels = torch.tensor([0, 0, 1])
        expected = (1 / 16 + 1 / 12) / 9
        assert ec_stfl(features, labels, "release").item() == pytest.approx(expected, rel=1e-5)
        assert ec_stfl(features, labels).item() != pytest.approx(expected, rel=1e-2)

    def test_it_matches_a_loop_over_the_release_formula(self):
        torch.manual_seed(2)
        features, labels = torch.randn(7, 4), torch.tensor([0, 1, 0, 2, 1, 1, 0])
        total = 0.0
        for i in range(7):
            same = [j for j in range(7) if labels[j] == labels[i]]
            other = [j for j in range(7) if labels[j] != labels[i]]
            d = [(features[i] - features[j]).abs().sum().item() for j in range(7)]
            attractive = sum(d[j] for j in same) / (len(same) + 1e-6)
            repulsive = sum(1 / (d[j] + 1e-6) for j in other) / (len(other) + 1 + 1e-6)
            total += attractive * repulsive / 7
        assert ECSTFLLoss("release")(features, labels).item() == pytest.approx(total / 7, rel=1e-4)

    def test_an_unknown_variant_is_refused(self):
        with pytest.raises(ValueError, match="unknown EC-STFL variant 'paper'"):
            ec_stfl(torch.randn(2, 3), torch.tensor([0, 1]), "paper")


class CenterLossTests:
    def test_it_is_half_the_mean_squared_distance_to_the_class_centre(self):
        loss = CenterLoss(num_classes=2, num_features=2)
        with torch.no_grad():
            loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0]]))
        features = torch.tensor([[3.0, 4.0], [1.0, 2.0]])
        # ½·mean(25, 1) = 6.5
        assert loss(features, torch.tensor([0, 1])).item() == pytest.approx(6.5)

    def test_its_centres_move_by_wen_et_als_rule(self):
        # Wen et al. (ECCV 2016) eq. 4 by hand, α = 0.5: centre 0 = (0, 0) with two clips
        # (2, 0) and (4, 2): Δc = ((0−2) + (0−4), (0−0) + (0−2)) / (1 + 2) = (−2, −2/3), so
        # c ← (0, 0) − 0.5·(−2, −2/3) = (1, 1/3). Centre 1 = (1, 1) with one clip (3, 3):
        # Δc = (−2, −2) / 2 = (−1, −1), c ← (1.5, 1.5). Centre 2 has no clip: unchanged.
        loss = CenterLoss(num_classes=3, num_features=2, alpha=0.5)
        loss.centers.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0]]))
        features = torch.tensor([[2.0, 0.0], [3.0, 3.0], [4.0, 2.0]], requires_grad=True)
        loss.update(features, torch.tensor([0, 1, 0]))
        expected = torch.tensor([[1.0, 1 / 3], [1.5, 1.5], [5.0, 5.0]])
        assert torch.allclose(loss.centers, expected)
        # not learned by the optimiser: no parameter, and no gradient reaches them
        assert list(loss.parameters()) == [] and "centers" in loss.state_dict()

    def test_its_centres_start_at_zero(self):
        assert torch.equal(CenterLoss(7, 4).centers, torch.zeros(7, 4))


class SoftTargetCrossEntropyTests:
    def test_it_equals_cross_entropy_for_one_hot_targets(self):
        logits = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
        target = torch.tensor([0, 2])
        soft = SoftTargetCrossEntropy()(logits, torch.nn.functional.one_hot(target, 3).float())
        hard = torch.nn.functional.cross_entropy(logits, target)
        assert soft.item() == pytest.approx(hard.item())

    def test_a_uniform_target_on_equal_logits_costs_log_k(self):
        logits = torch.zeros(1, 7)
        assert SoftTargetCrossEntropy()(logits, torch.full((1, 7), 1 / 7)).item() == pytest.approx(
            math.log(7)
        )
