"""C3D (Tran et al., ICCV 2015): eight 3×3×3 convolutions, five poolings, two fc layers.

- ``c3d``: as the DFEW authors built it (their ``makemodel/c3d.py``): batch norm after every
  convolution (``bn1`` … ``bn5b``), trained from scratch.
- ``c3d_sports1m``: the textbook network without batch norm, whose parameter names follow the
  widely used PyTorch port of the Sports-1M weights (``conv1`` … ``conv5b``, ``fc6``, ``fc7``,
  ``fc8``), so that checkpoint loads as it is (DFEW's Table 5 transfer).
"""

from __future__ import annotations

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained

CONVS = [
    ("1", 3, 64),
    ("2", 64, 128),
    ("3a", 128, 256),
    ("3b", 256, 256),
    ("4a", 256, 512),
    ("4b", 512, 512),
    ("5a", 512, 512),
    ("5b", 512, 512),
]


class C3D(VideoClassifier):
    def __init__(self, num_classes: int = 7, dropout: float = 0.5, batch_norm: bool = True):
        super().__init__()
        self.batch_norm = batch_norm
        for name, cin, cout in CONVS:
            setattr(self, f"conv{name}", nn.Conv3d(cin, cout, kernel_size=3, padding=1))
            if batch_norm:
                setattr(self, f"bn{name}", nn.BatchNorm3d(cout))
        self.pool1 = nn.MaxPool3d((1, 2, 2), (1, 2, 2))
        # ceil_mode changes nothing at 16×112×112 (every size halves exactly) and lets short
        # test clips through; a clip down to one frame before pool5 is pooled in space only.
        self.pool = nn.MaxPool3d(2, 2, ceil_mode=True)
        self.pool5 = nn.MaxPool3d(2, 2, padding=(0, 1, 1))
        self.pool5_spatial = nn.MaxPool3d((1, 2, 2), (1, 2, 2), padding=(0, 1, 1))
        # 112×112×16 gives 512×1×4×4 after pool5, which fc6 expects; other sizes are pooled to it.
        self.fit = nn.AdaptiveAvgPool3d((1, 4, 4))
        self.fc6 = nn.Linear(8192, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout)
        self.num_features = 4096
        self.head = nn.Linear(4096, num_classes)

    def _conv(self, name: str, x: torch.Tensor) -> torch.Tensor:
        x = getattr(self, f"conv{name}")(x)
        if self.batch_norm:
            x = getattr(self, f"bn{name}")(x)
        return self.relu(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        c = self._conv
        x = self.pool1(c("1", x))
        x = self.pool(c("2", x))
        x = self.pool(c("3b", c("3a", x)))
        x = self.pool(c("4b", c("4a", x)))
        x = c("5b", c("5a", x))
        x = self.pool5(x) if x.shape[2] >= 2 else self.pool5_spatial(x)
        x = self.fit(x).flatten(1)
        x = self.dropout(self.relu(self.fc6(x)))
        return self.relu(self.fc7(x))


def _fc8_is_head(key: str) -> str:
    return key.replace("fc8.", "head.")


def c3d(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> C3D:
    """C3D with batch norm after every convolution, as the DFEW authors trained it;
    `pretrained`: a checkpoint of theirs (its ``fc8`` is our ``head``)."""
    model = C3D(num_classes, batch_norm=True, **kwargs)
    return load_pretrained(model, pretrained, rename=_fc8_is_head)


def c3d_sports1m(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> C3D:
    """Textbook C3D; `pretrained`: a local Sports-1M checkpoint (its ``fc8`` is our ``head``)."""
    model = C3D(num_classes, batch_norm=False, **kwargs)
    return load_pretrained(model, pretrained, rename=_fc8_is_head)
