"""P3D as the DFEW authors built it (their ``makemodel/p3d.py``, after Qiu et al., ICCV 2017).

A ResNet-50-style bottleneck network whose 3×3×3 convolution is split into a 1×3×3 spatial
(S) and a 3×1×1 temporal (T) one, cycling the serial (A: T(S(x))), parallel (B: S(x) + T(x))
and serial-with-shortcut (C: S(x) + T(S(x))) arrangements. As in their code, and unlike a
plain 3D ResNet:

- the stem is 1×7×7 (stride 1, 2, 2), then a 2×3×3 max-pool of stride 2;
- a stage's spatial stride sits in its first block's 1×1×1 conv (and its shortcut);
- after each of the first three stages a 2×1×1 max-pool halves time (16 frames → 1);
- the last stage is 2D: its blocks are Conv2d on each remaining frame, then average-pooled.

Module names follow theirs (``conv1_custom``, ``layerN.i.conv1`` … ``conv4``,
``conv_normal`` in the 2D stage, ``fc``) so their checkpoints load. P3D-63 has stage depths
(3, 4, 6, 3): about 24.9 M parameters with 7 classes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained


class P3DBlock(nn.Module):
    """One bottleneck; 3D (S and T convolutions, kind A/B/C) or, in the last stage, 2D."""

    expansion = 4

    def __init__(self, cin, planes, stride, downsample, kind: str, three_d: bool):
        super().__init__()
        self.kind, self.three_d, self.downsample = kind, three_d, downsample
        conv, bn = (nn.Conv3d, nn.BatchNorm3d) if three_d else (nn.Conv2d, nn.BatchNorm2d)
        self.conv1 = conv(cin, planes, 1, stride=stride, bias=False)
        self.bn1 = bn(planes)
        if three_d:
            self.conv2 = nn.Conv3d(planes, planes, (1, 3, 3), padding=(0, 1, 1), bias=False)
            self.bn2 = nn.BatchNorm3d(planes)
            self.conv3 = nn.Conv3d(planes, planes, (3, 1, 1), padding=(1, 0, 0), bias=False)
            self.bn3 = nn.BatchNorm3d(planes)
        else:
            self.conv_normal = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
            self.bn_normal = nn.BatchNorm2d(planes)
        self.conv4 = conv(planes, planes * 4, 1, bias=False)
        self.bn4 = bn(planes * 4)
        self.relu = nn.ReLU(inplace=True)

    def _middle(self, x):
        r = self.relu
        if not self.three_d:
            return r(self.bn_normal(self.conv_normal(x)))
        if self.kind == "A":
            return r(self.bn3(self.conv3(r(self.bn2(self.conv2(x))))))
        if self.kind == "B":
            return r(self.bn2(self.conv2(x))) + r(self.bn3(self.conv3(x)))
        s = r(self.bn2(self.conv2(x)))
        return s + r(self.bn3(self.conv3(s)))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self._middle(self.relu(self.bn1(self.conv1(x))))
        return self.relu(self.bn4(self.conv4(out)) + identity)


def _pool_time(x: torch.Tensor) -> torch.Tensor:
    """Their 2×1×1 max-pool of stride 2 over time; a clip already down to one frame (short
    test inputs) passes unchanged."""
    return nn.functional.max_pool3d(x, (2, 1, 1), (2, 1, 1)) if x.shape[2] >= 2 else x


class P3D(VideoClassifier):
    def __init__(self, layers, num_classes: int = 7, dropout: float = 0.5, init: str = "default"):
        super().__init__()
        self.conv1_custom = nn.Conv3d(3, 64, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False)
        self.bn1 = nn.BatchNorm3d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool3d((2, 3, 3), 2, (0, 1, 1))
        self.inplanes, self._count = 64, 0
        self._depth_3d = sum(layers[:3])  # stages 1-3 are 3D, stage 4 is 2D
        self.layer1 = self._make_layer(64, layers[0], 1)
        self.layer2 = self._make_layer(128, layers[1], 2)
        self.layer3 = self._make_layer(256, layers[2], 2)
        self.layer4 = self._make_layer(512, layers[3], 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # theirs: a 5×5 average pool at 160×160
        self.dropout = nn.Dropout(dropout)
        self.num_features = 2048
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():
            if init == "authors" and isinstance(m, nn.Conv3d):
                # Their P3D's own rule (makemodel/p3d.py): normal(0, √(2/n)) with
                # n = kernel[0]·kernel[1]·out_channels (the time and height extents only).
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
            elif isinstance(m, nn.Conv3d | nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    @property
    def head(self):
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        cout = planes * P3DBlock.expansion
        three_d = self._count < self._depth_3d
        first = 1 if self._count == 0 else ((1, stride, stride) if three_d else stride)
        downsample = None
        if stride != 1 or self.inplanes != cout:
            conv, bn = (nn.Conv3d, nn.BatchNorm3d) if three_d else (nn.Conv2d, nn.BatchNorm2d)
            downsample = nn.Sequential(conv(self.inplanes, cout, 1, first, bias=False), bn(cout))
        layers = []
        for i in range(blocks):
            three_d = self._count < self._depth_3d
            kind = "ABC"[self._count % 3]
            layers.append(
                P3DBlock(self.inplanes, planes, first if i == 0 else 1, downsample, kind, three_d)
            )
            downsample = None
            self.inplanes = cout
            self._count += 1
        return nn.Sequential(*layers)

    def forward_features(self, x):
        x = self.relu(self.bn1(self.conv1_custom(x)))
        x = self.maxpool(x)
        x = _pool_time(self.layer1(x))
        x = _pool_time(self.layer2(x))
        x = _pool_time(self.layer3(x))
        b, c, t, h, w = x.shape
        # Theirs folds time into the batch (t is 1 at 16 frames); longer clips are averaged.
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.avgpool(self.layer4(x)).flatten(1)
        return x.view(b, t, -1).mean(1)


def p3d_63(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> P3D:
    """P3D-63, stage depths (3, 4, 6, 3), as the DFEW authors trained it."""
    return load_pretrained(P3D([3, 4, 6, 3], num_classes, **kwargs), pretrained)


def p3d_199(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> P3D:
    """P3D-199, stage depths (3, 8, 36, 3), the paper's deepest."""
    return load_pretrained(P3D([3, 8, 36, 3], num_classes, **kwargs), pretrained)
