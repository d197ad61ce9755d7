"""3D residual networks: R3D-18 and MC3-18 (torchvision's layout), 3D ResNet-18 (Hara et al.).

- ``r3d_18`` / ``mc3_18``: Tran et al. 2018 as torchvision builds them (the DFEW authors
  trained torchvision's). Parameter names are torchvision's (``stem.0``, ``layer1.0.conv1.0``
  …, ``fc``), so its Kinetics-400 checkpoints load as they are.
- ``resnet3d_18``: Hara, Kataoka & Satoh (CVPR 2018), "3D ResNet-18" in DFEW's Table 3: a 7×7×7
  stem and max-pooling. Names are those of their release (``conv1``, ``bn1``, ``layer1.0.conv1``
  …, ``fc``; its ``module.`` prefix is stripped on load).
"""

from __future__ import annotations

from torch import nn

from ml.networks.base import VideoClassifier, load_pretrained


def _bn_relu_conv(cin, cout, kernel, stride, padding):
    return nn.Sequential(
        nn.Conv3d(cin, cout, kernel, stride, padding, bias=False),
        nn.BatchNorm3d(cout),
        nn.ReLU(inplace=True),
    )


class TVBasicBlock(nn.Module):
    """torchvision's video BasicBlock: conv1 = [conv, bn, relu], conv2 = [conv, bn]; with
    ``temporal=False`` its convolutions are 1×3×3 (torchvision's Conv3DNoTemporal, MC3)."""

    expansion = 1

    def __init__(self, cin, cout, stride=1, downsample=None, temporal=True):
        super().__init__()
        kernel, pad = ((3, 3, 3), (1, 1, 1)) if temporal else ((1, 3, 3), (0, 1, 1))
        stride = (stride if temporal else 1, stride, stride)
        self.conv1 = _bn_relu_conv(cin, cout, kernel, stride, pad)
        self.conv2 = nn.Sequential(
            nn.Conv3d(cout, cout, kernel, 1, pad, bias=False), nn.BatchNorm3d(cout)
        )
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class HaraBasicBlock(nn.Module):
    """Hara et al.'s BasicBlock: conv1, bn1, conv2, bn2 (shortcut B: 1×1×1 conv + BN)."""

    expansion = 1

    def __init__(self, cin, cout, stride=1, downsample=None, temporal=True):
        super().__init__()
        self.conv1 = nn.Conv3d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(cout)
        self.conv2 = nn.Conv3d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class ResNet3D(VideoClassifier):
    """Generic 3D ResNet: a stem, four stages of `block`, global average pooling, a classifier.

    `style` picks parameter names: "torchvision" (stem.0/stem.1, fc) or "hara" (conv1/bn1, fc).
    The classifier is named ``fc`` in both releases; ``head`` aliases it.
    """

    def __init__(
        self,
        block,
        layers,
        num_classes=7,
        style="torchvision",
        dropout=0.0,
        stem_kernel=(3, 7, 7),
        max_pool=False,
        temporal=(True, True, True, True),
    ):
        super().__init__()
        self.style = style
        stem_padding = tuple(k // 2 for k in stem_kernel)
        stem = [
            nn.Conv3d(3, 64, stem_kernel, (1, 2, 2), stem_padding, bias=False),
            nn.BatchNorm3d(64),
            nn.ReLU(inplace=True),
        ]
        if style == "torchvision":
            self.stem = nn.Sequential(*stem)
        else:
            self.conv1, self.bn1, self.relu = stem
        self.maxpool = nn.MaxPool3d(3, 2, 1) if max_pool else nn.Identity()
        self.inplanes = 64
        self.layer1 = self._make_layer(block, 64, layers[0], 1, temporal[0])
        self.layer2 = self._make_layer(block, 128, layers[1], 2, temporal[1])
        self.layer3 = self._make_layer(block, 256, layers[2], 2, temporal[2])
        self.layer4 = self._make_layer(block, 512, layers[3], 2, temporal[3])
        self.avgpool = nn.AdaptiveAvgPool3d(1)
        self.dropout = nn.Dropout(dropout)
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    @property
    def head(self):
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        self.fc = nn.Linear(self.num_features, num_classes)

    def _make_layer(self, block, planes, blocks, stride, temporal):
        downsample = None
        cout = planes * block.expansion
        if stride != 1 or self.inplanes != cout:
            ds_stride = (stride if temporal else 1, stride, stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, cout, 1, ds_stride, bias=False), nn.BatchNorm3d(cout)
            )
        layers = []
        for i in range(blocks):
            s, ds = (stride, downsample) if i == 0 else (1, None)
            layers.append(block(self.inplanes, planes, s, ds, temporal=temporal))
            self.inplanes = cout
        return nn.Sequential(*layers)

    def forward_features(self, x):
        x = self.stem(x) if self.style == "torchvision" else self.relu(self.bn1(self.conv1(x)))
        x = self.maxpool(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


def r3d_18(num_classes=7, pretrained=None, **kwargs):
    """R3D-18; `pretrained`: torchvision's ``r3d_18`` Kinetics-400 state dict (a local file)."""
    model = ResNet3D(TVBasicBlock, [2, 2, 2, 2], num_classes, style="torchvision", **kwargs)
    return load_pretrained(model, pretrained)


def mc3_18(num_classes=7, pretrained=None, **kwargs):
    """MC3-18 (mixed convolutions: 3D in the first stage, 1×3×3 after), torchvision's layout;
    `pretrained`: its ``mc3_18`` Kinetics-400 state dict."""
    model = ResNet3D(
        TVBasicBlock,
        [2, 2, 2, 2],
        num_classes,
        style="torchvision",
        temporal=(True, False, False, False),
        **kwargs,
    )
    return load_pretrained(model, pretrained)


def resnet3d_18(num_classes=7, pretrained=None, **kwargs):
    """3D ResNet-18 of Hara et al.; `pretrained`: a checkpoint of their release."""
    model = ResNet3D(
        HaraBasicBlock,
        [2, 2, 2, 2],
        num_classes,
        style="hara",
        stem_kernel=(7, 7, 7),
        max_pool=True,
        **kwargs,
    )
    return load_pretrained(model, pretrained)
