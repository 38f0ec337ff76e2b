from __future__ import annotations

import copy
import math
import random
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from hptune.exceptions import ConfigError, HptuneError
from hptune.training.lr_finder import lr_range_test, suggest_lr


def _regression(n: int = 512, d: int = 8):
    """y = Xw + noise; returns the data, a shuffled loader and the critical SGD learning rate."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, d, generator=g)
    y = x @ torch.randn(d, 1, generator=g) + 0.1 * torch.randn(n, 1, generator=g)
    loader = DataLoader(TensorDataset(x, y), batch_size=32, shuffle=True)
    # Gradient descent on the mean squared error diverges above 2 / lambda_max of its Hessian
    # 2/n [X 1]^T [X 1] (the 1 column is the bias).
    xb = torch.cat([x, torch.ones(n, 1)], dim=1)
    critical = 2.0 / torch.linalg.eigvalsh(2.0 / n * xb.T @ xb).max().item()
    return x, y, loader, critical


def _linear(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Linear(8, 1)


def _train(lr: float, x, y, loader, n_steps: int = 200) -> tuple[float, float]:
    """Plain SGD training; returns the full-data loss before and after."""
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    before = nn.functional.mse_loss(model(x), y).item()
    batches = iter(())
    for _ in range(n_steps):
        batch = next(batches, None)
        if batch is None:
            batches = iter(loader)
            batch = next(batches)
        opt.zero_grad()
        nn.functional.mse_loss(model(batch[0]), batch[1]).backward()
        opt.step()
    return before, nn.functional.mse_loss(model(x), y).item()


def test_suggested_lr_trains_well_and_100x_diverges():
    x, y, loader, critical = _regression()
    model = _linear()
    torch.manual_seed(0)
    result = lr_range_test(
        model, torch.optim.SGD(model.parameters(), lr=0.1), loader, nn.MSELoss(), min_lr=1e-5
    )
    assert result.stop_reason == "diverged"
    low, high = result.suggested_range
    assert low < result.suggested_lr < high < critical
    before, after = _train(result.suggested_lr, x, y, loader)
    assert after < before / 100  # ~10 -> the noise floor 0.01
    _, after_high = _train(high, x, y, loader)
    assert after_high < before / 100
    _, after_100x = _train(100 * result.suggested_lr, x, y, loader)
    assert not after_100x < before  # NaN or larger: divergence


def _snapshot_rng():
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def test_restores_weights_optimizer_and_rng_bit_exactly():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.3), nn.BatchNorm1d(16), nn.Linear(16, 2))
    opt = torch.optim.Adam(
        [
            {"params": model[0].parameters(), "lr": 1e-3},
            {"params": list(model[2].parameters()) + list(model[3].parameters()), "lr": 1e-2},
        ]
    )
    data = TensorDataset(torch.randn(64, 6), torch.randint(0, 2, (64,)))
    loader = DataLoader(data, batch_size=16, shuffle=True)
    for xb, yb in list(loader)[:3]:  # real optimizer state, and leftover gradients
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    model.eval()
    weights = copy.deepcopy(model.state_dict())
    grads = [p.grad.clone() for p in model.parameters()]
    opt_state = copy.deepcopy(opt.state_dict())
    torch_rng, np_rng, py_rng = _snapshot_rng()
    seen: list[torch.Tensor] = []

    def loss_fn(out, target):
        np.random.rand()  # consumes every RNG, as augmentation would
        random.random()
        seen.append(model[0].weight.detach().clone())
        return nn.functional.cross_entropy(out, target)

    result = lr_range_test(model, opt, loader, loss_fn, min_lr=1e-4, max_lr=1.0, n_steps=12)
    assert len(result.lrs) == 12 and not torch.equal(seen[-1], weights["0.weight"])
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in weights.items())
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, model.parameters()))
    assert not model.training
    state = opt.state_dict()
    assert state["param_groups"] == opt_state["param_groups"]
    for key, saved in opt_state["state"].items():
        assert all(torch.equal(saved[k], state["state"][key][k]) for k in saved)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    assert torch.equal(torch.get_rng_state(), torch_rng)
    assert all(np.array_equal(a, b) for a, b in zip(np.random.get_state(), np_rng))
    assert random.getstate() == py_rng


def test_group_lr_ratios_are_kept_and_the_largest_group_follows_the_sweep():
    model = nn.Sequential(nn.Linear(8, 4), nn.Linear(4, 1))
    opt = torch.optim.SGD(
        [
            {"params": model[0].parameters(), "lr": 0.01},
            {"params": model[1].parameters(), "lr": 0.1},
        ]
    )
    seen: list[list[float]] = []

    def loss_fn(out, target):
        seen.append([g["lr"] for g in opt.param_groups])
        return nn.functional.mse_loss(out, target)

    x, y, loader, _ = _regression()
    result = lr_range_test(model, opt, loader, loss_fn, min_lr=1e-6, max_lr=1e-2, n_steps=30)
    assert result.stop_reason == "completed"
    gamma = (1e-2 / 1e-6) ** (1 / 29)
    assert result.lrs == pytest.approx([1e-6 * gamma**i for i in range(30)], rel=1e-12)
    assert [s[1] for s in seen] == list(result.lrs)
    assert [s[0] for s in seen] == pytest.approx([0.1 * lr for lr in result.lrs], rel=1e-12)


def test_stops_when_the_loss_diverges():
    x, y, loader, critical = _regression()
    model = _linear()
    result = lr_range_test(
        model, torch.optim.SGD(model.parameters(), lr=1.0), loader, nn.MSELoss(), max_lr=1e4
    )
    assert result.stop_reason == "diverged"
    assert len(result.lrs) < 100 and result.lrs[-1] > critical
    # the stop rule, replayed with a running (causal) EMA of the recorded losses
    average, running = 0.0, []
    for i, loss in enumerate(result.losses):
        average = 0.95 * average + 0.05 * loss
        running.append(average / (1 - 0.95 ** (i + 1)))
    assert running[-1] > 4.0 * min(running)
    assert all(r <= 4.0 * min(running[: i + 1]) for i, r in enumerate(running[:-1]))


def test_stops_on_a_non_finite_loss_and_cycles_the_loader():
    calls = []

    def loss_fn(out, target):
        calls.append(1)
        loss = nn.functional.mse_loss(out, target)
        return loss * float("nan") if len(calls) == 8 else loss

    model = _linear()
    loader = [(torch.randn(4, 8), torch.randn(4, 1)) for _ in range(3)]
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    result = lr_range_test(model, opt, loader, loss_fn, max_lr=1e-3)
    assert result.stop_reason == "non-finite loss"
    assert len(result.losses) == 7 and len(calls) == 8


def test_suggest_lr_on_a_known_curve():
    u = np.round(np.linspace(-6.0, 0.0, 61), 10)  # log10 of the LR, steps of 0.1
    # steepest fall at u = -3, minimum at u = -1, 10% of the fall reached first at u = -3.5
    loss = 2 - np.tanh(2 * (u + 3)) + 0.5 * np.maximum(0.0, u + 1) ** 2
    suggested, (low, high) = suggest_lr(10.0**u, loss, skip_start=5, skip_end=3)
    assert suggested == pytest.approx(1e-3)
    assert low == pytest.approx(10**-3.5)
    assert high == pytest.approx(0.1)
    assert suggest_lr([1e-3, 1e-2], [1.0, 2.0], skip_start=1, skip_end=1) == (None, None)


@pytest.mark.slow  # a subprocess importing torch, and matplotlib
def test_plot_writes_a_png_and_import_does_not_load_matplotlib(tmp_path):
    model = _linear()
    data = [(torch.randn(16, 8), torch.randn(16, 1))]
    result = lr_range_test(
        model, torch.optim.SGD(model.parameters(), lr=0.1), data, nn.MSELoss(), n_steps=20
    )
    result.plot(tmp_path / "lr.png")
    assert (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"
    code = "import sys, hptune.training.lr_finder; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"min_lr": 0.0}, "0 < min_lr < max_lr must hold, got min_lr=0.0, max_lr=10.0"),
        (
            {"min_lr": 1.0, "max_lr": 0.1},
            "0 < min_lr < max_lr must hold, got min_lr=1.0, max_lr=0.1",
        ),
        ({"n_steps": 1}, "n_steps must be an int >= 2, got 1"),
        ({"smoothing": 0.0}, "smoothing must be in (0, 1] (1 = no smoothing), got 0.0"),
        ({"diverge_threshold": 1.0}, "diverge_threshold must be > 1, got 1.0"),
    ],
)
def test_rejects_bad_arguments(kwargs, msg):
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ConfigError, match=re.escape(msg)):
        lr_range_test(model, opt, [], nn.MSELoss(), **kwargs)


def test_empty_loader_is_an_error_and_state_is_still_restored():
    model = _linear()
    before = copy.deepcopy(model.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(HptuneError, match="train_loader yielded no batches"):
        lr_range_test(model, opt, [], nn.MSELoss())
    assert opt.param_groups[0]["lr"] == 0.1
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    assert math.isfinite(opt.param_groups[0]["lr"])
