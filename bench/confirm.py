"""Does confirming the best configs with fresh seeds choose better, and report honestly?

For each study seed, the main job (``examples/mnist1d.yaml``: multi-fidelity + ASHA since
2026-12-05, TPE + Hyperband before; 100 trials of 25 epochs, 2 workers) runs twice on a
fresh SQLite file: as it is, and with ``confirm: {top: 3, seeds: 2}`` (6 of its 100
trials re-train the 3 best configs with fresh seeds). Each run's chosen config
(``study.best_trial``) and reported value (``study.best_value``, what ``hptune best``
prints) are kept. Then every chosen config is trained ``--fresh`` more
times with seeds neither run used (the recipe, one thread, 25 epochs): its **true value**
is the mean best-epoch validation accuracy over those, its **true test** the mean test
accuracy of that epoch. **Optimism** = reported - true value: how much the number a user
reads overstates what the config gives on a new seed. The two runs search differently (two
workers, and a confirmed run searches 94 trials), so for a confirmed run the config its
search's single best reading would have chosen (**same-run plain pick**) is judged too:
the choice by the mean against the choice by the best reading, on one search.

``--variants`` compares other changes of the spec the same way: ``lr-auto`` (``lr: auto``,
the LR range from the range test), ``lr-auto+confirm`` (both), ``tpe-hyperband`` and
``multi-fidelity`` (the search itself: ``strategy: tpe, pruner: hyperband`` against
``strategy: multi-fidelity, pruner: asha``, whatever the spec names).

Run from the repository root, venv active:
``python -m bench confirm [--seeds 6] [--fresh 4] [--variants plain confirm] [--quick]``
(``--quick``: digits-mlp, 12 trials of 3 epochs, 2 seeds, for a smoke test). Writes
``bench/results/confirm.json`` (or ``--out``) and prints one row per seed and variant and
the medians.
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
#: Each variant's change of the spec's space and confirm key.
VARIANTS = {
    "plain": {},
    "confirm": {"confirm": CONFIRM},
    "lr-auto": {"lr": "auto"},
    "lr-auto+confirm": {"lr": "auto", "confirm": CONFIRM},
    "tpe-hyperband": {"strategy": "tpe", "pruner": "hyperband"},
    "multi-fidelity": {"strategy": "multi-fidelity", "pruner": "asha"},
}
#: Seeds of the fresh trainings that judge a chosen config: far from any trial's seed.
FRESH_SEED_BASE = 10_000


def run_study(seed: int, variant: str, folder: Path, quick: bool) -> dict:
    """Run the main job (or the quick one) with ``seed`` as ``variant`` changes it; its
    choice and reported value."""
    from hptune import runner
    from hptune.spec import Budget, load_spec

    spec = load_spec(SPEC)
    change = VARIANTS[variant]
    changes: dict[str, Any] = {
        "seed": seed,
        "storage": f"sqlite:///{folder / f's{seed}-{variant}.db'}",
        "name": f"{variant}-{seed}",
    }
    if quick:
        changes.update(task="digits-mlp", budget=Budget(trials=12, epochs=3, timeout_s=None))
    if "confirm" in change:
        changes["confirm"] = change["confirm"]
    for key in ("strategy", "pruner"):
        if key in change:
            changes[key] = change[key]
    if "lr" in change:
        changes["space"] = {**spec.space, "lr": change["lr"]}
    spec = spec.replace(**changes)
    start = time.perf_counter()
    study = runner.run(spec)
    best = study.best_trial
    search = [r for r in study.trials if r.repeat_of is None and r.state == "COMPLETE"]
    plain_pick = max(search, key=lambda r: r.value) if study.confirmation else None
    return {
        "variant": variant,
        "confirm": "confirm" in change,
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
        "lr_range": study.optuna_study.user_attrs.get(runner.LR_AUTO_ATTR, {}).get("range"),
        "plain_pick": None if plain_pick is None else plain_pick.config,
    }


def _fresh(args: tuple[str, dict[str, Any], int, int]) -> dict:
    task, config, epochs, seed = args
    row = train_curve(task, config, epochs, seed=seed)
    best = max(row["curve"]) if row["curve"] else 0.0
    return {"val": best, "test": row["test_accuracy"]}


def judge(runs: list[dict], n_fresh: int) -> None:
    """Add ``true_val``, ``true_test`` and ``optimism`` to each run (in place), training
    each distinct chosen config ``n_fresh`` times in two processes."""
    keys = {json.dumps(r["config"], sort_keys=True): (r, r["config"]) for r in runs}
    for r in runs:
        if r.get("plain_pick") is not None:
            keys.setdefault(json.dumps(r["plain_pick"], sort_keys=True), (r, r["plain_pick"]))
    jobs = [
        (r["task"], config, r["epochs"], FRESH_SEED_BASE + k)
        for r, config in keys.values()
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
        if r.get("plain_pick") is not None:
            fresh = by_key[json.dumps(r["plain_pick"], sort_keys=True)]
            r["plain_pick_true_val"] = statistics.fmean(f["val"] for f in fresh)
            r["plain_pick_true_test"] = statistics.fmean(f["test"] for f in fresh)


def table(runs: list[dict]) -> str:
    lines = [
        "| seed | variant | trial | reported | true val | optimism | true test "
        "| same-run plain pick: true val | true test |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    order = list(VARIANTS)
    for r in sorted(runs, key=lambda r: (r["seed"], order.index(_variant(r)))):
        variant = _variant(r)
        same = [_cell(r.get("plain_pick_true_val")), _cell(r.get("plain_pick_true_test"))]
        lines.append(
            f"| {r['seed']} | {variant} | {r['trial']} | {r['reported']:.4f} | "
            f"{r['true_val']:.4f} | {r['optimism']:+.4f} | {r['true_test']:.4f} | "
            f"{same[0]} | {same[1]} |"
        )
    for variant in order:
        rows = [r for r in runs if _variant(r) == variant]
        if not rows:
            continue
        keys = ("reported", "true_val", "optimism", "true_test", "plain_pick_true_val",
                "plain_pick_true_test")  # fmt: skip
        med = {k: _median([r.get(k) for r in rows]) for k in keys}
        lines.append(
            f"| median | {variant} | | {med['reported']:.4f} | {med['true_val']:.4f} | "
            f"{med['optimism']:+.4f} | {med['true_test']:.4f} | "
            f"{_cell(med['plain_pick_true_val'])} | {_cell(med['plain_pick_true_test'])} |"
        )
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def _variant(run: dict) -> str:
    """A run's variant (runs written before variants had only ``confirm``)."""
    return run.get("variant") or ("confirm" if run["confirm"] else "plain")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench confirm")
    parser.add_argument("--seeds", type=int, default=6, help="study seeds 0..N-1")
    parser.add_argument("--fresh", type=int, default=4, help="fresh trainings per choice")
    parser.add_argument("--quick", action="store_true", help="digits-mlp, 12 x 3 epochs")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--variants", nargs="+", choices=list(VARIANTS), default=["plain", "confirm"]
    )
    args = parser.parse_args(argv)
    seeds = range(2 if args.quick else args.seeds)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in seeds:
            for variant in args.variants:
                run = run_study(seed, variant, Path(tmp), args.quick)
                print(f"seed {seed} {variant}: trial "
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
