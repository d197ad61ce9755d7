"""The benchmark training loop: k-fold cross-validation of one model with one loss.

``train(cfg) -> Path`` runs every requested fold (test on fold k, train on the others) and
writes, under ``cfg.out``: ``fold<k>/last.pt`` checkpoints, ``results.json`` (the resolved
protocol and every hyper-parameter, the batch plan, per-fold results of the last and the best
epoch), ``results.md`` (DFEW's Table 3/4 layout, titled with the protocol or "…, modified:"),
``epochs.csv`` (every epoch's loss and test WAR/UAR) and ``confusion.png`` (``ml/results.py``).
The protocol (``--protocol dfew``, the authors' launched configuration, by default) is
described in ``ml/config.py``.

Batch: ``--global-batch`` clips per optimiser step over all processes (256 under
``--protocol dfew``); each process takes global / world, in micro-batches of ``--batch-size``
with the gradients accumulated (``ml.config.batch_plan``).

One process, or many through torchrun with DistributedDataParallel:

    python -m ml.train --data <export> --model c3d --loss ec-stfl --lambda 0.1
    torchrun --nproc_per_node=8 -m ml.train --data <export> --model c3d --device cuda

Each process trains on its shard; EC-STFL sees the global (micro-)batch, the release EC-STFL's
λ is rescaled to the batch of 32 it was set under (`ml.losses.release_lambda_scale`), and
center loss's centres move by Wen et al.'s rule over the global batch, equal in every process
(``ml/distributed.py``). Evaluation splits the test fold across
processes without padding and gathers every prediction, so no test clip is counted twice or
missed.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from ml.config import (
    ECSTFL_RELEASE_BATCH,
    BatchPlan,
    TrainConfig,
    add_arguments,
    batch_plan,
    configs_from_args,
    parse_folds,
)
from ml.data import CompactDataset, DFEWDataset, EpochSampler, check_frame_size, prepare_batch
from ml.distributed import Dist, gather, gather_with_grad, setup_distributed
from ml.losses import CenterLoss, ECSTFLLoss, SoftTargetCrossEntropy, release_lambda_scale
from ml.networks import build_model
from ml.networks.base import to_channels_last
from ml.results import epoch_scores, fold_result, write_results

__all__ = ["TrainConfig", "train", "parse_folds", "main"]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


# --- data -------------------------------------------------------------------------------------


def build_datasets(cfg: TrainConfig, test_fold: int):
    """(train, test) for one fold, from the compact format or DFEW's release layout."""
    root = Path(cfg.data)
    random_frames = cfg.train_sampling in ("random", "segments")
    sampling = "segments" if cfg.train_sampling == "segments" else "random"
    if (root / "meta.json").exists():
        train_folds = [k for k in _compact_folds(root) if k != test_fold]
        # Distribution targets can use clips with no single label for training.
        single_only = cfg.target == "single"
        return (
            CompactDataset(
                root, train_folds, single_only, cfg.frames, random_frames, cfg.seed, sampling
            ),
            CompactDataset(root, [test_fold], True, cfg.frames, sampling=sampling),
        )
    if (root / "label").is_dir():
        train = DFEWDataset(
            root, test_fold, "train", cfg.frames, cfg.input_size, cfg.seed, sampling
        )
        train.train = random_frames
        test = DFEWDataset(root, test_fold, "test", cfg.frames, cfg.input_size, sampling=sampling)
        return train, test
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


# --- schedule and losses ----------------------------------------------------------------------


