"""hptune.runner: the checks that keep a bad or changed spec from running, on real specs,
the real recipe and the built-in tasks' real models, and real SQLite files."""

import re
import textwrap
from pathlib import Path

import pytest

from hptune import runner
from hptune.exceptions import HptuneError
from hptune.spec import SpecError, load_spec, parse_spec
from hptune.study import load_study

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BASE = """\
name: n
task: digits-mlp
budget: {trials: 1, epochs: 1}
space:
  lr: loguniform(1e-3, 1e-1)
"""


def _errors(text: str) -> list[str]:
    spec = parse_spec(textwrap.dedent(text), "s.yaml")
    with pytest.raises(SpecError) as info:
        runner.check_spec(spec)
    return info.value.errors


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "  model: {bogus: 3}\n",
            "s.yaml:6: space.model.bogus: not an option of task 'digits-mlp'; valid options: "
            "depth, dropout, width. Fix or remove the key.",
        ),
        (
            # Only the low end of the range is rejected: the middle (0) is a fine decay.
            "  weight_decay: uniform(-1, 1)\n",
            "s.yaml:6: space.weight_decay: uniform(-1.0, 1.0) reaches -1.0 at its low end: "
            "the recipe rejects -1.0: config['weight_decay'] must be a finite number >= 0, "
            "got -1.0; decay of weights",
        ),
        (
            "  model: {dropout: uniform(0, 1)}\n",
            "s.yaml:6: space.model.dropout: uniform(0.0, 1.0) reaches 1.0 at its high end: "
            "model.dropout must be a number in [0, 1), got 1.0.",
        ),
        (
            "  optimizer: {choice: {adam: {}, sgd: {momentum: uniform(-0.5, 0.9)}}}\n",
            "s.yaml:6: space.optimizer.sgd.momentum: uniform(-0.5, 0.9) reaches -0.5 at its low "
            "end: optimizer 'sgd': momentum must be a number in [0, 1), got -0.5; use e.g. 0.9",
        ),
        ("  optimizer: adamm\n", "s.yaml:6: space.optimizer: Unknown optimizer 'adamm'."),
        (
            # The middle of the range (1.25) fails already: blamed on the option itself.
            "  scheduler: {choice: {cosine: {}, plateau: {factor: uniform(0.5, 2)}}}\n",
            "s.yaml:6: space.scheduler.plateau.factor: scheduler 'plateau': factor must be a "
            "number in (0, 1), got 1.25; pass e.g. factor=0.5.",
        ),
        (
            "  optimizer:\n    choice:\n      adam: {}\n      sgdd: {}\n",
            "s.yaml:9: space.optimizer.sgdd: Unknown optimizer 'sgdd'.",
        ),
        (
            "  batch_size: choice(0, 64)\n",
            "s.yaml:6: space.batch_size: the recipe rejects 0: config['batch_size'] must be an "
            "int >= 1, got 0; effective batch",
        ),
        (
            "  lrr: 0.1\n",
            "s.yaml:6: space.lrr: not a config key of the recipe: unknown key (did you mean "
            "'lr'?); valid: lr, batch_size, weight_decay, decay_map, warmup_epochs, "
            "warmup_steps, optimizer, scheduler, grad_clip, batch_growth, model (options of "
            "your own model go under model:)",
        ),
    ],
)
def test_check_spec_names_file_line_and_key_of_what_trials_would_reject(extra, expected):
    (error,) = _errors(BASE + extra)
    assert error.startswith(expected), error


def test_check_spec_reports_every_problem_at_once():
    errors = _errors(BASE + "  lrr: 0.1\n  model: {bogus: 3}\n  optimizer: adamm\n")
    paths = [e.split(": ")[1] for e in errors]
    assert paths == ["space.lrr", "space.optimizer", "space.model.bogus"]


