"""What one training run is: `TrainConfig`, the two protocols, and the command line built from it.

A protocol fills every hyper-parameter left unset (``None``):

- ``dfew`` (the default): the DFEW authors' released configs (github jiangxingxun/DFEW,
  ``DataDistributedParallel/config/*.yaml``): Adam, lr 1e-3 held constant, batch 32, 100
  epochs, from scratch; input side per model (112 for r3d_18, mc3_18, ResNet18+LSTM and C3D,
  160 for P3D, 224 for I3D); no augmentation; a plain resize at test; ImageNet mean/std only
  with pretrained weights; 16 frames drawn afresh per clip and epoch in training, their
  linspace rule at test; the last epoch evaluated.
- ``modern``: this project's earlier recipe, kept as an explicit choice: SGD 0.01 with
  momentum 0.9 and weight decay 1e-4, one epoch of warm-up then cosine decay, batch 16, 20
  epochs, 112 for C3D and 224 otherwise, random crop 0.875 and flip in training, centre crop
  0.875 at test, ImageNet mean/std always, the same 16 frames of a clip in every epoch.

An explicit value (``--lr 0.02``) overrides the protocol's and is recorded with the rest:
``results.json`` holds the resolved config, every field set.
"""

from __future__ import annotations

import argparse
import typing
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path

from ml.networks import DFEW_INPUT_SIZE, MODELS

LOSSES = ("ce", "center", "ec-stfl")
TARGETS = ("single", "distribution")
EC_STFL_VARIANTS = ("poster", "release")

PROTOCOLS: dict[str, dict] = {
    "dfew": {
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "weight_decay": 0.0,
        "warmup_epochs": 0.0,
        "batch_size": 32,
        "epochs": 100,
        "augment": False,
        "test_crop": 1.0,
        "normalize": "pretrained",
        "train_sampling": "random",
    },
    "modern": {
        "optimizer": "sgd",
        "lr": 0.01,
        "schedule": "cosine",
        "weight_decay": 1e-4,
        "warmup_epochs": 1.0,
        "batch_size": 16,
        "epochs": 20,
        "augment": True,
        "test_crop": 0.875,
        "normalize": "always",
        "train_sampling": "fixed",
    },
}
PROTOCOL_TITLES = {
    "dfew": "the DFEW authors' protocol",
    "modern": "the modern recipe (not the authors')",
}
# EC-STFL's weight λ when none is given: the poster's runs used small weights; the 2024
# release's README trains with 10.
DEFAULT_LAMBDA = {"poster": 0.1, "release": 10.0}


def input_size_for(protocol: str, model: str) -> int:
    """The input side a protocol trains `model` at."""
    if protocol == "dfew":
        return DFEW_INPUT_SIZE.get(model, 112)
    return 112 if model.startswith("c3d") else 224


def parse_folds(text: str) -> list[int]:
    """ "1-5" or "1,3" → [1, 2, 3, 4, 5] / [1, 3]."""
    folds: list[int] = []
    for part in str(text).split(","):
        if "-" in part:
            lo, hi = part.split("-")
            folds += list(range(int(lo), int(hi) + 1))
        elif part.strip():
            folds.append(int(part))
    return folds


def _opt(help: str, **more) -> dict:
    return {"help": help, **more}


