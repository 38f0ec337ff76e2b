"""Does confirming the best configs with fresh seeds choose better, and report honestly?

For each study seed, the main job (``examples/mnist1d.yaml``: TPE + Hyperband, 100 trials of
25 epochs, 2 workers) runs twice on a fresh SQLite file: as it is, and with ``confirm: {top:
3, seeds: 2}`` (6 of its 100 trials re-train the 3 best configs with fresh seeds). Each
run's chosen config (``study.best_trial``) and reported value (``study.best_value``, what
``hptune best`` prints) are kept. Then every chosen config is trained ``--fresh`` more
times with seeds neither run used (the recipe, one thread, 25 epochs): its **true value**
is the mean best-epoch validation accuracy over those, its **true test** the mean test
accuracy of that epoch. **Optimism** = reported - true value: how much the number a user
reads overstates what the config gives on a new seed.

Run from the repository root, venv active:
``python -m bench confirm [--seeds 6] [--fresh 4] [--quick]`` (``--quick``: digits-mlp, 12
trials of 3 epochs, 2 seeds, for a smoke test). Writes ``bench/results/confirm.json`` and
prints one row per seed and the medians.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.search.table import train_curve

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "mnist1d.yaml"
RESULTS = ROOT / "bench" / "results" / "confirm.json"
CONFIRM = {"top": 3, "seeds": 2}
#: Seeds of the fresh trainings that judge a chosen config: far from any trial's seed.
FRESH_SEED_BASE = 10_000


def run_study(seed: int, confirm: dict[str, int] | None, folder: Path, quick: bool) -> dict:
    """Run the main job (or the quick one) with ``seed``; its choice and reported value."""
    from hptune import runner
    from hptune.spec import Budget, load_spec

    spec = load_spec(SPEC)
    changes: dict[str, Any] = {
        "seed": seed,
        "storage": f"sqlite:///{folder / f's{seed}-{bool(confirm)}.db'}",
        "name": f"confirm-{seed}-{bool(confirm)}",
    }
    if quick:
        changes.update(task="digits-mlp", budget=Budget(trials=12, epochs=3, timeout_s=None))
    if confirm is not None:
        changes["confirm"] = confirm
    spec = spec.replace(**changes)
    start = time.perf_counter()
    study = runner.run(spec)
    best = study.best_trial
    return {
        "confirm": confirm is not None,
        "seed": seed,
        "task": spec.task,
        "epochs": spec.budget.epochs,
        "trial": best.number,
        "config": best.config,
        "reported": study.best_value,
        "search_value": best.value,
        "seconds": round(time.perf_counter() - start, 1),
        "stop": study.last_stop["reason"] if study.last_stop else None,
        "fresh_in_run": len(study.confirmation.best.values) if study.confirmation else 0,
    }


def _fresh(args: tuple[str, dict[str, Any], int, int]) -> dict:
    task, config, epochs, seed = args
    row = train_curve(task, config, epochs, seed=seed)
    best = max(row["curve"]) if row["curve"] else 0.0
    return {"val": best, "test": row["test_accuracy"]}


def judge(runs: list[dict], n_fresh: int) -> None:
    """Add ``true_val``, ``true_test`` and ``optimism`` to each run (in place), training
    each distinct chosen config ``n_fresh`` times in two processes."""
    keys = {json.dumps(r["config"], sort_keys=True): r for r in runs}
    jobs = [
        (r["task"], r["config"], r["epochs"], FRESH_SEED_BASE + k)
        for r in keys.values()
        for k in range(n_fresh)
    ]
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_fresh, jobs)
    by_key: dict[str, list[dict]] = {}
    for (_, config, _, _), result in zip(jobs, results, strict=True):
        by_key.setdefault(json.dumps(config, sort_keys=True), []).append(result)
    for r in runs:
        fresh = by_key[json.dumps(r["config"], sort_keys=True)]
        r["true_val"] = statistics.fmean(f["val"] for f in fresh)
        r["true_test"] = statistics.fmean(f["test"] for f in fresh)
        r["optimism"] = r["reported"] - r["true_val"]


def table(runs: list[dict]) -> str:
    lines = [
        "| seed | variant | trial | reported | true val | optimism | true test |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in sorted(runs, key=lambda r: (r["seed"], r["confirm"])):
        variant = "confirm 3x2" if r["confirm"] else "plain"
        lines.append(
            f"| {r['seed']} | {variant} | {r['trial']} | {r['reported']:.4f} | "
            f"{r['true_val']:.4f} | {r['optimism']:+.4f} | {r['true_test']:.4f} |"
        )
    for confirm in (False, True):
        rows = [r for r in runs if r["confirm"] is confirm]
        variant = "confirm 3x2" if confirm else "plain"
        med = {k: statistics.median(r[k] for r in rows) for k in ("reported", "true_val",
                                                                  "optimism", "true_test")}  # fmt: skip
        lines.append(
            f"| median | {variant} | | {med['reported']:.4f} | {med['true_val']:.4f} | "
            f"{med['optimism']:+.4f} | {med['true_test']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench confirm")
    parser.add_argument("--seeds", type=int, default=6, help="study seeds 0..N-1")
    parser.add_argument("--fresh", type=int, default=4, help="fresh trainings per choice")
    parser.add_argument("--quick", action="store_true", help="digits-mlp, 12 x 3 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    seeds = range(2 if args.quick else args.seeds)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for confirm in (None, CONFIRM):
                run = run_study(seed, confirm, Path(tmp), args.quick)
                print(f"seed {seed} {'confirm' if confirm else 'plain'}: trial "
                      f"{run['trial']} reported {run['reported']:.4f} ({run['seconds']} s)",
                      flush=True)  # fmt: skip
                runs.append(run)
    judge(runs, 2 if args.quick else args.fresh)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(runs, indent=1))
    print(table(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