def get_lr(
    step: int,
    total: int,
    warmup: int,
    base: float,
    schedule: str,
    epoch: int = 0,
    lr_step: int = 50,
) -> float:
    """``constant`` (the authors': their scheduler is built but never stepped), ``step``
    (StepLR: ×0.1 every `lr_step` epochs, the EC-STFL release's), or linear warm-up then
    cosine decay to zero."""
    if schedule == "constant":
        return base
    if schedule == "step":
        return base * 0.1 ** (epoch // lr_step)
    if step < warmup:
        return base * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return base * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def auxiliary_loss(
    aux: nn.Module, features: torch.Tensor, labels: torch.Tensor
) -> tuple[torch.Tensor, float]:
    """The feature loss of one step on single-labelled clips, and the factor its λ takes.

    EC-STFL on the global batch (features gathered from every process, with gradients);
    the release variant divides by the batch it sees, so its λ is multiplied by
    ``clips seen / 32`` (`release_lambda_scale`): λ · L then means what the release computes
    at its batch of 32, whatever the number of processes or the accumulation. Center loss
    on this process's clips (a mean of per-clip terms), factor 1."""
    if isinstance(aux, ECSTFLLoss):
        features, labels = gather_with_grad(features), gather(labels)
    single = labels >= 0
    value = aux(features[single].float(), labels[single])
    scale = 1.0
    if isinstance(aux, ECSTFLLoss) and aux.variant == "release":
        scale = release_lambda_scale(int(single.sum()), ECSTFL_RELEASE_BATCH)
    return value, scale


def _feature_loss(cfg: TrainConfig, num_classes: int, num_features: int, device):
    if cfg.loss == "center":
        return CenterLoss(num_classes, num_features, cfg.center_alpha).to(device)
    if cfg.loss == "ec-stfl":
        return ECSTFLLoss(cfg.ec_stfl_variant)
    return None


# --- one fold: build, one epoch, checkpoint, evaluate -----------------------------------------


@dataclass
class FoldRun:
    """Everything one fold trains with."""

    cfg: TrainConfig
    fold: int
    ctx: Dist
    device: torch.device
    train_set: torch.utils.data.Dataset
    test_set: torch.utils.data.Dataset
    train_loader: DataLoader
    test_loader: DataLoader
    sampler: EpochSampler
    model: nn.Module  # unwrapped: what checkpoints hold
    net: nn.Module  # what trains: the model, maybe under DDP and torch.compile
    aux: nn.Module | None
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    plan: BatchPlan

    @property
    def checkpoint(self) -> Path:
        return Path(self.cfg.out) / f"fold{self.fold}" / "last.pt"


def build(cfg: TrainConfig, test_fold: int, ctx: Dist, plan: BatchPlan | None = None) -> FoldRun:
    """Data, model (pretrained or `init_from` weights loaded), loss and optimizer of a fold."""
    device = torch.device(
        f"cuda:{ctx.local_rank}" if cfg.device.startswith("cuda") and ctx.world > 1 else cfg.device
    )
    plan = plan or batch_plan(cfg.global_batch, ctx.world, cfg.batch_size)
    train_set, test_set = build_datasets(cfg, test_fold)
    num_classes = len(train_set.label_names)
    sampler = EpochSampler(len(train_set), cfg.seed, ctx.rank, ctx.world)
    loader_args = dict(
        num_workers=cfg.workers,
        pin_memory=device.type == "cuda",
        persistent_workers=cfg.workers > 0,
    )
    train_loader = DataLoader(
        train_set,
        cfg.batch_size,
        sampler=sampler,
        # every process the same batch size (EC-STFL gathers the global batch)
        drop_last=len(sampler) > cfg.batch_size,
        **loader_args,
    )
    test_loader = DataLoader(
        test_set, cfg.batch_size, sampler=_Shard(len(test_set), ctx.rank, ctx.world), **loader_args
    )
    model = build_model(
        cfg.model,
        num_classes,
        pretrained=cfg.pretrained,
        frames=cfg.frames,
        init=cfg.init,
        i3d_padding=cfg.i3d_padding,
    )
    if cfg.init_from:
        load_init_from(model, cfg.init_from, test_set)
    model.to(device)
    if cfg.channels_last:
        to_channels_last(model)
    aux = _feature_loss(cfg, num_classes, model.num_features, device)
    # Center loss's centres are not parameters: Wen et al.'s rule moves them (`CenterLoss`).
    groups = [{"params": list(model.parameters()), "lr": cfg.lr}]
    for g in groups:
        g["base_lr"] = g["lr"]
    if cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay)
    net = model
    if ctx.world > 1:
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[ctx.local_rank] if device.type == "cuda" else None
        )
    if cfg.compile:
        net = torch.compile(net)
    criterion = SoftTargetCrossEntropy() if cfg.target == "distribution" else nn.CrossEntropyLoss()
    return FoldRun(
        cfg, test_fold, ctx, device, train_set, test_set, train_loader, test_loader, sampler,
        model, net, aux, optimizer, criterion, plan,
    )  # fmt: skip


