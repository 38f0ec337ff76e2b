"""Every completed trial of a 2-worker run reruns identical from the CLI: the recipe's
trials (run in workers with 1 torch thread, rerun here with the threads they recorded) and
a user objective that never reads ``trial.seed`` (its global generators are seeded)."""

from __future__ import annotations

import json

import pytest

from hptune.cli import main

RECIPE = """\
name: rerun-recipe
task: digits-mlp
seed: 5
strategy: random
pruner: none
budget: {trials: 4, epochs: 2}
workers: 2
space:
  lr: loguniform(1e-3, 3e-2)
  batch_size: choice(32, 64)
  model: {width: 64}
"""

USER = """\
name: rerun-user
task: tests.execution.objectives:unseeded
seed: 5
strategy: grid
workers: 2
space:
  x: choice(1.0, 2.0, 3.0)
"""


def _rerun_all(spec_text: str, name: str, tmp_path, monkeypatch, capsys) -> list[dict]:
    spec = tmp_path / f"{name}.yaml"
    spec.write_text(spec_text)
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    assert main(["run", str(spec), "--storage", storage, "--json"]) == 0
    capsys.readouterr()
    assert main(["status", name, "--storage", storage, "--json"]) == 0
    states = json.loads(capsys.readouterr().out)["states"]
    assert states.get("COMPLETE", 0) >= 3
    results = []
    for number in range(sum(states.values())):
        code = main(["rerun", name, str(number), "--storage", storage, "--json"])
        result = json.loads(capsys.readouterr().out)
        assert code == 0, result
        results.append(result)
    return results


@pytest.mark.slow
def test_recipe_trials_of_a_two_worker_run_rerun_identical(tmp_path, monkeypatch, capsys):
    results = _rerun_all(RECIPE, "rerun-recipe", tmp_path, monkeypatch, capsys)
    assert all(r["identical"] for r in results)


@pytest.mark.slow
def test_a_user_objective_that_ignores_its_seed_reruns_identical(tmp_path, monkeypatch, capsys):
    results = _rerun_all(USER, "rerun-user", tmp_path, monkeypatch, capsys)
    assert [r["identical"] for r in results] == [True] * 3
    assert len({r["new"] for r in results}) == 3


def test_a_task_this_process_cannot_import_is_an_error_not_a_difference(
    tmp_path, monkeypatch, capsys
):
    import sys

    made = tmp_path / "made"
    made.mkdir()
    (made / "rerun_objmod.py").write_text("def echo(config, trial):\n    return config['x']\n")
    (made / "s.yaml").write_text(
        "name: gone\ntask: rerun_objmod:echo\nseed: 0\nstrategy: random\nbudget: {trials: 1}\n"
        "space:\n  x: uniform(0, 1)\n"
    )
    storage = f"sqlite:///{tmp_path / 'r.db'}"
    monkeypatch.chdir(made)
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert main(["run", "s.yaml", "--storage", storage]) == 0
    # Rerun from another folder, where the module is not importable.
    monkeypatch.chdir(tmp_path)
    sys.modules.pop("rerun_objmod", None)
    sys.path[:] = [p for p in sys.path if p not in (str(made), "")]
    capsys.readouterr()
    assert main(["rerun", "gone", "0", "--storage", storage]) == 2
    captured = capsys.readouterr()
    assert "rerun_objmod" in captured.err and captured.err.count("\n") == 1
    assert "different" not in captured.out
