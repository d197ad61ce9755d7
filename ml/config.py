"""What one training run is: `TrainConfig`, the two protocols, and the command line built from it.

A protocol fills every hyper-parameter left unset (``None``):

- ``dfew`` (the default): the DFEW authors' launched configuration (github jiangxingxun/DFEW,
  ``DataDistributedParallel``: ``config/*.yaml`` as ``run.sh`` launches it): Adam, lr 1e-3
  held constant (their ExponentialLR is built but never stepped), a **global** batch of 256
  (``run.sh``: 64 per GPU on 4 GPUs; the yaml's 32 is ``--global-batch yaml``), 100 epochs
  (the r3d_18 launch line), from scratch with their initialisation (``Performer.load_model``:
  kaiming-normal fan_in on Conv2d and Linear; P3D's own Conv3d rule) and I3D's
  TensorFlow-"same" padding; input side per model (112 for r3d_18, mc3_18, ResNet18+LSTM and
  C3D, 160 for P3D, 224 for I3D); no augmentation; a plain resize at test; ImageNet mean/std
  only with pretrained weights; 16 frames drawn afresh per clip and epoch in training, their
  linspace rule at test; the test fold evaluated after every epoch (as they do), the last and
  the best epoch both reported.
- ``modern``: this project's earlier recipe, kept as an explicit choice: SGD 0.01 with
  momentum 0.9 and weight decay 1e-4, one epoch of warm-up then cosine decay, batch 16, 20
  epochs, 112 for C3D and 224 otherwise, random crop 0.875 and flip in training, centre crop
  0.875 at test, ImageNet mean/std always, the same 16 frames of a clip in every epoch.

A recipe (``--recipe ecstfl-release``) layers a published training recipe over the protocol:
the 2024 EC-STFL release (github CV-AC/ECSTFL, ``finetune.py``): SGD 0.01, momentum 0.9, wd
1e-4, StepLR(50, 0.1), 200 epochs, batch 32 on one process, 8 segments × 2 consecutive
frames, RandomSizedCrop + flip at 112, the release's EC-STFL with λ = 10, best epoch kept.

An explicit value (``--lr 0.02``) overrides the protocol's and is recorded with the rest:
``results.json`` holds the resolved config, every field set, and a run that differs from its
named protocol or recipe is titled "dfew, modified: <what>" (`modifications`).
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
# Named global batches: what run.sh launched (64 per GPU × 4 GPUs) and what the yaml says.
NAMED_GLOBAL_BATCHES = {"launched": 256, "yaml": 32}
# The batch the release's λ = 10 was set under (finetune.py ``-b 32``, one process): the
# release EC-STFL is divided by the batch it sees, so λ is rescaled to this batch.
ECSTFL_RELEASE_BATCH = 32

PROTOCOLS: dict[str, dict] = {
    "dfew": {
        "optimizer": "adam",
        "lr": 1e-3,
        "schedule": "constant",
        "weight_decay": 0.0,
        "warmup_epochs": 0.0,
        "global_batch": 256,
        "epochs": 100,
        "augment": False,
        "crop": "fraction",
        "test_crop": 1.0,
        "normalize": "pretrained",
        "train_sampling": "random",
        "lr_step": 50,
        "init": "authors",
        "i3d_padding": "tf-same",
    },
    "modern": {
        "optimizer": "sgd",
        "lr": 0.01,
        "schedule": "cosine",
        "weight_decay": 1e-4,
        "warmup_epochs": 1.0,
        "global_batch": 16,
        "epochs": 20,
        "augment": True,
        "crop": "fraction",
        "test_crop": 0.875,
        "normalize": "always",
        "train_sampling": "fixed",
        "lr_step": 50,
        "init": "default",
        "i3d_padding": "symmetric",
    },
}
RECIPES: dict[str, dict] = {
    # github CV-AC/ECSTFL finetune.py + dataloader/Videos_Dataset.py (2024): r3d_18 from
    # torchvision with its own initialisation, no mean/std, plain resize to 112 at test.
    "ecstfl-release": {
        "optimizer": "sgd",
        "lr": 0.01,
        "schedule": "step",
        "lr_step": 50,
        "weight_decay": 1e-4,
        "warmup_epochs": 0.0,
        "global_batch": 32,
        "epochs": 200,
        "augment": True,
        "crop": "random-sized",
        "test_crop": 1.0,
        "normalize": "pretrained",
        "train_sampling": "segments",
        "init": "default",
        "input_size": 112,
        "loss": "ec-stfl",
        "ec_stfl_variant": "release",
        "lam": 10.0,
    },
}
PROTOCOL_TITLES = {
    "dfew": "the DFEW authors' protocol",
    "modern": "the modern recipe (not the authors')",
    "ecstfl-release": "the 2024 EC-STFL release's recipe",
}
# The feature-loss weight λ when none is given: the poster's EC-STFL runs used small weights;
# the 2024 release's README trains with 10; center loss: Wen et al.'s face experiments, 0.003.
DEFAULT_LAMBDA = {"poster": 0.1, "release": 10.0, "center": 0.003}
# What a protocol fixes besides its table: fields whose change makes a run "modified".
FIXED = {"frames": 16, "upsample": False, "bf16": False}


def parse_global_batch(text) -> int:
    """ "256", "launched" (256) or "yaml" (32) → clips per optimiser step over all processes."""
    text = str(text).strip()
    if text in NAMED_GLOBAL_BATCHES:
        return NAMED_GLOBAL_BATCHES[text]
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"--global-batch {text!r}: a positive number, or one of "
            + ", ".join(f"{k} ({v})" for k, v in NAMED_GLOBAL_BATCHES.items())
        )
    return int(text)


@dataclass(frozen=True)
class BatchPlan:
    """How a global batch is made: ``world`` processes × ``accumulation`` micro-batches of
    ``micro`` clips = ``global_batch`` clips per optimiser step (``per_process`` each)."""

    world: int
    per_process: int
    micro: int
    accumulation: int
    global_batch: int

    def record(self) -> dict:
        return {
            "world_size": self.world,
            "per_process_batch": self.per_process,
            "micro_batch": self.micro,
            "accumulation": self.accumulation,
            "global_batch": self.global_batch,
        }


# Clips per forward pass when --batch-size is not given: run.sh's 64 per GPU, so that one
# device accumulating 256 sees batch-norm statistics over as many clips as theirs did.
DEFAULT_MICRO_BATCH = 64


def batch_plan(global_batch: int, world: int, micro: int | None = None) -> BatchPlan:
    """Per process = global / world; ``micro`` (``--batch-size``, what one forward pass
    holds) splits it further by gradient accumulation: by default the largest divisor of the
    per-process share up to 64 (their per-GPU batch). Refuses sizes that do not divide."""
    if global_batch % world:
        raise ValueError(
            f"a global batch of {global_batch} does not split over {world} processes; "
            "choose --global-batch a multiple of the number of processes"
        )
    per_process = global_batch // world
    if not micro:
        micro = max(
            d for d in range(1, min(per_process, DEFAULT_MICRO_BATCH) + 1) if per_process % d == 0
        )
    if micro > per_process or per_process % micro:
        raise ValueError(
            f"--batch-size {micro} does not divide the {per_process} clips per process "
            f"(global batch {global_batch} over {world}); choose a divisor of {per_process}"
        )
    return BatchPlan(world, per_process, micro, per_process // micro, global_batch)


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


def _show(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


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
    recipe: str | None = field(
        default=None,
        metadata=_opt(
            "a published recipe layered over the protocol (ecstfl-release: the 2024 EC-STFL "
            "code's SGD, StepLR, 200 epochs, 8×2 segments, crop + flip, λ 10)",
            choices=tuple(RECIPES),
        ),
    )
    model: str = field(default="r3d_18", metadata=_opt("network", choices=MODELS))
    loss: str | None = field(
        default=None, metadata=_opt("auxiliary feature loss (ce: none)", choices=LOSSES)
    )
    lam: float | None = field(
        default=None,
        metadata=_opt(
            "weight λ of the feature loss, L = L_s + λ·L_aux; a list (0.01,0.1,1) sweeps it "
            "(default 0.1; 10 for the release EC-STFL, rescaled to its batch of 32; 0.003 "
            "for center loss)",
            flag="--lambda",
            sweep=True,
        ),
    )
    ec_stfl_variant: str | None = field(
        default=None,
        metadata=_opt(
            "EC-STFL: the poster's formula (default) or the 2024 release's",
            choices=EC_STFL_VARIANTS,
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
    global_batch: int | None = field(
        default=None,
        metadata=_opt(
            "clips per optimiser step over all processes: a number, launched (256, the "
            "authors' run.sh) or yaml (32, their config files)",
            parse=parse_global_batch,
        ),
    )
    batch_size: int | None = field(
        default=None,
        metadata=_opt(
            "clips per forward pass and process (default: the per-process share, global batch "
            "/ processes, up to 64 as the authors' GPUs); smaller accumulates gradients to the "
            "same global batch"
        ),
    )
    optimizer: str | None = field(default=None, metadata=_opt("", choices=("adam", "sgd")))
    lr: float | None = field(default=None, metadata=_opt("learning rate"))
    schedule: str | None = field(
        default=None,
        metadata=_opt("learning-rate schedule", choices=("constant", "cosine", "step")),
    )
    lr_step: int | None = field(
        default=None, metadata=_opt("epochs per ×0.1 step of the step schedule (StepLR)")
    )
    weight_decay: float | None = field(default=None, metadata=_opt("weight decay"))
    warmup_epochs: float | None = field(default=None, metadata=_opt("warm-up (cosine only)"))
    center_alpha: float = field(
        default=0.5, metadata=_opt("center loss: Wen et al.'s centre update rate α")
    )
    input_size: int | None = field(default=None, metadata=_opt("input side (the model's)"))
    augment: bool | None = field(default=None, metadata=_opt("random crop and flip in training"))
    crop: str | None = field(
        default=None,
        metadata=_opt(
            "training crop: fraction (test-crop share, random place) or random-sized "
            "(8-100 %% of the area, aspect 3/4-4/3, the release's RandomSizedCrop)",
            choices=("fraction", "random-sized"),
        ),
    )
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
            "training frames: random (drawn afresh per epoch), fixed (the test frames) or "
            "segments (the release's 8 segments × 2 frames; its mid-segment rule at test)",
            choices=("random", "fixed", "segments"),
        ),
    )
    frames: int = field(default=16, metadata=_opt("frames per clip"))
    init: str | None = field(
        default=None,
        metadata=_opt(
            "weights at the start: authors (kaiming-normal fan_in on Conv2d and Linear, "
            "P3D's Conv3d rule) or default (PyTorch's and torchvision's)",
            choices=("authors", "default"),
        ),
    )
    i3d_padding: str | None = field(
        default=None,
        metadata=_opt(
            "I3D: tf-same (TensorFlow's asymmetric SAME, as the authors' port) or symmetric",
            choices=("tf-same", "symmetric"),
        ),
    )
    upsample: bool = field(
        default=False,
        metadata=_opt("train on frames smaller than the input side (upsampled; refused otherwise)"),
    )
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
            "and --init-from) or none (deleted). Every epoch's test WAR/UAR is recorded; "
            "the best epoch's weights are not kept",
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
        check("recipe", self.recipe, RECIPES)
        for f in fields(self):
            if "choices" in f.metadata:
                check(f.name.replace("_", " "), getattr(self, f.name), f.metadata["choices"])
        if not self.folds or any(k < 1 for k in self.folds):
            raise ValueError("folds are numbered from 1")

    def defaults(self) -> dict:
        """What the named protocol (and recipe) sets, for this model."""
        values = dict(PROTOCOLS[self.protocol])
        values["input_size"] = input_size_for(self.protocol, self.model)
        values.update({"loss": "ce", "ec_stfl_variant": "poster"})
        values.update(RECIPES.get(self.recipe, {}))
        return values

    def resolved(self) -> TrainConfig:
        """A copy with every ``None`` hyper-parameter set from the protocol and recipe."""
        values = {k: v for k, v in self.defaults().items() if getattr(self, k) is None}
        loss = values.get("loss", self.loss)
        variant = values.get("ec_stfl_variant", self.ec_stfl_variant)
        if self.lam is None and "lam" not in values:
            values["lam"] = DEFAULT_LAMBDA["center" if loss == "center" else variant]
        if self.out is None:
            values["out"] = f"runs/{self.model}-{loss}"
        return replace(self, **values)

    @property
    def setting(self) -> str:
        """The named setting: the recipe when there is one, else the protocol."""
        return self.recipe or self.protocol

    def modifications(self) -> list[str]:
        """How the resolved run differs from its named protocol or recipe ("epochs 2 (not
        100)"); empty when it is that setting exactly. Which test folds, the device, the
        workers and the per-process forward batch (accumulation keeps the global batch) are
        not modifications; the loss and its λ are one only under a recipe that fixes them."""
        cfg = self.resolved()
        reference = {**self.defaults(), **FIXED}
        if not self.recipe:
            reference = {k: v for k, v in reference.items() if k not in ("loss", "ec_stfl_variant")}
        changed = []
        for key, expected in reference.items():
            value = getattr(cfg, key)
            if value != expected:
                changed.append(f"{key.replace('_', ' ')} {_show(value)} (not {_show(expected)})")
        if self.pretrained:
            changed.append("pretrained weights")
        if self.init_from:
            changed.append("fine-tuned from a checkpoint")
        return changed

    def label(self) -> str:
        """ "dfew", or "dfew, modified: epochs 2 (not 100)"."""
        changed = self.modifications()
        return f"{self.setting}, modified: {'; '.join(changed)}" if changed else self.setting

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
