"""Tests of hptune.training.schedulers: exact LR sequences, plateau after warmup, round trips."""

from __future__ import annotations

import io
import logging
import math
import re

import pytest
import torch
from torch.optim import lr_scheduler as tls

from hptune.exceptions import ConfigError, HptuneError
from hptune.training import schedulers as sch
from hptune.training.schedulers import (
    WarmupScheduler,
    create_lr_scheduler,
    list_schedulers,
    needs_metric,
    register_scheduler,
)

BUILTINS = [
    "constant",
    "cosine",
    "cosine_warm_restarts",
    "cyclic",
    "exponential",
    "linear",
    "multistep",
    "onecycle",
    "plateau",
    "polynomial",
    "step",
]

# Options that make each scheduler move within a few steps; every registered name needs one.
OPTIONS = {
    "constant": {},
    "cosine": {"T_max": 10, "eta_min": 0.001},
    "cosine_warm_restarts": {"T_0": 4, "T_mult": 2},
    "cyclic": {"step_size_up": 3, "cycle_momentum": True},
    "exponential": {"gamma": 0.9},
    "linear": {"total_iters": 12, "end_factor": 0.1},
    "multistep": {"milestones": [3, 6], "gamma": 0.5},
    "onecycle": {"total_steps": 40},
    "plateau": {"factor": 0.5, "patience": 1},
    "polynomial": {"total_iters": 40, "power": 2.0},
    "step": {"step_size": 4, "gamma": 0.5},
}


@pytest.fixture(autouse=True)
def _restore_registry():
    """Tests that register schedulers must not leak them into other tests."""
    registry, aliases = dict(sch._REGISTRY), dict(sch._ALIASES)
    yield
    sch._REGISTRY.clear(), sch._REGISTRY.update(registry)
    sch._ALIASES.clear(), sch._ALIASES.update(aliases)


def _two_group_sgd(lr: float = 0.1, ratio: float = 0.1, momentum: float = 0.5):
    """A model with two parameter groups; the second group's LR is ``lr * ratio``."""
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 1)
    bias_lr = float(f"{lr * ratio:.12g}")  # 0.01, not 0.1 * 0.1 = 0.010000000000000002
    groups = [{"params": [model.weight]}, {"params": [model.bias], "lr": bias_lr}]
    return model, torch.optim.SGD(groups, lr=lr, momentum=momentum)


def _lr_run(opt, sched, n_steps: int, metric_offset: int = 0, metric=lambda j: 1.0):
    """LRs after construction and after each of n_steps optimizer steps.

    A metric-driven scheduler gets ``metric(j)`` after step ``n`` when
    ``j = n - metric_offset >= 1``: evaluation j of the scheduler's own clock.
    """
    lrs = [sched.get_last_lr()]
    for n in range(1, n_steps + 1):
        opt.step()
        if isinstance(sched, WarmupScheduler) or not needs_metric(sched):
            sched.step()
        if needs_metric(sched) and n - metric_offset >= 1:
            sched.step(metric(n - metric_offset))
        lrs.append(list(sched.get_last_lr()))
    return lrs


