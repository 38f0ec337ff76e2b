"""``python -m bench search``: every method on every task, several seeds, equal epoch budgets.

Options:

* ``--replay``: evaluate on the cached tables (``bench/data/<task>-curves.json.gz``), seconds
  per run; default 20 seeds. Without it, configs are trained live (default 5 seeds).
* ``--quick``: replay only, 5 seeds, every task with a table: well under 15 minutes on 2
  cores. (Live mode costs minutes per method and seed even on digits-mlp.)
* Ray Tune methods (``ray-*``) start a Ray runtime per run (12-14 s per replay run here on
  2026-12-05; about a minute each in November). In replay they run every seed; live, and
  with ``--quick``, ``--slow-seeds`` seeds (default 5 live, 2 with ``--quick``).
* ``--lcbench``: the external benchmark instead: the LCBench surrogate
  (``bench/lcbench``) on its 26 development tasks (``lcbench-<OpenML id>``), 10 seeds,
  the methods of :data:`LCBENCH_METHODS`; regret tables (:mod:`bench.search.regret`).
  Ray Tune costs 15-40 s per run here (its start-up), so it runs all seeds unless told
  otherwise (``--slow-seeds``).
  DEHB needs ``pip install --no-deps dehb==0.1.2`` (see ``bench/search/peers_dehb.py``).
* ``--tasks``, ``--methods``, ``--seeds N``, ``--budget E`` (epochs per run; default
  ``20 x`` the max epochs of a trial, i.e. twenty full trainings), ``--workers`` (processes).

Each run's raw record (anytime curve, chosen config, its test accuracy) goes to
``bench/results/<mode>-<task>.json.gz`` (LCBench: all tasks in ``lcbench.json.gz``, curves
kept as their steps only); the tables and plots to ``bench/RESULTS.md`` and
``bench/results/<task>-anytime[-live].png`` (see :mod:`bench.search.report`). With
``--methods`` (or ``--tasks``), the new records replace those of the same method and task
and the others stay: add a method and run only it.

To add a method to LCBench: register it in ``bench.search.methods.METHODS`` (any
``method(evaluator, ledger, seed)`` that searches ``evaluator.space``), then
``python -m bench search --lcbench --methods <name>``; add it to :data:`LCBENCH_METHODS`
to make it part of the default run.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.search.protocol import Ledger
from bench.search.space import MAX_EPOCHS
from bench.search.table import Table, table_path

RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
TASKS = ("digits-mlp", "mnist1d-mlp", "mnist1d-cnn")
LCBENCH = "lcbench-"
#: LCBench's methods, in the table's order: hptune's default and its default before, then
#: the peers of issue 12.
LCBENCH_METHODS = (
    "hptune-default", "hptune-tpe-hyperband", "optuna-tpe", "optuna-tpe-hyperband",
    "optuna-random-asha", "ray-asha-defaults", "hyperopt-tpe", "dehb",
)  # fmt: skip
#: Methods added for LCBench; left out of the replay and live defaults, whose tables keep
#: their method set and cost (run them there with ``--methods``).
LCBENCH_ONLY = ("optuna-random-asha", "ray-asha-defaults", "dehb")
#: Methods gone from :mod:`bench.search.methods`, whose saved records (replay, live and
#: LCBench alike) the next run drops: ``hptune-multi-fidelity`` became ``hptune-default``
#: on 2026-12-05. A method only unavailable here (a peer whose package is not installed)
#: is not gone: its saved records stay.
RETIRED = ("hptune-multi-fidelity",)


def lcbench_tasks() -> list[str]:
    """The LCBench development tasks as task names (``lcbench-7593``, ...)."""
    from bench.lcbench import DEV_TASKS

    return [f"{LCBENCH}{t}" for t in DEV_TASKS]


_TABLES: dict[str, Table] = {}


def make_evaluator(task: str, replay: bool) -> Any:
    """The task's evaluator (``lcbench-<id>``: the surrogate's, whatever ``replay``); replay
    tables are loaded once per process."""
    from bench.search.evaluators import LCBenchEvaluator, LiveEvaluator, ReplayEvaluator

    if task.startswith(LCBENCH):
        return LCBenchEvaluator(int(task[len(LCBENCH) :]))
    if not replay:
        return LiveEvaluator(task, MAX_EPOCHS[task])
    if task not in _TABLES:
        _TABLES[task] = Table.load(table_path(task))
    return ReplayEvaluator(_TABLES[task])


def run_one(task: str, method: str, seed: int, replay: bool, budget: int | None) -> dict[str, Any]:
    """One method on one task with one seed; never raises (errors are recorded).
    ``budget`` None: twenty full trainings (20 x the evaluator's max epochs)."""
    import torch

    from bench.search.methods import get_method

    torch.set_num_threads(1)
    evaluator = make_evaluator(task, replay)
    budget = budget or 20 * evaluator.max_epochs
    ledger = Ledger(budget)
    start = time.perf_counter()
    record: dict[str, Any] = {"task": task, "method": method, "seed": seed, "budget": budget}
    try:
        chosen = get_method(method)(evaluator, ledger, seed)
        record["test_accuracy"] = evaluator.test_accuracy(chosen, seed) if chosen else None
        record["chosen"] = chosen
    except Exception as exc:  # one broken method must not lose the others' results
        record["error"] = f"{type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc()
    curve = steps(ledger.curve, ndigits=6) if task.startswith(LCBENCH) else ledger.curve
    record.update(spent=ledger.spent, curve=curve, seconds=time.perf_counter() - start)
    return record


def steps(
    curve: Sequence[tuple[int, float]], ndigits: int | None = None
) -> list[tuple[int, float]]:
    """The points of an anytime curve where the best changes: the same step function for
    :func:`bench.search.report.anytime`, a hundred points or so instead of one per epoch.
    ``ndigits``: round the values first (6 for accuracies as fractions: 1e-4 points, far
    below the tables' 0.01), which halves the size of a results file."""
    out: list[tuple[int, float]] = []
    for spent, best in curve:
        best = best if ndigits is None else round(best, ndigits)
        if not out or best != out[-1][1]:
            out.append((spent, best))
    return out


def _star(args: tuple) -> dict[str, Any]:
    return run_one(*args)


def is_slow(method: str) -> bool:
    """Methods whose runs cost about a minute of start-up each (Ray Tune)."""
    return method.startswith("ray-")


def run_all(
    tasks: Sequence[str], methods: Sequence[str], seeds: int, replay: bool,
    budget: int | None, n_workers: int, slow_seeds: int | None = None,
) -> dict[str, list[dict[str, Any]]]:  # fmt: skip
    """Every (task, method, seed) run, in ``n_workers`` processes; records per task."""
    jobs = [
        (task, method, seed, replay, budget)
        for task in tasks
        for method in methods
        for seed in range(min(seeds, slow_seeds or seeds) if is_slow(method) else seeds)
    ]
    # Slow runs first, so the pool is not left waiting on one of them at the end.
    jobs.sort(key=lambda job: not is_slow(job[1]))
    records: dict[str, list[dict[str, Any]]] = {task: [] for task in tasks}
    ctx = multiprocessing.get_context("spawn")
    start = time.perf_counter()
    with ctx.Pool(n_workers) as pool:
        for i, rec in enumerate(pool.imap_unordered(_star, jobs), start=1):
            records[rec["task"]].append(rec)
            status = rec.get("error", f"test {rec.get('test_accuracy')}")
            print(f"[{i}/{len(jobs)} {time.perf_counter() - start:.0f}s] {rec['task']} "
                  f"{rec['method']} seed {rec['seed']}: {rec['seconds']:.1f}s, {status}",
                  flush=True)  # fmt: skip
    return records


def merge_records(
    saved: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]],
    methods: Sequence[str], tasks: Sequence[str] = (),
) -> list[dict[str, Any]]:  # fmt: skip
    """``saved`` with the records of every (task, method) pair in ``new`` replaced by
    ``new``'s and those of :data:`RETIRED` methods dropped; in the order of ``tasks``, then
    of ``methods`` (a method or task in neither comes after, by name), then of seeds."""
    ran = {(r["task"], r["method"]) for r in new}
    kept = [r for r in saved if (r["task"], r["method"]) not in ran and r["method"] not in RETIRED]
    task_at = {t: i for i, t in enumerate(tasks)}
    method_at = {m: i for i, m in enumerate(methods)}
    return sorted(
        [*kept, *new],
        key=lambda r: (task_at.get(r["task"], len(task_at)), r["task"],
                       method_at.get(r["method"], len(method_at)), r["method"], r["seed"]),
    )  # fmt: skip


