"""Our Table 3 networks start from the DFEW authors' weights rule and, for I3D, pad as their
port does, checked against their layer definitions (github jiangxingxun/DFEW,
``DataDistributedParallel``).

Initialisation, ``libs/Performer.py`` ``load_model`` (``model_init: True`` in every config):
every ``nn.Conv2d`` and ``nn.Linear`` → ``kaiming_normal_(mode="fan_in",
nonlinearity="relu")``, std √(2 / fan_in); Conv3d layers keep their constructor's rule, which
for ``makemodel/p3d.py`` is normal(0, √(2 / n)) with n = kernel[0]·kernel[1]·out_channels.
The counts below are the Conv2d and Linear layers of their networks, counted by building
their ``makemodel`` classes (torch 2.13) and torchvision's r3d_18/mc3_18 with the new ``fc``
of ``load_model``: I3D has none (its classifier is a 1×1×1 Conv3d ``logits``).

I3D padding, ``makemodel/i3d.py`` ``Unit3D.compute_pad`` and ``MaxPool3dSamePadding``:
`their_pads` below is their rule, written as they wrote it; `their_forward` runs our modules'
weights through their definitions (dynamic zero padding, then conv or pool with none).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from ml.networks import build_model
from ml.networks.i3d import I3D, InceptionModule, MaxPool3dSame, Unit3D, same_padding

# (Conv2d, Linear) layers their Performer re-initialises, and P3D's Conv3d under its own rule.
AUTHORS_COUNTS = {
    "c3d": (0, 3, 0),
    "p3d": (10, 1, 56),
    "r3d_18": (0, 1, 0),
    "mc3_18": (0, 1, 0),
    "i3d": (0, 0, 0),
    "resnet18_lstm": (29, 1, 0),
}


def _kaiming_fan_in_std(m: nn.Module) -> float:
    fan_in = m.weight[0].numel()
    return math.sqrt(2.0 / fan_in)


def _p3d_conv3d_std(m: nn.Conv3d) -> float:
    return math.sqrt(2.0 / (m.kernel_size[0] * m.kernel_size[1] * m.out_channels))


def _assert_std(weight: torch.Tensor, expected: float, what: str) -> None:
    if weight.numel() < 2000:  # too few draws to measure a spread to 10 %
        return
    measured = float(weight.detach().float().std())
    assert measured == pytest.approx(expected, rel=0.1), what


@pytest.mark.parametrize("name", list(AUTHORS_COUNTS))
class AuthorsInitTests:
    def test_it_reinitialises_the_layers_their_code_does_with_their_spread(self, name):
        torch.manual_seed(0)
        model = build_model(name, 7, init="authors", i3d_padding="tf-same")
        head = model.head if name == "i3d" else None
        conv2d = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
        linear = [m for m in model.modules() if isinstance(m, nn.Linear) and m is not head]
        own_rule = [m for m in model.modules() if isinstance(m, nn.Conv3d)] if "p3d" in name else []
        assert (len(conv2d), len(linear), len(own_rule)) == AUTHORS_COUNTS[name]
        for m in conv2d + linear:
            _assert_std(m.weight, _kaiming_fan_in_std(m), f"{name} {m}")
        for m in own_rule:
            _assert_std(m.weight, _p3d_conv3d_std(m), f"{name} {m}")
        if head is not None:  # their classifier is a Conv3d, left at PyTorch's default
            _assert_std(head.weight, 1 / math.sqrt(3 * head.in_features), "i3d head")

    def test_the_textbook_variant_keeps_pytorchs_rule(self, name):
        torch.manual_seed(0)
        model = build_model(name, 7, init="default", i3d_padding="symmetric")
        head = model.head
        # PyTorch's Linear default: kaiming-uniform(a=√5), std 1/√(3·fan_in)
        _assert_std(head.weight, 1 / math.sqrt(3 * head.in_features), f"{name} head")


def their_pads(shape, kernel, stride) -> tuple[int, ...]:
    """Their ``compute_pad`` and the split that follows it, verbatim in substance."""
    t, h, w = shape
    kernel = kernel if isinstance(kernel, tuple | list) else (kernel,) * 3
    stride = stride if isinstance(stride, tuple | list) else (stride,) * 3

    def compute_pad(dim, s):
        if s % stride[dim] == 0:
            return max(kernel[dim] - stride[dim], 0)
        return max(kernel[dim] - (s % stride[dim]), 0)

    pad_t, pad_h, pad_w = compute_pad(0, t), compute_pad(1, h), compute_pad(2, w)
    pad_t_f, pad_h_f, pad_w_f = pad_t // 2, pad_h // 2, pad_w // 2
    return (pad_w_f, pad_w - pad_w_f, pad_h_f, pad_h - pad_h_f, pad_t_f, pad_t - pad_t_f)


def their_forward(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """`module`'s weights through their layer definitions."""
    if isinstance(module, Unit3D):
        conv = module.conv3d
        x = F.pad(x, their_pads(x.shape[2:], conv.kernel_size, conv.stride))
        x = F.conv3d(x, conv.weight, conv.bias, conv.stride, 0)
        return F.relu(module.bn(x))
    if isinstance(module, nn.MaxPool3d):
        x = F.pad(x, their_pads(x.shape[2:], module.kernel_size, module.stride))
        return F.max_pool3d(x, module.kernel_size, module.stride, 0)
    if isinstance(module, InceptionModule):
        m = module
        return torch.cat(
            [
                their_forward(m.b0, x),
                their_forward(m.b1b, their_forward(m.b1a, x)),
                their_forward(m.b2b, their_forward(m.b2a, x)),
                their_forward(m.b3b, their_forward(m.b3a, x)),
            ],
            1,
        )
    raise TypeError(type(module))


