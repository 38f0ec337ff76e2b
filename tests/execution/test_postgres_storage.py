"""Smoke test of Optuna's RDB storage on a real PostgreSQL server (psycopg 3 driver).

Several drivers on several machines share one PostgreSQL study; here two OS processes
stand in for them and ask/tell trials on the same study at the same time.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import optuna
import pytest

N_TRIALS_PER_PROCESS = 15

# Each worker loads the study, waits for "go" on stdin (so both start asking together),
# runs its trials and prints the trial numbers it was given.
_WORKER = textwrap.dedent(
    """
    import sys
    import optuna

    url, name, n_trials, tag = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name=name, storage=url)
    print("ready", flush=True)
    sys.stdin.readline()
    numbers = []
    for _ in range(n_trials):
        trial = study.ask()
        x = trial.suggest_float("x", 0.0, 1.0)
        trial.set_user_attr("process", tag)
        study.tell(trial, x + tag)
        numbers.append(trial.number)
    print(" ".join(map(str, numbers)), flush=True)
    """
)


def _start_worker(url: str, name: str, tag: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WORKER, url, name, str(N_TRIALS_PER_PROCESS), str(tag)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        pytest.fail(f"worker {tag} did not start: {line!r} {proc.stderr.read()}")
    return proc


def _finish(proc: subprocess.Popen[str]) -> list[int]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return [int(n) for n in out.split()]


@pytest.mark.slow
def test_two_processes_share_one_postgres_study(postgres_url: str) -> None:
    name = "two-processes"
    optuna.create_study(study_name=name, storage=postgres_url, direction="minimize")
    workers = [_start_worker(postgres_url, name, tag) for tag in (0, 1)]
    for proc in workers:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    numbers = [_finish(proc) for proc in workers]

    total = 2 * N_TRIALS_PER_PROCESS
    assert sorted(numbers[0] + numbers[1]) == list(range(total))  # unique, none lost
    assert all(nums == sorted(nums) for nums in numbers)  # each process sees its own in order
    trials = optuna.load_study(study_name=name, storage=postgres_url).trials
    assert len(trials) == total
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    for tag, nums in enumerate(numbers):
        for number in nums:
            trial = trials[number]
            assert trial.user_attrs["process"] == tag
            assert trial.value == pytest.approx(trial.params["x"] + tag)


def test_postgres_db_url_is_a_fresh_empty_database(postgres_db_url: str) -> None:
    assert optuna.get_all_study_names(storage=postgres_db_url) == []
    study = optuna.create_study(study_name="fresh", storage=postgres_db_url)
    study.optimize(lambda trial: trial.suggest_float("x", -1.0, 1.0) ** 2, n_trials=3)
    reloaded = optuna.load_study(study_name="fresh", storage=postgres_db_url)
    assert [t.number for t in reloaded.trials] == [0, 1, 2]
    assert reloaded.best_value == min(t.value for t in study.trials)
