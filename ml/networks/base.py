"""What every benchmark network offers, so the training loop treats them alike."""

from __future__ import annotations

import torch
from torch import nn


class VideoClassifier(nn.Module):
    """A network on clips ``B × 3 × T × H × W`` returning ``(logits, features)``.

    ``features`` are the penultimate activations, the input of the classifier: EC-STFL and
    center loss act on them. Subclasses implement ``forward_features`` and own ``self.head``
    (an ``nn.Linear``, or a 1×1×1 convolution for I3D) plus ``self.dropout``.
    """

    num_features: int
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.dropout(features))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.forward_features(x)
        return self.forward_head(features), features

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh classifier for `num_classes`, e.g. after loading weights of another task."""
        self.head = nn.Linear(self.num_features, num_classes)


def to_channels_last(model: nn.Module) -> nn.Module:
    """Channels-last memory for every convolution weight: 5-D (3D convolutions) and 4-D (the
    2D backbones of the CNN+LSTM models; ``Module.to(memory_format=channels_last_3d)`` refuses
    those)."""

    def convert(t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 5:
            return t.contiguous(memory_format=torch.channels_last_3d)
        if t.dim() == 4:
            return t.contiguous(memory_format=torch.channels_last)
        return t

    return model._apply(convert)


def load_pretrained(
    model: nn.Module, path: str | None, rename=None, fresh: tuple[str, ...] = ()
) -> nn.Module:
    """Loads a local checkpoint into `model`, skipping its classifier when the class counts
    differ. `rename(key) -> key | None` maps the checkpoint's names onto ours (None drops);
    parameters under the `fresh` prefixes may be absent from it (e.g. an LSTM on top of an
    ImageNet backbone). Any other missing weight is an error: the file is not for this model.
    Checkpoint keys the model does not have are ignored."""
    if not path:
        return model
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if isinstance(state, dict) and "model" in state and isinstance(state["model"], dict):
        state = state["model"]
    own = model.state_dict()
    mapped = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = rename(key) if rename else key
        if key is None:
            continue
        if key in own and own[key].shape != value.shape:
            continue  # a classifier for another number of classes
        mapped[key] = value
    missing = model.load_state_dict(mapped, strict=False).missing_keys
    not_head = [k for k in missing if not k.startswith(("head.", "fc.", *fresh))]
    if not_head:
        raise ValueError(f"{path}: weights missing for {not_head[:5]} (and {len(not_head)} in all)")
    return model
