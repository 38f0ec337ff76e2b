"""RayExecutor on a real local Ray instance (2 CPUs), started once for this module."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import FailureKind, OutcomeState, TrialJob
from hptune.execution.ray_executor import RayExecutor
from tests.conftest import in_ci

try:
    import ray
except ImportError:
    if in_ci():
        raise  # CI installs the ray extra: a missing Ray is a broken set-up, not a skip
    pytest.skip("Ray not installed: pip install 'hptune[ray]'", allow_module_level=True)

# Starting the module's Ray takes 3-8 s.
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
# Ray's token authentication is for shared clusters; a throwaway local one needs none.
RAY_ENV = {"RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def ray_cluster() -> object:
    """A local Ray with 2 CPUs whose files live in a temporary directory of its own
    (removed afterwards), so the test never touches /tmp/ray or another user's cluster."""
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process; the Ray tests need their own")
    # A short path: Ray's Unix socket paths inside it must stay under 108 characters.
    temp_dir = tempfile.mkdtemp(prefix="hptune-ray-")
    # Workers inherit this environment (the raylet is our child): PYTHONPATH lets them
    # import the objectives of this module, which are pickled by reference.
    env = {
        **RAY_ENV,
        "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            object_store_memory=100 * 1024**2,
            _temp_dir=temp_dir,
        )
    finally:
        ray.shutdown()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        shutil.rmtree(temp_dir, ignore_errors=True)


# --- objectives (module level: Ray pickles them by reference) -------------------------


def _objective(config, trial):
    for step in range(3):
        trial.report(step, config["x"] * step)
    trial.set_attr("pid", os.getpid())
    return config["x"] * 10


def _failing(config, trial):
    raise ValueError("bad input\nsecond line")


def _returns_text(config, trial):
    return "high"


def _crash(config, trial):
    trial.report(0, 1.0)
    os._exit(1)


def _sleep(config, trial):
    Path(config["pid_file"]).write_text(str(os.getpid()))
    time.sleep(config.get("sleep_s", 120))
    return 0.0


# --- helpers ---------------------------------------------------------------------------


class Recorder:
    """``on_report`` that records every report and prunes at the given (number, step)s."""

    def __init__(self, prune_at: set[tuple[int, int]] = frozenset()) -> None:
        self.reports: list[tuple[int, int, float]] = []
        self.prune_at = prune_at

    def __call__(self, number: int, step: int, value: float) -> bool:
        self.reports.append((number, step, value))
        return (number, step) in self.prune_at

    def of(self, number: int) -> list[tuple[int, int, float]]:
        return [r for r in self.reports if r[0] == number]


def run_all(ex: RayExecutor, jobs: list[TrialJob]) -> dict:
    for job in jobs:
        ex.submit(job)
    outcomes = {}
    while ex.n_running:
        outcomes.update((o.number, o) for o in ex.wait(timeout_s=60))
    return outcomes


def _process_gone(pid: int, within_s: float = 30.0) -> bool:
    for _ in range(int(within_s / 0.1)):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


# --- tests ------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_trials_complete_and_reports_reach_the_driver(ray_cluster):
    rec = Recorder()
    with RayExecutor() as ex:
        ex.start(rec)
        assert ex.capacity == 2  # the cluster's 2 CPUs // 1 CPU per trial
        out = run_all(
            ex, [TrialJob(0, {"x": 1.0}, 0, _objective), TrialJob(1, {"x": 2.0}, 1, _objective)]
        )
    assert [out[n].state for n in (0, 1)] == [OutcomeState.COMPLETE] * 2
    assert (out[0].value, out[1].value) == (10.0, 20.0)
    assert rec.of(0) == [(0, 0, 0.0), (0, 1, 1.0), (0, 2, 2.0)]
    assert rec.of(1) == [(1, 0, 0.0), (1, 1, 2.0), (1, 2, 4.0)]
    assert out[0].last_step == 2 and out[0].worker.startswith("ray:")
    assert out[0].attrs["pid"] != os.getpid()  # it really ran in a Ray worker


@pytest.mark.timeout(120)
def test_pruning_stops_the_trial_in_its_worker(ray_cluster):
    rec = Recorder(prune_at={(1, 1)})
    with RayExecutor() as ex:
        ex.start(rec)
        out = run_all(
            ex, [TrialJob(0, {"x": 1.0}, 0, _objective), TrialJob(1, {"x": 2.0}, 1, _objective)]
        )
    assert out[0].state is OutcomeState.COMPLETE
    assert out[1].state is OutcomeState.PRUNED and out[1].last_step == 1 and out[1].value is None
    assert rec.of(1) == [(1, 0, 0.0), (1, 1, 2.0)]  # no report after the prune


