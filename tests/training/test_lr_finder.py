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
from hptune.tasks import resolve_task
from hptune.training import lr_find, train
from hptune.training.lr_finder import lr_range_test, suggest_lr
from hptune.trial import TrialDiverged


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


def test_on_digits_the_suggestion_trains_well_and_100x_diverges():
    task = resolve_task("digits-mlp")
    data = task.datasets()
    config = {"optimizer": "adam", "batch_size": 32}
    result = lr_find(task, config, seed=0, data=data)
    assert result.stop_reason == "diverged"
    low, high = result.suggested_range
    assert 1e-4 <= result.suggested_lr <= 1e-1
    assert low < result.suggested_lr <= high
    trained = train({**config, "lr": result.suggested_lr}, task, epochs=3, seed=0, data=data)
    assert trained.best_value > 0.85  # validation accuracy; chance is 0.1
    with pytest.raises(TrialDiverged):
        train({**config, "lr": 100 * result.suggested_lr}, task, epochs=3, seed=0, data=data)


def test_on_mnist1d_the_fall_is_found_past_the_spikes():
    # `hptune lr-find examples/mnist1d.yaml`: a shallow dip (2.3 to 2.0) before raw spikes of
    # 8 and 20. Smoothed forwards and backwards, the spikes buried the dip: it suggested
    # 1.1e-6, outside its own range, and never stopped. The bench's grid (20 epochs, Adam,
    # batch 32) puts the best LR at 1e-2, with 3e-3 and 3e-2 next.
    task = resolve_task("mnist1d-mlp")
    config = {"optimizer": {"name": "adam", "beta1": 0.9}, "batch_size": 32, "weight_decay": 1e-4}
    result = lr_find(task, config, seed=0)
    assert result.stop_reason == "diverged"
    low, high = result.suggested_range
    assert 3e-3 <= result.suggested_lr <= 3e-2
    assert 3e-4 <= low < result.suggested_lr <= high <= 1e-1


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
    # the stop rule, replayed with a running (causal) EMA of the recorded losses: from step 10
    # (n_steps // 10) on, the average first exceeds 2x its minimum at the last step
    average, running = 0.0, []
    for i, loss in enumerate(result.losses):
        average = 0.9 * average + 0.1 * loss
        running.append(average / (1 - 0.9 ** (i + 1)))
    assert result.smoothed_losses == pytest.approx(running, rel=1e-12)
    assert running[-1] > 2.0 * min(running[10:])
    assert all(
        r <= 2.0 * min(running[10 : i + 1])
        for i, r in enumerate(running)
        if 10 <= i < len(running) - 1
    )


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


def _dip_then_spike() -> tuple[np.ndarray, np.ndarray]:
    """A hand-made smoothed curve, LRs 10**-6, 10**-5.9, ...: a noisy plateau, a dip, a spike."""
    loss = np.full(48, 2.0)
    loss[:5] = 5.0  # skipped: the average of the first few batches
    loss[12] = 1.7  # a noise dip on the plateau, below the 10% line
    loss[30:39] = 2.0 - 0.125 * np.arange(9)  # the fall: 2 at 1e-3 to 1 at 10**-2.2
    loss[39:43] = 1.0 - 0.015625 * np.arange(1, 5)  # levelling off to the bottom, 0.9375
    loss[43:] = [1.5, 3.0, 6.0, 12.0, 24.0]  # divergence
    return 10.0 ** np.round(np.arange(48) / 10 - 6, 10), loss


def test_suggest_lr_reads_the_10_50_90_percent_points_of_the_fall():
    lrs, loss = _dip_then_spike()
    # fall = 2 - 0.9375 = 1.0625. low: the last point still >= 2 - 0.10625 (index 30; the
    # dip at 12 is before it); the suggestion: the first point after it <= 2 - 0.53125
    # (35: 1.375); high: the first <= 0.9375 + 0.10625 (38: 1.0). The spike is not read.
    suggested, (low, high), reason = suggest_lr(lrs, loss, skip_start=5)
    assert (suggested, low, high, reason) == (lrs[35], lrs[30], lrs[38], None)
    assert (low, suggested, high) == pytest.approx((1e-3, 10**-2.5, 10**-2.2))
    spiked = loss.copy()
    spiked[43:] *= 100
    assert suggest_lr(lrs, spiked, skip_start=5) == (suggested, (low, high), None)
    # Not skipped, the start is the top: fall = 4.0625, and the plateau is past its middle.
    suggested, (low, high), _ = suggest_lr(lrs, loss, skip_start=0)
    assert (suggested, low, high) == (lrs[5], lrs[4], lrs[36])


