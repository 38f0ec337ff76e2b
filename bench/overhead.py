"""Orchestration overhead of hptune's driver, side by side with Optuna's own loop.

Measures, on this machine:

* seconds per trial of a no-op objective over N trials: hptune inline, hptune process pool
  (2 workers) and ``optuna.Study.optimize``, each on a fresh SQLite file and on PostgreSQL
  (a throwaway server from ``tests/_pg.py``; fewer trials there);
* worker start-up latency of ``ProcessExecutor`` (spawn + import torch);
* speed-up of 2 workers over 1 on CPU-bound trials.

Run from the repository root: ``python -m bench.overhead [--trials 1000] [--pg-trials 300]``.
Results go to stdout as a Markdown table (copy it into ``bench/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

import optuna

from hptune.execution.process import ProcessExecutor
from hptune.space import uniform
from hptune.study import create_study

ROOT = Path(__file__).resolve().parents[1]
SPACE = {"x": uniform(0.0, 1.0)}


def noop(config, trial):
    return config["x"]


def spin(config, trial):
    """About 0.3 s of pure-Python CPU work (holds its process's GIL throughout)."""
    total = 0
    for i in range(3_000_000):
        total += i % 7
    return config["x"] + total * 0.0


def hptune_per_trial(url: str, n: int, n_workers: int) -> float:
    study = create_study(
        SPACE, storage=url, strategy="random", seed=0, name=f"h{n_workers}", direction="maximize"
    )
    objective = noop if n_workers == 1 else "bench.overhead:noop"
    start = time.perf_counter()
    study.optimize(
        objective,
        n_trials=n,
        n_workers=n_workers,
        executor_options={"devices": "cpu"} if n_workers > 1 else None,
    )
    return (time.perf_counter() - start) / n


def optuna_per_trial(url: str, n: int) -> float:
    study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(seed=0))
    start = time.perf_counter()
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=n)
    return (time.perf_counter() - start) / n


def worker_startup_s(n_workers: int) -> float:
    ex = ProcessExecutor(n_workers, devices="cpu")
    start = time.perf_counter()
    ex.start(lambda number, step, value: False)
    elapsed = time.perf_counter() - start
    ex.shutdown()
    return elapsed


def cpu_bound_s(n_workers: int, n: int = 16) -> float:
    study = create_study(SPACE, storage=None, strategy="random", seed=0, direction="maximize")
    start = time.perf_counter()
    study.optimize(
        "bench.overhead:spin",
        n_trials=n,
        executor="process",
        n_workers=n_workers,
        executor_options={"devices": "cpu"},
    )
    return time.perf_counter() - start


def growth_rows(n: int) -> list[str]:
    """ms per trial in each quarter of an ``n``-trial run on one SQLite study: the driver
    re-reads trials (budget counts, samplers), so a cost that grows with the study shows."""
    rows = ["| loop | " + " | ".join(f"trials {i * n // 4}-{(i + 1) * n // 4}" for i in range(4)) + " |",
            "|---|---|---|---|---|"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, make) in enumerate(
            (
                ("hptune inline", lambda url: _hptune_quarter(url)),
                ("hptune inline, trial budget set", lambda url: _hptune_quarter(url, budget=n)),
                ("optuna Study.optimize", lambda url: _optuna_quarter(url)),
            )
        ):
            step = make(f"sqlite:///{tmp}/g{i}.db")
            cells = [f"{step(n // 4) * 1e3:.1f}" for _ in range(4)]
            rows.append(f"| {label} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    return rows


def _hptune_quarter(url: str, budget: int | None = None):
    # With a budget (as the CLI always sets) the driver counts the study's trials per ask.
    study = create_study(
        SPACE, storage=url, strategy="random", seed=0, name="growth", direction="maximize"
    )

    def run(k: int) -> float:
        start = time.perf_counter()
        study.optimize(noop, n_trials=k, max_total_trials=budget)
        return (time.perf_counter() - start) / k

    return run


def _optuna_quarter(url: str):
    study = optuna.create_study(storage=url, sampler=optuna.samplers.RandomSampler(seed=0))

    def run(k: int) -> float:
        start = time.perf_counter()
        study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=k)
        return (time.perf_counter() - start) / k

    return run


def storage_rows(label: str, make_url, n: int) -> list[str]:
    rows = []
    for name, fn in (
        ("hptune inline", lambda u: hptune_per_trial(u, n, 1)),
        ("hptune process pool (2 workers)", lambda u: hptune_per_trial(u, n, 2)),
        ("optuna Study.optimize", lambda u: optuna_per_trial(u, n)),
    ):
        per = fn(make_url())
        rows.append(f"| {label} | {name} | {n} | {per * 1e3:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--pg-trials", type=int, default=300)
    parser.add_argument(
        "--growth",
        type=int,
        default=0,
        metavar="N",
        help="also: per-trial overhead on SQLite over N trials (e.g. 10000), in 4 quarters, "
        "hptune inline vs optuna: does the cost per trial grow with the study's size?",
    )
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("optuna").setLevel(logging.WARNING)
    print("| storage | loop | trials | ms per trial |\n|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(100))
        storage_rows("SQLite", lambda: f"sqlite:///{tmp}/b{next(counter)}.db", args.trials)
    sys.path.insert(0, str(ROOT))
    from tests import _pg

    bin_dir = _pg.find_bin_dir()
    if bin_dir is None:
        print("| PostgreSQL | skipped: server binaries not found | | |")
    else:
        server = _pg.start_server(bin_dir)
        try:
            counter = iter(range(100))
            storage_rows(
                "PostgreSQL", lambda: server.create_database(f"b{next(counter)}"), args.pg_trials
            )
        finally:
            server.stop()
    if args.growth:
        print(f"\nper-trial ms by quarter of a {args.growth}-trial SQLite study:", flush=True)
        growth_rows(args.growth)
    start_1, start_2 = worker_startup_s(1), worker_startup_s(2)
    print(
        f"\nworker start-up (spawn + import torch): 1 worker {start_1:.2f} s, "
        f"2 workers {start_2:.2f} s",
        flush=True,
    )
    one, two = cpu_bound_s(1), cpu_bound_s(2)
    # The pool's wall time includes starting its workers; the trials' own speed-up is the
    # wall time less the start-up measured just above.
    print(
        f"16 CPU-bound trials: 1 worker {one:.2f} s, 2 workers {two:.2f} s, speed-up "
        f"{one / two:.2f}x with start-up, {(one - start_1) / (two - start_2):.2f}x without",
        flush=True,
    )


if __name__ == "__main__":
    main()