@pytest.mark.timeout(120)
def test_objective_errors_fail_the_trial_as_inline(ray_cluster):
    with RayExecutor() as ex:
        ex.start(Recorder())
        out = run_all(
            ex,
            [
                TrialJob(0, {}, 0, _failing),
                TrialJob(1, {}, 0, _returns_text),
                TrialJob(2, {"x": 2.0}, 0, "tests.execution.test_ray:_objective"),
                TrialJob(3, {}, 0, "no_such_module_xyz:f"),
            ],
        )
    assert out[0].state is OutcomeState.FAILED and out[0].reason == "ValueError: bad input"
    assert "Traceback" in out[0].traceback
    assert out[1].reason == "objective returned str 'high', expected a float"
    assert out[2].state is OutcomeState.COMPLETE and out[2].value == 20.0
    assert out[3].reason.startswith("ConfigError: cannot import module 'no_such_module_xyz'")


@pytest.mark.timeout(120)
def test_objectives_that_cannot_reach_the_worker(ray_cluster, tmp_path, monkeypatch):
    # A module importable in the driver only: the worker cannot unpickle the objective.
    (tmp_path / "driver_only_mod.py").write_text("def objective(config, trial):\n    return 1.0\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from driver_only_mod import objective

    lock = threading.Lock()
    with RayExecutor() as ex:
        ex.start(Recorder())
        with pytest.raises(
            ConfigError, match=r"trial 1 \(objective .*cannot be sent to a Ray worker"
        ):
            ex.submit(TrialJob(1, {"lock": lock}, 0, _objective))
        assert ex.n_running == 0
        scale = 3.0  # a closure travels by value (cloudpickle)
        out = run_all(ex, [TrialJob(0, {}, 0, objective), TrialJob(2, {}, 0, lambda c, t: scale)])
    assert out[0].state is OutcomeState.FAILED
    assert (
        out[0].reason
        == "cannot load the trial in a Ray worker: ModuleNotFoundError: No module named 'driver_only_mod'"
    )
    assert out[2].state is OutcomeState.COMPLETE and out[2].value == 3.0


@pytest.mark.timeout(120)
def test_a_crashing_worker_fails_only_its_trial(ray_cluster):
    rec = Recorder()
    with RayExecutor() as ex:
        ex.start(rec)
        out = run_all(ex, [TrialJob(0, {}, 0, _crash), TrialJob(1, {"x": 1.0}, 0, _objective)])
        after = run_all(ex, [TrialJob(2, {"x": 3.0}, 0, _objective)])  # the worker is replaced
    assert out[0].state is OutcomeState.FAILED
    assert out[0].reason.startswith(
        "Ray worker died: WorkerCrashedError: The worker died unexpectedly"
    )
    assert out[0].kind is FailureKind.WORKER_DIED
    assert rec.of(0) == [(0, 0, 1.0)]
    assert out[1].state is OutcomeState.COMPLETE and out[1].value == 10.0
    assert after[2].state is OutcomeState.COMPLETE and after[2].value == 30.0


@pytest.mark.timeout(120)
def test_timeout_kills_the_task(ray_cluster, tmp_path):
    pid_file = tmp_path / "pid"
    with RayExecutor() as ex:
        ex.start(Recorder())
        # The clock runs from submission, a Ray worker's start included: 6 s, not less.
        sleeper = TrialJob(0, {"pid_file": str(pid_file)}, 0, _sleep, timeout_s=6.0)
        out = run_all(ex, [sleeper, TrialJob(1, {"x": 1.0}, 0, _objective)])
        # Both CPUs are free again: two more trials run side by side.
        after = run_all(ex, [TrialJob(n, {"x": 1.0}, 0, _objective) for n in (2, 3)])
    assert out[0].state is OutcomeState.FAILED and out[0].reason == "timed out after 6.0 s"
    assert out[0].kind is FailureKind.TIMEOUT
    assert out[1].state is OutcomeState.COMPLETE
    assert _process_gone(int(pid_file.read_text()))
    assert [after[n].state for n in (2, 3)] == [OutcomeState.COMPLETE] * 2


@pytest.mark.timeout(120)
def test_shutdown_interrupts_running_trials_and_keeps_a_borrowed_ray(ray_cluster, tmp_path):
    pid_file = tmp_path / "pid"
    ex = RayExecutor()
    ex.start(Recorder())
    ex.submit(TrialJob(7, {"pid_file": str(pid_file)}, 0, _sleep))
    while not pid_file.exists() or not pid_file.read_text():
        assert ex.wait(timeout_s=0.1) == []  # the wait timeout returns, empty
    (interrupted,) = ex.shutdown()
    assert (interrupted.number, interrupted.state, interrupted.reason, interrupted.kind) == (
        7,
        OutcomeState.FAILED,
        "interrupted",
        FailureKind.INTERRUPTED,
    )
    assert ex.n_running == 0 and ex.shutdown() == []
    assert _process_gone(int(pid_file.read_text()))
    assert ray.is_initialized()  # the executor did not start Ray, so it leaves it running


@pytest.mark.parametrize(
    ("kwargs", "capacity"),
    [
        ({}, 2),
        ({"num_cpus_per_trial": 2}, 1),
        ({"num_cpus_per_trial": 0.5}, 4),
        ({"max_concurrent": 3}, 3),
    ],
)
def test_capacity_follows_the_cluster(ray_cluster, kwargs, capacity):
    assert RayExecutor(**kwargs).capacity == capacity


def test_a_gpu_request_on_a_cluster_without_gpus_is_refused(ray_cluster):
    ex = RayExecutor(num_gpus_per_trial=1)
    msg = "not even one trial fits the Ray cluster (2 CPUs, 0 GPUs) with num_cpus_per_trial=1 and num_gpus_per_trial=1"
    with pytest.raises(ConfigError, match=re.escape(msg)):
        ex.start(Recorder())


@pytest.mark.parametrize(
    ("kwargs", "msg"),
    [
        ({"num_cpus_per_trial": 0}, "num_cpus_per_trial must be a finite number > 0, got 0."),
        ({"num_gpus_per_trial": -1}, "num_gpus_per_trial must be a finite number >= 0, got -1."),
        ({"num_gpus_per_trial": "1"}, "num_gpus_per_trial must be a finite number >= 0, got '1'."),
        (
            {"max_concurrent": 0},
            "max_concurrent must be an int >= 1 or None, got 0; None for what the cluster holds.",
        ),
    ],
)
def test_bad_arguments_are_named(kwargs, msg):
    with pytest.raises(ConfigError, match=re.escape(f"RayExecutor: {msg}")):
        RayExecutor(**kwargs)


def test_submit_before_start_is_an_error():
    with pytest.raises(HptuneError, match=re.escape("call start(on_report) first")):
        RayExecutor().submit(TrialJob(0, {}, 0, _objective))


def test_missing_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(
        HptuneError, match=re.escape("executor='ray' needs Ray: pip install 'hptune[ray]'")
    ):
        RayExecutor().start(Recorder())


def test_importing_hptune_does_not_import_ray():
    code = "import sys, hptune, hptune.execution.ray_executor; print('ray' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_an_executor_that_starts_ray_shuts_it_down(tmp_path):
    # In a fresh process: this module's own Ray is already initialised in this one.
    temp_dir = tempfile.mkdtemp(prefix="hptune-ray-")
    code = textwrap.dedent(
        f"""
        import ray
        from hptune.exceptions import ConfigError
        from hptune.execution import TrialJob
        from hptune.execution.ray_executor import RayExecutor

        init_kwargs = dict(num_cpus=1, include_dashboard=False,
                           object_store_memory=100 * 1024**2, _temp_dir={temp_dir!r})
        try:  # refused in start(): the Ray it started must not be left running
            RayExecutor(address="local", num_gpus_per_trial=1, init_kwargs=init_kwargs).start(None)
        except ConfigError:
            print("refused", ray.is_initialized())
        ex = RayExecutor(address="local", init_kwargs=init_kwargs)
        ex.start(lambda number, step, value: False)
        ex.submit(TrialJob(0, {{}}, 0, lambda config, trial: 1.5))
        (outcome,) = ex.wait()
        ex.shutdown()
        print(outcome.state.value, outcome.value, ray.is_initialized())
        """
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env={**os.environ, **RAY_ENV},
            timeout=120,
        )
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-5:] == ["refused", "False", "complete", "1.5", "False"]