def test_suggest_lr_says_why_it_has_no_suggestion():
    lrs, _ = _dip_then_spike()
    rising = np.linspace(1.0, 2.0, 48)
    assert suggest_lr(lrs, rising, skip_start=5) == (
        None,
        None,
        "the smoothed loss never fell between lr 3.16e-06 and 0.0501: lower min_lr, raise max_lr"
        " or n_steps, or check that the model can learn",
    )
    assert suggest_lr(lrs[:7], rising[:7], skip_start=5) == (
        None,
        None,
        "the curve has 2 points after the first 5; 3 are needed: raise n_steps, or lower"
        " min_lr if the sweep diverged at once",
    )
    msg = "lrs and smoothed_losses must be finite and of one length, got 48 LRs and 47 losses"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        suggest_lr(lrs, rising[:-1], skip_start=5)


def _scripted_loss(values):
    """A loss_fn that returns values[i] at call i (and still backpropagates into the model)."""
    calls = []

    def loss_fn(out, target):
        calls.append(1)
        return out.sum() * 0.0 + values[len(calls) - 1]

    return loss_fn


def test_a_divergence_spike_does_not_leak_into_the_curve_before_it():
    # raw losses: 2.3, falling linearly to 0.5 over steps 15-30, then creeping up to 1.0
    calm = np.interp(np.arange(60), [0, 15, 30, 59], [2.3, 2.3, 0.5, 1.0])
    spiked = calm.copy()
    spiked[50:] = [5.0, 50.0, 500.0, *([5000.0] * 7)]
    results = []
    for values in (calm, spiked):
        model = _linear()
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        data = [(torch.randn(4, 8), torch.randn(4, 1))]
        loss_fn = _scripted_loss(values)
        results.append(
            lr_range_test(model, opt, data, loss_fn, min_lr=1e-6, max_lr=1.0, n_steps=60)
        )
    calm_result, spiked_result = results
    assert calm_result.stop_reason == "completed"
    assert int(np.argmin(calm_result.smoothed_losses)) == 47  # the bottom, before the spike
    # at step 50 the average is 0.9 * 0.77 + 0.1 * 5 < 2 * 0.76; the 50 at step 51 doubles it
    assert spiked_result.stop_reason == "diverged" and len(spiked_result.lrs) == 52
    assert spiked_result.smoothed_losses[:50] == calm_result.smoothed_losses[:50]
    assert spiked_result.suggested_lr == calm_result.suggested_lr
    assert spiked_result.suggested_range == calm_result.suggested_range
    expected = suggest_lr(calm_result.lrs, calm_result.smoothed_losses, skip_start=6)
    assert (calm_result.suggested_lr, calm_result.suggested_range, None) == expected
    # The raw loss crosses 10%, 50% and 90% of its fall at steps 16.5, 22.5 and 28.5; the
    # average, lagging, at 19, 28 and 37.
    lrs = calm_result.lrs
    low, high = calm_result.suggested_range
    assert [lrs.index(v) for v in (low, calm_result.suggested_lr, high)] == [19, 28, 37]


def test_no_suggestion_when_the_loss_never_falls():
    model = _linear()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    data = [(torch.randn(4, 8), torch.randn(4, 1))]
    rising = np.linspace(1.0, 1.5, 30)
    result = lr_range_test(model, opt, data, _scripted_loss(rising), max_lr=1e-3, n_steps=30)
    assert result.stop_reason == "completed"
    assert (result.suggested_lr, result.suggested_range) == (None, None)
    assert result.no_suggestion_reason.startswith("the smoothed loss never fell between lr")


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
        ({"min_lr": 0.0}, "min_lr must be a finite number > 0, got 0.0."),
        (
            {"min_lr": 1.0, "max_lr": 0.1},
            "max_lr must be a finite number > 1, got 0.1; more than min_lr.",
        ),
        ({"n_steps": 1}, "n_steps must be an int >= 2, got 1."),
        ({"smoothing": 0.0}, "smoothing must be a number in (0, 1], got 0.0; 1 for no smoothing."),
        ({"diverge_threshold": 1.0}, "diverge_threshold must be a finite number > 1, got 1.0."),
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
