from __future__ import annotations

import contextlib
import copy
import re

import pytest
import torch
from torch import nn

from hptune.exceptions import ConfigError, HptuneError
from hptune.training.accumulation import (
    GradientAccumulator,
    batch_len,
    train_with_gradient_accumulation,
)


def _data(n: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g, dtype=torch.float64)
    y = torch.randn(n, 2, generator=g, dtype=torch.float64)
    return x, y


def _model(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2)).double()


def _batches(
    x: torch.Tensor, y: torch.Tensor, size: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + size], y[i : i + size]) for i in range(0, len(x), size)]


def _sgd(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)


def _reference(model, x, y, window_bounds, clip=None):
    """Plain large-batch training: one step per window on the whole window's samples."""
    opt = _sgd(model)
    for lo, hi in window_bounds:
        opt.zero_grad()
        nn.functional.mse_loss(model(x[lo:hi]), y[lo:hi]).backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
    return model


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _assert_same(a, b):
    assert all(torch.allclose(p, q, rtol=0, atol=1e-12) for p, q in zip(a, b, strict=True))


def _accumulate(model, loader, steps, **kwargs):
    acc = GradientAccumulator(_sgd(model), steps, model=model, **kwargs)
    for window in acc.windows(loader):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    return acc


def test_windows_equal_one_large_batch_including_short_last_window():
    x, y = _data(10)
    model = _model()
    # Batches of 3,3,3,1 in windows of 2 batches: windows of 6 and 4 samples.
    acc = _accumulate(model, _batches(x, y, 3), 2)
    expected = _reference(_model(), x, y, [(0, 6), (6, 10)])
    _assert_same(_params(model), _params(expected))
    assert (acc.optimizer_steps, acc.skipped_steps, acc.samples_seen) == (2, 0, 10)


def test_seed_normalisation_is_not_the_large_batch():
    # The same comparison catches the seed's loss / accumulation_steps with a dropped last window.
    x, y = _data(10)
    model = _model()
    opt = _sgd(model)
    for i, (xb, yb) in enumerate(_batches(x, y, 3)):
        (nn.functional.mse_loss(model(xb), yb) / 2).backward()
        if (i + 1) % 2 == 0:
            opt.step()
            opt.zero_grad()
    expected = _reference(_model(), x, y, [(0, 6), (6, 10)])
    assert not torch.allclose(_params(model)[0], _params(expected)[0], atol=1e-6)


def test_split_windows_cut_effective_batches_exactly():
    x, y = _data(13)
    model = _model()
    acc = GradientAccumulator(_sgd(model), 4, model=model)
    sizes = []
    # Effective batches of 10 and 3; 10 -> 3,3,2,2 and 3 -> 1,1,1 (empty chunks dropped).
    for window in acc.split_windows(_batches(x, y, 10)):
        sizes.append(window.sizes)
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    assert sizes == [[3, 3, 2, 2], [1, 1, 1]]
    _assert_same(_params(model), _params(_reference(_model(), x, y, [(0, 10), (10, 13)])))


def test_one_step_windows_are_bit_identical_to_plain_steps():
    # accumulation_steps=1 takes the fast path (no cut, no loss weighting): same bits as a
    # plain zero_grad/backward/step loop, in float32 where a stray rounding would show.
    x, y = (t.float() for t in _data(13))
    model, ref = _model().float(), _model().float()
    acc = GradientAccumulator(_sgd(model), 1, model=model)
    for window in acc.split_windows(_batches(x, y, 5)):
        assert window.sizes == [len(window.micro_batches[0][0])]
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    opt = _sgd(ref)
    for xb, yb in _batches(x, y, 5):
        opt.zero_grad()
        nn.functional.mse_loss(ref(xb), yb).backward()
        opt.step()
    assert acc.optimizer_steps == 3
    assert all(torch.equal(p, q) for p, q in zip(_params(model), _params(ref), strict=True))


