"""The benchmark training loop: k-fold cross-validation of one model with one loss.

``train(cfg) -> Path`` runs every requested fold (test on fold k, train on the others) and
writes, under ``cfg.out``: ``fold<k>/last.pt`` checkpoints, ``results.json``, ``results.md``
(DFEW's Table 3/4 layout: per-class recall, UAR, WAR) and ``confusion.png``.

One process, or many through torchrun with DistributedDataParallel:

    python -m ml.train --data <export> --model c3d --loss ec-stfl --lambda 0.1
    torchrun --nproc_per_node=8 -m ml.train --data <export> --model c3d --device cuda

Each process trains on its shard; evaluation splits the test fold across processes without
padding and gathers every prediction on rank 0, so no test clip is counted twice or missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ml import metrics
from ml.data import CompactDataset, DFEWDataset, prepare_batch
from ml.losses import CenterLoss, ECSTFLLoss, SoftTargetCrossEntropy
from ml.networks import DEFAULT_INPUT_SIZE, INPUT_SIZE, MODELS

LOSSES = ("ce", "center", "ec-stfl")
TARGETS = ("single", "distribution")


@dataclass
class TrainConfig:
    data: str
    out: str = "runs/benchmark"
    model: str = "r3d_18"
    loss: str = "ce"  # ce | center | ec-stfl
    lam: float = 0.1  # weight of the feature loss: L = L_s + λ·L_aux
    target: str = "single"  # single | distribution (soft CE on the ten votes)
    folds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    epochs: int = 20
    batch_size: int = 16
    lr: float = 0.01
    center_lr: float = 0.5  # learning rate of center loss's centres (Wen et al. use 0.5)
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    input_size: int | None = None  # the model's default: 112 for C3D, 224 otherwise
    frames: int = 16
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    resume: bool = False
    pretrained: str | None = None  # backbone weights (Kinetics, ImageNet…), a local file
    init_from: str | None = None  # a checkpoint of ours to fine-tune from (transfer)
    bf16: bool = False
    channels_last: bool = False
    compile: bool = False
    progress: bool = True

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; known: {', '.join(MODELS)}")
        if self.loss not in LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; known: {', '.join(LOSSES)}")
        if self.target not in TARGETS:
            raise ValueError(f"unknown target {self.target!r}; known: {', '.join(TARGETS)}")
        if not self.folds or any(k < 1 for k in self.folds):
            raise ValueError("folds are numbered from 1")

    @property
    def size(self) -> int:
        return self.input_size or INPUT_SIZE.get(self.model, DEFAULT_INPUT_SIZE)


# --- processes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: str) -> Dist:
    """Joins the torchrun process group when launched by torchrun; else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        torch.cuda.set_device(local_rank)
    return Dist(dist.get_rank(), dist.get_world_size(), local_rank)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- data -------------------------------------------------------------------------------------


def build_datasets(cfg: TrainConfig, test_fold: int):
    """(train, test) for one fold, from the compact format or DFEW's release layout."""
    root = Path(cfg.data)
    if (root / "meta.json").exists():
        all_folds = _compact_folds(root)
        train_folds = [k for k in all_folds if k != test_fold]
        # Distribution targets can use clips with no single label for training.
        single_only = cfg.target == "single"
        return (
            CompactDataset(root, train_folds, single_only=single_only),
            CompactDataset(root, [test_fold], single_only=True),
        )
    if (root / "label").is_dir():
        stored = max(cfg.size, 112)
        return (
            DFEWDataset(root, test_fold, "train", cfg.frames, stored),
            DFEWDataset(root, test_fold, "test", cfg.frames, stored),
        )
    raise FileNotFoundError(
        f"{root}: neither a compact export (meta.json) nor DFEW's layout (label/)"
    )


def _compact_folds(root: Path) -> list[int]:
    import csv

    with open(root / "manifest.csv", newline="") as f:
        return sorted({int(row["fold"]) for row in csv.DictReader(f)})


class _Shard(torch.utils.data.Sampler):
    """Rank r of w evaluates items r, r+w, r+2w, …: every item exactly once, no padding
    (DistributedSampler pads the last batch with repeats, which would count clips twice)."""

    def __init__(self, n: int, rank: int, world: int):
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self):
        return len(self.indices)


# --- schedule ---------------------------------------------------------------------------------


def get_lr(step: int, total: int, warmup: int, base: float) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


# --- one fold ---------------------------------------------------------------------------------


@torch.no_grad()
def evaluate(model, loader, cfg: TrainConfig, ctx: Dist, device) -> dict:
    """Predictions on this process's shard, gathered to every rank: clip ids, truths, preds."""
    model.eval()
    ids, truths, preds = [], [], []
    for clips, labels, _votes, clip_ids in loader:
        x = prepare_batch(
            clips.to(device, non_blocking=True),
            cfg.size,
            train=False,
            channels_last=cfg.channels_last,
        )
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits, _ = model(x)
        preds += logits.argmax(1).tolist()
        truths += labels.tolist()
        ids += clip_ids.tolist()
    local = {"clip_ids": ids, "y_true": truths, "y_pred": preds}
    if ctx.world == 1:
        return local
    gathered: list = [None] * ctx.world
    dist.all_gather_object(gathered, local)
    return {key: [v for part in gathered for v in part[key]] for key in local}