@pytest.mark.parametrize("example", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_the_examples_pass(example, monkeypatch):
    monkeypatch.chdir(EXAMPLES)  # custom_model.yaml names a module there
    runner.check_spec(load_spec(example))


def _run(text: str, storage: str):
    return runner.run(parse_spec(text, "s.yaml").replace(storage=storage))


@pytest.mark.slow
def test_a_study_refuses_a_spec_that_changes_what_a_trial_means(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    _run(BASE, storage)
    cases = [
        (BASE.replace("epochs: 1", "epochs: 2"), "budget.epochs 1 -> 2"),
        (BASE.replace("digits-mlp", "mnist1d-mlp"), "task 'digits-mlp' -> 'mnist1d-mlp'"),
        (
            BASE + "metric: val_loss\ndirection: minimize\n",
            "metric 'val_accuracy' -> 'val_loss', direction 'maximize' -> 'minimize'",
        ),
        (BASE + "training: {grad_clip: 0.5}\n", "training.grad_clip (unset) -> 0.5"),
    ]
    for text, change in cases:
        message = (
            f"study 'n' was run with a different spec: {change}; its trials would not be "
            "comparable with new ones. Run it as a new study (--name NEW, or another name: in "
            "the spec), or restore"
        )
        with pytest.raises(HptuneError, match=re.escape(message)):
            _run(text, storage)
    study = load_study("n", storage)
    assert runner.stored_spec(study).budget.epochs == 1 and len(study.trials) == 1
    # What does not change a trial's meaning may change: budget, strategy, pruner, output.
    allowed = BASE.replace("trials: 1", "trials: 2") + (
        "strategy: random\npruner: median\nworkers: 1\ntraining: {save_best: false}\n"
    )
    study = _run(allowed, storage)
    assert len(study.trials) == 2 and runner.stored_spec(study).strategy == "random"
    # A study run from a spec whose task the recipe trains reports once per epoch.
    assert study.optuna_study.user_attrs[runner.STEP_UNIT_ATTR] == "epoch"


def test_rerun_refuses_trials_that_never_finished(tmp_path):
    from hptune.study import create_study

    study = create_study(
        {"x": 1.0}, name="s", storage=f"sqlite:///{tmp_path / 's.db'}", direction="maximize"
    )
    study.optuna_study.set_user_attr(runner.SPEC_ATTR, runner.spec_to_dict(parse_spec(BASE)))
    with pytest.raises(
        HptuneError, match=re.escape("study 's' has no trial 0; it has no trials yet.")
    ):
        runner.check_rerun(study, 0)
    study.optuna_study.ask()  # a trial left RUNNING
    with pytest.raises(
        HptuneError,
        match=re.escape(
            "trial 0 of 's' never finished (RUNNING), so there is no result to reproduce; "
            "`hptune resume` runs it again."
        ),
    ):
        runner.check_rerun(study, 0)


def test_large_spaces_are_checked_one_choice_at_a_time(monkeypatch):
    # The main job's space has more kinds of config than are checked as a grid (216 > 200),
    # so each choice value and branch is varied on its own; its ranges still reach both ends.
    text = (EXAMPLES / "mnist1d.yaml").read_text()
    assert parse_spec(text).build_space().grid_size(n_points=1) > runner._check._MAX_CHECKED_CONFIGS
    bad = text.replace("momentum: uniform(0.8, 0.99)", "momentum: uniform(0.5, 1.0)")
    with pytest.raises(SpecError) as info:
        runner.check_spec(parse_spec(bad, "m.yaml"))
    assert info.value.errors == [
        "m.yaml:22: space.optimizer.sgd.momentum: uniform(0.5, 1.0) reaches 1.0 at its high "
        "end: optimizer 'sgd': momentum must be a number in [0, 1), got 1.0; use e.g. 0.9, "
        "or 0 to disable momentum."
    ]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "strategy: {name: tpe, n_startup_trials: -1}\n",
            "s.yaml:4: strategy: strategy 'tpe': n_startup_trials must be an int >= 0, got -1.",
        ),
        (
            "pruner: {name: median, bogus: 1}\n",
            "s.yaml:4: pruner: pruner 'median' got unknown option 'bogus'; valid: ",
        ),
        (
            "training: {device: 'cuda:99'}\n",
            "s.yaml:4: training.device: device 'cuda:99' does not exist here (",
        ),
        (
            "strategy: {name: multi-fidelity, priors: {lrr: 0.01}}\n",
            "s.yaml:4: strategy: strategy 'multi-fidelity': priors names 'lrr', which is not a "
            "numeric parameter of the space (its numeric parameters: lr);",
        ),
        ("workers: 100000\n", "s.yaml:4: workers: 100000 worker processes on "),
        ("storage: sqlite:///no/such/folder/x.db\n", "s.yaml:4: storage: cannot open storage "),
    ],
)
def test_validate_refuses_what_run_would_refuse(extra, expected):
    if "cuda" in extra:
        pytest.importorskip("torch").cuda.device_count() < 100 or pytest.skip("100 GPUs")
    (error,) = _errors(BASE.replace("space:", extra + "space:"))
    assert error.startswith(expected), error


def test_validate_refuses_a_changed_space_with_a_short_diff(tmp_path):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    _run(BASE, storage)
    changed = BASE.replace("lr: loguniform(1e-3, 1e-1)", "lr: loguniform(1e-4, 1e-1)")
    spec = parse_spec(changed, "s.yaml").replace(storage=storage)
    with pytest.raises(SpecError) as info:
        runner.check_spec(spec)
    (error,) = info.value.errors
    assert "space.lr 'loguniform(1e-3, 1e-1)' -> 'loguniform(1e-4, 1e-1)'" in error
    assert (tmp_path / "s.db").exists() and not (tmp_path / "other.db").exists()


@pytest.mark.slow
def test_two_workers_on_a_one_gpu_machine_share_it(tmp_path, monkeypatch):
    # This machine has no GPU: the driver is told it sees one ("0"), so the plan pins both
    # workers to it (each with 45% of its memory; torch here has no CUDA to cap) and the
    # trials train on the CPU. Before packing, workers: 2 stopped here with "raise
    # trials_per_device to 2".
    from hptune.execution import _plan

    monkeypatch.setattr(_plan, "visible_gpus", lambda: ["0"])
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = _run(BASE.replace("trials: 1", "trials: 2") + "workers: 2\n", storage)
    assert [t.state for t in study.trials] == ["COMPLETE", "COMPLETE"]
    explicit = BASE.replace("name: n", "name: m") + "workers: 2\ntrials_per_device: 1\n"
    with pytest.raises(HptuneError, match=re.escape("raise trials_per_device to 2")):
        _run(explicit, storage)


def test_a_spec_names_its_metric_for_optuna_dashboard_unless_its_value_is_unnamed(tmp_path):
    import optuna

    storage = f"sqlite:///{tmp_path / 's.db'}"
    runner.open_study(parse_spec(BASE + "metric: val_loss\n").replace(storage=storage))
    assert optuna.load_study(study_name="n", storage=storage).metric_names == ["val_loss"]
    # A full objective returns whatever it returns: named only when the spec says what.
    objective = "name: o\ntask: tests.execution.objectives:double\nspace: {x: 1.0}\n"
    for text, names in ((objective, None), (objective + "metric: val_loss\n", ["val_loss"])):
        runner.open_study(parse_spec(text).replace(storage=storage, name=f"o{names}"))
        assert optuna.load_study(study_name=f"o{names}", storage=storage).metric_names == names