def _roundtrip(obj_state: dict) -> dict:
    """Through torch.save / torch.load, as a checkpoint file would go."""
    buffer = io.BytesIO()
    torch.save(obj_state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


# --- exact numbers -------------------------------------------------------------------------


def test_warmup_then_cosine_matches_hand_computation_for_two_groups():
    _, opt = _two_group_sgd(lr=0.1, ratio=0.1)
    cosine = tls.CosineAnnealingLR(opt, T_max=10, eta_min=0.0)
    sched = WarmupScheduler(opt, warmup_steps=5, after=cosine)
    lrs = _lr_run(opt, sched, 15)
    expected = [0.1 * k / 5 for k in range(5)]
    expected += [0.1 * (1 + math.cos(math.pi * j / 10)) / 2 for j in range(11)]
    assert [lr[0] for lr in lrs] == pytest.approx(expected, rel=1e-12, abs=1e-15)
    assert [lr[1] for lr in lrs] == pytest.approx([e * 0.1 for e in expected], abs=1e-15)
    assert lrs[5] == [0.1, 0.01]  # exactly base_lr at the hand-over


def test_start_factor_sets_the_first_lr():
    _, opt = _two_group_sgd(lr=0.2)
    sched = WarmupScheduler(opt, 4, start_factor=0.5)
    lrs = [lr[0] for lr in _lr_run(opt, sched, 6)]
    assert lrs == pytest.approx([0.1, 0.125, 0.15, 0.175, 0.2, 0.2, 0.2], rel=1e-12)


def test_warmup_then_plateau_matches_hand_computation():
    _, opt = _two_group_sgd(lr=0.1)
    plateau = tls.ReduceLROnPlateau(opt, factor=0.5, patience=1, threshold=0.0)
    sched = WarmupScheduler(opt, 3, after=plateau)
    # two optimizer steps per epoch, then an evaluation
    metrics = [9.0, 4.0, 4.0, 4.0, 3.0, 3.0, 3.0, 3.0]
    seen = []
    for m in metrics:
        for _ in range(2):
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr()[0])
        sched.step(metric=m)
        seen.append(sched.get_last_lr()[0])
    w1, w2 = 0.1 / 3, 0.2 / 3
    expected = [
        w1, w2, w2,            # epoch 1: still in warmup (2 < 3): metric 9.0 only recorded
        0.1, 0.1, 0.1,         # epoch 2: hand-over at step 3; 4.0 is the plateau's first best
        0.1, 0.1, 0.1,         # epoch 3: 4.0 again, 1 bad evaluation (patience 1)
        0.1, 0.1, 0.05,        # epoch 4: 2 bad evaluations > patience: halve
        0.05, 0.05, 0.05,      # epoch 5: 3.0 is better, reset
        0.05, 0.05, 0.05,      # epoch 6: 1 bad
        0.05, 0.05, 0.025,     # epoch 7: 2 bad: halve
        0.025, 0.025, 0.025,   # epoch 8: 1 bad; reductions never overwritten by step()
    ]  # fmt: skip
    assert seen == pytest.approx(expected, rel=1e-12)
    assert sched.last_metric == 3.0
    assert plateau.best == 3.0 and plateau.num_bad_epochs == 1
    assert plateau.last_epoch == 7  # 9.0 during warmup never reached the plateau


def test_reductions_are_not_overwritten_by_later_steps():
    _, opt = _two_group_sgd(lr=0.1, ratio=0.1)
    sched = WarmupScheduler(opt, 2, after=tls.ReduceLROnPlateau(opt, factor=0.1, patience=0))
    for _ in range(2):
        opt.step()
        sched.step()
    sched.step(1.0)
    sched.step(2.0)  # worse, patience 0: reduce both groups
    assert sched.get_last_lr() == pytest.approx([0.01, 0.001], rel=1e-12)
    for _ in range(50):
        opt.step()
        sched.step()
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01, 0.001], rel=1e-12)
    assert sched.after.last_epoch == 2  # plain step() never moves the plateau


def test_metric_does_not_advance_the_clock_of_a_per_step_scheduler():
    _, opt_a = _two_group_sgd()
    plain = WarmupScheduler(opt_a, 2, after=tls.StepLR(opt_a, step_size=3, gamma=0.5))
    _, opt_b = _two_group_sgd()
    noisy = WarmupScheduler(opt_b, 2, after=tls.StepLR(opt_b, step_size=3, gamma=0.5))
    lrs_a, lrs_b = [], []
    for i in range(10):
        opt_a.step(), plain.step(), lrs_a.append(plain.get_last_lr())
        opt_b.step(), noisy.step(), noisy.step(metric=float(i)), lrs_b.append(noisy.get_last_lr())
    assert lrs_a == lrs_b
    assert noisy.last_metric == 9.0 and not noisy.needs_metric


def test_absolute_lrs_keep_group_ratios_and_reach_the_target():
    _, opt = _two_group_sgd(lr=0.05, ratio=0.1)
    sched = WarmupScheduler(opt, 4, initial_lr=0.001, target_lr=0.1)
    lrs = _lr_run(opt, sched, 6)
    expected = [0.001 + (0.1 - 0.001) * k / 4 for k in range(4)] + [0.1] * 3
    assert [lr[0] for lr in lrs] == pytest.approx(expected, rel=1e-12)
    assert [lr[1] for lr in lrs] == pytest.approx([e * 0.1 for e in expected], rel=1e-12)
    assert lrs[-1][0] == 0.1  # reaches target_lr after warmup_steps steps
    # A number in place of the scheduler is refused (the LRs are keywords).
    with pytest.raises(ConfigError, match=re.escape("after must be an LR scheduler")):
        WarmupScheduler(opt, 4, 0.001)