def test_step_batch_is_a_one_micro_batch_window_bit_for_bit():
    # With clipping and a scheduler stepped after each step: the same bits as windows.
    x, y = (t.float() for t in _data(13))
    results = []
    for by_window in (True, False):
        model = _model().float()
        opt = _sgd(model)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
        acc = GradientAccumulator(opt, 1, model=model, scheduler=sched, max_grad_norm=0.5)
        for xb, yb in _batches(x, y, 5):
            if by_window:
                for window in acc.split_windows([(xb, yb)]):
                    for micro_x, micro_y in window:
                        window.backward(nn.functional.mse_loss(model(micro_x), micro_y))
            else:
                acc.step_batch(nn.functional.mse_loss(model(xb), yb), len(xb))
        results.append((_params(model), acc.optimizer_steps, acc.samples_seen, acc.last_grad_norm))
    (windows, *counts_a), (batches, *counts_b) = results
    assert counts_a == counts_b and counts_a[:2] == [3, 13]
    assert all(torch.equal(p, q) for p, q in zip(windows, batches, strict=True))


@pytest.mark.parametrize(("reduction", "per_sample_divisor"), [("mean", 2), ("sum", 1)])
def test_seed_helper_is_exact_and_returns_mean_loss_per_sample(reduction, per_sample_divisor):
    # MSELoss(reduction="mean") averages over n * 2 elements, "sum" sums them: per sample the
    # loss is the squared error summed over the 2 outputs, divided by 2 or 1.
    x, y = _data(10)
    ref = _model()
    opt = _sgd(ref)
    total = 0.0
    for lo, hi in [(0, 6), (6, 10)]:
        opt.zero_grad()
        sq = ((ref(x[lo:hi]) - y[lo:hi]) ** 2).sum() / per_sample_divisor
        total += sq.item()
        (sq / (hi - lo)).backward()
        opt.step()
    model = _model()
    criterion = nn.MSELoss(reduction=reduction)
    got = train_with_gradient_accumulation(
        model, _batches(x, y, 3), criterion, _sgd(model), "cpu", 2
    )
    assert got == pytest.approx(total / 10, rel=1e-12)
    _assert_same(_params(model), _params(ref))


def test_scheduler_steps_once_per_window_and_counters():
    x, y = _data(14)
    model = _model()
    opt = _sgd(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    acc = GradientAccumulator(opt, 3, model=model, scheduler=sched)
    # 7 batches of 2 in windows of 3 batches: 3 windows (3, 3, 1 batches).
    for window in acc.windows(_batches(x, y, 2)):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    assert (acc.optimizer_steps, acc.samples_seen) == (3, 14)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.3 * 0.5**3)


