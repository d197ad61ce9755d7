"""Frame CNN + LSTM baselines: VGG11+LSTM and ResNet18+LSTM from DFEW's Table 3.

Each frame goes through a 2D ImageNet backbone (names as torchvision's ``vgg11`` /
``resnet18`` so their checkpoints load into ``backbone``), is pooled to a vector, and an LSTM
reads the sequence; its last hidden state is the clip's feature.
"""

from __future__ import annotations

import torch
from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained

VGG11_CFG = [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"]


class VGG11Features(nn.Module):
    """torchvision's ``vgg11().features``, parameter names included (``features.0`` …)."""

    def __init__(self):
        super().__init__()
        layers, cin = [], 3
        for v in VGG11_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.out_channels = 512

    def forward(self, x):
        return self.features(x)


class BasicBlock2D(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet18Features(nn.Module):
    """torchvision's ``resnet18`` without ``avgpool``/``fc``, parameter names included."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock2D(64, 64), BasicBlock2D(64, 64))
        self.layer2 = nn.Sequential(BasicBlock2D(64, 128, 2), BasicBlock2D(128, 128))
        self.layer3 = nn.Sequential(BasicBlock2D(128, 256, 2), BasicBlock2D(256, 256))
        self.layer4 = nn.Sequential(BasicBlock2D(256, 512, 2), BasicBlock2D(512, 512))
        self.out_channels = 512

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class CNNLSTM(VideoClassifier):
    def __init__(self, backbone: nn.Module, num_classes=7, hidden=512, dropout=0.5):
        super().__init__()
        self.backbone = backbone
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.lstm = nn.LSTM(backbone.out_channels, hidden, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.num_features = hidden
        self.head = nn.Linear(hidden, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        frames = x.transpose(1, 2).reshape(b * t, c, h, w)
        per_frame = self.pool(self.backbone(frames)).flatten(1).view(b, t, -1)
        _, (hidden, _) = self.lstm(per_frame)
        return hidden[-1]


def _into_backbone(key: str) -> str | None:
    # An ImageNet checkpoint of the 2D network: its classifier is dropped.
    if key.startswith(("classifier.", "fc.")):
        return None
    return key if key.startswith("backbone.") else f"backbone.{key}"


def vgg11_lstm(num_classes=7, pretrained=None, **kwargs):
    """VGG11 + LSTM; `pretrained`: torchvision's ``vgg11`` ImageNet state dict."""
    return load_pretrained(
        CNNLSTM(VGG11Features(), num_classes, **kwargs),
        pretrained,
        rename=_into_backbone,
        fresh=("lstm.",),
    )


def resnet18_lstm(num_classes=7, pretrained=None, **kwargs):
    """ResNet18 + LSTM; `pretrained`: torchvision's ``resnet18`` ImageNet state dict."""
    return load_pretrained(
        CNNLSTM(ResNet18Features(), num_classes, **kwargs),
        pretrained,
        rename=_into_backbone,
        fresh=("lstm.",),
    )