# --- state_dict round trips with real training ---------------------------------------------


def _trainer(warmup: int):
    torch.manual_seed(0)
    x, y = torch.randn(32, 4), torch.randn(32, 1)
    model, opt = _two_group_sgd(lr=0.1, ratio=0.1)
    plateau = create_lr_scheduler(opt, "plateau", factor=0.5, patience=1)
    return model, opt, WarmupScheduler(opt, warmup, after=plateau), (x, y)


def _train(model, opt, sched, data, epochs: range, lrs: list) -> None:
    x, y = data
    for epoch in epochs:
        for i in range(3):
            loss = torch.nn.functional.mse_loss(model(x[i::3]), y[i::3])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            lrs.append(sched.get_last_lr())
        # a made-up validation metric that stalls, so the plateau fires mid-run
        sched.step(metric=max(2.0, 5.0 - epoch))
        lrs.append(sched.get_last_lr())


@pytest.mark.parametrize("load_scheduler_first", [False, True])
@pytest.mark.parametrize("cut", [1, 5, 6], ids=["mid-warmup", "mid-plateau", "after-reduction"])
def test_round_trip_mid_warmup_and_mid_plateau_continues_identically(cut, load_scheduler_first):
    model, opt, sched, data = _trainer(warmup=5)
    reference: list = []
    _train(model, opt, sched, data, range(10), reference)
    final = [p.detach().clone() for p in model.parameters()]
    assert min(lr[0] for lr in reference) < 0.1 / 4  # the plateau did reduce, twice or more

    model, opt, sched, data = _trainer(warmup=5)
    resumed: list = []
    _train(model, opt, sched, data, range(cut), resumed)
    if cut == 1:
        assert sched.in_warmup
    if cut == 5:
        assert sched.after.num_bad_epochs == 1 and sched.after.best == 2.0
    if cut == 6:
        assert sched.get_last_lr() == [0.05, 0.005]
    saved = _roundtrip(
        {"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict()}
    )
    model, opt, sched, data = _trainer(warmup=5)
    model.load_state_dict(saved["model"])
    if load_scheduler_first:
        sched.load_state_dict(saved["sched"])
        opt.load_state_dict(saved["opt"])
    else:
        opt.load_state_dict(saved["opt"])
        sched.load_state_dict(saved["sched"])
    _train(model, opt, sched, data, range(cut, 10), resumed)
    assert resumed == reference
    assert all(torch.equal(a, b) for a, b in zip(final, model.parameters()))


@pytest.mark.parametrize("name", ["plateau", "cosine"])
def test_load_state_dict_writes_the_lrs_back_without_optimizer_state(name):
    _, opt, sched = _build(name, warmup=3)
    reference = _lr_run(opt, sched, 16, metric_offset=3)
    _, opt, sched = _build(name, warmup=3)
    head = _lr_run(opt, sched, 9, metric_offset=3)
    saved = _roundtrip(sched.state_dict())
    _, opt, sched = _build(name, warmup=3)  # fresh optimizer, its state not loaded
    sched.load_state_dict(saved)
    assert [g["lr"] for g in opt.param_groups] == head[-1]
    assert head + _lr_run(opt, sched, 7, metric_offset=3 - 9)[1:] == reference


# --- shared behaviour, every registered scheduler ------------------------------------------


def test_every_registered_scheduler_has_test_options():
    assert list_schedulers() == BUILTINS
    assert set(OPTIONS) == set(list_schedulers())


def _build(name: str, warmup: int = 0):
    model, opt = _two_group_sgd(lr=0.1, ratio=0.1, momentum=0.5)
    return model, opt, create_lr_scheduler(opt, name, warmup_steps=warmup, **OPTIONS[name])


@pytest.mark.parametrize("name", BUILTINS)
def test_scheduler_reduces_a_least_squares_loss(name):
    torch.manual_seed(1)
    x = torch.randn(64, 4)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5], [3.0]]) + 0.7
    model, opt, sched = _build(name, warmup=3)
    first = None
    for n in range(30):
        loss = torch.nn.functional.mse_loss(model(x), y)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if needs_metric(sched) and n % 5 == 4:
            sched.step(metric=loss.item())
    assert torch.nn.functional.mse_loss(model(x), y).item() < 0.1 * first


