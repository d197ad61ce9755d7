"""A tiny network for training-loop tests (the real ones are tested in test_networks.py)."""

import pytest
import torch
from torch import nn

from ml.networks import MODELS, VideoClassifier


class TinyNet(VideoClassifier):
    def __init__(self, num_classes: int = 7, dropout: float = 0.2):
        super().__init__()

        def block(cin, cout):
            return [
                nn.Conv3d(cin, cout, (1, 3, 3), padding=(0, 1, 1)),
                nn.BatchNorm3d(cout),
                nn.ReLU(),
            ]

        self.body = nn.Sequential(
            *block(3, 16),
            nn.MaxPool3d((1, 2, 2)),
            *block(16, 32),
            nn.MaxPool3d((1, 2, 2)),
            *block(32, 64),
            nn.AdaptiveMaxPool3d(1),
        )
        self.dropout = nn.Dropout(dropout)  # so resume must restore the random state
        self.num_features = 64
        self.head = nn.Linear(64, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).flatten(1)


def tiny(num_classes=7, pretrained=None, **kwargs):
    return TinyNet(num_classes, **kwargs)


@pytest.fixture
def tiny_model(monkeypatch):
    monkeypatch.setitem(MODELS, "tiny", tiny)
    return "tiny"


class LinearNet(VideoClassifier):
    """No batch norm, no dropout: a step's gradient is exactly the mean over its clips, so
    runs that split a global batch differently (processes, accumulation) take equal steps."""

    def __init__(self, num_classes: int = 7, **kwargs):
        super().__init__()
        self.body = nn.Linear(48, 16)
        self.dropout = nn.Dropout(0.0)
        self.num_features = 16
        self.head = nn.Linear(16, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        pooled = nn.functional.adaptive_avg_pool3d(x, (1, 4, 4)).flatten(1)
        return torch.tanh(self.body(pooled))


def linear(num_classes=7, pretrained=None, **kwargs):
    return LinearNet(num_classes, **kwargs)


@pytest.fixture
def linear_model(monkeypatch):
    monkeypatch.setitem(MODELS, "linear", linear)
    return "linear"
