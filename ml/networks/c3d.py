"""C3D (Tran et al., ICCV 2015): eight 3×3×3 convolutions, five poolings, two fc layers.

Parameter names follow the widely used PyTorch port of the Sports-1M weights (``conv1`` …
``conv5b``, ``fc6``, ``fc7``, ``fc8``), so that checkpoint loads as it is.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained


class C3D(VideoClassifier):
    def __init__(self, num_classes: int = 7, dropout: float = 0.5):
        super().__init__()

        def conv(cin, cout):
            return nn.Conv3d(cin, cout, kernel_size=3, padding=1)

        self.conv1, self.conv2 = conv(3, 64), conv(64, 128)
        self.conv3a, self.conv3b = conv(128, 256), conv(256, 256)
        self.conv4a, self.conv4b = conv(256, 512), conv(512, 512)
        self.conv5a, self.conv5b = conv(512, 512), conv(512, 512)
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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        r = self.relu
        x = self.pool1(r(self.conv1(x)))
        x = self.pool(r(self.conv2(x)))
        x = self.pool(r(self.conv3b(r(self.conv3a(x)))))
        x = self.pool(r(self.conv4b(r(self.conv4a(x)))))
        x = r(self.conv5b(r(self.conv5a(x))))
        x = self.pool5(x) if x.shape[2] >= 2 else self.pool5_spatial(x)
        x = self.fit(x).flatten(1)
        x = self.dropout(r(self.fc6(x)))
        return r(self.fc7(x))


def c3d(num_classes: int = 7, pretrained: str | None = None, **kwargs) -> C3D:
    """C3D; `pretrained` is a local Sports-1M checkpoint (its ``fc8`` is our ``head``)."""
    model = C3D(num_classes, **kwargs)
    return load_pretrained(model, pretrained, rename=lambda k: k.replace("fc8.", "head."))
