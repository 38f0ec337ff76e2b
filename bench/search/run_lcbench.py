"""``python -m bench search --lcbench``: the external benchmark, from runs to RESULTS.md.

Every (task, method, seed) run goes through :func:`bench.search.run.run_all` as the replay
runs do; the records of all tasks are kept in one file, ``bench/results/lcbench.json.gz``,
with the command, date and wall time of every invocation that wrote it. A new run replaces
the records of the (task, method) pairs it ran and keeps the rest, so adding a method is
``--methods <name>`` and nothing else is re-run. The section "LCBench (external)" of
``bench/RESULTS.md`` (between ``<!-- search:lcbench:... -->`` markers) is re-rendered from
the whole file each time; the hand-written reading below it has markers of its own and is
never touched.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import platform
import time
from collections.abc import Mapping, Sequence
from typing import Any

from bench.search.run import (
    LCBENCH_METHODS,
    RESULTS_DIR,
    lcbench_tasks,
    load_json_gz,
    merge_records,
    run_all,
    save_json_gz,
)

PATH = RESULTS_DIR / "lcbench.json.gz"
SEEDS = 10


def main_lcbench(args: argparse.Namespace, command: str) -> int:
    """Run (unless ``--report-only``), save, render; ``args`` as parsed by ``run._parser``."""
    import json

    from bench.lcbench.best_known import PATH as BEST_PATH
    from bench.search import regret, report
    from bench.search.methods import METHODS, UNAVAILABLE

    if args.report_only:
        saved = load_json_gz(PATH)
    else:
        tasks = args.tasks or lcbench_tasks()
        methods = args.methods or [m for m in LCBENCH_METHODS if m in METHODS]
        seeds = args.seeds or SEEDS
        start = time.perf_counter()
        by_task = run_all(tasks, methods, seeds, True, args.budget, args.workers,
                          args.slow_seeds or seeds)  # fmt: skip
        run = {
            "command": command,
            "date": datetime.date.today().isoformat(),
            "wall_seconds": round(time.perf_counter() - start),
            "runs": sum(len(r) for r in by_task.values()),
            "workers": args.workers,
        }
        new = [rec for recs in by_task.values() for rec in recs]
        saved = merge(load_json_gz(PATH) if PATH.exists() else None, new, run)
        if not args.no_write:  # a trial run (an ablation) is printed, not kept
            RESULTS_DIR.mkdir(parents=True, exist_ok=True)
            save_json_gz(PATH, saved)
    best_meta = json.loads(BEST_PATH.read_text(encoding="utf-8"))
    text = regret.render(saved["records"], best_meta, facts(saved["runs"]), UNAVAILABLE,
                         plots=not args.no_write)  # fmt: skip
    print(text)
    if not args.no_write:
        report.write_block("lcbench", text)
    return 0


def merge(
    saved: Mapping[str, Any] | None, new: Sequence[dict[str, Any]], run: dict[str, Any]
) -> dict[str, Any]:
    """``saved``'s records merged with ``new`` (:func:`~bench.search.run.merge_records`), in
    task, method and seed order; ``run`` appended to the invocations."""
    records = merge_records((saved or {}).get("records", []), new, LCBENCH_METHODS,
                            lcbench_tasks())  # fmt: skip
    return {"runs": [*(saved or {}).get("runs", []), run], "records": records}


def facts(runs: Sequence[Mapping[str, Any]]) -> str:
    """Commands, dates and wall times of the runs behind the records; machine; versions."""
    done = "; then ".join(
        f"`{r['command']}` ({r['date']}, {r['runs']} runs in {r['workers']} processes, wall "
        f"{_minutes(r['wall_seconds'])})"
        for r in runs
    )
    versions = ", ".join(f"{name} {_version(name)}" for name in (
        "torch", "optuna", "onnxruntime", "ray", "hyperopt", "dehb", "ConfigSpace"))  # fmt: skip
    return (
        f"Commands: {done}. Machine: {platform.machine()}, 2 CPU cores shared with other "
        f"work, one thread per process (epochs are counted, not seconds, so load moves s/run "
        f"and wall time only). Python "
        f"{platform.python_version()}, {versions}."
    )


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"