def _feature_loss(cfg: TrainConfig, num_classes: int, num_features: int, device):
    if cfg.loss == "center":
        return CenterLoss(num_classes, num_features).to(device)
    if cfg.loss == "ec-stfl":
        return ECSTFLLoss()
    return None


def train_fold(cfg: TrainConfig, test_fold: int, ctx: Dist) -> dict:
    seed_everything(cfg.seed + test_fold)
    device = torch.device(
        cfg.device
        if not cfg.device.startswith("cuda") or ctx.world == 1
        else f"cuda:{ctx.local_rank}"
    )
    train_set, test_set = build_datasets(cfg, test_fold)
    num_classes = len(train_set.label_names)
    train_sampler = (
        DistributedSampler(train_set, ctx.world, ctx.rank, shuffle=True, seed=cfg.seed)
        if ctx.world > 1
        else None
    )
    loader_args = dict(
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0,
    )
    train_loader = DataLoader(
        train_set,
        cfg.batch_size,
        shuffle=train_sampler is None,
        sampler=train_sampler,
        drop_last=len(train_set) > cfg.batch_size,
        generator=torch.Generator().manual_seed(cfg.seed),
        **loader_args,
    )
    test_loader = DataLoader(
        test_set, cfg.batch_size, sampler=_Shard(len(test_set), ctx.rank, ctx.world), **loader_args
    )

    model = MODELS[cfg.model](num_classes=num_classes, pretrained=cfg.pretrained)
    if cfg.init_from:
        state = torch.load(cfg.init_from, map_location="cpu", weights_only=False)["model"]
        own = model.state_dict()
        model.load_state_dict(
            {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}, strict=False
        )
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last_3d)
    aux = _feature_loss(cfg, num_classes, model.num_features, device)
    groups = [{"params": model.parameters(), "lr": cfg.lr}]
    if isinstance(aux, CenterLoss):
        groups.append({"params": aux.parameters(), "lr": cfg.center_lr, "weight_decay": 0.0})
    for g in groups:
        g["base_lr"] = g["lr"]
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    criterion = SoftTargetCrossEntropy() if cfg.target == "distribution" else nn.CrossEntropyLoss()

    fold_dir = Path(cfg.out) / f"fold{test_fold}"
    checkpoint = fold_dir / "last.pt"
    start_epoch = 0
    if cfg.resume and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if aux is not None and state.get("aux"):
            aux.load_state_dict(state["aux"])
        start_epoch = state["epoch"] + 1

    net = model
    if ctx.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.local_rank] if device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)

    steps_per_epoch = max(1, len(train_loader))
    total_steps = steps_per_epoch * cfg.epochs
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    augment = torch.Generator().manual_seed(cfg.seed * 1000 + ctx.rank)
    history = []
    for epoch in range(start_epoch, cfg.epochs):
        if train_sampler is not None:
            train_sampler.set_epoch(epoch)
        net.train()
        seen, loss_sum, t0 = 0, 0.0, time.perf_counter()
        batches = train_loader
        if cfg.progress and ctx.main:
            from tqdm import tqdm

            batches = tqdm(
                train_loader,
                desc=f"fold {test_fold} epoch {epoch + 1}/{cfg.epochs}",
                unit="batch",
                leave=False,
            )
        for i, (clips, labels, votes, _ids) in enumerate(batches):
            step = epoch * steps_per_epoch + i
            for g in optimizer.param_groups:
                g["lr"] = get_lr(step, total_steps, warmup, g["base_lr"])
            x = prepare_batch(
                clips.to(device, non_blocking=True),
                cfg.size,
                train=True,
                generator=augment,
                channels_last=cfg.channels_last,
            )
            labels, votes = labels.to(device), votes.to(device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits, features = net(x)
            if cfg.target == "distribution":
                loss = criterion(logits, votes / votes.sum(1, keepdim=True).clamp_min(1))
            else:
                loss = criterion(logits.float(), labels)
            if aux is not None:
                single = labels >= 0
                loss = loss + cfg.lam * aux(features[single], labels[single])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            loss_sum += loss.item() * len(labels)
            if hasattr(batches, "set_postfix"):
                batches.set_postfix(loss=f"{loss_sum / seen:.3f}")
        history.append(
            {
                "epoch": epoch + 1,
                "loss": loss_sum / max(1, seen),
                "clips_per_s": seen * ctx.world / (time.perf_counter() - t0),
            }
        )
        if ctx.main:
            fold_dir.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "aux": aux.state_dict() if aux is not None else None,
                    "config": asdict(cfg),
                    "epoch": epoch,
                    "best_metric": None,
                },
                tmp,
            )
            os.replace(tmp, checkpoint)

    # The unwrapped model: DDP's forward would broadcast buffers, a collective that hangs when
    # ranks hold different numbers of test batches.
    predictions = evaluate(model, test_loader, cfg, ctx, device)
    n = num_classes
    y_true, y_pred = predictions["y_true"], predictions["y_pred"]
    return {
        "fold": test_fold,
        "test_clips": len(y_true),
        "clip_ids": predictions["clip_ids"],
        "war": metrics.war(y_true, y_pred),
        "uar": metrics.uar(y_true, y_pred, n),
        # None (null in JSON) for a class with no test clip in this fold
        "per_class_recall": [
            None if np.isnan(r) else float(r) for r in metrics.per_class_recall(y_true, y_pred, n)
        ],
        "confusion": metrics.confusion(y_true, y_pred, n).tolist(),
        "history": history,
        "labels": train_set.label_names,
    }


