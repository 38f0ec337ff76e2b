"""ProcessExecutor with real worker processes (spawned, importing torch) and real crashes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from hptune.exceptions import ConfigError, HptuneError
from hptune.execution import FailureKind, InlineExecutor, OutcomeState, TrialJob
from hptune.execution._plan import available_cpus, plan_workers, visible_gpus
from hptune.execution.process import ProcessExecutor
from tests.execution import objectives as obj

REPO = Path(__file__).resolve().parents[2]


# -- helpers --------------------------------------------------------------------------------


class Recorder:
    """The driver's ``on_report``: records reports, prunes ``number`` at ``prune_at[number]``."""

    def __init__(self) -> None:
        self.reports: list[tuple[int, int, float]] = []
        self.prune_at: dict[int, int] = {}

    def __call__(self, number: int, step: int, value: float) -> bool:
        self.reports.append((number, step, value))
        return self.prune_at.get(number) == step

    def of(self, number: int) -> list[tuple[int, float]]:
        return [(s, v) for n, s, v in self.reports if n == number]


def run_all(ex: ProcessExecutor, jobs: list[TrialJob]) -> dict:
    """Run ``jobs`` keeping every worker busy; outcomes by trial number."""
    pending, outcomes = list(jobs), {}
    while pending or ex.n_running:
        while pending and ex.n_running < ex.capacity:
            ex.submit(pending.pop(0))
        for outcome in ex.wait(timeout_s=60):
            outcomes[outcome.number] = outcome
    return outcomes


