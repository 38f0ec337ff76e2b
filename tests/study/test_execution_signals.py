"""Ctrl-C and SIGTERM stop a driver cleanly: a real driver process on a real SQLite file,
signalled while its worker processes run trials; the study is then read back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hptune.exceptions import ConfigError
from hptune.execution import create_executor
from hptune.study import load_study
from hptune.study._execution import sigterm_as_interrupt

ROOT = Path(__file__).resolve().parents[2]


def start_driver(url: str, name: str, strategy: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.study._execution_jobs",
            url,
            name,
            strategy,
            json.dumps(kwargs),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_states(url: str, name: str, at_least: dict[str, int], proc, limit_s=120.0):
    """Poll the study until it holds at least the given number of trials per state."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        try:
            states = [t.state for t in load_study(name, url).trials]
        except Exception:  # the driver has not created the study yet
            states = []
        if all(states.count(s) >= n for s, n in at_least.items()):
            return
        time.sleep(0.1)
    raise AssertionError(f"study never reached {at_least}")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_driver_cleanly(tmp_path, sig):
    url = f"sqlite:///{tmp_path / 's.db'}"
    proc = start_driver(url, "s", "random", n_trials=200, n_workers=2)
    wait_for_states(url, "s", {"COMPLETE": 2, "RUNNING": 1}, proc)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    trials = load_study("s", url).trials
    states = [t.state for t in trials]
    assert "RUNNING" not in states and "WAITING" not in states
    assert states.count("COMPLETE") >= 2
    for t in trials:
        if t.state == "COMPLETE":
            assert t.value == t.config["x"]  # kept, with its value
        else:
            assert t.state == "FAILED" and t.failure_kind == "interrupted"
    assert "FAILED" in states  # the trials running at the signal


def test_sigterm_handler_is_restored_and_raises_keyboard_interrupt():
    before = signal.getsignal(signal.SIGTERM)
    with sigterm_as_interrupt(), pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler interrupts this sleep
    assert signal.getsignal(signal.SIGTERM) is before


def test_executor_names_and_errors():
    assert type(create_executor("inline", 1, None, None)).__name__ == "InlineExecutor"
    process = create_executor("process", 2, {"devices": "cpu"}, 5.0)
    assert type(process).__name__ == "ProcessExecutor" and process.capacity == 2
    with pytest.raises(
        ConfigError,
        match=r"executor must be an hptune Executor or one of "
        r"inline, process, ray, got 'dask'",
    ):
        create_executor("dask", 1, None, None)
    with pytest.raises(ConfigError, match="the inline executor runs one trial at a time"):
        create_executor("inline", 2, None, None)
    with pytest.raises(
        ConfigError, match=r"unknown executor_options \['gpus'\] for executor='ray'"
    ):
        create_executor("ray", 1, {"gpus": 1}, None)


def test_signals_deferred_holds_ctrl_c_until_the_block_ends():
    from hptune.study._execution import signals_deferred

    reached_end_of_block = False
    # Other libraries run earlier in this process (Ray Tune) may have left their own handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    with pytest.raises(KeyboardInterrupt), signals_deferred():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)  # the handler would have run by now
        reached_end_of_block = True
    assert reached_end_of_block
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, previous)


def test_a_second_ctrl_c_while_stopping_still_records_why_the_run_stopped(tmp_path, monkeypatch):
    from hptune.space import uniform
    from hptune.study import create_study
    from hptune.study._driver import Driver

    abort = Driver._abort

    def abort_and_ctrl_c_again(self):
        abort(self)
        os.kill(os.getpid(), signal.SIGINT)  # the second Ctrl-C, while the first is handled

    monkeypatch.setattr(Driver, "_abort", abort_and_ctrl_c_again)
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = create_study({"x": uniform(0, 1)}, name="s", storage=url, seed=0,
                         direction="maximize")  # fmt: skip

    def objective(config, trial):
        if trial.number == 2:
            raise KeyboardInterrupt  # the first Ctrl-C
        return config["x"]

    with pytest.raises(KeyboardInterrupt):
        study.optimize(objective, n_trials=5)
    assert load_study("s", url).last_stop["reason"] == "interrupted"
