"""Tests of hptune.training.optim: the registry, option checks and real optimizer steps."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from torch import nn

from hptune.exceptions import ConfigError, HptuneError
from hptune.training import optim as optim_module
from hptune.training.optim import (
    create_optimizer,
    create_optimizer_from_config,
    get_optimizer_info,
    list_optimizers,
    register_optimizer,
)
from hptune.training.param_groups import param_groups


def _least_squares() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(32, 5, generator=gen)
    b = a @ torch.randn(5, 1, generator=gen) + 0.01 * torch.randn(32, 1, generator=gen)
    return a, b


def _model() -> nn.Linear:
    torch.manual_seed(1)
    return nn.Linear(5, 1)


def _train(model: nn.Module, opt: torch.optim.Optimizer, n_steps: int) -> float:
    a, b = _least_squares()
    for _ in range(n_steps):
        opt.zero_grad()
        loss = nn.functional.mse_loss(model(a), b)
        loss.backward()
        opt.step()
    return nn.functional.mse_loss(model(a), b).item()


def test_builtin_names_and_aliases():
    assert {
        "adam",
        "adamw",
        "sgd",
        "sgd_nesterov",
        "rmsprop",
        "adagrad",
        "radam",
        "nadam",
    } <= set(list_optimizers())
    assert "nesterov" not in list_optimizers()  # aliases are not listed twice
    for alias in ("nesterov", "SGD-Nesterov", "sgd_nesterov", " sgd-nesterov "):
        assert get_optimizer_info(alias).name == "sgd_nesterov"
    assert get_optimizer_info("RMSProp").cls is torch.optim.RMSprop
    assert get_optimizer_info("adamw").cls is torch.optim.AdamW


@pytest.mark.parametrize("name", list_optimizers())
def test_every_optimizer_reduces_least_squares(name):
    model = _model()
    a, b = _least_squares()
    initial = nn.functional.mse_loss(model(a), b).item()
    final = _train(model, create_optimizer(model, name, lr=0.05, weight_decay=1e-4), 100)
    assert final < 0.1 * initial


@pytest.mark.parametrize("name", list_optimizers())
def test_every_optimizer_survives_state_dict_round_trip(name):
    model = _model()
    opt = create_optimizer(model, name, lr=0.05, weight_decay=1e-3)
    _train(model, opt, 5)
    saved_params = copy.deepcopy(model.state_dict())
    saved_state = copy.deepcopy(opt.state_dict())
    _train(model, opt, 5)

    resumed = _model()
    resumed.load_state_dict(saved_params)
    resumed_opt = create_optimizer(resumed, name, lr=0.05, weight_decay=1e-3)
    resumed_opt.load_state_dict(saved_state)
    _train(resumed, resumed_opt, 5)

    for key, value in model.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    # The weight group keeps its decay, the bias group none; names survive the trip.
    assert [g["weight_decay"] for g in resumed_opt.param_groups] == [1e-3, 0.0]
    assert [g["param_names"] for g in resumed_opt.param_groups] == [["weight"], ["bias"]]


def test_sgd_defaults_to_momentum_0_9_and_nesterov_variant():
    opt = create_optimizer(_model(), "sgd", lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.9
    assert opt.param_groups[0]["nesterov"] is False
    plain = create_optimizer(_model(), "sgd", lr=0.1, momentum=0)
    assert plain.param_groups[0]["momentum"] == 0
    nesterov = create_optimizer(_model(), "nesterov", lr=0.1)
    assert (nesterov.param_groups[0]["momentum"], nesterov.param_groups[0]["nesterov"]) == (
        0.9,
        True,
    )


def test_default_lr_per_optimizer():
    assert create_optimizer(_model(), "sgd").param_groups[0]["lr"] == 0.01
    assert create_optimizer(_model(), "adam").param_groups[0]["lr"] == 0.001
    assert create_optimizer(_model()).defaults["lr"] == 0.001  # adam is the default name


def test_adam_decay_is_l2_and_adamw_decay_is_decoupled():
    # Zero loss gradient, p = 1, lr = 0.1, weight_decay = 0.5:
    # Adam sees g = wd * p = 0.5, its first step is lr * g / (|g| + eps) = 0.1 -> p = 0.9.
    # AdamW's Adam step is 0 and decay shrinks p by lr * wd = 0.05 -> p = 0.95.
    results = {}
    for name in ("adam", "adamw"):
        weight = nn.Parameter(torch.ones(2, 2))
        opt = create_optimizer([weight], name, lr=0.1, weight_decay=0.5)
        (weight * 0.0).sum().backward()
        opt.step()
        results[name] = weight.detach()
    assert torch.allclose(results["adam"], torch.full((2, 2), 0.9))
    assert torch.allclose(results["adamw"], torch.full((2, 2), 0.95))


def test_adamw_weight_decay_defaults_to_zero_not_torchs_0_01():
    assert create_optimizer(_model(), "adamw", lr=0.1).defaults["weight_decay"] == 0.0


def test_beta_aliases_map_to_betas():
    assert create_optimizer(_model(), "adam", beta1=0.85).defaults["betas"] == (0.85, 0.999)
    assert create_optimizer(_model(), "nadam", beta2=0.99).defaults["betas"] == (0.9, 0.99)
    assert create_optimizer(_model(), "radam", beta1=0.8, beta2=0.9).defaults["betas"] == (0.8, 0.9)
    assert create_optimizer(_model(), "adam", betas=[0.8, 0.9]).defaults["betas"] == (0.8, 0.9)


def test_module_groups_exempt_biases_and_no_decay_passes_through():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 1))
    opt = create_optimizer(model, "adamw", lr=0.1, weight_decay=0.05)
    assert [(g["weight_decay"], g["param_names"]) for g in opt.param_groups] == [
        (0.05, ["0.weight", "2.weight"]),
        (0.0, ["0.bias", "1.weight", "1.bias", "2.bias"]),
    ]
    everything = create_optimizer(model, "adamw", lr=0.1, weight_decay=0.05, no_decay=False)
    assert len(everything.param_groups) == 1
    assert everything.param_groups[0]["weight_decay"] == 0.05


def test_plain_parameters_form_one_decayed_group():
    model = _model()
    opt = create_optimizer(model.parameters(), "sgd", lr=0.1, weight_decay=0.01)
    assert len(opt.param_groups) == 1
    assert opt.param_groups[0]["weight_decay"] == 0.01
    assert len(opt.param_groups[0]["params"]) == 2


def test_lr_scale_from_param_groups_lands_in_the_optimizer():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    groups = param_groups(model, 0.01, lr_map={"1.*": 0.1})
    opt = create_optimizer(groups, "sgd", lr=0.1)
    by_names = {tuple(g["param_names"]): (g["lr"], g["lr_scale"]) for g in opt.param_groups}
    assert by_names[("0.weight",)] == (pytest.approx(0.1), 1.0)
    assert by_names[("1.weight",)] == (pytest.approx(0.01), 0.1)
    assert by_names[("1.bias",)] == (pytest.approx(0.01), 0.1)
    # The ratio survives a scheduler, which scales each group's own initial lr.
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    opt.step()
    sched.step()
    assert [g["lr"] / g["lr_scale"] for g in opt.param_groups] == pytest.approx([0.05] * 4)


def test_user_groups_keep_their_own_lr_and_decay_and_are_not_mutated():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1))
    groups = [
        {"params": model[0].parameters(), "lr": 0.5, "weight_decay": 0.2},
        {"params": list(model[1].parameters())},
    ]
    original = {k: v for k, v in groups[1].items()}
    opt = create_optimizer(groups, "sgd", lr=0.1, weight_decay=0.01)
    assert [(g["lr"], g["weight_decay"]) for g in opt.param_groups] == [(0.5, 0.2), (0.1, 0.01)]
    assert groups[1] == original and "lr" not in groups[1]


def test_create_from_config_dict_and_name():
    config = {"name": "sgd", "momentum": 0.8, "nesterov": True}
    opt = create_optimizer_from_config(_model(), config, lr=0.1, weight_decay=1e-4)
    assert isinstance(opt, torch.optim.SGD)
    assert (opt.defaults["momentum"], opt.defaults["nesterov"]) == (0.8, True)
    assert config == {"name": "sgd", "momentum": 0.8, "nesterov": True}
    assert isinstance(create_optimizer_from_config(_model(), "AdamW", lr=0.1), torch.optim.AdamW)
    opt = create_optimizer_from_config(_model(), {"name": "adam", "beta1": 0.9}, lr=0.1)
    assert opt.defaults["betas"] == (0.9, 0.999)


def _valid_names() -> str:
    return ", ".join(list_optimizers())


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("lamb", {}, "Unknown optimizer 'lamb'. Valid optimizers: {valid} (aliases: nesterov;"),
        (
            "sgd",
            {"betas": (0.9, 0.99)},
            "Unknown option 'betas' for optimizer 'sgd'. Valid options: momentum, dampening, "
            "nesterov, maximize, foreach, differentiable, fused. (lr and weight_decay are "
            "arguments of create_optimizer.)",
        ),
        ("adam", {"lr": 0.0}, "lr must be a finite number > 0, got 0.0; use e.g. 1e-3."),
        ("adam", {"lr": -1}, "lr must be a finite number > 0, got -1;"),
        ("adam", {"lr": float("nan")}, "lr must be a finite number > 0, got nan;"),
        ("adam", {"lr": True}, "lr must be a finite number > 0, got True;"),
        (
            "adam",
            {"weight_decay": -0.1},
            "weight_decay must be a finite number >= 0, got -0.1; use 0 for no decay, or e.g. 1e-4.",
        ),
        (
            "sgd",
            {"momentum": 1.0},
            "optimizer 'sgd': momentum must be a number in [0, 1), got 1.0; "
            "use e.g. 0.9, or 0 to disable momentum.",
        ),
        ("rmsprop", {"momentum": -0.5}, "optimizer 'rmsprop': momentum must be"),
        (
            "adam",
            {"betas": (0.9, 1.0)},
            "optimizer 'adam': betas must be a pair of numbers in [0, 1), got (0.9, 1.0);",
        ),
        (
            "adam",
            {"beta1": 1.2},
            "optimizer 'adam': betas must be a pair of numbers in [0, 1), got (1.2, 0.999);",
        ),
        (
            "adam",
            {"beta1": 0.9, "betas": (0.9, 0.99)},
            "Optimizer 'adam' got both betas and beta1; pass one form.",
        ),
        (
            "adam",
            {"eps": 0},
            "optimizer 'adam': eps must be a finite number > 0, got 0; use e.g. 1e-8.",
        ),
        (
            "rmsprop",
            {"alpha": 1.0},
            "optimizer 'rmsprop': alpha must be a number in [0, 1), got 1.0;",
        ),
        (
            "adagrad",
            {"lr_decay": -1},
            "optimizer 'adagrad': lr_decay must be a finite number >= 0, got -1;",
        ),
        (
            "sgd",
            {"momentum": 0, "nesterov": True},
            "nesterov=True needs momentum > 0 and dampening = 0; got momentum=0, dampening=0. "
            "Set momentum (e.g. 0.9) or nesterov=False.",
        ),
        (
            "nesterov",
            {"dampening": 0.1},
            "nesterov=True needs momentum > 0 and dampening = 0; got momentum=0.9, dampening=0.1.",
        ),
        (
            "adam",
            {"amsgrad": "yes"},
            "optimizer 'adam': amsgrad must be True or False, got 'yes'.",
        ),
        (
            "adam",
            {"foreach": 1},
            "optimizer 'adam': foreach must be True or False or None, got 1.",
        ),
    ],
)
def test_bad_input_raises_config_error_naming_value_rule_and_fix(name, kwargs, message):
    kwargs = {"lr": 0.1, **kwargs}
    with pytest.raises(ConfigError, match=re.escape(message.format(valid=_valid_names()))):
        create_optimizer(_model(), name, **kwargs)


def test_bad_parameter_sources_raise():
    frozen = _model().requires_grad_(False)
    with pytest.raises(ConfigError, match=re.escape("Linear has no trainable parameters")):
        create_optimizer(frozen, "adam", lr=0.1)
    with pytest.raises(ConfigError, match=re.escape("model_or_groups is empty")):
        create_optimizer([], "adam", lr=0.1)
    with pytest.raises(ConfigError, match=re.escape("got Tensor")):
        create_optimizer(torch.ones(2, requires_grad=True), "adam", lr=0.1)
    weight = nn.Parameter(torch.ones(2))
    with pytest.raises(ConfigError, match=re.escape("mixes parameter tensors and group dicts")):
        create_optimizer([weight, {"params": [weight]}], "adam", lr=0.1)
    with pytest.raises(ConfigError, match=re.escape("parameter group 0 has no 'params' key")):
        create_optimizer([{"lr": 0.1}], "adam", lr=0.1)
    with pytest.raises(
        ConfigError, match=re.escape("parameter group 0 sets both 'lr' and 'lr_scale'")
    ):
        create_optimizer([{"params": [weight], "lr": 0.1, "lr_scale": 0.5}], "adam", lr=0.1)
    with pytest.raises(
        ConfigError,
        match=re.escape("parameter group 0 lr_scale must be a finite number > 0, got 0;"),
    ):
        create_optimizer([{"params": [weight], "lr_scale": 0}], "adam", lr=0.1)
    with pytest.raises(
        ConfigError,
        match=re.escape("parameter group 0 weight_decay must be a finite number >= 0, got -1;"),
    ):
        create_optimizer([{"params": [weight], "weight_decay": -1}], "adam", lr=0.1)


def test_config_without_name_raises():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "Optimizer config must be a name or a dict with a 'name' key; got {'momentum': 0.9}."
        ),
    ):
        create_optimizer_from_config(_model(), {"momentum": 0.9}, lr=0.1)
    with pytest.raises(HptuneError, match="Unknown optimizer 'adamm'"):
        create_optimizer_from_config(_model(), {"name": "adamm"}, lr=0.1)


def test_register_optimizer_makes_a_name_usable(monkeypatch):
    monkeypatch.setattr(optim_module, "_REGISTRY", dict(optim_module._REGISTRY))
    calls = []
    info = register_optimizer(
        "Averaged-SGD",
        torch.optim.ASGD,
        {"lambd": 1e-3},
        validators=[calls.append],
        aliases=["asgd"],
        description="averaged SGD",
    )
    assert info.name == "averaged_sgd" and "averaged_sgd" in list_optimizers()
    assert info.default_lr == 0.01  # torch's signature default
    opt = create_optimizer(_model(), "asgd", lr=0.1, t0=10.0)
    assert isinstance(opt, torch.optim.ASGD) and opt.defaults["lambd"] == 1e-3
    assert calls == [{"lambd": 1e-3, "t0": 10.0}]
    with pytest.raises(
        ConfigError,
        match=re.escape("Optimizer name 'asgd' is already registered; pass overwrite=True"),
    ):
        register_optimizer("asgd", torch.optim.ASGD)
    with pytest.raises(
        ConfigError, match=re.escape("cls must be a torch.optim.Optimizer subclass")
    ):
        register_optimizer("linear", nn.Linear)
    with pytest.raises(
        ConfigError, match=re.escape("defaults ['momentum'] are not options of ASGD")
    ):
        register_optimizer("asgd2", torch.optim.ASGD, {"momentum": 0.9})
    assert "asgd2" not in list_optimizers()