# --- the run ----------------------------------------------------------------------------------


def summarize(folds: list[dict]) -> dict:
    """Mean and standard deviation over folds of WAR, UAR and each class's recall (in %)."""

    def stats(values):
        values = np.asarray(values, dtype=float) * 100
        values = values[~np.isnan(values)]
        if len(values) == 0:  # a class with no test clip in any fold
            return {"mean": None, "std": None}
        return {"mean": float(values.mean()), "std": float(values.std())}

    recalls = np.asarray(
        [[np.nan if r is None else r for r in f["per_class_recall"]] for f in folds], dtype=float
    )
    return {
        "war": stats([f["war"] for f in folds]),
        "uar": stats([f["uar"] for f in folds]),
        "per_class_recall": [stats(recalls[:, c]) for c in range(recalls.shape[1])],
        "confusion": np.sum([f["confusion"] for f in folds], axis=0).tolist(),
    }


def train(cfg: TrainConfig) -> Path:
    """Runs every fold of `cfg`; returns the folder holding results.json (rank 0 writes it)."""
    ctx = setup_distributed(cfg.device)
    out = Path(cfg.out)
    folds = [train_fold(cfg, k, ctx) for k in cfg.folds]
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)
        result = {
            "config": asdict(cfg),
            "world_size": ctx.world,
            "folds": folds,
            "summary": summarize(folds),
            "labels": folds[0]["labels"],
        }
        (out / "results.json").write_text(json.dumps(result, indent=2))
        from ml.report import confusion_plot, markdown_table

        (out / "results.md").write_text(markdown_table([result]))
        confusion_plot(result, out / "confusion.png")
    if ctx.world > 1:
        dist.barrier()
    return out


# --- command line (shared with `manage.py train_benchmark`) -----------------------------------


def parse_folds(text: str) -> list[int]:
    """ "1-5" or "1,3" → [1, 2, 3, 4, 5] / [1, 3]."""
    folds: list[int] = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            folds += list(range(int(lo), int(hi) + 1))
        elif part.strip():
            folds.append(int(part))
    return folds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig(data="")
    parser.add_argument("--data", required=True, help="a compact export or DFEW's release root")
    parser.add_argument("--out", default=None, help="output folder (default runs/<model>-<loss>)")
    parser.add_argument("--model", default=d.model, choices=sorted(MODELS))
    parser.add_argument("--loss", default=d.loss, choices=LOSSES)
    parser.add_argument(
        "--lambda",
        dest="lam",
        default=str(d.lam),
        help="weight of the feature loss; a list (0.01,0.1,1) sweeps it",
    )
    parser.add_argument("--target", default=d.target, choices=TARGETS)
    parser.add_argument("--folds", default="1-5", help='e.g. "1-5" or "1,3"')
    parser.add_argument("--epochs", type=int, default=d.epochs)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--lr", type=float, default=d.lr)
    parser.add_argument("--center-lr", type=float, default=d.center_lr)
    parser.add_argument("--input-size", type=int, default=None)
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--pretrained", default=None, help="local backbone checkpoint")
    parser.add_argument("--init-from", default=None, help="fine-tune from one of our checkpoints")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (GPUs)")
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--no-progress", action="store_true")


def configs_from_args(args) -> list[TrainConfig]:
    """One config per λ of the sweep (a single λ gives one)."""
    lambdas = [float(v) for v in str(args.lam).split(",") if v.strip()]
    base = TrainConfig(
        data=args.data,
        out=args.out or f"runs/{args.model}-{args.loss}",
        model=args.model,
        loss=args.loss,
        target=args.target,
        folds=parse_folds(args.folds),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        center_lr=args.center_lr,
        input_size=args.input_size,
        device=args.device,
        workers=args.workers,
        seed=args.seed,
        resume=args.resume,
        pretrained=args.pretrained,
        init_from=args.init_from,
        bf16=args.bf16,
        channels_last=args.channels_last,
        compile=args.compile,
        progress=not args.no_progress,
    )
    if len(lambdas) == 1:
        return [replace(base, lam=lambdas[0])]
    return [replace(base, lam=lam, out=str(Path(base.out) / f"lambda-{lam:g}")) for lam in lambdas]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m ml.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    outs = [train(cfg) for cfg in configs_from_args(args)]
    if int(os.environ.get("RANK", "0")) == 0:
        for out in outs:
            print((out / "results.md").read_text())
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
