"""3D residual networks: R3D-18 (torchvision's layout), 3D ResNet-18 (Hara et al.), P3D.

- ``r3d_18``: Tran et al. 2018 as torchvision builds it. Parameter names are torchvision's
  (``stem.0``, ``layer1.0.conv1.0`` …, ``fc``), so its Kinetics-400 checkpoint loads as is.
- ``resnet3d_18``: Hara, Kataoka & Satoh (CVPR 2018), "3D ResNet-18" in DFEW's Table 3: a 7×7×7
  stem and max-pooling. Names are those of their release (``conv1``, ``bn1``, ``layer1.0.conv1``
  …, ``fc``; its ``module.`` prefix is stripped on load).
- ``p3d_63`` / ``p3d_199``: Pseudo-3D ResNets (Qiu et al., ICCV 2017): bottlenecks whose 3×3×3
  convolution is split into a 1×3×3 spatial and a 3×1×1 temporal one, cycling the serial (A),
  parallel (B) and serial-with-shortcut (C) arrangements.
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
    """torchvision's video BasicBlock: conv1 = [conv, bn, relu], conv2 = [conv, bn]."""

    expansion = 1

    def __init__(self, cin, cout, stride=1, downsample=None):
        super().__init__()
        self.conv1 = _bn_relu_conv(cin, cout, 3, stride, 1)
        self.conv2 = nn.Sequential(nn.Conv3d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm3d(cout))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + identity)


class HaraBasicBlock(nn.Module):
    """Hara et al.'s BasicBlock: conv1, bn1, conv2, bn2 (shortcut B: 1×1×1 conv + BN)."""

    expansion = 1

    def __init__(self, cin, cout, stride=1, downsample=None):
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


class P3DBottleneck(nn.Module):
    """Bottleneck with a pseudo-3D middle: spatial S (1×3×3) and temporal T (3×1×1) convs.

    kind "A": T(S(x)); "B": S(x) + T(x); "C": S(x) + T(S(x)).
    """

    expansion = 4

    def __init__(self, cin, width, stride=1, downsample=None, kind="A"):
        super().__init__()
        self.kind = kind
        cout = width * self.expansion
        self.conv1 = nn.Conv3d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm3d(width)
        self.conv_s = nn.Conv3d(width, width, (1, 3, 3), (1, stride, stride), (0, 1, 1), bias=False)
        self.bn_s = nn.BatchNorm3d(width)
        self.conv_t = nn.Conv3d(width, width, (3, 1, 1), 1, (1, 0, 0), bias=False)
        self.bn_t = nn.BatchNorm3d(width)
        self.conv3 = nn.Conv3d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm3d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        # B applies T to the block input; with a spatial stride it is subsampled to the size of
        # S's output (ceil(side / stride), as the padded strided convolution gives).
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        s = self.relu(self.bn_s(self.conv_s(out)))
        if self.kind == "A":
            out = self.relu(self.bn_t(self.conv_t(s)))
        elif self.kind == "B":
            t_in = out[:, :, :, :: self.stride, :: self.stride]
            out = s + self.relu(self.bn_t(self.conv_t(t_in)))
        else:
            out = s + self.relu(self.bn_t(self.conv_t(s)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


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
        p3d=False,
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
        self._block_index = 0
        self._p3d = p3d
        self.layer1 = self._make_layer(block, 64, layers[0], 1)
        self.layer2 = self._make_layer(block, 128, layers[1], 2)
        self.layer3 = self._make_layer(block, 256, layers[2], 2)
        self.layer4 = self._make_layer(block, 512, layers[3], 2)
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

    def _make_layer(self, block, planes, blocks, stride):
        downsample = None
        cout = planes * block.expansion
        if stride != 1 or self.inplanes != cout:
            ds_stride = stride if not self._p3d else (1, stride, stride)
            downsample = nn.Sequential(
                nn.Conv3d(self.inplanes, cout, 1, ds_stride, bias=False), nn.BatchNorm3d(cout)
            )
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            ds = downsample if i == 0 else None
            if self._p3d:
                kind = "ABC"[self._block_index % 3]
                layers.append(block(self.inplanes, planes, s, ds, kind=kind))
            else:
                layers.append(block(self.inplanes, planes, s, ds))
            self._block_index += 1
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


def _p3d(layers, num_classes, pretrained, **kwargs):
    model = ResNet3D(
        P3DBottleneck,
        layers,
        num_classes,
        style="hara",
        stem_kernel=(1, 7, 7),
        max_pool=True,
        p3d=True,
        **kwargs,
    )
    return load_pretrained(model, pretrained)


def p3d_63(num_classes=7, pretrained=None, **kwargs):
    """P3D with ResNet-50's stage depths (3, 4, 6, 3)."""
    return _p3d([3, 4, 6, 3], num_classes, pretrained, **kwargs)


def p3d_199(num_classes=7, pretrained=None, **kwargs):
    """P3D-199 (stage depths 3, 8, 36, 3), the paper's deepest."""
    return _p3d([3, 8, 36, 3], num_classes, pretrained, **kwargs)
