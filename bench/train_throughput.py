"""Training samples per second per model, against the matrix-multiply rate of the same device.

For each model: forward + backward + Adam step (the DFEW authors' optimiser) on random 16-frame
clips at the authors' input size for the model (112, 160 for P3D, 224 for I3D, or --size),
after warm-up. FLOPs per sample are counted once
with torch's FlopCounterMode; the baseline, measured in the same run on the same device, is a
square matrix multiply (bf16 on a GPU, fp32 on the CPU), so the ratio reads as the share of
the device's dense-math rate that training reaches.

    python bench/train_throughput.py                      # CPU: small batches, 112×112
    python bench/train_throughput.py --device cuda --batch-size 32 --bf16 --channels-last
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.config import input_size_for  # noqa: E402
from ml.networks import MODELS  # noqa: E402
from ml.networks.base import to_channels_last  # noqa: E402


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device, dtype, n: int, seconds: float = 2.0) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    sync(device)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    sync(device)
    return 2 * n**3 * count / (time.perf_counter() - t0)


def model_rate(name, device, batch, size, steps, bf16, channels_last):
    model = MODELS[name](num_classes=7).to(device)
    memory = torch.channels_last_3d if channels_last else torch.contiguous_format
    if channels_last:
        to_channels_last(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 3, 16, size, size, device=device).contiguous(memory_format=memory)
    y = torch.randint(0, 7, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops_per_sample = counter.get_total_flops() / batch
    step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    samples_per_s = batch * steps / (time.perf_counter() - t0)
    return samples_per_s, flops_per_sample


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--size", type=int, default=None, help="input side (default: the model's)")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--channels-last", action="store_true")
    args = parser.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    batch = args.batch_size or (32 if gpu else 2)
    steps = args.steps or (20 if gpu else 2)
    dtype = torch.bfloat16 if (gpu and args.bf16) else torch.float32
    peak = matmul_rate(device, dtype, 8192 if gpu else 1024)
    print(f"device {device}: matmul baseline {peak / 1e12:.2f} TFLOP/s ({dtype}), batch {batch}")
    print(
        f"{'model':15s} {'input':>9s} {'samples/s':>10s} {'GFLOP/sample':>13s} {'TFLOP/s':>8s} {'of matmul':>9s}"
    )
    for name in args.models.split(","):
        size = args.size or (input_size_for("dfew", name) if gpu else 112)
        rate, flops = model_rate(name, device, batch, size, steps, args.bf16, args.channels_last)
        achieved = rate * flops
        print(
            f"{name:15s} {f'16×{size}²':>9s} {rate:10.2f} {flops / 1e9:13.1f} "
            f"{achieved / 1e12:8.3f} {achieved / peak:8.1%}"
        )


if __name__ == "__main__":
    main()