@dataclass
class TrainConfig:
    """One run. ``None`` means "the protocol's value"; `resolved()` fills them in. The command
    line of ``python -m ml.train`` and ``manage.py train_benchmark`` is built from these fields
    (their metadata holds the help text)."""

    data: str = field(metadata=_opt("a compact export or DFEW's release root"))
    out: str | None = field(default=None, metadata=_opt("output folder (runs/<model>-<loss>)"))
    protocol: str = field(
        default="dfew", metadata=_opt("hyper-parameter defaults", choices=tuple(PROTOCOLS))
    )
    model: str = field(default="r3d_18", metadata=_opt("network", choices=MODELS))
    loss: str = field(default="ce", metadata=_opt("auxiliary feature loss", choices=LOSSES))
    lam: float | None = field(
        default=None,
        metadata=_opt(
            "weight λ of the feature loss, L = L_s + λ·L_aux; a list (0.01,0.1,1) sweeps it "
            "(default 0.1, or 10 for the release EC-STFL)",
            flag="--lambda",
            sweep=True,
        ),
    )
    ec_stfl_variant: str = field(
        default="poster",
        metadata=_opt(
            "EC-STFL: the poster's formula or the 2024 release's", choices=EC_STFL_VARIANTS
        ),
    )
    target: str = field(default="single", metadata=_opt("training target", choices=TARGETS))
    folds: list[int] = field(
        default_factory=lambda: [1, 2, 3, 4, 5],
        metadata=_opt(
            'test folds, e.g. "1-5" or "1,3" (default: every fold the export has)',
            parse=parse_folds,
        ),
    )
    epochs: int | None = field(default=None, metadata=_opt("epochs"))
    batch_size: int | None = field(default=None, metadata=_opt("clips per batch and process"))
    optimizer: str | None = field(default=None, metadata=_opt("", choices=("adam", "sgd")))
    lr: float | None = field(default=None, metadata=_opt("learning rate"))
    schedule: str | None = field(
        default=None, metadata=_opt("learning-rate schedule", choices=("constant", "cosine"))
    )
    weight_decay: float | None = field(default=None, metadata=_opt("weight decay"))
    warmup_epochs: float | None = field(default=None, metadata=_opt("warm-up (cosine only)"))
    center_lr: float = field(default=0.5, metadata=_opt("learning rate of the centres"))
    input_size: int | None = field(default=None, metadata=_opt("input side (the model's)"))
    augment: bool | None = field(default=None, metadata=_opt("random crop and flip in training"))
    test_crop: float | None = field(default=None, metadata=_opt("centre-crop share at test"))
    normalize: str | None = field(
        default=None,
        metadata=_opt(
            "ImageNet mean/std: always, or only when pretrained", choices=("pretrained", "always")
        ),
    )
    train_sampling: str | None = field(
        default=None,
        metadata=_opt(
            "training frames: random (drawn afresh per epoch) or fixed (the test frames)",
            choices=("random", "fixed"),
        ),
    )
    frames: int = field(default=16, metadata=_opt("frames per clip"))
    device: str = field(default="cpu", metadata=_opt("cpu, cuda, …"))
    workers: int = field(default=2, metadata=_opt("DataLoader workers"))
    seed: int = field(default=0, metadata=_opt("random seed"))
    resume: bool = field(default=False, metadata=_opt("continue from each fold's last.pt"))
    pretrained: str | None = field(default=None, metadata=_opt("local backbone checkpoint"))
    init_from: str | None = field(
        default=None, metadata=_opt("fine-tune from one of our checkpoints")
    )
    bf16: bool = field(default=False, metadata=_opt("bfloat16 autocast (GPUs)"))
    channels_last: bool = field(default=False, metadata=_opt("channels-last memory format"))
    compile: bool = field(default=False, metadata=_opt("torch.compile the model"))
    progress: bool = field(
        default=True,
        metadata=_opt("no progress bar: one line per epoch instead", flag="--no-progress"),
    )
    keep_checkpoints: str = field(
        default="last",
        metadata=_opt(
            "each fold's checkpoint once its results are written: last (kept, for --resume "
            "and --init-from) or none (deleted). The protocol evaluates the last epoch, so "
            "there is no best one to keep",
            choices=("last", "none"),
        ),
    )
    min_train_clips: int = field(
        default=20,
        metadata=_opt("warn when a class has fewer training clips than this in a fold"),
    )

    def __post_init__(self):
        def check(name, value, known):
            if value is not None and value not in known:
                raise ValueError(f"unknown {name} {value!r}; known: {', '.join(known)}")

        check("model", self.model, MODELS)
        check("loss", self.loss, LOSSES)
        check("target", self.target, TARGETS)
        check("protocol", self.protocol, PROTOCOLS)
        check("EC-STFL variant", self.ec_stfl_variant, EC_STFL_VARIANTS)
        for f in fields(self):
            if "choices" in f.metadata:
                check(f.name.replace("_", " "), getattr(self, f.name), f.metadata["choices"])
        if not self.folds or any(k < 1 for k in self.folds):
            raise ValueError("folds are numbered from 1")

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` hyper-parameter set from the protocol."""
        values = {k: v for k, v in PROTOCOLS[self.protocol].items() if getattr(self, k) is None}
        if self.input_size is None:
            values["input_size"] = input_size_for(self.protocol, self.model)
        if self.lam is None:
            values["lam"] = DEFAULT_LAMBDA[self.ec_stfl_variant]
        if self.out is None:
            values["out"] = f"runs/{self.model}-{self.loss}"
        return replace(self, **values)

    @property
    def normalizes(self) -> bool:
        return self.normalize == "always" or (
            self.normalize == "pretrained" and bool(self.pretrained)
        )

    def record(self) -> dict:
        """The resolved config as results.json records it."""
        return asdict(self.resolved())


# --- command line (shared with `manage.py train_benchmark`) -----------------------------------


def _dest(f) -> str:
    # `manage.py` callers pass no_progress=True (call_command sets dests, not flags)
    return "no_progress" if f.name == "progress" else f.name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per `TrainConfig` field."""
    hints = typing.get_type_hints(TrainConfig)
    for f in fields(TrainConfig):
        flag = f.metadata.get("flag", "--" + f.name.replace("_", "-"))
        kind = hints[f.name]
        base = next((a for a in typing.get_args(kind) if a is not type(None)), kind)
        options: dict = {"dest": _dest(f), "help": f.metadata.get("help") or None}
        if f.name == "progress":  # the one flag that switches something off
            options["action"] = "store_true"
        elif base is bool and f.default is None:
            options.update(action=argparse.BooleanOptionalAction, default=None)
        elif base is bool:
            options["action"] = "store_true"
        elif "parse" in f.metadata or f.metadata.get("sweep"):
            options["default"] = f.metadata.get("text")
        else:
            options.update(type=base, choices=f.metadata.get("choices"))
            options["default"] = None if f.default is MISSING else f.default
        if f.default is MISSING and f.default_factory is MISSING:
            options["required"] = True
        parser.add_argument(flag, **options)


def configs_from_args(args) -> list[TrainConfig]:
    """One config per λ of the sweep (a single λ, or none, gives one)."""
    values = {}
    for f in fields(TrainConfig):
        value = getattr(args, _dest(f))
        if f.name == "progress":
            value = not value
        elif "parse" in f.metadata and value is not None:
            value = f.metadata["parse"](value)
        elif value is None and f.default_factory is not MISSING:
            value = f.default_factory()
        values[f.name] = value
    lambdas = [float(v) for v in str(values.pop("lam") or "").split(",") if v.strip()]
    base = TrainConfig(**values)
    if len(lambdas) <= 1:
        return [replace(base, lam=lambdas[0] if lambdas else None)]
    out = Path(base.resolved().out)
    return [replace(base, lam=lam, out=str(out / f"lambda-{lam:g}")) for lam in lambdas]
