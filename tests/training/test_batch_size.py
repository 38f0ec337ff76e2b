from __future__ import annotations

import math
import re

import pytest
import torch
from torch import nn

from hptune.exceptions import ConfigError, HptuneError
from hptune.training.accumulation import GradientAccumulator
from hptune.training.batch_size import (
    BatchPlan,
    DynamicBatchSizer,
    find_max_batch_size,
    is_oom_error,
    plan_batch,
)
from hptune.training.schedulers import WarmupScheduler, create_lr_scheduler, needs_metric
from tests.training.test_schedulers import OPTIONS as SCHEDULER_OPTIONS

# ---------------------------------------------------------------- plan_batch


@pytest.mark.parametrize(
    ("effective", "max_micro", "expected"),
    [
        (100, 32, BatchPlan(25, 4, 100, (25, 25, 25, 25))),
        (98, 30, BatchPlan(25, 4, 98, (25, 25, 24, 24))),
        (97, None, BatchPlan(97, 1, 97, (97,))),
        (7, 1, BatchPlan(1, 7, 7, (1,) * 7)),
        (1, 64, BatchPlan(1, 1, 1, (1,))),
        (256, 100, BatchPlan(86, 3, 256, (86, 85, 85))),
    ],
)
def test_plan_batch_examples(effective, max_micro, expected):
    plan = plan_batch(effective, max_micro)
    assert plan == expected
    assert plan.uniform == (len(set(plan.micro_batch_sizes)) == 1)


def test_plan_batch_honours_the_effective_batch_exactly():
    for effective in range(1, 130):
        for max_micro in range(1, 40):
            plan = plan_batch(effective, max_micro)
            assert sum(plan.micro_batch_sizes) == effective
            assert plan.accumulation_steps == math.ceil(effective / max_micro)
            assert len(plan.micro_batch_sizes) == plan.accumulation_steps
            assert plan.micro_batch_size == max(plan.micro_batch_sizes) <= max_micro
            assert max(plan.micro_batch_sizes) - min(plan.micro_batch_sizes) <= 1


def test_plan_matches_the_accumulators_split():
    plan = plan_batch(98, 30)
    x = torch.zeros(98, 2)
    acc = GradientAccumulator(
        torch.optim.SGD([nn.Parameter(torch.zeros(1))]), plan.accumulation_steps
    )
    window = next(acc.split_windows([x]))
    assert tuple(window.sizes) == plan.micro_batch_sizes


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ((0,), "effective_batch_size must be an int >= 1, got 0"),
        ((8, 0), "max_micro_batch must be an int >= 1, got 0"),
    ],
)
def test_plan_batch_rejects_bad_sizes(args, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        plan_batch(*args)


# ---------------------------------------------------------------- DynamicBatchSizer


def test_seed_growth_is_capped_and_always_makes_progress():
    sizer = DynamicBatchSizer(32, 256)
    assert [sizer.increase_batch_size() for _ in range(7)] == [48, 72, 108, 162, 243, 256, 256]
    assert sizer.current_batch_size == 256
    # int(1 * 1.5) == 1: the seed's formula would never grow from 1.
    assert DynamicBatchSizer(1, 4).increase_batch_size() == 2


def _two_group_optimizer() -> torch.optim.Optimizer:
    a, b = nn.Parameter(torch.zeros(2)), nn.Parameter(torch.zeros(2))
    return torch.optim.SGD([{"params": [a], "lr": 0.1}, {"params": [b], "lr": 0.01}])


@pytest.mark.parametrize(
    ("policy", "factor"), [("keep", 1.0), ("linear", 2.0), ("sqrt", math.sqrt(2.0))]
)
def test_lr_policy_scales_every_group_and_keeps_ratios(policy, factor):
    opt = _two_group_optimizer()
    sizer = DynamicBatchSizer(32, 256, growth_factor=2, lr_policy=policy, optimizer=opt)
    assert sizer.increase_batch_size() == 64
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * factor, 0.01 * factor])
    assert sizer.lr_factor == pytest.approx(factor)


def test_lr_policy_survives_the_next_scheduler_step():
    opt = _two_group_optimizer()
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0)
    sizer = DynamicBatchSizer(
        16, 64, growth_factor=2, lr_policy="linear", optimizer=opt, scheduler=sched
    )
    sizer.increase_batch_size()
    opt.step()
    sched.step()  # LambdaLR recomputes lr = base_lr * lambda; base_lrs were scaled with it
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.2, 0.02])


