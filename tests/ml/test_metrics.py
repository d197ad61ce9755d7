import numpy as np
import pytest

from ml import metrics


class MetricsTests:
    # Worked example: 10 clips of 3 classes.
    #   class 0: 4 clips, 3 right; class 1: 4 clips, 2 right; class 2: 2 clips, 0 right.
    Y_TRUE = [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    Y_PRED = [0, 0, 0, 1, 1, 1, 0, 2, 0, 1]

    def test_war_is_accuracy(self):
        assert metrics.war(self.Y_TRUE, self.Y_PRED) == pytest.approx(5 / 10)

    def test_uar_is_the_mean_of_class_recalls(self):
        assert metrics.uar(self.Y_TRUE, self.Y_PRED, 3) == pytest.approx((3 / 4 + 2 / 4 + 0) / 3)

    def test_per_class_recall_and_confusion(self):
        assert metrics.per_class_recall(self.Y_TRUE, self.Y_PRED, 3).tolist() == [0.75, 0.5, 0.0]
        assert metrics.confusion(self.Y_TRUE, self.Y_PRED, 3).tolist() == [
            [3, 1, 0],
            [1, 2, 1],
            [1, 1, 0],
        ]

    def test_an_absent_class_is_named_not_silently_dropped(self):
        with pytest.warns(metrics.AbsentClassWarning, match=r"classes \[2\] have no test clip"):
            value = metrics.uar([0, 0, 1], [0, 1, 1], num_classes=3)
        assert value == pytest.approx((0.5 + 1.0) / 2)
        assert np.isnan(metrics.per_class_recall([0, 1], [0, 1], 3)[2])

    def test_it_rejects_labels_outside_the_classes(self):
        with pytest.raises(ValueError, match="0..2"):
            metrics.confusion([0, 3], [0, 1], 3)
