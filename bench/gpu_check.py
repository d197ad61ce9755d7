"""GPU check: each benchmark network trained for a few hundred steps at the DFEW authors'
protocol, fed by our loader, next to the device's matrix-multiply rate measured in the same run.

Per model: the authors' input side (112; 160 for P3D; 224 for I3D), batch 32, Adam 1e-3,
16 frames drawn afresh per clip from a generated compact dataset (ragged clips, every frame
kept) through a DataLoader with worker processes, bf16 autocast and channels-last memory
(``--no-bf16`` / ``--no-channels-last`` to compare). Printed per model:

- samples/s over the timed steps, the TFLOP/s that makes (FLOPs per sample counted once with
  torch's FlopCounterMode) and its share of the same-run matmul rate (bf16 8192² on a GPU);
- data wait per step (the time the loop waits for the next batch: near zero when the loader
  keeps the GPU fed), mean and 95th percentile, in ms;
- GPU utilisation sampled every 100 ms during the timed steps (``torch.cuda.utilization``,
  which needs the NVML bindings, else ``nvidia-smi``; "n/a" on a CPU).

    python bench/gpu_check.py --device cuda                     # the H200 check (~5 min)
    python bench/gpu_check.py --device cpu --steps 2 --batch-size 2 --size 32 --workers 0
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
from ml.config import input_size_for  # noqa: E402
from ml.data import CompactDataset, EpochSampler, prepare_batch  # noqa: E402
from ml.networks import MODELS, TAKES_FRAMES  # noqa: E402
from ml.networks.base import to_channels_last  # noqa: E402
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


def check_model(name: str, dataset, args, device, peak: float) -> str:
    size = args.size or input_size_for("dfew", name)
    extra = {"frames": 16} if name in TAKES_FRAMES else {}
    model = MODELS[name](num_classes=7, **extra).to(device)
    if args.channels_last:
        to_channels_last(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    source = batches(dataset, args.batch_size, args.workers, device)

    def step(clips, labels):
        x = prepare_batch(
            clips.to(device, non_blocking=True), size, train=True, channels_last=args.channels_last
        )
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), labels.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    clips, labels, _, _ = next(source)
    with FlopCounterMode(display=False) as counter:
        step(clips, labels)
    flops_per_sample = counter.get_total_flops() / len(labels)
    for _ in range(args.warmup):
        clips, labels, _, _ = next(source)
        step(clips, labels)
    sync(device)
    waits = []
    with Utilisation(device) as gpu:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            w0 = time.perf_counter()
            clips, labels, _, _ = next(source)
            waits.append(time.perf_counter() - w0)
            step(clips, labels)
        sync(device)
        seconds = time.perf_counter() - t0
    samples_per_s = args.batch_size * args.steps / seconds
    achieved = samples_per_s * flops_per_sample
    waits_ms = sorted(w * 1000 for w in waits)
    p95 = waits_ms[min(len(waits_ms) - 1, int(0.95 * len(waits_ms)))]
    return (
        f"{name:14s} {f'16×{size}²':>9s} {args.steps:6d} {samples_per_s:10.1f} "
        f"{achieved / 1e12:8.2f} {achieved / peak:9.1%} {statistics.mean(waits_ms):9.2f} "
        f"{p95:8.2f} {gpu.summary():>6s}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=",".join(TABLE_3))
    parser.add_argument("--steps", type=int, default=None, help="timed steps (300 on a GPU)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps (20 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=None, help="input side (the authors')")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--clips-per-class", type=int, default=None)
    parser.add_argument("--no-bf16", dest="bf16", action="store_false")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    args.steps = args.steps or (300 if gpu else 2)
    args.warmup = args.warmup if args.warmup is not None else (20 if gpu else 1)
    # bf16 autocast is for the GPU: the CPU build aborts in the backward of bf16 Conv3d.
    args.bf16 = args.bf16 and gpu
    if gpu:
        torch.backends.cudnn.benchmark = True
        print(f"device: {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    stored = 112 if gpu else (args.size or 32)
    per_class = args.clips_per_class or (40 if gpu else 5)
    work = Path(tempfile.mkdtemp(prefix="dfer-gpu-check-"))
    t0 = time.perf_counter()
    root = generate_dataset(
        work / "faces", per_class, size=stored, frames=20, max_frames=60, progress=False
    )
    dataset = CompactDataset(root, [1, 2, 3, 4, 5], train=True)
    print(
        f"data: {len(dataset)} generated clips of 20–60 frames at {stored}², "
        f"written in {time.perf_counter() - t0:.0f} s; loader workers {args.workers}"
    )
    dtype = torch.bfloat16 if (gpu and args.bf16) else torch.float32
    peak = matmul_rate(device, dtype, 8192 if gpu else 512, seconds=2.0 if gpu else 0.5)
    print(
        f"matmul baseline (same run): {peak / 1e12:.2f} TFLOP/s ({dtype}); batch "
        f"{args.batch_size}, Adam 1e-3, bf16 {args.bf16}, channels-last {args.channels_last}"
    )
    print(
        f"{'model':14s} {'input':>9s} {'steps':>6s} {'samples/s':>10s} {'TFLOP/s':>8s} "
        f"{'of matmul':>9s} {'wait ms':>9s} {'p95 ms':>8s} {'GPU':>6s}"
    )
    failed = 0
    for name in args.models.split(","):
        try:
            print(check_model(name, dataset, args, device, peak), flush=True)
        except Exception:
            failed += 1
            print(f"{name:14s} FAILED\n{traceback.format_exc(limit=3)}", flush=True)
        if gpu:
            torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