def _save_records(path: Path, command: str, records: list[dict[str, Any]]) -> None:
    save_json_gz(path, {"command": command, "records": records})


def save_json_gz(path: Path, data: Any) -> None:
    """``data`` as gzipped JSON; mtime=0, so identical data give identical bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(data).encode("utf-8"))


def load_json_gz(path: Path) -> dict[str, Any]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


def _parser() -> argparse.ArgumentParser:
    from bench.search.methods import METHODS

    p = argparse.ArgumentParser(prog="python -m bench search", description=__doc__)
    p.add_argument("--quick", action="store_true", help="replay only, 5 seeds")
    p.add_argument("--replay", action="store_true", help="replay cached curves (20 seeds)")
    p.add_argument(
        "--lcbench", action="store_true",
        help="the LCBench surrogate's 26 development tasks (10 seeds; regret tables)",
    )  # fmt: skip
    p.add_argument("--tasks", nargs="+", choices=[*TASKS, *lcbench_tasks()], default=None)
    p.add_argument(
        "--methods", nargs="+", choices=list(METHODS), default=None,
        help="run only these; their records replace theirs in the saved results, others stay",
    )  # fmt: skip
    p.add_argument("--seeds", type=int, default=None)
    p.add_argument("--slow-seeds", type=int, default=None, help="seeds of ray-* methods")
    p.add_argument("--budget", type=int, default=None, help="epochs per run")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument(
        "--report-only", action="store_true",
        help="re-render RESULTS.md and plots from bench/results/<mode>-<task>.json.gz",
    )  # fmt: skip
    p.add_argument(
        "--no-write", action="store_true",
        help="print only: leave RESULTS.md and bench/results (a trial run, an ablation)",
    )  # fmt: skip
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from bench.search import report
    from bench.search.methods import METHODS, UNAVAILABLE

    parser = _parser()
    args = parser.parse_args(argv)
    command = "python -m bench search " + " ".join(argv if argv is not None else sys.argv[1:])
    on_lcbench = [t for t in args.tasks or [] if t.startswith(LCBENCH)]
    if args.lcbench or on_lcbench:
        if not args.lcbench or len(on_lcbench) != len(args.tasks or []) or args.replay:
            parser.error("LCBench tasks run with --lcbench, alone (no --replay, no other task)")
        from bench.search.run_lcbench import main_lcbench

        return main_lcbench(args, command.strip())
    replay = args.replay or args.quick
    seeds = args.seeds or (5 if args.quick or not replay else 20)
    tasks = args.tasks or [t for t in TASKS if not replay or table_path(t).exists()]
    methods = args.methods or [m for m in METHODS if m not in LCBENCH_ONLY]
    mode = "replay" if replay else "live"
    if args.report_only:
        saved = {t: load_json_gz(RESULTS_DIR / f"{mode}-{t}.json.gz") for t in tasks}
        records = {t: d["records"] for t, d in saved.items()}
        commands = {t: d["command"] for t, d in saved.items()}
    else:
        slow_seeds = args.slow_seeds or (2 if args.quick else None if replay else 5)
        records = run_all(tasks, methods, seeds, replay, args.budget, args.workers, slow_seeds)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        commands = dict.fromkeys(records, command)
        for task, recs in records.items():
            path = RESULTS_DIR / f"{mode}-{task}.json.gz"
            saved = {"records": []}
            if args.methods and path.exists():
                # Re-measuring some methods: their new records replace their old ones, the
                # other methods' saved records stay, and the command records both runs.
                saved = load_json_gz(path)
                commands[task] = f"{saved['command'].strip()}; then {command.strip()}"
            records[task] = recs = merge_records(saved["records"], recs, list(METHODS))
            if not args.no_write:
                _save_records(path, commands[task], recs)
    blocks: dict[str, str] = {}
    for task, recs in records.items():
        blocks.update(
            report.render(
                {task: recs}, mode, commands[task].strip(), UNAVAILABLE, plots=not args.no_write
            )
        )
    print("\n\n".join(blocks.values()))
    if not args.no_write:
        report.write_section(blocks)
    return 0


if __name__ == "__main__":
    sys.exit(main())
