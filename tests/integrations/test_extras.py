"""The integrations stay optional: ``import hptune`` loads no framework, a missing framework
is a one-line error naming the ``pip install``, and a config means what it means to the
recipe."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys

import pytest
from torch import nn

from hptune import ConfigError, Trial, TrialPruned
from hptune.integrations import MissingExtraError
from hptune.integrations._common import TrialReports, build_optimizer_and_scheduler

FRAMEWORKS = ("lightning", "pytorch_lightning", "transformers", "accelerate")


def test_import_hptune_loads_no_framework():
    code = (
        "import sys, hptune, hptune.integrations, hptune.training; "
        f"print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("integration", "blocked"),
    [("lightning", ["lightning", "lightning.pytorch"]), ("transformers", ["transformers"])],
)
def test_missing_framework_is_one_line_naming_the_pip_install(monkeypatch, integration, blocked):
    for name in blocked:
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: import fails
    module = f"hptune.integrations.{integration}"
    monkeypatch.delitem(sys.modules, module, raising=False)  # restored afterwards
    with pytest.raises(MissingExtraError) as caught:
        importlib.import_module(module)
    message = str(caught.value)
    assert message.startswith(
        f"{module} needs {blocked[0]}: pip install 'hptune[{integration}]' (import failed: "
    )
    assert "\n" not in message and isinstance(caught.value, ImportError)


def model() -> nn.Module:
    return nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))


def build(config, **options):
    options = {"total_steps": 10, "steps_per_epoch": None, "direction": None, **options}
    return build_optimizer_and_scheduler(model(), config, **options)


def test_warmup_epochs_need_steps_per_epoch():
    with pytest.raises(ConfigError, match=re.escape("pass steps_per_epoch=... or put")):
        build({"warmup_epochs": 2})
    _, scheduler = build({"warmup_epochs": 2}, steps_per_epoch=3)
    assert scheduler.warmup_steps == 6


def test_config_without_warmup_or_scheduler_is_a_constant_lr_with_zero_warmup():
    optimizer, scheduler = build({"lr": 0.02})
    for _ in range(3):
        optimizer.step()
        scheduler.step()
    assert scheduler.warmup_steps == 0 and scheduler.get_last_lr() == [0.02]


def test_infinite_training_cannot_size_a_cosine():
    with pytest.raises(ConfigError, match=re.escape("total_steps must be an int >= 1")):
        build({"scheduler": "cosine"}, total_steps=float("inf"))


def test_an_optuna_trial_is_refused():
    class OptunaLikeTrial:
        def report(self, value, step): ...

    from hptune.integrations._common import check_trial

    with pytest.raises(ConfigError, match="must be the hptune.Trial your objective received"):
        check_trial(OptunaLikeTrial(), "PruningCallback")


def test_reports_need_increasing_steps_and_keep_the_prune_signal():
    answers = iter([False, True])
    trial = Trial(0, {}, seed=0, reporter=lambda step, value: next(answers))
    reports = TrialReports(trial, "pass step='global_step'")
    assert reports.report(1, 0.5) is False
    with pytest.raises(ConfigError, match=re.escape("step 1 reported after step 1")):
        reports.report(1, 0.6)
    assert reports.report(2, 0.7) is True
    assert reports.report(3, 0.8) is True and reports.values == {1: 0.5, 2: 0.7}
    with pytest.raises(TrialPruned, match="pruned at step 2"):
        reports.raise_if_pruned()
