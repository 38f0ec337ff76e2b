"""The recipe's GPU paths on a real GPU: the micro-batch fitted after real out-of-memory
errors, and mixed precision with gradient accumulation. Skipped without CUDA (this
repository's CI has none); ``bench/gpu_check.sh`` runs them on a GPU machine.

To reach out-of-memory quickly on a large GPU, the tests cap this process's CUDA allocator
at :data:`CAP` bytes (``torch.cuda.set_per_process_memory_fraction``, which raises a real
``torch.cuda.OutOfMemoryError`` past it) and lift the cap afterwards.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from hptune.tasks import Task, TaskData
from hptune.training._recipe_parts import fit_micro_batch
from hptune.training.batch_size import find_max_batch_size
from hptune.training.recipe import train
from tests.training.test_recipe import _params, _task

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

CAP = 2 * 2**30  # bytes the allocator may hold during a capped test
FEATURES = 256


def _ooms() -> int:
    return torch.cuda.memory_stats().get("num_ooms", 0)


@pytest.fixture
def capped():
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(CAP / total)
    yield
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(1.0)


def _wide_mlp(seed: int = 0) -> nn.Module:
    """~18 M parameters (~290 MB with gradients and AdamW's two moments): the rest of the
    cap goes to activations, about 130 kB a sample, so the limit is some thousands."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(FEATURES, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10)
    )


def _make_batch(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(size)
    return torch.randn(size, FEATURES, generator=g), torch.randint(10, (size,), generator=g)


def _fits(model: nn.Module, size: int) -> bool:
    """One AdamW training step at ``size`` on the GPU, as the finder's probe takes it."""
    inputs, targets = (t.cuda() for t in _make_batch(size))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.0)
    try:
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
        torch.cuda.synchronize()
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    finally:
        model.zero_grad(set_to_none=True)
        del inputs, targets, optimizer
        torch.cuda.empty_cache()


def test_the_finder_recovers_from_real_ooms_and_its_limit_is_the_true_one(capped):
    model = _wide_mlp().cuda()
    before = _ooms()
    found = find_max_batch_size(
        model, _make_batch, F.cross_entropy, max_batch_size=2**20, safety_margin=1.0,
        device="cuda",
    )  # fmt: skip
    assert _ooms() > before  # it ran out of memory for real, and went on
    # The true limit, to 2% (the allocator rounds large blocks to 2 MB): the found size
    # trains, 2% more does not.
    assert _fits(model, found)
    assert not _fits(model, math.ceil(found * 1.02))
    fitted = fit_micro_batch(model, TensorDataset(*_make_batch(64)), F.cross_entropy,
                             torch.device("cuda"), 2**20)  # fmt: skip
    # 90% of the limit (10% headroom for fragmentation), the limit found again by this
    # second search to within the 2% above: at least 88% of the true limit.
    assert 0.88 * found <= fitted <= found


def test_training_at_the_fitted_micro_batch_never_runs_out_of_memory(capped):
    n = 30_000
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, FEATURES, generator=g), torch.randint(10, (n,), generator=g)
    held_out = TensorDataset(x[:2000], y[:2000])
    data = TaskData(TensorDataset(x, y), held_out, held_out)
    task = Task("wide", lambda config: _wide_mlp(), lambda: data, 10, (FEATURES,))
    before = _ooms()
    result = train(
        {"lr": 1e-4, "batch_size": n, "optimizer": "adamw"}, task, epochs=2, seed=0,
        fit_micro_batch=True, device="cuda",
    )  # fmt: skip
    # The fit ran out of memory for real; nothing after it did (training does not catch an
    # out-of-memory error: train() would have raised it).
    assert _ooms() > before
    micro, steps = result.attrs["micro_batch_size"], result.attrs["accumulation_steps"]
    assert steps >= 2 and micro * steps >= n  # the whole split is one accumulated batch
    assert result.attrs["optimizer_steps"] == 2


def test_amp_with_accumulation_equals_one_big_batch_within_amp_tolerance():
    # Float16 products and a different split into GEMMs round differently: within 1e-2
    # relative (float32 on the GPU: within 1e-5, as on the CPU).
    task = _task(n_train=250)
    config = {"lr": 0.05, "batch_size": 64, "optimizer": {"name": "sgd", "momentum": 0.9}}
    for amp, rtol, atol in ((True, 1e-2, 1e-3), (False, 1e-5, 1e-6)):
        whole = train(config, task, epochs=2, seed=3, amp=amp, device="cuda")
        split = train(config, task, epochs=2, seed=3, amp=amp, device="cuda", max_micro_batch=16)
        assert whole.attrs["amp"] is amp and split.attrs["accumulation_steps"] == 4
        assert split.attrs["optimizer_steps"] == whole.attrs["optimizer_steps"] == 8
        for a, b in zip(_params(whole.model), _params(split.model)):
            torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
