"""Under DDP the feature losses see what one process on the global batch would see.

Two gloo processes, each with half of a batch, against one process with the whole batch:
EC-STFL (both variants) has the same value, the model receives the same gradients, center
loss's centres take Wen et al.'s step over the global batch in both processes (so they never
drift apart), and the release EC-STFL's λ is rescaled by the clips the loss saw over the 32
of the release: λ·L means the same whatever the number of processes.
"""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F

from ml.distributed import gather
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
    """One training step's backward as train_one_epoch does it; the λ-weighted auxiliary
    term, the gradients and, for center loss, the centres after Wen et al.'s update."""
    logits, features = net(x)
    aux_value, scale = auxiliary_loss(aux, features, labels)
    (F.cross_entropy(logits, labels) + lam * scale * aux_value).backward()
    grads = {f"model.{k}": p.grad.clone() for k, p in model.named_parameters()}
    if isinstance(aux, CenterLoss):
        aux.update(gather(features.detach()), gather(labels))
        grads["centers"] = aux.centers.clone()
    return (lam * scale * aux_value).item(), grads


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
        # the release's λ·L, by hand: λ · mean_i(a_i·r_i) / 32 on the 8 gathered clips
        features = torch.tanh(build("ec-stfl", model_state, auxes)[0].body(x)).detach()
        d = torch.cdist(features, features, p=1)
        same = (labels[:, None] == labels[None, :]).float()
        a = (d * same).sum(1) / (same.sum(1) + 1e-6)
        r = ((1 - same) / (d + 1e-6)).sum(1) / ((1 - same).sum(1) + 1 + 1e-6)
        by_hand = 0.5 * (a * r).mean().item() / 32
        for rank in ranks:
            assert rank["ec-stfl-release"][0] == pytest.approx(by_hand, rel=1e-5)