@pytest.mark.parametrize("name", BUILTINS)
def test_state_dict_round_trip_gives_identical_lrs(name):
    _, opt, sched = _build(name)
    lrs = _lr_run(opt, sched, 20, metric_offset=0)
    _, opt, sched = _build(name)
    head = _lr_run(opt, sched, 7, metric_offset=0)
    saved = _roundtrip({"opt": opt.state_dict(), "sched": sched.state_dict()})
    _, opt, sched = _build(name)
    opt.load_state_dict(saved["opt"])
    sched.load_state_dict(saved["sched"])
    tail = _lr_run(opt, sched, 13, metric_offset=-7)[1:]
    assert head + tail == lrs
    assert len({tuple(lr) for lr in lrs}) > 1 or name == "constant"


@pytest.mark.parametrize("name", BUILTINS)
def test_warmup_hands_over_without_a_jump_and_starts_the_clock(name):
    _, opt, bare = _build(name)
    bare_lrs = _lr_run(opt, bare, 20, metric_offset=0)
    _, opt, wrapped = _build(name, warmup=4)
    assert isinstance(wrapped, WarmupScheduler) and type(wrapped.after) is type(bare)
    lrs = _lr_run(opt, wrapped, 24, metric_offset=4)
    start = bare_lrs[0]
    for k in range(4):
        assert lrs[k] == pytest.approx([lr * k / 4 for lr in start], rel=1e-12)
    assert lrs[4:] == bare_lrs  # exactly the bare sequence, shifted by the warmup


# --- registry, names, options, errors ------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "cls"),
    [
        ("cosine-warm-restarts", tls.CosineAnnealingWarmRestarts),
        ("Cosine_Warm-Restarts", tls.CosineAnnealingWarmRestarts),
        ("reduce-lr-on-plateau", tls.ReduceLROnPlateau),
        ("one-cycle", tls.OneCycleLR),
    ],
)
def test_names_accept_hyphens_case_and_aliases(alias, cls):
    _, opt = _two_group_sgd()
    options = {"T_0": 5} if cls is tls.CosineAnnealingWarmRestarts else {}
    options = {"total_steps": 10} if cls is tls.OneCycleLR else options
    assert isinstance(create_lr_scheduler(opt, alias, **options), cls)


def test_builtins_keep_torch_defaults_and_names():
    _, opt = _two_group_sgd()
    plateau = create_lr_scheduler(opt, "plateau")
    assert (plateau.factor, plateau.patience, plateau.mode, plateau.cooldown) == (0.1, 10, "min", 0)
    cosine = create_lr_scheduler(opt, "cosine", T_max=7)
    assert (cosine.T_max, cosine.eta_min) == (7, 0.0)
    cyclic = create_lr_scheduler(opt, "cyclic")
    assert cyclic.max_lrs == [0.1, 0.01] and cyclic.base_lrs == [0.025, 0.0025]


def test_cycle_momentum_is_off_by_default_and_cycles_adam_beta1_when_asked():
    model = torch.nn.Linear(2, 1)
    adam = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.93, 0.999))
    create_lr_scheduler(adam, "cyclic", step_size_up=2)
    assert adam.param_groups[0]["betas"] == (0.93, 0.999)
    adam = torch.optim.Adam(model.parameters(), lr=0.01, betas=(0.93, 0.999))
    create_lr_scheduler(adam, "onecycle", total_steps=10, cycle_momentum=True)
    assert adam.param_groups[0]["betas"][0] == 0.95


def test_needs_metric_for_names_and_objects():
    _, opt = _two_group_sgd()
    assert needs_metric("plateau") and needs_metric("Reduce-LR-on-Plateau")
    assert not needs_metric("cosine")
    assert needs_metric(create_lr_scheduler(opt, "plateau", warmup_steps=2))
    assert not needs_metric(create_lr_scheduler(opt, "cosine", T_max=3, warmup_steps=2))
    assert not needs_metric(WarmupScheduler(opt, 2))


