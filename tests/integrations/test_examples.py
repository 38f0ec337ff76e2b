"""The integration examples' objectives work: each trains its first epochs for one config
and is pruned at epoch 2 by a trial that says so (the whole studies take tens of seconds;
the README tells how to run them)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from hptune import Trial, TrialPruned
from tests.integrations._extras import import_or_skip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pruned_at_epoch_two(config: dict) -> tuple[Trial, list[tuple[int, float]]]:
    reports: list[tuple[int, float]] = []
    trial = Trial(0, config, seed=0, reporter=lambda s, v: reports.append((s, v)) or s == 2)
    return trial, reports


@pytest.mark.parametrize(
    ("example", "frameworks", "config"),
    [
        (
            "lightning_digits",
            ("lightning", "sklearn"),
            {"lr": 3e-3, "batch_size": 64, "weight_decay": 1e-4, "warmup_epochs": 1,
             "optimizer": {"name": "adamw"}, "scheduler": {"name": "cosine"}},
        ),
        (
            "hf_tiny_bert",
            ("transformers", "accelerate"),
            {"lr": 3e-3, "weight_decay": 1e-3, "warmup_steps": 20, "optimizer": "adamw",
             "scheduler": {"name": "plateau", "factor": 0.5, "patience": 1}},
        ),
    ],
)  # fmt: skip
def test_example_objective_trains_and_is_pruned(example, frameworks, config):
    for name in frameworks:
        import_or_skip(name)
    module = load_example(example)
    assert module.SPACE  # the study's space builds a config of this shape
    trial, reports = pruned_at_epoch_two(config)
    with pytest.raises(TrialPruned, match="pruned at step 2"):
        module.objective(config, trial)
    assert [step for step, _ in reports] == [1, 2]
    assert all(0.0 <= value <= 1.0 for _, value in reports)
