from __future__ import annotations

import re

import pytest
import torch

from hptune.exceptions import ConfigError
from hptune.tasks import MLP, ConvNet1d, get_task, model_options


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_mlp_shapes_and_parameter_count_by_hand():
    model = MLP(40, 10, width=128, depth=2)
    assert model(torch.zeros(7, 40)).shape == (7, 10)
    assert model(torch.zeros(7, 1, 40)).shape == (7, 10)  # flattens any sample shape
    assert n_params(model) == (40 * 128 + 128) + (128 * 128 + 128) + (128 * 10 + 10)
    linear = MLP(64, 10, depth=0)  # logistic regression
    assert n_params(linear) == 64 * 10 + 10
    assert (
        sum(isinstance(m, torch.nn.Dropout) for m in MLP(4, 2, depth=3, dropout=0.5).modules()) == 3
    )


def test_cnn_shapes_and_parameter_count_by_hand():
    model = ConvNet1d(1, 40, 10, channels=32)
    assert model(torch.zeros(7, 1, 40)).shape == (7, 10)
    convs = (1 * 32 * 5 + 32) + 2 * (32 * 32 * 5 + 32)
    norms = 3 * 2 * 32
    head = 32 * 10 * 10 + 10  # length 40 -> 40 -> 20 -> 10
    assert n_params(model) == convs + norms + head
    assert ConvNet1d(2, 41, 3, channels=8)(torch.zeros(2, 2, 41)).shape == (2, 3)


@pytest.mark.parametrize("name", ["mnist1d-mlp", "mnist1d-cnn", "digits-mlp"])
def test_builtin_models_are_deterministic_under_a_seed(name):
    task = get_task(name)

    def weights(seed):
        torch.manual_seed(seed)
        return torch.cat([p.detach().flatten() for p in task.build_model({}).parameters()])

    assert torch.equal(weights(0), weights(0))
    assert not torch.equal(weights(0), weights(1))
    x = torch.randn(3, *task.input_shape)
    assert task.build_model({})(x).shape == (3, task.num_classes)


def test_cnn_output_for_a_sample_does_not_depend_on_its_batch():
    # GroupNorm, not BatchNorm: micro-batching for gradient accumulation changes nothing.
    torch.manual_seed(0)
    model = ConvNet1d(1, 40, 10, channels=16).train()
    x = torch.randn(8, 1, 40)
    torch.testing.assert_close(model(x)[:3], model(x[:3]))
    torch.testing.assert_close(model(x)[3:], model(x[3:]))


def test_model_options_come_from_the_config_model_section():
    task = get_task("mnist1d-mlp")
    model = task.build_model({"lr": 0.1, "model": {"width": 16, "depth": 1, "dropout": 0.2}})
    assert n_params(model) == (40 * 16 + 16) + (16 * 10 + 10)
    assert model_options({"model": {"depth": 3}}, {"width": 8, "depth": 1}, "t") == {
        "width": 8,
        "depth": 3,
    }
    assert model_options({}, {"width": 8}, "t") == {"width": 8}


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: MLP(40, 10, width=0), "model.width must be an integer >= 1, got 0."),
        (lambda: MLP(40, 10, depth=True), "model.depth must be an integer >= 0, got True."),
        (lambda: MLP(40, 10, dropout=1.0), "model.dropout must be a number in [0, 1), got 1.0."),
        (
            lambda: ConvNet1d(1, 40, 10, channels=20),
            "model.channels must be a multiple of groups=8 (GroupNorm), got 20; use e.g. 16.",
        ),
        (
            lambda: get_task("mnist1d-cnn").build_model({"model": {"width": 64}}),
            "model.width: not an option of task 'mnist1d-cnn'; valid options: channels, "
            "dropout. Fix or remove the key.",
        ),
        (
            lambda: get_task("digits-mlp").build_model({"model": 64}),
            "model: task 'digits-mlp' expects a mapping of model options such as "
            "{'width': 128, 'depth': 1, 'dropout': 0.0}, got 64.",
        ),
    ],
)
def test_bad_model_options_are_config_errors(build, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build()
