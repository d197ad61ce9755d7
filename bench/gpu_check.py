"""GPU check: each benchmark network trained for a few hundred optimiser steps under the
settings a run uses, fed by our loader, next to the device's matrix-multiply rate measured in
the same run.

Two settings (``--settings``), each as `train` resolves it (``ml.config.TrainConfig``):

- ``dfew``: the authors' launched configuration: a global batch of 256 clips per optimiser
  step (one process here: ``--micro-batch`` clips per forward pass, the rest accumulated),
  Adam 1e-3, their initialisation, I3D's TF-"same" padding, their input side (112; 160 for
  P3D; 224 for I3D), 16 frames drawn afresh per clip;
- ``ecstfl-release``: the 2024 EC-STFL recipe: global batch 32, SGD 0.01 momentum 0.9 wd 1e-4,
  8 segments × 2 frames, RandomSizedCrop + flip at 112, the release EC-STFL with λ 10
  rescaled to the clips it sees.

Clips come from a generated compact dataset (ragged, every frame kept) through a DataLoader
with worker processes, bf16 autocast and channels-last memory (``--no-bf16`` /
``--no-channels-last`` to compare). Printed per model and setting:

- samples/s over the timed optimiser steps, the TFLOP/s that makes (FLOPs per sample counted
  once with torch's FlopCounterMode) and its share of the same-run matmul rate (bf16 8192²);
- data wait per step (the time the loop waits for the next batch: near zero when the loader
  keeps the GPU fed), mean and 95th percentile, in ms;
- GPU utilisation sampled every 100 ms during the timed steps (``torch.cuda.utilization``,
  which needs the NVML bindings, else ``nvidia-smi``; "n/a" on a CPU).

    python bench/gpu_check.py --device cuda                     # the H200 check
    python bench/gpu_check.py --device cpu --steps 2 --global-batch 4 --micro-batch 2 \
        --size 32 --workers 0                                    # the CPU small mode
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.train_throughput import matmul_rate, sync  # noqa: E402
from ml.config import TrainConfig, batch_plan, parse_global_batch  # noqa: E402
from ml.data import CompactDataset, EpochSampler, prepare_batch  # noqa: E402
from ml.losses import ECSTFLLoss  # noqa: E402
from ml.networks import build_model  # noqa: E402
from ml.networks.base import to_channels_last  # noqa: E402
from ml.train import auxiliary_loss  # noqa: E402
from pipeline.synthetic import generate_dataset  # noqa: E402

TABLE_3 = ["c3d", "p3d", "r3d_18", "resnet3d_18", "i3d", "vgg11_lstm", "resnet18_lstm"]


class Utilisation:
    """Samples the GPU's utilisation (%) in a thread while the block runs."""

    def __init__(self, device: torch.device):
        self.device, self.samples, self._stop = device, [], threading.Event()

    def _read(self) -> float | None:
        try:
            return float(torch.cuda.utilization(self.device))
        except Exception:  # no NVML bindings: ask nvidia-smi
            index = self.device.index or 0
            try:
                out = subprocess.run(
                    ["nvidia-smi", "-i", str(index), "--query-gpu=utilization.gpu"]
                    + ["--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                return float(out.stdout.strip())
            except (OSError, ValueError, subprocess.TimeoutExpired):
                return None  # no way to read it: reported as n/a

    def _run(self):
        while not self._stop.wait(0.1):
            value = self._read()
            if value is None:
                return
            self.samples.append(value)

    def __enter__(self):
        if self.device.type == "cuda":
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.device.type == "cuda":
            self._thread.join(timeout=10)

    def summary(self) -> str:
        return f"{statistics.mean(self.samples):.0f}%" if self.samples else "n/a"


def batches(dataset, batch: int, workers: int, device):
    """Endless training batches, epoch after epoch, as the training loop draws them."""
    sampler = EpochSampler(len(dataset), seed=0)
    loader = DataLoader(
        dataset,
        batch,
        sampler=sampler,
        drop_last=True,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )
    epoch = 0
    while True:
        sampler.set_epoch(epoch)
        yield from loader
        epoch += 1


def setting(name: str, model: str, root: Path, args) -> TrainConfig:
    """The resolved config of `model` under `name` (a protocol or a recipe), with the
    command's overrides (input side, global batch) for the CPU small mode."""
    recipe = name if name != "dfew" else None
    given = parse_global_batch(args.global_batch) if args.global_batch else None
    cfg = TrainConfig(data=str(root), model=model, recipe=recipe, global_batch=given)
    if args.size:
        cfg.input_size = args.size
    return cfg.resolved()


def check_model(name: str, setting_name: str, root: Path, args, device, peak: float) -> str:
    cfg = setting(setting_name, name, root, args)
    plan = batch_plan(cfg.global_batch, 1, min(args.micro_batch, cfg.global_batch))
    sampling = "segments" if cfg.train_sampling == "segments" else "random"
    dataset = CompactDataset(root, [1, 2, 3, 4, 5], train=True, sampling=sampling)
    size = cfg.input_size
    model = build_model(name, 7, frames=cfg.frames, init=cfg.init, i3d_padding=cfg.i3d_padding).to(
        device
    )
    if args.channels_last:
        to_channels_last(model)
    if cfg.optimizer == "adam":
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
        )
    aux = ECSTFLLoss(cfg.ec_stfl_variant) if cfg.loss == "ec-stfl" else None
    source = batches(dataset, plan.micro, args.workers, device)
    augment = torch.Generator().manual_seed(0)
    waits: list[float] = []

    def micro_step(clips, labels):
        x = prepare_batch(
            clips.to(device, non_blocking=True),
            size,
            train=True,
            generator=augment,
            augment=cfg.augment,
            crop=cfg.crop,
            crop_fraction=cfg.test_crop,
            normalize=cfg.normalizes,
            channels_last=args.channels_last,
        )
        labels = labels.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            logits, features = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels)
        if aux is not None:
            value, scale = auxiliary_loss(aux, features, labels)
            loss = loss + cfg.lam * scale * value
        (loss / plan.accumulation).backward()

    def step(timed: bool = False):
        for _ in range(plan.accumulation):
            w0 = time.perf_counter()
            clips, labels, _, _ = next(source)
            if timed:
                waits.append(time.perf_counter() - w0)
            micro_step(clips, labels)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    clips, labels, _, _ = next(source)
    with FlopCounterMode(display=False) as counter:
        micro_step(clips, labels)
    optimizer.zero_grad(set_to_none=True)
    flops_per_sample = counter.get_total_flops() / len(labels)
    for _ in range(args.warmup):
        step()
    sync(device)
    with Utilisation(device) as gpu:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step(timed=True)
        sync(device)
        seconds = time.perf_counter() - t0
    samples_per_s = plan.global_batch * args.steps / seconds
    achieved = samples_per_s * flops_per_sample
    waits_ms = sorted(w * 1000 for w in waits)
    p95 = waits_ms[min(len(waits_ms) - 1, int(0.95 * len(waits_ms)))]
    batch = f"{plan.global_batch}={plan.accumulation}×{plan.micro}"
    return (
        f"{name:14s} {setting_name:15s} {f'{cfg.frames}×{size}²':>9s} {batch:>9s} "
        f"{cfg.optimizer:>4s} {args.steps:6d} {samples_per_s:10.1f} "
        f"{achieved / 1e12:8.2f} {achieved / peak:9.1%} {statistics.mean(waits_ms):9.2f} "
        f"{p95:8.2f} {gpu.summary():>6s}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=",".join(TABLE_3))
    parser.add_argument("--settings", default="dfew,ecstfl-release")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed optimiser steps (100 on a GPU)"
    )
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (5 on a GPU)")
    parser.add_argument(
        "--global-batch", default=None, help="clips per optimiser step (the setting's)"
    )
    parser.add_argument(
        "--micro-batch", type=int, default=64, help="clips per forward pass (64; rest accumulated)"
    )
    parser.add_argument("--size", type=int, default=None, help="input side (the setting's)")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--clips-per-class", type=int, default=None)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.steps = args.steps or (100 if gpu else 2)
    args.warmup = args.warmup if args.warmup is not None else (5 if gpu else 1)
    # bf16 autocast is for the GPU: the CPU build aborts in the backward of bf16 Conv3d.
    args.bf16 = args.bf16 and gpu
    if gpu:
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    stored = 224 if gpu else (args.size or 32)
    per_class = args.clips_per_class or (40 if gpu else 5)
    work = Path(tempfile.mkdtemp(prefix="dfer-gpu-check-"))
    t0 = time.perf_counter()
    root = generate_dataset(
        work / "faces", per_class, size=stored, frames=20, max_frames=60, progress=False
    )
    dataset = CompactDataset(root, [1, 2, 3, 4, 5], train=True)
    print(
        f"data: {len(dataset)} generated clips of 20–60 frames at {stored}² (no upsampling), "
        f"written in {time.perf_counter() - t0:.0f} s; loader workers {args.workers}"
    )
    dtype = torch.bfloat16 if (gpu and args.bf16) else torch.float32
    peak = matmul_rate(device, dtype, 8192 if gpu else 512, seconds=2.0 if gpu else 0.5)
    print(
        f"matmul baseline (same run): {peak / 1e12:.2f} TFLOP/s ({dtype}); micro-batch "
        f"{args.micro_batch}, bf16 {args.bf16}, channels-last {args.channels_last}"
    )
    print(
        f"{'model':14s} {'setting':15s} {'input':>9s} {'batch':>9s} {'opt':>4s} {'steps':>6s} "
        f"{'samples/s':>10s} {'TFLOP/s':>8s} {'of matmul':>9s} {'wait ms':>9s} {'p95 ms':>8s} "
        f"{'GPU':>6s}"
    )
    failed = 0
    for setting_name in args.settings.split(","):
        for name in args.models.split(","):
            try:
                print(check_model(name, setting_name, root, args, device, peak), flush=True)
            except Exception:
                failed += 1
                print(
                    f"{name:14s} {setting_name} FAILED\n{traceback.format_exc(limit=3)}",
                    flush=True,
                )
            if gpu:
                torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
