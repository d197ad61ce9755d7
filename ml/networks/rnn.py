"""Frame CNN + LSTM baselines: VGG11+LSTM and ResNet18+LSTM from DFEW's Table 3.

- ``resnet18_lstm``: as the DFEW authors built it (their ``makemodel/ResLSTM.py``): a 2D ResNet
  of *Bottleneck* blocks in stages of (2, 2, 2, 2), so 2,048-d per frame; a 3-layer LSTM of
  width 256; the classifier reads the 16 LSTM outputs concatenated (16 × 256 = 4,096-d, the
  clip's feature). About 17.4 M parameters with 7 classes. It needs clips of exactly
  ``frames`` frames.
- ``vgg11_lstm`` and ``resnet18_lstm_tv``: a torchvision 2D ImageNet backbone (names as
  torchvision's ``vgg11`` / ``resnet18``, basic blocks, so their checkpoints load into
  ``backbone``), pooled per frame, then one LSTM layer of 512 whose last hidden state is the
  clip's feature.
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


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module | None:
    """The 1×1 projection (+ BN) of a residual block whose shape changes, else None."""
    if stride == 1 and cin == cout:
        return None
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))


class BasicBlock2D(nn.Module):
    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

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


class Bottleneck2D(nn.Module):
    """torchvision's 2D Bottleneck (stride in the first 1×1 conv, as the authors' ResLSTM)."""

    def __init__(self, cin, planes, stride=1):
        super().__init__()
        cout = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, stride, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(cin, cout, stride)

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class AuthorsResNetLSTM(VideoClassifier):
    """The DFEW authors' ResNet18+LSTM; names as theirs (``conv1`` … ``layer4``, ``LSTM``,
    ``output``; ``head`` aliases ``output``)."""

    def __init__(self, num_classes=7, frames=16, hidden=256, lstm_layers=3, dropout=0.0):
        super().__init__()
        self.frames = frames
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 0, ceil_mode=True)
        stages, cin = [], 64
        for planes, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            stages.append(
                nn.Sequential(Bottleneck2D(cin, planes, stride), Bottleneck2D(planes * 4, planes))
            )
            cin = planes * 4
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # theirs: a 4×4 average pool at 112×112
        self.LSTM = nn.LSTM(2048, hidden, num_layers=lstm_layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)  # theirs has none
        self.num_features = frames * hidden
        self.output = nn.Linear(self.num_features, num_classes)

    @property
    def head(self):
        return self.output

    def reset_classifier(self, num_classes: int) -> None:
        self.output = nn.Linear(self.num_features, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = x.shape
        if t != self.frames:
            raise ValueError(f"resnet18_lstm was built for {self.frames} frames, got {t}")
        x = x.transpose(1, 2).reshape(b * t, c, h, w)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        outputs, _ = self.LSTM(self.avgpool(x).flatten(1).view(b, t, -1))
        return outputs.reshape(b, -1)


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


def resnet18_lstm(num_classes=7, pretrained=None, frames=16, **kwargs):
    """ResNet18+LSTM as the DFEW authors built it, for clips of `frames` frames."""
    return load_pretrained(AuthorsResNetLSTM(num_classes, frames, **kwargs), pretrained)


def resnet18_lstm_tv(num_classes=7, pretrained=None, **kwargs):
    """torchvision's ResNet-18 + one LSTM layer; `pretrained`: its ImageNet state dict."""
    return load_pretrained(
        CNNLSTM(ResNet18Features(), num_classes, **kwargs),
        pretrained,
        rename=_into_backbone,
        fresh=("lstm.",),
    )
