"""The DFEW authors' initialisation (``--init authors``, the default of ``--protocol dfew``).

Their training code (github jiangxingxun/DFEW, ``libs/Performer.py`` ``load_model``, with
``model_init: True`` in every config) re-initialises, after building any network:

- every ``nn.Conv2d`` and ``nn.Linear`` weight: ``kaiming_normal_(mode="fan_in",
  nonlinearity="relu")``, i.e. normal(0, √(2 / fan_in)); biases keep PyTorch's default;
- every ``nn.BatchNorm2d``: weight 1, bias 0.

Conv3d layers keep what the network's constructor gave them: torchvision's kaiming fan_out
for r3d_18 / mc3_18, PyTorch's default for C3D and I3D, and P3D's own rule (in
``ml/networks/p3d.py``, built with ``init="authors"``). I3D's classifier is a 1×1×1 Conv3d in
their code, so it keeps PyTorch's default although ours is a Linear.
"""

from __future__ import annotations

from torch import nn


def authors_init(model: nn.Module) -> nn.Module:
    """Applies their ``Performer.load_model`` rule to `model` in place; returns it."""
    skip = model.head if getattr(model, "head_is_conv_in_authors_code", False) else None
    for m in model.modules():
        if isinstance(m, nn.Conv2d | nn.Linear) and m is not skip:
            nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    return model


def initialise(model: nn.Module, init: str) -> nn.Module:
    """``authors`` (above) or ``default`` (what the constructor gave: PyTorch's and
    torchvision's rules, kaiming fan_out for P3D's convolutions)."""
    if init == "authors":
        return authors_init(model)
    if init != "default":
        raise ValueError(f"unknown init {init!r}; known: authors, default")
    return model