def load_init_from(model: nn.Module, path: str, test_set) -> None:
    """Loads the weights of one of our checkpoints that fit `model` (a new classifier for a
    new label set). Refuses a checkpoint trained on any of this fold's test clips (same clip
    numbering, ``source``): fine-tuning from it would test on clips the model has seen."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    trained_on = state.get("train_clips")
    if trained_on is None:
        warnings.warn(
            f"{path} records no training clips: cannot check it never saw the test clips",
            stacklevel=2,
        )
    elif state.get("data_source") == test_set.source:
        seen = sorted(set(trained_on) & set(test_set.clip_ids.tolist()))
        if seen:
            shown = ", ".join(map(str, seen[:10])) + (", …" if len(seen) > 10 else "")
            raise ValueError(
                f"--init-from {path} was trained on {len(seen)} of this fold's test clips "
                f"({shown}): its results would not be a test. Fine-tune from the checkpoint "
                "of the same test fold, or of another dataset."
            )
    own = model.state_dict()
    weights = state["model"]
    model.load_state_dict(
        {k: v for k, v in weights.items() if k in own and own[k].shape == v.shape}, strict=False
    )


def train_one_epoch(run: FoldRun, epoch: int) -> dict:
    """One pass over this process's shard of the training clips; the epoch's mean loss.

    Every `plan.accumulation` micro-batches make one optimiser step (the epoch's last step
    takes what is left), each micro-batch's loss divided by the step's micro-batch count, so
    the step's gradient is the mean over its global batch (DDP averages over processes)."""
    cfg, optimizer, plan = run.cfg, run.optimizer, run.plan
    run.sampler.set_epoch(epoch)
    run.net.train()
    # Augmentation draws from (seed, epoch, rank): a resumed run draws what the uninterrupted
    # one drew.
    augment = torch.Generator().manual_seed((cfg.seed * 1000 + epoch) * 1000 + run.ctx.rank)
    micro_steps = max(1, len(run.train_loader))
    steps_per_epoch = math.ceil(micro_steps / plan.accumulation)
    total, warmup = steps_per_epoch * cfg.epochs, int(cfg.warmup_epochs * steps_per_epoch)
    seen, loss_sum, t0 = 0, 0.0, time.perf_counter()
    centre_batch: list[tuple[torch.Tensor, torch.Tensor]] = []
    batches = run.train_loader
    if cfg.progress and run.ctx.main:
        from tqdm import tqdm

        desc = f"fold {run.fold} epoch {epoch + 1}/{cfg.epochs}"
        batches = tqdm(batches, desc=desc, unit="batch", leave=False)
    optimizer.zero_grad(set_to_none=True)
    for i, (clips, labels, votes, _ids) in enumerate(batches):
        first = i - i % plan.accumulation
        in_step = min(plan.accumulation, micro_steps - first)
        closes_step = i - first + 1 == in_step
        step = epoch * steps_per_epoch + i // plan.accumulation
        for g in optimizer.param_groups:
            g["lr"] = get_lr(
                step, total, warmup, g["base_lr"], cfg.schedule, epoch, cfg.lr_step or 50
            )
        x = prepare_batch(
            clips.to(run.device, non_blocking=True),
            cfg.input_size,
            train=True,
            generator=augment,
            augment=cfg.augment,
            normalize=cfg.normalizes,
            crop_fraction=cfg.test_crop,
            channels_last=cfg.channels_last,
            crop=cfg.crop or "fraction",
        )
        labels, votes = labels.to(run.device), votes.to(run.device)
        # DDP all-reduces only on the micro-batch that closes the step.
        no_sync = getattr(run.net, "no_sync", None)
        sync = contextlib.nullcontext() if closes_step or no_sync is None else no_sync()
        with sync:
            with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
                logits, features = run.net(x)
            if cfg.target == "distribution":
                loss = run.criterion(logits, votes / votes.sum(1, keepdim=True).clamp_min(1))
            else:
                loss = run.criterion(logits.float(), labels)
            if run.aux is not None:
                value, scale = auxiliary_loss(run.aux, features, labels)
                loss = loss + cfg.lam * scale * value
            (loss / in_step).backward()
        if isinstance(run.aux, CenterLoss):
            centre_batch.append((gather(features.detach().float()), gather(labels)))
        if closes_step:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if centre_batch:
                f, y = (torch.cat(parts) for parts in zip(*centre_batch, strict=True))
                run.aux.update(f[y >= 0], y[y >= 0])
                centre_batch = []
        seen += len(labels)
        loss_sum += loss.item() * len(labels)
        if hasattr(batches, "set_postfix"):
            batches.set_postfix(loss=f"{loss_sum / seen:.3f}")
    seconds = time.perf_counter() - t0
    return {
        "epoch": epoch + 1,
        "loss": loss_sum / max(1, seen),
        "lr": optimizer.param_groups[0]["lr"],
        "optimizer_steps": steps_per_epoch,
        "clips_per_s": seen * run.ctx.world / seconds,
    }


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state()}
    state["torch"] = torch.get_rng_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run: FoldRun, epoch: int, history: list[dict], best: dict | None) -> None:
    """``last.pt`` (rank 0, written aside then renamed): weights, optimizer, feature-loss state,
    config, epoch, the random state (dropout draws), and the training clips it has seen."""
    if not run.ctx.main:
        return
    run.checkpoint.parent.mkdir(parents=True, exist_ok=True)
    tmp = run.checkpoint.with_suffix(".tmp")
    torch.save(
        {
            "model": run.model.state_dict(),
            "optimizer": run.optimizer.state_dict(),
            "aux": run.aux.state_dict() if run.aux is not None else None,
            "config": run.cfg.record(),
            "epoch": epoch,
            # the best test epoch so far (by WAR) and every epoch's record, for --resume
            "best_metric": best and {k: best[k] for k in ("epoch", "war", "uar")},
            "best": best,
            "history": history,
            "rng": _rng_state(),
            "train_clips": sorted(run.train_set.clip_ids.tolist()),
            "data_source": run.train_set.source,
        },
        tmp,
    )
    os.replace(tmp, run.checkpoint)


