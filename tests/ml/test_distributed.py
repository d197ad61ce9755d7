"""Under DDP the feature losses see what one process on the global batch would see.

Two gloo processes, each with half of a batch, against one process with the whole batch:
EC-STFL (both variants) has the same value, and the model and the center-loss centres receive
the same gradients (the centres' all-reduced), so the processes' centres never drift apart.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

from ml.distributed import average_gradients
from ml.losses import CenterLoss, ECSTFLLoss
from ml.train import auxiliary_loss

LOSSES = {
    "ec-stfl": lambda: ECSTFLLoss("poster"),
    "ec-stfl-release": lambda: ECSTFLLoss("release"),
    "center": lambda: CenterLoss(3, 4),
}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body, self.head = nn.Linear(5, 4), nn.Linear(4, 3)

    def forward(self, x):
        features = torch.tanh(self.body(x))
        return self.head(features), features


def step(net, model, aux, x, labels, lam=0.5):
    """One training step's backward as train_one_epoch does it; the gradients and the
    auxiliary loss's value."""
    logits, features = net(x)
    aux_value = auxiliary_loss(aux, features, labels)
    (F.cross_entropy(logits, labels) + lam * aux_value).backward()
    if isinstance(aux, CenterLoss):
        average_gradients(aux.parameters())
    grads = {f"model.{k}": p.grad.clone() for k, p in model.named_parameters()}
    grads.update({f"aux.{k}": p.grad.clone() for k, p in aux.named_parameters()})
    return aux_value.item(), grads


def batch():
    torch.manual_seed(0)
    model, x = Net(), torch.randn(8, 5)
    labels = torch.tensor([0, 1, 2, 0, 1, 1, 2, 0])
    auxes = {}
    for name, make in LOSSES.items():
        torch.manual_seed(1)
        auxes[name] = make().state_dict()
    return model.state_dict(), x, labels, auxes


def build(name: str, model_state: dict, auxes: dict) -> tuple[Net, nn.Module]:
    model, aux = Net(), LOSSES[name]()
    model.load_state_dict(model_state)
    aux.load_state_dict(auxes[name])
    return model, aux


def _worker(rank: int, world: int, store: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    model_state, x, labels, auxes = batch()
    half = slice(rank * 4, rank * 4 + 4)
    results = {}
    for name in LOSSES:
        model, aux = build(name, model_state, auxes)
        net = nn.parallel.DistributedDataParallel(model)
        results[name] = step(net, model, aux, x[half], labels[half])
    torch.save(results, f"{out}/rank{rank}.pt")
    # Both ranks done, and no DDP module left holding the group, before gloo's threads stop
    # (torn down under load with one still alive, a rank aborted: "terminate called without
    # an active exception").
    del net
    dist.barrier()
    dist.destroy_process_group()


class DistributedLossTests:
    def test_two_processes_equal_one_process_on_the_same_global_batch(self, tmp_path):
        # given: what one process computes on the whole batch of 8
        model_state, x, labels, auxes = batch()
        single = {}
        for name in LOSSES:
            model, aux = build(name, model_state, auxes)
            single[name] = step(model, model, aux, x, labels)
        # when: two processes each take 4 of the clips
        mp.spawn(_worker, args=(2, str(tmp_path / "store"), str(tmp_path)), nprocs=2)
        ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
        # then
        for name in LOSSES:
            value, grads = single[name]
            for rank in ranks:
                rank_value, rank_grads = rank[name]
                if name != "center":  # center loss is a mean of per-clip terms: local value
                    assert rank_value == pytest.approx(value, rel=1e-5), name
                assert rank_grads.keys() == grads.keys()
                for key in grads:
                    assert torch.allclose(rank_grads[key], grads[key], atol=1e-6), (name, key)