def test_every_n_epochs_schedule():
    sizer = DynamicBatchSizer(10, 30, growth_factor=2, every_n_epochs=3)
    grew = [sizer.on_epoch_end(epoch) for epoch in range(9)]
    assert grew == [False, False, True, False, False, True, False, False, False]
    assert sizer.current_batch_size == 30


@pytest.mark.parametrize(
    ("mode", "sign"),
    [("min", 1.0), ("max", -1.0)],
)
def test_plateau_schedule(mode, sign):
    sizer = DynamicBatchSizer(8, 1024, growth_factor=2, patience=2, mode=mode, min_delta=0.01)
    metrics = [1.0, 0.9, 0.895, 0.95, 0.8, 0.8, 0.8]  # 0.895 is within min_delta of 0.9
    grew = [sizer.on_epoch_end(i, metric=sign * m) for i, m in enumerate(metrics)]
    assert grew == [False, False, False, True, False, False, True]
    assert sizer.current_batch_size == 32


def test_state_dict_round_trip():
    sizer = DynamicBatchSizer(8, 1024, patience=1, lr_policy="linear")
    sizer.on_epoch_end(0, metric=1.0)
    sizer.on_epoch_end(1, metric=2.0)
    other = DynamicBatchSizer(8, 1024, patience=1, lr_policy="linear")
    other.load_state_dict(sizer.state_dict())
    assert (
        other.state_dict()
        == sizer.state_dict()
        == {
            "current_batch_size": 12,
            "lr_factor": 1.5,
            "best": 1.0,
            "n_bad_epochs": 0,
        }
    )
    with pytest.raises(ConfigError, match=re.escape("unknown DynamicBatchSizer state keys ['lr']")):
        other.load_state_dict({"lr": 0.1})


@pytest.mark.parametrize(
    ("args", "kwargs", "msg"),
    [
        ((0, 8), {}, "initial_batch_size must be an int >= 1, got 0"),
        ((16, 8), {}, "max_batch_size must be an int >= 16, got 8"),
        ((8, 16, 1.0), {}, "growth_factor must be a finite number > 1, got 1.0"),
        (
            (8, 16),
            {"lr_policy": "cubic"},
            "lr_policy must be one of 'keep', 'linear', 'sqrt', got 'cubic'",
        ),
        ((8, 16), {"mode": "up"}, "mode must be one of 'min', 'max', got 'up'"),
        ((8, 16), {"every_n_epochs": 0}, "every_n_epochs must be an int >= 1 or None, got 0"),
    ],
)
def test_sizer_rejects_bad_arguments(args, kwargs, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        DynamicBatchSizer(*args, **kwargs)


def test_plateau_needs_a_metric():
    with pytest.raises(HptuneError, match="on_epoch_end needs metric= when patience is set"):
        DynamicBatchSizer(8, 16, patience=2).on_epoch_end(0)


# ---------------------------------------------------------------- find_max_batch_size


class ThresholdProbe:
    """Simulates a device: sizes above ``limit`` raise CUDA's out-of-memory error."""

    def __init__(self, limit: int, error: type[Exception] = torch.cuda.OutOfMemoryError) -> None:
        self.limit = limit
        self.error = error
        self.calls: list[int] = []

    def __call__(self, batch_size: int) -> bool:
        self.calls.append(batch_size)
        if batch_size > self.limit:
            raise self.error("CUDA out of memory. Tried to allocate 2.00 GiB")
        return True


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 64, 100, 1000, 4097, 65535])
def test_finds_the_exact_limit_in_logarithmic_probes(limit):
    probe = ThresholdProbe(limit)
    assert find_max_batch_size(probe=probe, safety_margin=1.0) == limit
    assert len(probe.calls) <= 2 * math.floor(math.log2(limit)) + 2
    assert len(set(probe.calls)) == len(probe.calls)  # no size probed twice


def test_probe_count_for_100_by_hand():
    probe = ThresholdProbe(100)
    find_max_batch_size(probe=probe, safety_margin=1.0)
    # doubling 1..128 (128 fails), then bisecting (64, 128)
    assert probe.calls == [1, 2, 4, 8, 16, 32, 64, 128, 96, 112, 104, 100, 102, 101]


