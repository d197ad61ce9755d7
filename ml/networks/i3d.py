"""I3D, RGB stream (Carreira & Zisserman, CVPR 2017): Inception-v1 inflated to 3D.

Module names follow the common PyTorch port of the Kinetics weights (``Conv3d_1a_7x7`` …
``Mixed_5c``, each unit ``.conv3d`` + ``.bn``; branches ``b0``, ``b1a``, ``b1b``, ``b2a``, ``b2b``,
``b3b``), so its ``rgb_imagenet.pt`` loads as is; its ``logits`` unit becomes our ``head``.

Padding, ``padding="tf-same"`` (the DFEW authors' port, ``makemodel/i3d.py``): every
convolution and max-pool pads like TensorFlow's SAME, computed from the input: a total of
``max(k − s, 0)`` when the side divides by the stride, else ``max(k − side % s, 0)``, the
smaller half before and the larger after (with zeros, also before a max-pool). Where the
total is odd (the stride-2 7×7×7 stem, the 3×3 stride-2 pools) the windows sit one pixel
later than with symmetric padding; the output shapes are the same. ``padding="symmetric"``
is the textbook PyTorch port (symmetric padding, ceil-mode last pool).
"""

from __future__ import annotations

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained


def _triple(v) -> tuple[int, int, int]:
    return tuple(v) if isinstance(v, tuple | list) else (v, v, v)


def same_padding(size: tuple[int, ...], kernel, stride) -> tuple[int, ...]:
    """TensorFlow SAME padding of a ``T × H × W`` input, in ``F.pad`` order (w, h, t)."""
    pads = []
    for side, k, s in zip(size, _triple(kernel), _triple(stride), strict=True):
        total = max(k - s, 0) if side % s == 0 else max(k - side % s, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(p for pair in reversed(pads) for p in pair)


class MaxPool3dSame(nn.MaxPool3d):
    """A max-pool after TF-SAME zero padding (the authors' ``MaxPool3dSamePadding``)."""

    def forward(self, x):
        pad = same_padding(x.shape[2:], self.kernel_size, self.stride)
        return super().forward(nn.functional.pad(x, pad))


def _pool(kernel, stride, padding, same: bool, ceil_mode=False) -> nn.MaxPool3d:
    if same:
        return MaxPool3dSame(kernel, stride)
    return nn.MaxPool3d(kernel, stride, padding, ceil_mode=ceil_mode)


class Unit3D(nn.Module):
    def __init__(self, cin, cout, kernel=(1, 1, 1), stride=(1, 1, 1), padding=0, same=False):
        super().__init__()
        self.same, self.kernel, self.stride = same, kernel, stride
        self.conv3d = nn.Conv3d(cin, cout, kernel, stride, 0 if same else padding, bias=False)
        self.bn = nn.BatchNorm3d(cout, eps=1e-3, momentum=0.01)

    def forward(self, x):
        if self.same:
            x = nn.functional.pad(x, same_padding(x.shape[2:], self.kernel, self.stride))
        return torch.relu(self.bn(self.conv3d(x)))


class InceptionModule(nn.Module):
    def __init__(self, cin, c, same=False):
        super().__init__()
        self.b0 = Unit3D(cin, c[0], same=same)
        self.b1a = Unit3D(cin, c[1], same=same)
        self.b1b = Unit3D(c[1], c[2], (3, 3, 3), padding=1, same=same)
        self.b2a = Unit3D(cin, c[3], same=same)
        self.b2b = Unit3D(c[3], c[4], (3, 3, 3), padding=1, same=same)
        self.b3a = _pool(3, 1, 1, same)
        self.b3b = Unit3D(cin, c[5], same=same)

    def forward(self, x):
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], 1
        )


class I3D(VideoClassifier):
    # The authors' classifier is a 1×1×1 Conv3d, which their initialisation (Conv2d and
    # Linear only) leaves at PyTorch's default: ours, a Linear, must be left alike.
    head_is_conv_in_authors_code = True

    def __init__(self, num_classes: int = 7, dropout: float = 0.5, padding: str = "tf-same"):
        super().__init__()
        if padding not in ("tf-same", "symmetric"):
            raise ValueError(f"unknown I3D padding {padding!r}; known: tf-same, symmetric")
        same = padding == "tf-same"
        self.padding = padding
        self.Conv3d_1a_7x7 = Unit3D(3, 64, (7, 7, 7), (2, 2, 2), 3, same=same)
        self.MaxPool3d_2a_3x3 = _pool((1, 3, 3), (1, 2, 2), (0, 1, 1), same)
        self.Conv3d_2b_1x1 = Unit3D(64, 64, same=same)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, (3, 3, 3), padding=1, same=same)
        self.MaxPool3d_3a_3x3 = _pool((1, 3, 3), (1, 2, 2), (0, 1, 1), same)
        self.Mixed_3b = InceptionModule(192, [64, 96, 128, 16, 32, 32], same)
        self.Mixed_3c = InceptionModule(256, [128, 128, 192, 32, 96, 64], same)
        self.MaxPool3d_4a_3x3 = _pool(3, 2, 1, same)
        self.Mixed_4b = InceptionModule(480, [192, 96, 208, 16, 48, 64], same)
        self.Mixed_4c = InceptionModule(512, [160, 112, 224, 24, 64, 64], same)
        self.Mixed_4d = InceptionModule(512, [128, 128, 256, 24, 64, 64], same)
        self.Mixed_4e = InceptionModule(512, [112, 144, 288, 32, 64, 64], same)
        self.Mixed_4f = InceptionModule(528, [256, 160, 320, 32, 128, 128], same)
        # symmetric: ceil_mode, the shapes of TensorFlow's SAME pooling (7 → 4 at 112×112).
        self.MaxPool3d_5a_2x2 = _pool(2, 2, 0, same, ceil_mode=True)
        self.Mixed_5b = InceptionModule(832, [256, 160, 320, 32, 128, 128], same)
        self.Mixed_5c = InceptionModule(832, [384, 192, 384, 48, 128, 128], same)
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
