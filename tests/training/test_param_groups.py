"""Tests of hptune.training.param_groups on a model with every kind of layer it must sort."""

from __future__ import annotations

import copy
import re
import warnings

import pytest
import torch
from torch import nn

from hptune.exceptions import ConfigError
from hptune.training.param_groups import (
    apply_weight_decay_by_layer,
    describe_param_groups,
    is_norm_layer,
    param_groups,
)


class ScaleRMSNorm(nn.Module):
    """A custom RMS norm with a 2-D gain, so only the norm rule (not ndim) can exempt it."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.gain[0]


class TinyLM(nn.Module):
    """Embedding tied to the output layer, conv, batchnorm, layernorm, custom norm, frozen layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Embedding(10, 4)
        self.conv = nn.Conv1d(4, 4, 3, padding=1)
        self.bn = nn.BatchNorm1d(4)
        self.encoder = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.Linear(4, 4))
        self.norm = ScaleRMSNorm(4)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.head = nn.Linear(4, 10, bias=False)
        self.head.weight = self.embed.weight

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(self.embed(tokens).transpose(1, 2))).transpose(1, 2)
        return self.head(self.norm(self.frozen(self.encoder(x))))


DECAYED = ["embed.weight", "conv.weight", "encoder.0.weight", "encoder.2.weight"]
EXEMPT = [
    "conv.bias",
    "bn.weight",
    "bn.bias",
    "encoder.0.bias",
    "encoder.1.weight",
    "encoder.1.bias",
    "encoder.2.bias",
    "norm.gain",
]


def _summary(groups):
    return [(g["weight_decay"], g.get("lr_scale"), g["param_names"]) for g in groups]


def _assert_partition(model, groups):
    """Every trainable parameter in exactly one group; frozen ones in none."""
    grouped = [id(p) for g in groups for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)
    assert len(grouped) == len(set(grouped))
    assert all(len(g["params"]) == len(g["param_names"]) for g in groups)


def test_auto_groups_partition_the_model_into_two_merged_groups():
    model = TinyLM()
    groups = param_groups(model, 0.1)
    _assert_partition(model, groups)
    assert _summary(groups) == [(0.1, None, DECAYED), (0.0, None, EXEMPT)]
    frozen_ids = {id(model.frozen.weight), id(model.frozen.bias)}
    assert not frozen_ids & {id(p) for g in groups for p in g["params"]}


def test_groups_train_with_a_real_optimizer_without_duplicate_warnings():
    model = TinyLM()
    opt = torch.optim.AdamW(param_groups(model, 0.1), lr=0.05)
    tokens = torch.randint(0, 10, (8, 6), generator=torch.Generator().manual_seed(0))
    frozen_before = model.frozen.weight.clone()
    losses = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns on a parameter listed twice
        for _ in range(20):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(tokens).reshape(-1, 10), tokens.reshape(-1))
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses[-1] < losses[0]
    assert torch.equal(model.frozen.weight, frozen_before)


def test_tied_embedding_appears_once_under_its_first_name_and_matches_by_alias():
    model = TinyLM()
    assert model.head.weight is model.embed.weight
    groups = param_groups(model, 0.1, lr_map={"head.*": 0.5})
    _assert_partition(model, groups)
    names = [n for g in groups for n in g["param_names"]]
    assert names.count("embed.weight") == 1 and "head.weight" not in names
    scaled = [g for g in groups if g["lr_scale"] == 0.5]
    assert [g["param_names"] for g in scaled] == [["embed.weight"]]
    # A type key matches through any owner: the tensor is the head's nn.Linear weight too.
    by_type = param_groups(model, 0.1, decay_map={nn.Linear: 0.01, nn.Embedding: 0.2})
    assert _summary(by_type)[:2] == [
        (0.01, None, ["embed.weight", "encoder.0.weight", "encoder.2.weight"]),
        (0.1, None, ["conv.weight"]),
    ]


