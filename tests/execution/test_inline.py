from hptune.execution import InlineExecutor, OutcomeState, TrialJob


def _objective(config, trial):
    for step in range(5):
        trial.report(step, float(step))
    return config["x"] * 2


def _failing(config, trial):
    raise ValueError("bad input\nsecond line")


def test_inline_runs_prunes_and_fails():
    reports = []

    def on_report(number, step, value):
        reports.append((number, step, value))
        return number == 1 and step == 2

    ex = InlineExecutor()
    ex.start(on_report)
    ex.submit(TrialJob(0, {"x": 3}, 0, _objective))
    (done,) = ex.wait()
    assert done.state is OutcomeState.COMPLETE and done.value == 6 and done.last_step == 4
    ex.submit(TrialJob(1, {"x": 3}, 0, _objective))
    (pruned,) = ex.wait()
    assert pruned.state is OutcomeState.PRUNED and pruned.last_step == 2
    ex.submit(TrialJob(2, {"x": 3}, 0, _failing))
    (failed,) = ex.wait()
    assert failed.state is OutcomeState.FAILED
    assert failed.reason == "ValueError: bad input"
    assert "Traceback" in failed.traceback
    assert reports[:5] == [(0, s, float(s)) for s in range(5)]
    assert ex.wait() == []


def test_inline_resolves_module_function_strings():
    ex = InlineExecutor()
    ex.start(lambda *a: False)
    ex.submit(TrialJob(0, {"x": 2}, 0, "tests.execution.test_inline:_objective"))
    (done,) = ex.wait()
    assert done.state is OutcomeState.COMPLETE and done.value == 4
    ex.submit(TrialJob(1, {}, 0, "no_such_module_xyz:f"))
    (bad,) = ex.wait()
    assert (
        bad.state is OutcomeState.FAILED
        and "cannot import module 'no_such_module_xyz'" in bad.reason
    )


def _with_attrs(config, trial):
    trial.set_attr("test_accuracy", 0.5)
    raise RuntimeError("after recording")


def test_outcome_carries_attrs_whatever_the_state():
    ex = InlineExecutor()
    ex.start(lambda *a: False)
    ex.submit(TrialJob(0, {}, 0, _with_attrs))
    (out,) = ex.wait()
    assert out.state is OutcomeState.FAILED and out.attrs == {"test_accuracy": 0.5}


def test_a_bool_or_a_string_is_no_value_though_float_takes_it():
    import numpy as np
    import pytest

    ex = InlineExecutor()
    ex.start(lambda *a: False)
    for number, value in enumerate([True, "0.5", np.float32(0.25)]):
        ex.submit(TrialJob(number, {}, 0, lambda config, trial, v=value: v))
    outcomes = {}
    while len(outcomes) < 3:
        for o in ex.wait():
            outcomes[o.number] = o
    assert outcomes[0].reason == "objective returned bool True, expected a float"
    assert outcomes[1].reason == "objective returned str '0.5', expected a float"
    assert outcomes[2].state is OutcomeState.COMPLETE and outcomes[2].value == pytest.approx(0.25)


def test_an_objective_that_calls_sys_exit_fails_its_trial_not_the_run():
    import sys

    ex = InlineExecutor()
    ex.start(lambda *a: False)
    ex.submit(TrialJob(0, {}, 0, lambda config, trial: sys.exit(3)))
    (failed,) = ex.wait()
    assert failed.state is OutcomeState.FAILED
    assert failed.reason == "the objective called sys.exit(3)"