class I3DPaddingTests:
    @pytest.mark.parametrize(
        "shape, kernel, stride, pads",
        [
            # the stem at 16×224²: total 7 − 2 = 5 per side, 2 before and 3 after
            ((16, 224, 224), 7, 2, (2, 3, 2, 3, 2, 3)),
            # MaxPool3d_2a 1×3×3 stride 1,2,2 on 8×112²: none in time, (0, 1) in space
            ((8, 112, 112), (1, 3, 3), (1, 2, 2), (0, 1, 0, 1, 0, 0)),
            # MaxPool3d_4a 3×3×3 stride 2 on an odd 7×7 (112 input): 3 − 1 = 2, (1, 1)
            ((4, 7, 7), 3, 2, (1, 1, 1, 1, 0, 1)),
            # MaxPool3d_5a 2×2×2 stride 2 on 2×7×7: 2 − 1 = 1 in space, none in time
            ((2, 7, 7), 2, 2, (0, 1, 0, 1, 0, 0)),
            # a 3×3×3 stride-1 conv: symmetric (1, 1), as PyTorch's padding=1
            ((8, 28, 28), 3, 1, (1, 1, 1, 1, 1, 1)),
        ],
    )
    def test_same_padding_is_their_compute_pad(self, shape, kernel, stride, pads):
        assert their_pads(shape, kernel, stride) == pads
        assert same_padding(shape, kernel, stride) == pads

    @pytest.mark.parametrize("shape", [(16, 64, 64), (10, 56, 56), (16, 112, 112)])
    def test_every_stage_outputs_what_their_definition_outputs(self, shape):
        torch.manual_seed(0)
        model = I3D(7, padding="tf-same").eval()
        x = torch.rand(1, 3, *shape)
        ours = theirs = x
        with torch.no_grad():
            for stage in model._stages:
                ours = getattr(model, stage)(ours)
                theirs = their_forward(getattr(model, stage), theirs)
                assert ours.shape == theirs.shape, stage
                assert torch.allclose(ours, theirs, atol=1e-5), stage
        assert isinstance(model.MaxPool3d_4a_3x3, MaxPool3dSame)

    def test_the_symmetric_variant_has_their_shapes_but_other_windows(self):
        torch.manual_seed(0)
        same = I3D(7, padding="tf-same").eval()
        symmetric = I3D(7, padding="symmetric").eval()
        symmetric.load_state_dict(same.state_dict())
        x = torch.rand(1, 3, 16, 64, 64)
        with torch.no_grad():
            a, b = same.Conv3d_1a_7x7(x), symmetric.Conv3d_1a_7x7(x)
        assert a.shape == b.shape == (1, 64, 8, 32, 32)
        assert not torch.allclose(a, b, atol=1e-3)  # each window one pixel later in theirs