@pytest.mark.parametrize(
    "layer",
    [
        nn.BatchNorm1d(2),
        nn.BatchNorm2d(2),
        nn.SyncBatchNorm(2),
        nn.InstanceNorm1d(2, affine=True),
        nn.LayerNorm(2),
        nn.GroupNorm(1, 2),
        nn.LocalResponseNorm(2),
        nn.RMSNorm(2),
        ScaleRMSNorm(2),
    ],
)
def test_norm_layers_are_recognised(layer):
    assert is_norm_layer(layer)


def test_norm_name_fallback_is_a_word_not_a_substring():
    layer_norm_2d = type("LayerNorm2d", (nn.Module,), {})
    group_norm_act = type("GroupNormAct", (nn.Module,), {})
    normalized_linear = type("NormalizedLinear", (nn.Linear,), {})
    assert is_norm_layer(layer_norm_2d()) and is_norm_layer(group_norm_act())
    assert not is_norm_layer(normalized_linear(2, 2))
    assert not is_norm_layer(nn.Linear(2, 2)) and not is_norm_layer(nn.Embedding(2, 2))


def test_decay_and_lr_maps_merge_into_one_group_per_setting():
    model = TinyLM()
    groups = param_groups(
        model, 0.1, decay_map={nn.Linear: 0.01, "conv.*": 0.02}, lr_map={"encoder.*": 0.5}
    )
    _assert_partition(model, groups)
    # The tied embedding is also the head's weight, so the nn.Linear key reaches it.
    assert _summary(groups) == [
        (0.01, 1.0, ["embed.weight"]),
        (0.02, 1.0, ["conv.weight"]),
        (0.01, 0.5, ["encoder.0.weight", "encoder.2.weight"]),
        (0.0, 1.0, ["conv.bias", "bn.weight", "bn.bias", "norm.gain"]),
        (0.0, 0.5, ["encoder.0.bias", "encoder.1.weight", "encoder.1.bias", "encoder.2.bias"]),
    ]


def test_first_match_wins():
    model = TinyLM()
    specific_first = param_groups(model, 0.0, decay_map={"encoder.0.*": 0.3, nn.Linear: 0.01})
    assert _summary(specific_first)[:2] == [
        (0.01, None, ["embed.weight", "encoder.2.weight"]),
        (0.3, None, ["encoder.0.weight"]),
    ]
    broad_first = param_groups(model, 0.0, decay_map={nn.Linear: 0.01, "encoder.0.*": 0.3})
    assert _summary(broad_first)[0] == (
        0.01,
        None,
        ["embed.weight", "encoder.0.weight", "encoder.2.weight"],
    )


def test_type_keys_match_subclasses_and_globs_cross_dots():
    class MyLinear(nn.Linear):
        pass

    model = nn.Sequential(MyLinear(2, 2), nn.Sequential(nn.Conv1d(2, 2, 1)))
    by_type = param_groups(model, 0.0, decay_map={nn.Linear: 0.2})
    assert _summary(by_type)[0] == (0.2, None, ["0.weight"])
    by_glob = param_groups(model, 0.0, decay_map={"1.*.weight": 0.4}, no_decay=False)
    assert _summary(by_glob)[0] == (0.4, None, ["1.0.weight"])


def test_auto_no_decay_wins_over_decay_map_unless_disabled():
    model = TinyLM()
    auto = param_groups(model, 0.0, decay_map={nn.Linear: 0.5})
    assert "encoder.0.bias" in auto[-1]["param_names"] and auto[-1]["weight_decay"] == 0.0
    off = param_groups(model, 0.0, decay_map={nn.Linear: 0.5}, no_decay=False)
    assert _summary(off) == [
        (
            0.5,
            None,
            [
                "embed.weight",
                "encoder.0.weight",
                "encoder.0.bias",
                "encoder.2.weight",
                "encoder.2.bias",
            ],
        ),
        (
            0.0,
            None,
            [
                "conv.weight",
                "conv.bias",
                "bn.weight",
                "bn.bias",
                "encoder.1.weight",
                "encoder.1.bias",
                "norm.gain",
            ],
        ),
    ]


