"""I3D, RGB stream (Carreira & Zisserman, CVPR 2017): Inception-v1 inflated to 3D.

Module names follow the common PyTorch port of the Kinetics weights (``Conv3d_1a_7x7`` …
``Mixed_5c``, each unit ``.conv3d`` + ``.bn``; branches ``b0``, ``b1a``, ``b1b``, ``b2a``, ``b2b``,
``b3b``), so its ``rgb_imagenet.pt`` loads as is; its ``logits`` unit becomes our ``head``.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained


class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), padding=0):
        super().__init__()
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x):
        return torch.relu(self.bn(self.conv3d(x)))


class InceptionModule(nn.Module):
    def __init__(self, cin, c):
        super().__init__()
        self.b0 = Unit3D(cin, c[0])
        self.b1a = Unit3D(cin, c[1])
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3), padding=1)
        self.b2a = Unit3D(cin, c[3])
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3), padding=1)
        self.b3a = nn.MaxPool3d(3, 1, 1)
        self.b3b = Unit3D(cin, c[5])

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


class I3D(VideoClassifier):
    def __init__(self, num_classes: int = 7, dropout: float = 0.5):
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), 3)
        self.MaxPool3d_2a_3x3 = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), padding=1)
        self.MaxPool3d_3a_3x3 = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.Mixed_3b = InceptionModule(192, [64, 96, 128, 16, 32, 32])
        self.Mixed_3c = InceptionModule(256, [128, 128, 192, 32, 96, 64])
        self.MaxPool3d_4a_3x3 = nn.MaxPool3d(3, 2, 1)
        self.Mixed_4b = InceptionModule(480, [192, 96, 208, 16, 48, 64])
        self.Mixed_4c = InceptionModule(512, [160, 112, 224, 24, 64, 64])
        self.Mixed_4d = InceptionModule(512, [128, 128, 256, 24, 64, 64])
        self.Mixed_4e = InceptionModule(512, [112, 144, 288, 32, 64, 64])
        self.Mixed_4f = InceptionModule(528, [256, 160, 320, 32, 128, 128])
        # ceil_mode: TensorFlow's SAME pooling of the original (7 → 4 at 112×112 inputs).
        self.MaxPool3d_5a_2x2 = nn.MaxPool3d(2, 2, ceil_mode=True)
        self.Mixed_5b = InceptionModule(832, [256, 160, 320, 32, 128, 128])
        self.Mixed_5c = InceptionModule(832, [384, 192, 384, 48, 128, 128])
        self.avg_pool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_features = 1024
        self.head = nn.Linear(1024, num_classes)
        self._stages = [
            "Conv3d_1a_7x7",
            "MaxPool3d_2a_3x3",
            "Conv3d_2b_1x1",
            "Conv3d_2c_3x3",
            "MaxPool3d_3a_3x3",
            "Mixed_3b",
            "Mixed_3c",
            "MaxPool3d_4a_3x3",
            "Mixed_4b",
            "Mixed_4c",
            "Mixed_4d",
            "Mixed_4e",
            "Mixed_4f",
            "MaxPool3d_5a_2x2",
            "Mixed_5b",
            "Mixed_5c",
        ]

    def forward_features(self, x):
        for name in self._stages:
            x = getattr(self, name)(x)
        return self.avg_pool(x).flatten(1)


def _i3d_names(key: str) -> str | None:
    # The port's classifier is a 1×1×1 conv ``logits.conv3d`` (with bias): ours is a Linear.
    if key.startswith("logits."):
        return None
    return key


def i3d(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> I3D:
    """I3D-RGB; `pretrained`: the port's ``rgb_imagenet.pt`` (its classifier is not kept)."""
    return load_pretrained(I3D(num_classes, **kwargs), pretrained, rename=_i3d_names)