def children() -> set[int]:
    """Live child processes of this process, but multiprocessing's resource tracker."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"resource_tracker" not in cmdline:
            found.add(int(entry))
    return found


def gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}")


def pids(ex: ProcessExecutor) -> list[int]:
    return [w.pid for w in ex.workers]


def job(number: int, fn, timeout_s=None, **config) -> TrialJob:
    return TrialJob(number, config, number, fn, timeout_s=timeout_s)


def _defined_in_test_module(config, trial):
    return 42.0


# -- the plan (pure) --------------------------------------------------------------------------


def test_plan_one_worker_per_gpu_pinned_and_cores_split():
    slots = plan_workers(None, ["0", "1"], cpu_count=16)
    assert [s.device for s in slots] == ["cuda:0", "cuda:1"]
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["0", "1"]
    assert [s.threads for s in slots] == [8, 8]
    assert slots[0].env["OMP_NUM_THREADS"] == slots[0].env["MKL_NUM_THREADS"] == "8"


def test_plan_trials_per_device_spreads_over_gpus_first():
    slots = plan_workers(None, ["2", "5"], cpu_count=16, trials_per_device=2)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["2", "5", "2", "5"]
    assert [s.index for s in slots] == [0, 1, 2, 3]
    assert {s.threads for s in slots} == {4}
    assert len(plan_workers(3, ["2", "5"], cpu_count=16, trials_per_device=2)) == 3


def test_plan_cpu_splits_cores_and_hides_gpus_only_when_asked():
    slots = plan_workers(2, [], cpu_count=8)
    assert [s.threads for s in slots] == [4, 4] and "CUDA_VISIBLE_DEVICES" not in slots[0].env
    assert plan_workers(3, [], cpu_count=8)[0].threads == 2  # 8 // 3
    assert plan_workers(4, [], cpu_count=2)[0].threads == 1  # never 0
    assert plan_workers(2, [], cpu_count=8, threads_per_worker=3)[1].env["OMP_NUM_THREADS"] == "3"
    assert plan_workers(1, [], cpu_count=8, hide_gpus=True)[0].env["CUDA_VISIBLE_DEVICES"] == ""
    assert [s.device for s in plan_workers(None, [], cpu_count=6)] == ["cpu"] * 6
    assert len(plan_workers(None, [], cpu_count=6, threads_per_worker=2)) == 3


def test_plan_packs_more_workers_than_gpus_and_splits_the_shared_memory():
    # workers: 2 on a one-GPU machine: both on GPU 0, each with 45% of its memory.
    slots = plan_workers(2, ["0"], cpu_count=16)
    assert [(s.device, s.memory_fraction) for s in slots] == [("cuda:0", 0.45)] * 2
    # Three on two GPUs: GPU 2 takes two (splitting 90%), GPU 5 keeps all of its own.
    slots = plan_workers(3, ["2", "5"], cpu_count=16)
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in slots] == ["2", "5", "2"]
    assert [s.memory_fraction for s in slots] == [0.45, None, 0.45]
    assert [s.memory_fraction for s in plan_workers(None, ["0", "1"], cpu_count=8)] == [None] * 2
    assert plan_workers(4, [], cpu_count=8)[0].memory_fraction is None  # CPU workers


def test_plan_rejects_bad_arguments():
    message = (
        "n_workers=3 exceeds 2 GPU(s) x trials_per_device=1; raise trials_per_device to 2, "
        "or leave it unset to pack as many trials per GPU as the workers need."
    )
    with pytest.raises(ConfigError, match=re.escape(message)):
        plan_workers(3, ["0", "1"], cpu_count=8, trials_per_device=1)
    with pytest.raises(
        ConfigError, match=re.escape("n_workers must be an int >= 1, got 0; or None")
    ):
        plan_workers(0, [], cpu_count=8)
    with pytest.raises(ConfigError, match=re.escape("trials_per_device must be an int >= 1")):
        plan_workers(None, ["0"], cpu_count=8, trials_per_device=True)


def test_visible_gpus_ids_come_from_cuda_visible_devices(monkeypatch):
    import torch

    assert visible_gpus() == [] or torch.cuda.is_available()  # this CI machine has no GPU
    # A fake GPU count (this machine has none): ids follow the driver's own restriction.
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3, 7")
    assert visible_gpus() == ["3", "7"]
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert visible_gpus() == ["0", "1"]


# -- arguments and objectives checked in the driver (no process started) -----------------


def test_constructor_rejects_bad_arguments():
    with pytest.raises(
        ConfigError,
        match=re.escape(
            "ProcessExecutor: start_method must be one of 'spawn', 'forkserver', got 'fork'; "
            "'fork' is unsafe"
        ),
    ):
        ProcessExecutor(1, start_method="fork")
    with pytest.raises(
        ConfigError,
        match=re.escape("trial_timeout_s must be a finite number > 0 or None, got 0; seconds"),
    ):
        ProcessExecutor(1, trial_timeout_s=0)
    with pytest.raises(ConfigError, match=re.escape("devices must be 'auto', 'cpu' or a list")):
        ProcessExecutor(1, devices="gpu")
    with pytest.raises(
        ConfigError, match=re.escape("worker_env must map str to str; fix the entries {'A': 1}")
    ):
        ProcessExecutor(1, devices="cpu", worker_env={"A": 1})
    assert ProcessExecutor(None, devices=[0, 1], trials_per_device=2).capacity == 4
    assert ProcessExecutor(3, devices=[0]).capacity == 3  # packed: three on one GPU


def test_unpicklable_objective_is_a_clear_error_at_submit():
    ex = ProcessExecutor(2, devices="cpu")
    msg = (
        "objective test_unpicklable_objective_is_a_clear_error_at_submit.<locals>.<lambda> "
        "cannot be sent to a worker process: define it at module top level or pass "
        "'package.module:function'"
    )
    with pytest.raises(ConfigError, match=re.escape(msg)):
        ex.submit(TrialJob(0, {}, 0, lambda config, trial: 1.0))

    def local(config, trial):
        return 1.0

    with pytest.raises(
        ConfigError,
        match=re.escape(
            "objective test_unpicklable_objective_is_a_clear_error_at_submit.<locals>.local cannot"
        ),
    ):
        ex.submit(TrialJob(0, {}, 0, local))
    with pytest.raises(ConfigError, match=re.escape("trial 3: config {'f': <function")):
        ex.submit(TrialJob(3, {"f": lambda: 0}, 0, obj.double))
    with pytest.raises(HptuneError, match=re.escape("submit() needs start() first")):
        ex.submit(TrialJob(0, {"x": 1}, 0, obj.double))
    assert ex.workers == [] and ex.shutdown() == []


# -- one pool of 2 real workers shared by the checks below ------------------------------------


@pytest.fixture(scope="module")
def pool():
    before = children()
    recorder = Recorder()
    ex = ProcessExecutor(2, devices="cpu", worker_env={"HPTUNE_TEST_ENV": "7.5"})
    ex.start(recorder)
    ex.recorder = recorder
    yield ex
    all_pids = ex.seen_pids if hasattr(ex, "seen_pids") else set()
    all_pids |= set(pids(ex))
    assert ex.shutdown() == []
    assert ex.workers == [] and ex.n_running == 0
    assert all(gone(pid) for pid in all_pids)  # reaped: not even zombies
    assert children() <= before


def remember(ex: ProcessExecutor) -> list[int]:
    current = pids(ex)
    ex.seen_pids = getattr(ex, "seen_pids", set()) | set(current)
    return current


def test_workers_ready_with_pid_threads_device(pool):
    infos = pool.workers
    assert [w.index for w in infos] == [0, 1] and all(w.ready for w in infos)
    assert {w.device for w in infos} == {"cpu"} and all(w.pid for w in infos)
    assert {w.threads for w in infos} == {max(1, available_cpus() // 2)}
    assert pool.capacity == 2 and pool.n_running == 0
    assert pool.wait(timeout_s=0) == []


def test_trials_complete_and_workers_are_reused(pool):
    before = remember(pool)
    out = run_all(pool, [job(n, obj.double, x=n) for n in range(4)])
    assert {n: (o.state, o.value) for n, o in out.items()} == {
        n: (OutcomeState.COMPLETE, 2.0 * n) for n in range(4)
    }
    out = run_all(
        pool, [job(10 + n, obj.pid) for n in range(4)] + [job(20 + n, obj.calls) for n in range(6)]
    )
    assert {out[10 + n].value for n in range(4)} <= set(map(float, before))
    # A module-level counter keeps counting per worker: same interpreter, module (and torch,
    # which it imports) imported once per worker, not per trial.
    by_worker: dict[str, list[float]] = {}
    for n in range(20, 26):
        by_worker.setdefault(out[n].worker, []).append(out[n].value)
    for worker, values in by_worker.items():
        assert values == [float(i) for i in range(1, len(values) + 1)], worker
    assert pids(pool) == before
    assert sum(w.trials_run for w in pool.workers) >= 14


def test_threads_env_and_hidden_gpus_in_workers(pool):
    threads = float(max(1, available_cpus() // 2))
    out = run_all(
        pool,
        [
            job(30, obj.torch_threads),
            job(31, obj.env_number, var="OMP_NUM_THREADS"),
            job(32, obj.env_number, var="HPTUNE_TEST_ENV"),
            job(33, obj.visible_devices),
        ],
    )
    assert [out[n].value for n in (30, 31, 32, 33)] == [threads, threads, 7.5, 1.0]


def test_reports_and_pruning_across_processes(pool):
    before = remember(pool)
    pool.recorder.prune_at[41] = 2
    out = run_all(pool, [job(40, obj.reporting, x=3), job(41, obj.reporting, x=3)])
    assert out[40].state is OutcomeState.COMPLETE and out[40].value == 3.0
    assert out[40].last_step == 4
    assert pool.recorder.of(40) == [(s, 3.0 * s) for s in range(5)]
    assert out[41].state is OutcomeState.PRUNED and out[41].last_step == 2
    # The worker blocked in trial.report until the answer: nothing after step 2 was sent.
    assert pool.recorder.of(41) == [(0, 0.0), (1, 3.0), (2, 6.0)]
    out = run_all(pool, [job(42, obj.pid), job(43, obj.pid)])
    assert pids(pool) == before and {out[42].value, out[43].value} <= set(map(float, before))


@pytest.mark.slow  # the first optimizer step imports torch._dynamo: seconds
def test_real_training_matches_inline(pool):
    (proc,) = run_all(pool, [job(50, obj.train_tiny, lr=0.1)]).values()
    inline = InlineExecutor()
    inline.start(lambda *a: False)
    inline.submit(job(50, obj.train_tiny, lr=0.1))
    (ref,) = inline.wait()
    assert proc.state is ref.state is OutcomeState.COMPLETE
    assert proc.value == pytest.approx(ref.value, rel=1e-5)
    assert pool.recorder.of(50)[-1][0] == 2 and proc.value < 1e-3


def test_objective_strings_and_module_functions_import_in_workers(pool):
    out = run_all(
        pool,
        [
            job(60, "tests.execution.objectives:double", x=4),
            job(61, "no_such_module_xyz:f"),
            job(62, _defined_in_test_module),
        ],
    )
    assert out[60].value == 8.0 and out[62].value == 42.0
    assert out[61].state is OutcomeState.FAILED
    assert out[61].reason.startswith("ConfigError: cannot import module 'no_such_module_xyz'")


def test_unpicklable_trial_attrs_fail_the_trial_not_the_worker(pool):
    before = remember(pool)
    (out,) = run_all(pool, [job(70, obj.unpicklable_attr)]).values()
    assert out.state is OutcomeState.FAILED
    assert out.reason == (
        "trial attributes cannot be sent to the driver: TypeError: cannot pickle '_thread.lock' object"
    )
    assert out.kind is FailureKind.ERROR
    assert pids(pool) == before


def test_busy_submit_wait_timeout_and_sigint_ignored(pool):
    before = remember(pool)
    for pid in before:  # Ctrl-C in a terminal reaches every worker too
        os.kill(pid, signal.SIGINT)
    pool.submit(job(80, obj.sleep, seconds=1.5))
    pool.submit(job(81, obj.sleep, seconds=1.5))
    with pytest.raises(HptuneError, match=re.escape("all 2 workers are busy; call wait()")):
        pool.submit(job(82, obj.double, x=1))
    assert pool.wait(timeout_s=0.05) == [] and pool.n_running == 2
    out = run_all(pool, [])
    assert {o.state for o in out.values()} == {OutcomeState.COMPLETE}
    assert pids(pool) == before


def test_a_keyboard_interrupt_raised_by_the_objective_is_its_trials_error(pool, capfd):
    """Workers ignore SIGINT, so the objective's own code raised it: an ordinary error of
    that trial (a resume would retry a dead worker's), and no worker traceback."""
    before = remember(pool)
    out = run_all(pool, [job(70, obj.keyboard_interrupt), job(71, obj.double, x=2)])
    assert out[70].state == OutcomeState.FAILED and out[70].kind == FailureKind.ERROR
    assert out[70].reason.startswith("KeyboardInterrupt raised by the objective")
    assert out[71].value == 4.0 and remember(pool) == before  # the worker lives on
    assert "Traceback" not in capfd.readouterr().err


@pytest.mark.slow
def test_crashes_and_timeouts_fail_only_their_trial_and_workers_are_replaced(pool):
    before = remember(pool)
    crashes = [
        job(90, obj.sigkill),
        job(91, obj.segfault),
        job(92, obj.exit_3),
        job(93, obj.out_of_memory),
        job(94, obj.sleep, timeout_s=2.0, seconds=60),
    ]
    out = run_all(pool, crashes + [job(95 + n, obj.double, x=n) for n in range(3)])
    assert {n: out[n].reason for n in range(90, 95)} == {
        90: "worker killed by signal 9 (SIGKILL)",
        91: "worker killed by signal 11 (SIGSEGV)",
        92: "worker exited with code 3",
        93: "MemoryError",
        94: "timed out after 2.0 s",
    }
    assert {n: out[n].kind for n in range(90, 95)} == {
        90: FailureKind.WORKER_DIED,
        91: FailureKind.WORKER_DIED,
        92: FailureKind.WORKER_DIED,
        93: FailureKind.OUT_OF_MEMORY,
        94: FailureKind.TIMEOUT,
    }
    assert {out[n].state for n in range(90, 95)} == {OutcomeState.FAILED}
    assert out[90].last_step == 0 and out[94].last_step == 0  # reported step 0, then died
    assert out[94].duration_s >= 2.0
    assert "MemoryError" in out[93].traceback  # an ordinary failure, from run_job
    assert [out[95 + n].value for n in range(3)] == [0.0, 2.0, 4.0]
    after = remember(pool)
    assert len(after) == 2 and not set(after) & set(before)  # 90 and 91 hit both originals
    dead = {int(out[n].worker.split("pid ")[1].rstrip(")")) for n in (90, 91, 92, 94)}
    assert len(dead) == 4 and all(gone(pid) for pid in dead)  # reaped, not zombies
    out = run_all(pool, [job(98, obj.pid), job(99, obj.pid)])
    assert {out[98].value, out[99].value} == set(map(float, after))  # fresh workers serve


# -- lifecycle: executor default timeout, shutdown, start failure, Ctrl-C -------------------


@pytest.mark.slow
def test_default_timeout_then_shutdown_interrupts_and_reaps():
    before = children()
    ex = ProcessExecutor(1, devices="cpu", trial_timeout_s=1.5)
    ex.start(Recorder())
    first = pids(ex)
    (out,) = run_all(ex, [job(0, obj.sleep)]).values()
    assert out.reason == "timed out after 1.5 s" and out.kind is FailureKind.TIMEOUT
    ex.submit(job(1, obj.sleep, seconds=60))
    second = pids(ex)
    assert second != first and ex.n_running == 1
    (interrupted,) = ex.shutdown()
    assert interrupted.number == 1 and interrupted.state is OutcomeState.FAILED
    assert interrupted.reason == "interrupted" and interrupted.kind is FailureKind.INTERRUPTED
    assert ex.shutdown() == [] and ex.n_running == 0 and ex.workers == []
    assert all(gone(pid) for pid in first + second) and children() <= before
    with pytest.raises(HptuneError, match=re.escape("needs start() first and no shutdown()")):
        ex.submit(job(2, obj.double, x=1))


def _run_driver(script: str, tmp_path: Path, **kw) -> subprocess.Popen:
    path = tmp_path / "driver.py"
    path.write_text(textwrap.dedent(script))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    return subprocess.Popen(
        [sys.executable, str(path)],
        cwd=tmp_path,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kw,
    )


@pytest.mark.slow
def test_worker_that_cannot_start_is_an_error_not_a_crash_loop(tmp_path):
    # No `if __name__ == "__main__":` guard: spawn re-imports this script in the worker,
    # which then fails while starting.
    proc = _run_driver(
        """
        from hptune.execution.process import ProcessExecutor
        ProcessExecutor(1, devices="cpu").start(lambda *a: False)
        """,
        tmp_path,
    )
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "HptuneError: worker 0 (pid" in err
    assert "died while starting, 3 times in a row (worker exited with code 1)" in err


@pytest.mark.slow
def test_ctrl_c_to_the_process_group_stops_cleanly(tmp_path):
    proc = _run_driver(
        """
        import sys
        from hptune.execution import TrialJob
        from hptune.execution.process import ProcessExecutor

        if __name__ == "__main__":
            ex = ProcessExecutor(2, devices="cpu")
            ex.start(lambda *a: False)
            for n in range(2):
                ex.submit(TrialJob(n, {"seconds": 60}, 0, "tests.execution.objectives:sleep"))
            print(*[w.pid for w in ex.workers], flush=True)
            try:
                ex.wait()
            except KeyboardInterrupt:
                print(*sorted(o.reason for o in ex.shutdown()), flush=True)
        """,
        tmp_path,
        start_new_session=True,
    )
    worker_pids = [int(p) for p in proc.stdout.readline().split()]
    time.sleep(0.5)  # let both trials start sleeping (not a timing assertion)
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "interrupted interrupted"
    assert "KeyboardInterrupt" not in err and "Traceback" not in err
    assert len(worker_pids) == 2 and all(gone(pid) for pid in worker_pids)


@pytest.mark.slow
def test_workers_end_when_the_driver_is_killed(tmp_path):
    proc = _run_driver(
        """
        from hptune.execution import TrialJob
        from hptune.execution.process import ProcessExecutor

        if __name__ == "__main__":
            ex = ProcessExecutor(1, devices="cpu")
            ex.start(lambda *a: False)
            ex.submit(TrialJob(0, {"seconds": 600}, 0, "tests.execution.objectives:sleep"))
            print(ex.workers[0].pid, flush=True)
            ex.wait()
        """,
        tmp_path,
    )
    worker = int(proc.stdout.readline())
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 30  # a bound for the poll, not a timing assertion
    while not _dead_or_zombie(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _dead_or_zombie(worker)


@pytest.mark.parametrize("objective", ["double", "reporting"])
def test_a_worker_whose_driver_is_gone_ends_quietly_when_it_sends(objective):
    # The driver (killed) closed its end after handing out a trial: the worker's next send,
    # a report or the outcome, must end it with exit code 0, not a BrokenPipeError
    # traceback on the user's terminal.
    import multiprocessing
    import pickle

    from hptune.execution import _worker

    driver, worker = multiprocessing.Pipe()
    job = TrialJob(0, {"x": 1.0}, 0, f"tests.execution.objectives:{objective}")
    driver.send((_worker.RUN, 0, pickle.dumps(job)))
    driver.close()
    with pytest.raises(SystemExit) as ended:
        _worker._serve(worker, "w")
    assert ended.value.code == 0


def _dead_or_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # reparented: its reaper is not us


@pytest.mark.slow
def test_a_worker_that_dies_while_starting_is_started_again(tmp_path, monkeypatch):
    from hptune.execution import process

    monkeypatch.setattr(process, "worker_main", obj.flaky_worker_main)
    flaky = tmp_path / "deaths"
    flaky.write_text("2")  # the first two starts die, the third works
    ex = ProcessExecutor(1, devices="cpu", worker_env={"HPTUNE_TEST_FLAKY": str(flaky)})
    ex.start(Recorder())
    try:
        assert flaky.read_text() == "0"
        (out,) = run_all(ex, [job(0, obj.double, x=2)]).values()
        assert out.value == 4.0
        # A trial kills its worker; the replacement dies while starting, and is replaced
        # again: the study goes on, and the next trial runs.
        flaky.write_text("1")
        (died,) = run_all(ex, [job(1, obj.sigkill)]).values()
        assert died.kind is FailureKind.WORKER_DIED
        (out,) = run_all(ex, [job(2, obj.double, x=3)]).values()
        assert out.value == 6.0 and flaky.read_text() == "0"
    finally:
        ex.shutdown()


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_workers_are_pinned_one_gpu_each_and_packed_workers_split_its_memory():
    gpus = visible_gpus()
    n_workers = len(gpus) + 1  # one more than GPUs: the first GPU takes two
    with ProcessExecutor(n_workers) as ex:
        ex.start(Recorder())
        jobs = [job(i, obj.cuda_facts, hold_s=2.0) for i in range(n_workers)]
        out = run_all(ex, jobs)
        devices = [w.device for w in ex.workers]
    assert devices == [f"cuda:{g}" for g in gpus] + [f"cuda:{gpus[0]}"]
    facts = [out[number].attrs for number in range(n_workers)]
    assert sorted(f["visible"] for f in facts) == sorted([*gpus, gpus[0]])
    assert {f["device_count"] for f in facts} == {1}  # each sees its own GPU alone
    assert {out[number].value for number in range(n_workers)} == {0.0}  # as cuda:0
    for f in facts:
        if f["fraction"] is not None:  # torch versions that can report it
            assert f["fraction"] == pytest.approx(0.45 if f["visible"] == gpus[0] else 1.0)