def test_no_decay_lists():
    model = TinyLM()
    assert len(param_groups(model, 0.1, no_decay=None)) == 1
    with_embed = param_groups(model, 0.1, no_decay=["auto", nn.Embedding])
    assert with_embed[0]["param_names"] == DECAYED[1:]
    only_biases = param_groups(model, 0.1, no_decay=["*.bias"])
    assert only_biases[0]["param_names"] == [
        "embed.weight",
        "conv.weight",
        "bn.weight",
        "encoder.0.weight",
        "encoder.1.weight",
        "encoder.2.weight",
        "norm.gain",
    ]


def test_groups_survive_an_optimizer_state_dict_round_trip():
    model = TinyLM()
    groups = param_groups(model, 0.1, lr_map={nn.Conv1d: 0.1})
    opt = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    saved = copy.deepcopy(opt.state_dict())
    assert [g["lr_scale"] for g in saved["param_groups"]] == [1.0, 0.1, 0.1, 1.0]
    fresh = torch.optim.SGD(param_groups(model, 0.1, lr_map={nn.Conv1d: 0.1}), lr=0.1)
    fresh.load_state_dict(saved)
    assert [g["param_names"] for g in fresh.param_groups] == [g["param_names"] for g in groups]
    assert [g["lr_scale"] for g in fresh.param_groups] == [1.0, 0.1, 0.1, 1.0]
    assert fresh.param_groups[0]["momentum"] == 0.9


def test_describe_param_groups_table():
    model = nn.Sequential(nn.Linear(3, 2), nn.LayerNorm(2))
    assert describe_param_groups(param_groups(model, 0.01, lr_map={"1.*": 0.5})) == (
        "group  weight_decay  lr_scale  tensors  params  names\n"
        "0      0.01          1         1        6       0.weight\n"
        "1      0             1         1        2       0.bias\n"
        "2      0             0.5       2        4       1.weight, 1.bias"
    )
    opt = torch.optim.SGD(param_groups(TinyLM(), 0.1), lr=0.2)
    lines = describe_param_groups(opt.param_groups).splitlines()
    assert lines[0].split() == [
        "group",
        "weight_decay",
        "lr_scale",
        "lr",
        "tensors",
        "params",
        "names",
    ]
    # 8 exempt tensors: 4+4+4+4+4+4+4+4 parameters; names cut after three.
    assert lines[2].split()[:6] == ["1", "0", "1", "0.2", "8", "32"]
    assert lines[2].endswith("conv.bias, bn.weight, bn.bias, ... (+5)")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"decay_map": {"decoder.*": 0.1}},
            "decay_map key 'decoder.*' matches no parameter of the model (names look like "
            "embed.weight, conv.weight, conv.bias, bn.weight). Fix the pattern or layer type, "
            "or remove the key.",
        ),
        (
            {"lr_map": {nn.GRU: 0.1}},
            "lr_map key <class 'torch.nn.modules.rnn.GRU'> matches no parameter",
        ),
        (
            {"decay_map": {3: 0.1}},
            "decay_map key 3 is neither an nn.Module subclass nor a glob string. Use a layer "
            "class such as nn.Linear or a pattern such as 'encoder.*.weight'.",
        ),
        (
            {"decay_map": {"conv.*": -0.1}},
            "decay_map['conv.*'] must be a finite number >= 0, got -0.1; use 0 for no decay, or e.g. 1e-4.",
        ),
        (
            {"lr_map": {"conv.*": 0}},
            "lr_map['conv.*'] must be a finite number > 0, got 0; use an LR multiplier such as 0.1.",
        ),
        ({"lr_map": [("conv.*", 0.1)]}, "lr_map must be a mapping such as {nn.Linear: 0.01}"),
        (
            {"no_decay": "bias"},
            "no_decay must be 'auto', False/None, or a list of layer types and globs; got 'bias'. "
            "Use e.g. no_decay=['auto', nn.Embedding].",
        ),
    ],
)
def test_bad_maps_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        param_groups(TinyLM(), 0.1, **kwargs)