def test_cap_start_margin_and_other_failure_forms():
    assert (
        find_max_batch_size(probe=ThresholdProbe(5000), max_batch_size=1000, safety_margin=1.0)
        == 1000
    )
    assert find_max_batch_size(probe=ThresholdProbe(100), start=48, safety_margin=1.0) == 100
    assert find_max_batch_size(probe=ThresholdProbe(100)) == 90  # floor(100 * 0.9)
    assert find_max_batch_size(probe=ThresholdProbe(1), safety_margin=0.5) == 1
    assert find_max_batch_size(probe=ThresholdProbe(77, RuntimeError), safety_margin=1.0) == 77
    assert find_max_batch_size(probe=lambda b: b <= 33, safety_margin=1.0) == 33


def test_non_oom_errors_propagate_and_start_must_fit():
    with pytest.raises(ValueError, match="shape mismatch"):
        find_max_batch_size(probe=ThresholdProbe(10, lambda msg: ValueError("shape mismatch")))
    with pytest.raises(HptuneError, match=re.escape("batch size start=16 does not fit in memory")):
        find_max_batch_size(probe=ThresholdProbe(10), start=16)


def test_is_oom_error():
    assert is_oom_error(torch.cuda.OutOfMemoryError("x"))
    assert is_oom_error(RuntimeError("CUDA error: out of memory"))
    assert is_oom_error(RuntimeError("CUBLAS_STATUS_ALLOC_FAILED when calling cublasCreate"))
    assert not is_oom_error(RuntimeError("size mismatch"))
    assert not is_oom_error(ValueError("out of memory"))


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"safety_margin": 0.0}, "safety_margin must be a number in (0, 1], got 0.0"),
        ({"start": 0}, "start must be an int >= 1, got 0"),
        ({"start": 8, "max_batch_size": 4}, "max_batch_size must be an int >= 8, got 4"),
        ({}, "find_max_batch_size needs model, make_batch and loss_fn, or probe="),
    ],
)
def test_find_rejects_bad_arguments(kwargs, msg):
    with pytest.raises(ConfigError, match=re.escape(msg)):
        find_max_batch_size(**kwargs)


def test_model_probe_runs_real_steps_and_restores_the_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps: list[int] = []

    def make_batch(batch_size):
        # A SIMULATED allocation failure: a CPU has no out-of-memory error to trigger.
        if batch_size > 37:
            raise RuntimeError(f"CUDA out of memory (simulated) at batch {batch_size}")
        return torch.randn(batch_size, 6), torch.randint(0, 3, (batch_size,))

    def factory(params):
        opt = torch.optim.AdamW(params, lr=1.0)  # a real lr: the probes do change the weights
        opt.register_step_post_hook(lambda *_: steps.append(1))
        return opt

    found = find_max_batch_size(
        model, make_batch, nn.CrossEntropyLoss(), factory, start=2, device="cpu"
    )
    assert found == math.floor(37 * 0.9)
    assert len(steps) > 5
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in model.parameters())
    assert not model.training


@pytest.mark.parametrize("warmup_steps", [0, 3])
@pytest.mark.parametrize("name", sorted(SCHEDULER_OPTIONS))
def test_linear_policy_doubles_every_later_lr_of_any_scheduler(name, warmup_steps):
    # Two identical runs; one doubles its batch (linear policy: LR x2) after step 5. Every LR
    # after that must be exactly twice the other run's: no scheduler undoes the change.
    # (cosine's eta_min is an absolute floor, so it is left at 0 here.)
    options = {**SCHEDULER_OPTIONS[name], **({"eta_min": 0.0} if name == "cosine" else {})}

    def run(grow_at: int | None) -> list[list[float]]:
        opt = _two_group_optimizer()
        sched = create_lr_scheduler(opt, name, warmup_steps=warmup_steps, **options)
        sizer = DynamicBatchSizer(
            16, 64, growth_factor=2, lr_policy="linear", optimizer=opt, scheduler=sched
        )
        lrs = []
        for step in range(1, 16):
            opt.step()
            if isinstance(sched, WarmupScheduler) or not needs_metric(sched):
                sched.step()
            if needs_metric(sched):
                sched.step(metric=1.0)
            if step == grow_at:
                sizer.increase_batch_size()
            lrs.append([g["lr"] for g in opt.param_groups])
        return lrs

    plain, grown = run(None), run(5)
    assert grown[:4] == plain[:4]
    for before, after in zip(plain[4:], grown[4:], strict=True):
        assert after == pytest.approx([2 * lr for lr in before], rel=1e-9, abs=1e-12)