class FakeDDP(nn.Module):
    """A FAKE of DistributedDataParallel: only a counting ``no_sync`` context manager.

    Real DDP needs a process group; the accumulator only relies on ``no_sync`` existing.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module
        self.no_sync_calls = 0
        self.inside = False
        self.forward_inside: list[bool] = []

    @contextlib.contextmanager
    def no_sync(self):
        self.no_sync_calls += 1
        self.inside = True
        try:
            yield
        finally:
            self.inside = False

    def forward(self, x):
        self.forward_inside.append(self.inside)
        return self.module(x)


def test_no_sync_for_all_but_the_last_micro_batch_of_each_window():
    x, y = _data(14)
    model = FakeDDP(_model())
    _accumulate(model, _batches(x, y, 2), 3)  # windows of 3, 3, 1 micro-batches
    assert model.no_sync_calls == 4
    assert model.forward_inside == [True, True, False, True, True, False, False]
    assert not model.inside


def test_real_ddp_accumulates_exactly_and_syncs_once_per_window(tmp_path):
    # A real DistributedDataParallel (gloo, one process, file rendezvous: no network).
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        x, y = _data(14)
        ddp = nn.parallel.DistributedDataParallel(_model())
        entered = []
        no_sync = ddp.no_sync

        @contextlib.contextmanager
        def counting_no_sync():
            entered.append(True)
            with no_sync():
                yield

        ddp.no_sync = counting_no_sync
        _accumulate(ddp, _batches(x, y, 2), 3)  # windows of 3, 3, 1 micro-batches
        reference = _reference(_model(), x, y, [(0, 6), (6, 12), (12, 14)])
        _assert_same(_params(ddp.module), _params(reference))
        assert len(entered) == 4  # 2 + 2 + 0 micro-batches under no_sync
    finally:
        dist.destroy_process_group()


def test_a_bare_plateau_scheduler_is_refused_with_the_way_to_step_it():
    from hptune.training import WarmupScheduler, create_lr_scheduler

    model = _model()
    opt = _sgd(model)
    with pytest.raises(ConfigError, match=re.escape("call scheduler.step(metric=val_loss)")):
        GradientAccumulator(opt, 2, scheduler=create_lr_scheduler(opt, "plateau"))
    with pytest.raises(ConfigError, match="moves on a metric"):
        GradientAccumulator(opt, 2, scheduler=torch.optim.lr_scheduler.ReduceLROnPlateau(opt))
    warm = create_lr_scheduler(opt, "plateau", warmup_steps=2)
    assert isinstance(warm, WarmupScheduler)
    assert GradientAccumulator(opt, 2, scheduler=warm).scheduler is warm


def test_grad_scaler_skipped_step_does_not_advance_scheduler():
    x, y = _data(12)
    x[7, 0] = float("nan")  # poisons the second window (samples 4..7)
    model = _model()
    opt = _sgd(model)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    acc = GradientAccumulator(opt, 2, model=model, scheduler=sched, scaler=scaler)
    for window in acc.windows(_batches(x, y, 2)):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    assert (acc.optimizer_steps, acc.skipped_steps) == (2, 1)
    assert sched.last_epoch == 2
    assert scaler.get_scale() == 512.0
    # The poisoned window changed nothing: same as training on windows 1 and 3 with the
    # scheduler's lr 0.3 then 0.15.
    ref = _model()
    ref_opt = _sgd(ref)
    for (lo, hi), lr in [((0, 4), 0.3), ((8, 12), 0.15)]:
        ref_opt.param_groups[0]["lr"] = lr
        ref_opt.zero_grad()
        nn.functional.mse_loss(ref(x[lo:hi]), y[lo:hi]).backward()
        ref_opt.step()
    _assert_same(_params(model), _params(ref))


def test_clipping_happens_after_unscaling():
    x, y = _data(10)
    scaled = _model()
    scaler = torch.amp.GradScaler("cpu", init_scale=4096.0)
    acc = _accumulate(scaled, _batches(x, y, 5), 2, max_grad_norm=0.01, scaler=scaler)
    expected = _reference(_model(), x, y, [(0, 10)], clip=0.01)
    _assert_same(_params(scaled), _params(expected))
    unclipped = _reference(_model(), x, y, [(0, 10)])
    assert not torch.allclose(_params(scaled)[0], _params(unclipped)[0], atol=1e-6)
    # The recorded norm is the true (unscaled) gradient norm of the large batch.
    probe = _model()
    nn.functional.mse_loss(probe(x), y).backward()
    true_norm = torch.sqrt(sum((p.grad**2).sum() for p in probe.parameters()))
    assert acc.last_grad_norm == pytest.approx(true_norm.item(), rel=1e-9)


def test_batch_len_reads_tensors_tuples_and_dicts():
    assert batch_len(torch.zeros(5, 2)) == 5
    assert batch_len(("id", torch.zeros(3))) == 3
    assert batch_len({"x": torch.zeros(4, 1), "y": torch.zeros(4)}) == 4
    with pytest.raises(HptuneError, match="cannot count the samples of a batch of type str"):
        batch_len("abc")


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"accumulation_steps": 0}, "accumulation_steps must be an int >= 1, got 0"),
        ({"accumulation_steps": 2.0}, "accumulation_steps must be an int >= 1, got 2.0"),
        (
            {"accumulation_steps": 2, "max_grad_norm": -1.0},
            "max_grad_norm must be a finite number > 0 or None, got -1.0; None for no clipping.",
        ),
    ],
)
def test_bad_arguments(kwargs, msg):
    opt = _sgd(_model())
    with pytest.raises(ConfigError, match=re.escape(msg)):
        GradientAccumulator(opt, **kwargs)


def test_backward_misuse_is_reported():
    x, y = _data(4)
    model = _model()
    acc = GradientAccumulator(_sgd(model), 2, model=model)
    window = next(acc.windows(_batches(x, y, 2)))
    with pytest.raises(HptuneError, match="outside the loop"):
        window.backward(torch.tensor(1.0))
    with pytest.raises(HptuneError, match=re.escape("called twice for micro-batch 0")):
        for xb, yb in window:
            loss = nn.functional.mse_loss(model(xb), yb)
            window.backward(loss, reduction="sum")
            window.backward(loss)
    window = next(acc.windows(_batches(x, y, 2)))
    with pytest.raises(HptuneError, match=re.escape("not called for micro-batch(es) [1]")):
        for i, (xb, yb) in enumerate(window):
            if i == 0:
                window.backward(nn.functional.mse_loss(model(xb), yb))
    assert acc.optimizer_steps == 0
    with pytest.raises(ConfigError, match="reduction must be 'mean' or 'sum', got 'none'"):
        window = next(acc.windows(_batches(x, y, 2)))
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb), reduction="none")


def test_seed_helper_refuses_a_loss_that_does_not_reduce():
    model = _model()
    with pytest.raises(
        ConfigError, match="criterion.reduction must be 'mean' or 'sum', got 'none'"
    ):
        train_with_gradient_accumulation(
            model, [], nn.MSELoss(reduction="none"), _sgd(model), "cpu", 2
        )


def test_clip_without_model_uses_optimizer_parameters():
    x, y = _data(10)
    model = _model()
    opt = _sgd(model)
    acc = GradientAccumulator(opt, 1, max_grad_norm=0.01)
    for window in acc.windows([(x, y)]):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
    _assert_same(_params(model), _params(_reference(_model(), x, y, [(0, 10)], clip=0.01)))
    assert copy.deepcopy(acc.last_grad_norm) > 0.01


def test_gradients_left_outside_a_window_are_dropped_when_the_next_one_starts():
    # A backward outside any window, and a window abandoned half-way, leave gradients in
    # .grad; the next window starts from none, so its step equals a step on its own batch.
    x, y = _data(8)
    model, reference = _model(), _model()
    acc = GradientAccumulator(_sgd(model), 2, model=model)
    nn.functional.mse_loss(model(x), y).backward()  # stray
    for window in acc.windows(_batches(x[:4], y[:4], 2)):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))
            break  # abandoned after one micro-batch: no step
        break
    _accumulate_into(acc, model, _batches(x[4:], y[4:], 2))
    _assert_same(_params(model), _params(_reference(reference, x, y, [(4, 8)])))


def _accumulate_into(acc, model, loader):
    for window in acc.windows(loader):
        for xb, yb in window:
            window.backward(nn.functional.mse_loss(model(xb), yb))


def test_clipping_keeps_the_norm_on_the_device_until_it_is_asked_for(monkeypatch):
    reads = []
    original = torch.Tensor.__float__
    monkeypatch.setattr(torch.Tensor, "__float__", lambda t: reads.append(1) or original(t))
    x, y = _data(8)
    model = _model()
    acc = _accumulate(model, _batches(x, y, 2), 2, max_grad_norm=0.01)
    assert (acc.optimizer_steps, reads) == (2, [])
    assert acc.last_grad_norm > 0.01 and reads == [1]