def test_bad_model_and_weight_decay_raise():
    with pytest.raises(
        ConfigError, match=re.escape("weight_decay must be a finite number >= 0, got -1;")
    ):
        param_groups(TinyLM(), -1)
    with pytest.raises(
        ConfigError, match=re.escape("model must be a torch.nn.Module; got generator.")
    ):
        param_groups(TinyLM().parameters(), 0.1)


def test_a_key_matching_only_frozen_parameters_is_not_an_error():
    model = TinyLM()
    groups = param_groups(model, 0.1, lr_map={"frozen.*": 0.1})
    _assert_partition(model, groups)
    assert all(g["lr_scale"] == 1.0 for g in groups)


class SeedCNN(nn.Module):
    """The seed article's kind of model: conv layers named conv1/conv2, a linear head 'fc'."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv1d(1, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm1d(4)
        self.conv2 = nn.Conv1d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.conv1(x)))
        return self.fc(torch.relu(self.conv2(x)).flatten(1))


def test_seed_call_shape_gives_merged_groups_that_adam_trains():
    model = SeedCNN()
    groups = apply_weight_decay_by_layer(model, {"conv": 0.001, "linear": 0.01})
    _assert_partition(model, groups)
    # 'linear' matches the Linear layer named fc (the seed's substring test missed it);
    # biases and the batchnorm get no decay (the seed decayed them).
    assert _summary(groups) == [
        (0.001, None, ["conv1.weight", "conv2.weight"]),
        (0.01, None, ["fc.weight"]),
        (0.0, None, ["conv1.bias", "bn1.weight", "bn1.bias", "conv2.bias", "fc.bias"]),
    ]
    opt = torch.optim.Adam(groups, lr=0.01)
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(16, 1, 8, generator=gen), torch.randint(0, 3, (16,), generator=gen)
    losses = []
    for _ in range(15):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_bare_words_match_whole_names_and_layer_kinds_not_substrings():
    model = nn.Module()
    model.conv1 = nn.Conv1d(2, 2, 1)
    model.conv_proj = nn.Linear(2, 2)  # "conv" is a substring, not the name or kind
    model.deconv = nn.ConvTranspose1d(2, 2, 1)  # kind "convtranspose", name "deconv"
    model.block = nn.Sequential(nn.Linear(2, 2))
    model.block_2 = nn.Linear(2, 2)
    groups = apply_weight_decay_by_layer(
        model, {"conv": 0.1, "block": 0.2, "convtranspose": 0.3}, default=0.05
    )
    _assert_partition(model, groups)
    assert [g for g in _summary(groups) if g[0] > 0] == [
        (0.1, None, ["conv1.weight"]),
        (0.05, None, ["conv_proj.weight"]),
        (0.3, None, ["deconv.weight"]),
        (0.2, None, ["block.0.weight", "block_2.weight"]),
    ]


def test_layer_map_accepts_types_and_globs_and_rejects_unmatched_words():
    model = SeedCNN()
    groups = apply_weight_decay_by_layer(model, {nn.Linear: 0.02, "conv2.*": 0.03}, no_decay=False)
    assert _summary(groups)[:2] == [
        (0.03, None, ["conv2.weight", "conv2.bias"]),
        (0.02, None, ["fc.weight", "fc.bias"]),
    ]
    with pytest.raises(
        ConfigError, match=re.escape("weight_decay_map key 'attention' matches no parameter")
    ):
        apply_weight_decay_by_layer(model, {"attention": 0.1})
    with pytest.raises(
        ConfigError, match=re.escape("default must be a finite number >= 0, got -0.5;")
    ):
        apply_weight_decay_by_layer(model, {"conv": 0.1}, default=-0.5)


def test_a_group_added_later_names_its_parameters_as_the_docstring_says():
    # Fine-tuning: the head starts frozen (left out of the groups), then is unfrozen.
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
    for p in model[1].parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(model, 0.01), lr=1e-3)
    assert all(name.startswith("0.") for g in opt.param_groups for name in g["param_names"])
    for p in model[1].parameters():
        p.requires_grad_(True)
    opt.add_param_group({"params": [model[1].weight], "param_names": ["1.weight"]})
    assert opt.state_dict()["param_groups"][-1]["param_names"] == ["1.weight"]