def test_create_without_warmup_returns_torch_scheduler():
    _, opt = _two_group_sgd()
    assert type(create_lr_scheduler(opt, "step", step_size=2)) is tls.StepLR


def test_register_custom_scheduler_reads_options_from_signature():
    @register_scheduler("halving", aliases=["half"])
    def halving(optimizer, every, floor=0.0):
        return tls.LambdaLR(optimizer, lambda n: max(0.5 ** (n // every), floor))

    _, opt = _two_group_sgd()
    sched = create_lr_scheduler(opt, "half", every=2)
    assert "halving" in list_schedulers() and not needs_metric("halving")
    assert [lr[0] for lr in _lr_run(opt, sched, 4)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    with pytest.raises(ConfigError, match=re.escape("Valid options: every, floor.")):
        create_lr_scheduler(opt, "halving", every=2, T_max=3)
    with pytest.raises(ConfigError, match=re.escape("'halving' needs option(s) every")):
        create_lr_scheduler(opt, "halving")
    with pytest.raises(ConfigError, match=re.escape("'halving' is already registered")):
        register_scheduler("halving", halving)


def test_plateau_reductions_are_logged(caplog):
    _, opt = _two_group_sgd()
    sched = create_lr_scheduler(opt, "plateau", patience=0, factor=0.5)
    with caplog.at_level(logging.INFO, logger="hptune.training.schedulers"):
        sched.step(1.0)
        sched.step(2.0)
    assert "param group 0 LR 0.1 -> 0.05 (metric 2)" in caplog.text
    assert "param group 1 LR 0.01 -> 0.005 (metric 2)" in caplog.text


def _opt():
    return _two_group_sgd()[1]


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cosin", {}, "Unknown scheduler 'cosin'. Valid names: constant, cosine, "),
        ("cosine", {"T_max": 5, "eta_max": 1}, "has no option(s) eta_max. Valid options: T_max, eta_min."),
        ("cosine", {}, "Scheduler 'cosine' needs option(s) T_max, which have no default."),
        ("plateau", {"verbose": True}, "'verbose' option was removed from torch's LR schedulers in torch 2.7"),
        ("plateau", {"patience": -1}, "scheduler 'plateau': patience must be an int >= 0, got -1;"),
        ("plateau", {"factor": 1.0}, "scheduler 'plateau': factor must be a number in (0, 1), got 1.0;"),
        ("plateau", {"mode": "maximize"}, "mode must be one of 'min', 'max', got 'maximize';"),
        ("step", {"step_size": 3, "gamma": 0.0}, "scheduler 'step': gamma must be a finite number > 0, got 0.0;"),
        ("exponential", {"gamma": -0.5}, "gamma must be a finite number > 0, got -0.5;"),
        ("multistep", {"milestones": [5, 2]}, "must be a non-empty, strictly increasing list"),
        ("linear", {}, "Scheduler 'linear' needs option(s) total_iters"),
        ("onecycle", {}, "'onecycle' needs total_steps (or epochs and steps_per_epoch)"),
        ("cyclic", {"base_lr": 0.5}, "base_lr must be <= max_lr [0.1, 0.01], got 0.5;"),
        ("cosine_warm_restarts", {"T_0": 0}, "scheduler 'cosine_warm_restarts': T_0 must be an int >= 1, got 0;"),
        ("cosine", {"T_max": 5, "warmup_steps": -2}, "warmup_steps must be an int >= 0"),
    ],
)  # fmt: skip
def test_bad_names_and_options_raise_config_error(name, options, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_lr_scheduler(_opt(), name, **options)


def test_verbose_message_says_hptune_logs_lr_changes():
    with pytest.raises(ConfigError) as info:
        create_lr_scheduler(_opt(), "cosine", T_max=5, verbose=True)
    assert "hptune logs LR changes itself" in str(info.value)


def test_cycle_momentum_needs_a_momentum_optimizer():
    adagrad = torch.optim.Adagrad(torch.nn.Linear(2, 1).parameters(), lr=0.1)
    with pytest.raises(
        ConfigError, match=re.escape("Adagrad has neither. Pass cycle_momentum=False")
    ):
        create_lr_scheduler(adagrad, "cyclic", cycle_momentum=True)
    assert isinstance(create_lr_scheduler(adagrad, "cyclic"), tls.CyclicLR)


def test_warmup_scheduler_argument_errors():
    opt, other = _opt(), _opt()
    with pytest.raises(ConfigError, match=re.escape("built on another optimizer")):
        WarmupScheduler(opt, 3, after=tls.StepLR(other, 2))
    with pytest.raises(ConfigError, match=re.escape("warmup_steps must be an int >= 0")):
        WarmupScheduler(opt, 2.5)
    with pytest.raises(ConfigError, match=re.escape("start_factor must be a float in [0, 1]")):
        WarmupScheduler(opt, 3, start_factor=1.5)
    with pytest.raises(
        ConfigError, match=re.escape("Give either start_factor (0.5) or initial_lr")
    ):
        WarmupScheduler(opt, 3, start_factor=0.5, initial_lr=0.01)
    with pytest.raises(ConfigError, match=re.escape("target_lr=0.5 differs from the LR 0.1")):
        WarmupScheduler(opt, 3, after=tls.StepLR(opt, 2), target_lr=0.5)
    with pytest.raises(ConfigError, match=re.escape("initial_lr must lie in [0, target LR 0.1]")):
        WarmupScheduler(opt, 3, initial_lr=0.2, target_lr=0.1)
    inner = WarmupScheduler(opt, 3)  # sets the LR to 0: build it last
    with pytest.raises(ConfigError, match=re.escape("warmups do not nest")):
        WarmupScheduler(opt, 2, after=inner)


def test_load_state_dict_refuses_a_different_setup():
    opt = _opt()
    saved = WarmupScheduler(opt, 3, after=tls.StepLR(opt, 2)).state_dict()
    with pytest.raises(ConfigError, match=re.escape("saved with a scheduler after warmup")):
        WarmupScheduler(_opt(), 3).load_state_dict(saved)
    with pytest.raises(ConfigError, match=re.escape("Not a WarmupScheduler state_dict")):
        WarmupScheduler(_opt(), 3).load_state_dict({"warmup_steps": 3})


def test_plateau_without_warmup_takes_the_metric_by_any_name_and_refuses_none():
    # warmup_steps=0 returns the plateau itself: a loop written for WarmupScheduler
    # (step(metric=...)) must work on it unchanged.
    runs = []
    for call in ("metric", "metrics", "positional"):
        opt = _opt()
        sched = create_lr_scheduler(opt, "plateau", patience=0, factor=0.5)
        for value in (1.0, 2.0):
            if call == "positional":
                sched.step(value)
            else:
                sched.step(**{call: value})
        runs.append(sched.get_last_lr())
    assert runs == [[0.05, 0.005]] * 3
    sched = create_lr_scheduler(_opt(), "plateau")
    with pytest.raises(HptuneError, match=re.escape("moves only on a metric: call step(metric=")):
        sched.step()
    with pytest.raises(ConfigError, match=re.escape("got the metric twice")):
        sched.step(1.0, metric=1.0)


def test_a_registered_metric_driven_scheduler_gets_metrics_behind_warmup():
    class Halving:
        """Halves the LR on every evaluation: metric-driven, but no ReduceLROnPlateau."""

        def __init__(self, optimizer):
            self.optimizer, self.n = optimizer, 0

        def step(self, metric):
            self.n += 1
            for group in self.optimizer.param_groups:
                group["lr"] *= 0.5

        def get_last_lr(self):
            return [group["lr"] for group in self.optimizer.param_groups]

        def state_dict(self):
            return {"n": self.n}

        def load_state_dict(self, state):
            self.n = state["n"]

    register_scheduler("halving", Halving, needs_metric=True)
    for warmup in (0, 2):
        opt = _opt()
        sched = create_lr_scheduler(opt, "halving", warmup_steps=warmup)
        assert needs_metric(sched)
        lrs = _lr_run(opt, sched, 4, metric_offset=warmup)
        assert lrs[-1] == pytest.approx([0.1 * 0.5 ** (4 - warmup), 0.01 * 0.5 ** (4 - warmup)])
