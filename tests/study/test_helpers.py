"""The seed's grid_search / random_search on the engine, and the record helpers."""

from __future__ import annotations

import hashlib
import re
import subprocess

import numpy as np
import optuna
import pytest

from hptune.space import choice, loguniform
from hptune.study import (
    capture_environment,
    config_hash,
    derive_trial_seed,
    grid_search,
    load_study,
    random_search,
)


def _score(lr, batch_size):
    return -abs(lr - 0.01) - batch_size / 1e4


def test_grid_search_keeps_the_seed_shape_and_records(tmp_path):
    url = f"sqlite:///{tmp_path / 'g.db'}"
    grid = {"lr": [0.1, 0.01, 0.001], "batch_size": [32, 64]}
    results = grid_search(grid, _score, storage=url, name="gs")
    assert [r["params"] for r in results] == [
        {"lr": 0.01, "batch_size": 32},
        {"lr": 0.01, "batch_size": 64},
        {"lr": 0.001, "batch_size": 32},
        {"lr": 0.001, "batch_size": 64},
        {"lr": 0.1, "batch_size": 32},
        {"lr": 0.1, "batch_size": 64},
    ]
    assert results[0]["score"] == pytest.approx(-0.0032)
    stored = load_study("gs", url)
    assert (
        len(stored.trials) == 6
        and stored.optuna_study.user_attrs["hptune.strategy"]["name"] == "grid"
    )
    assert {r["trial"] for r in results} == set(range(6))
    assert [r["seed"] for r in sorted(results, key=lambda r: r["trial"])] == [
        t.seed for t in stored.trials
    ]


def test_random_search_ranges_are_typed_by_both_bounds():
    seen = []

    def train(lr, batch_size, dropout, opt):
        seen.append((lr, batch_size, dropout, opt))
        return -abs(np.log10(lr) + 3)

    ranges = {
        "lr": loguniform(1e-4, 1e-2),
        "batch_size": (16, 256),
        "dropout": [0, 0.5],
        "opt": choice("adam", "sgd"),
    }
    results = random_search(ranges, 20, train, seed=3, storage=None)
    assert len(results) == 20 and results[0]["score"] >= results[-1]["score"]
    for lr, bs, dropout, opt in seen:
        assert 1e-4 <= lr <= 1e-2
        assert isinstance(bs, int) and 16 <= bs <= 256
        assert isinstance(dropout, float) and 0 <= dropout <= 0.5  # [0, 0.5] is a float range
        assert opt in ("adam", "sgd")
    # log-uniform: about half the draws below 1e-3 (a linear draw would give ~9%)
    assert 6 <= sum(lr < 1e-3 for lr, *_ in seen) <= 14
    again = random_search(ranges, 20, lambda **p: 0.0, seed=3, storage=None)
    assert sorted(r["params"]["lr"] for r in again) == sorted(lr for lr, *_ in seen)


def test_random_search_warns_about_a_linear_learning_rate():
    with pytest.warns(UserWarning, match=re.escape("use hptune.loguniform(0.0001, 0.01)")):
        random_search({"lr": (1e-4, 1e-2)}, 2, lambda lr: lr, seed=0, storage=None)


def test_config_hash_and_trial_seed_match_hand_computation():
    config = {"lr": 0.1, "optimizer": {"name": "sgd", "momentum": 0.9}}
    text = '{"lr":0.1,"optimizer":{"momentum":0.9,"name":"sgd"}}'
    assert config_hash(config) == hashlib.sha256(text.encode()).hexdigest()
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
    expected = int(np.random.SeedSequence([5, 3]).generate_state(1, dtype=np.uint32)[0])
    assert derive_trial_seed(5, 3) == expected
    assert derive_trial_seed(5, 3) != derive_trial_seed(5, 4) != derive_trial_seed(6, 3)


def test_environment_names_versions_and_git_commit(tmp_path, monkeypatch):
    env = capture_environment()
    assert env["optuna"] == optuna.__version__
    assert env["torch"] and env["python"] and env["hostname"] and env["platform"]
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
    if head.returncode == 0:
        assert env["git_commit"] == head.stdout.strip()
    monkeypatch.chdir(tmp_path)  # not inside any git repository
    assert capture_environment()["git_commit"] is None
