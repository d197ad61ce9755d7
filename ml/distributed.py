"""Several processes (torchrun): joining the group, and what the losses need from it.

- `gather_with_grad`: every process's features, concatenated in rank order, with gradients
  flowing back to the process that computed them. EC-STFL needs pairs across the whole global
  batch, not only within one process's share.
- `average_gradients`: all-reduces (means) the gradients of parameters that DDP does not wrap,
  such as center loss's centres, so every process takes the same step.

Gradient scale, for the record: DDP averages the model's gradients over the W processes.
Each process computes the auxiliary loss on the same global batch, and the backward of the
gather sums the W processes' gradients for each local feature (W × the single-process value),
so after DDP's average the model receives exactly the gradient of one process training on the
global batch. The tests check this against a single process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


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


def _world() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(features: torch.Tensor) -> torch.Tensor:
    """All processes' ``B × D`` features as ``(W·B) × D`` (rank order), differentiable. Every
    process must pass the same B (the training loader drops ragged last batches)."""
    if _world() == 1:
        return features
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(features), 0)


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """All processes' tensors concatenated in rank order, without gradients (labels)."""
    if _world() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(_world())]
    dist.all_gather(parts, tensor)
    return torch.cat(parts, 0)


def average_gradients(parameters) -> None:
    """Means each parameter's gradient over the processes (a no-op for one process)."""
    world = _world()
    if world == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad.div_(world)


def broadcast_parameters(parameters) -> None:
    """Rank 0's values in every process (centres start equal whatever each rank drew)."""
    if _world() == 1:
        return
    for p in parameters:
        dist.broadcast(p.data, 0)
