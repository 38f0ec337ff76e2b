"""Gradient accumulation under real DDP (2 processes, gloo, CPU) with shards of different
sizes: every optimizer step equals one big batch of all the ranks' samples, the short last
window included."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from hptune.training import GradientAccumulator

#: Per rank: the sample counts of its micro-batches (windows of 2); rank 1's shard is
#: shorter, so its last window has 1 sample where rank 0's has 3.
SHARDS = {0: [2, 2, 2, 1], 1: [2, 2, 1]}


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    n = sum(map(sum, SHARDS.values()))
    return torch.randn(n, 3, generator=g), torch.randn(n, 2, generator=g)


def _model() -> nn.Module:
    torch.manual_seed(1)
    return nn.Linear(3, 2)


def _slices(rank: int) -> list[slice]:
    start = sum(sum(SHARDS[r]) for r in range(rank))
    out = []
    for size in SHARDS[rank]:
        out.append(slice(start, start + size))
        start += size
    return out


def _rank(rank: int, rendezvous: str, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=2)
    try:
        x, y = _data()
        model = nn.parallel.DistributedDataParallel(_model())
        acc = GradientAccumulator(torch.optim.SGD(model.parameters(), lr=0.5), 2, model=model)
        batches = [(x[s], y[s]) for s in _slices(rank)]
        for window in acc.windows(batches):
            for xb, yb in window:
                window.backward(nn.functional.mse_loss(model(xb), yb))
        torch.save([p.detach() for p in model.module.parameters()], out)
    finally:
        dist.destroy_process_group()


def _big_batches() -> list[torch.Tensor]:
    """The same steps on one process: step k takes window k of every rank together."""
    x, y = _data()
    model = _model()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    windows = {r: [_slices(r)[i : i + 2] for i in range(0, len(SHARDS[r]), 2)] for r in SHARDS}
    for k in range(max(map(len, windows.values()))):
        rows = [s for r in SHARDS for s in (windows[r][k] if k < len(windows[r]) else [])]
        index = torch.cat([torch.arange(s.start, s.stop) for s in rows])
        opt.zero_grad()
        nn.functional.mse_loss(model(x[index]), y[index]).backward()
        opt.step()
    return [p.detach() for p in model.parameters()]


@pytest.mark.slow
def test_unequal_shards_under_ddp_step_like_one_big_batch(tmp_path):
    import torch.multiprocessing as mp

    outs = [str(tmp_path / f"rank{r}.pt") for r in (0, 1)]
    mp.spawn(_worker, args=(str(tmp_path / "rendezvous"), outs), nprocs=2, join=True)
    expected = _big_batches()
    for out in outs:  # both ranks hold the same weights: those of the big batches
        got = torch.load(out)
        for g, e in zip(got, expected, strict=True):
            torch.testing.assert_close(g, e, rtol=1e-6, atol=1e-7)


def _worker(rank: int, rendezvous: str, outs: list[str]) -> None:
    _rank(rank, rendezvous, outs[rank])