def resume(run: FoldRun) -> tuple[int, list[dict], dict | None]:
    """Restores the fold's ``last.pt`` when there is one; returns the epoch to start from,
    the epochs recorded so far and the best one.
    The frame draws, batch order and augmentation depend only on (seed, epoch), and the global
    random state (dropout) is restored, so the resumed run continues the uninterrupted one."""
    if not (run.cfg.resume and run.checkpoint.exists()):
        return 0, [], None
    state = torch.load(run.checkpoint, map_location="cpu", weights_only=False)
    run.model.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    if run.aux is not None and state.get("aux"):
        run.aux.load_state_dict(state["aux"])
    if state.get("rng"):
        _set_rng_state(state["rng"])
    return state["epoch"] + 1, list(state.get("history") or []), state.get("best")


@torch.no_grad()
def evaluate(run: FoldRun) -> dict:
    """Predictions on this process's shard, gathered to every rank: clip ids, truths, preds.
    Runs the unwrapped model: DDP's forward would broadcast buffers, a collective that hangs
    when ranks hold different numbers of test batches."""
    cfg = run.cfg
    run.model.eval()
    ids, truths, preds = [], [], []
    for clips, labels, _votes, clip_ids in run.test_loader:
        x = prepare_batch(
            clips.to(run.device, non_blocking=True),
            cfg.input_size,
            train=False,
            normalize=cfg.normalizes,
            crop_fraction=cfg.test_crop,
            channels_last=cfg.channels_last,
        )
        with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            logits, _ = run.model(x)
        preds += logits.argmax(1).tolist()
        truths += labels.tolist()
        ids += clip_ids.tolist()
    local = {"clip_ids": ids, "y_true": truths, "y_pred": preds}
    if run.ctx.world == 1:
        return local
    gathered: list = [None] * run.ctx.world
    dist.all_gather_object(gathered, local)
    return {key: [v for part in gathered for v in part[key]] for key in local}


def train_fold(cfg: TrainConfig, test_fold: int, ctx: Dist, plan: BatchPlan) -> dict:
    """Trains on every fold but `test_fold`, testing on it after every epoch (as the authors
    do); the result holds the last epoch and the best one (by test WAR, the first on ties)."""
    seed_everything(cfg.seed + test_fold)
    run = build(cfg, test_fold, ctx, plan)
    start, history, best = resume(run)
    n = len(run.train_set.label_names)
    predictions = None
    for epoch in range(start, cfg.epochs):
        record = train_one_epoch(run, epoch)
        predictions = evaluate(run)
        scores = epoch_scores(predictions, n)
        record.update(test_war=scores["war"], test_uar=scores["uar"])
        history.append(record)
        if best is None or scores["war"] > best["war"]:
            best = {"epoch": epoch + 1, **scores}
        save_checkpoint(run, epoch, history, best)
        if not cfg.progress and ctx.main:
            # No progress bar: one line per epoch, so a long run is never silent.
            print(
                f"fold {test_fold} epoch {epoch + 1}/{cfg.epochs}: loss {record['loss']:.4f}, "
                f"test WAR {scores['war'] * 100:.2f} UAR {scores['uar'] * 100:.2f}, "
                f"{record['clips_per_s']:.1f} clips/s",
                flush=True,
            )
    if predictions is None:  # resumed after the last epoch: test the weights once more
        predictions = evaluate(run)
    return fold_result(run.fold, run.train_set.label_names, predictions, history, best)


# --- the run ----------------------------------------------------------------------------------


def train(cfg: TrainConfig) -> Path:
    """Runs every fold of `cfg`; returns the folder holding results.json (rank 0 writes it)."""
    cfg = cfg.resolved()
    ctx = setup_distributed(cfg.device)
    plan = batch_plan(cfg.global_batch, ctx.world, cfg.batch_size)
    cfg = replace(cfg, batch_size=plan.micro)
    check_frame_size(cfg.data, cfg.input_size, cfg.model, cfg.upsample)
    out = Path(cfg.out)
    folds: list[dict] = []
    for k in cfg.folds:
        folds.append(train_fold(cfg, k, ctx, plan))
        if ctx.main:
            # Written as each fold finishes: a run stopped later keeps the finished folds.
            write_results(cfg, plan, out, folds, complete=len(folds) == len(cfg.folds))
            checkpoint = out / f"fold{k}" / "last.pt"
            if cfg.keep_checkpoints == "none" and checkpoint.exists():
                checkpoint.unlink()
    if ctx.world > 1:
        dist.barrier()
    return out


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
