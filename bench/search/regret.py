"""LCBench results: regret against the best known value, per task and across tasks.

For one run (a method, a task, a seed) the **incumbent** after ``k`` epochs is the best
validation accuracy the method has seen within its first ``k`` epochs (the ledger's anytime
curve), and its **regret** is ``best known - incumbent`` in accuracy points (percent), the
best known value being ``bench/lcbench/best_known.json``'s (the best of a large random
sample at epoch 52). Regret may be negative: a method may find a config better than the
sample's best, or a curve that peaks before epoch 52. It is read at 25 %, 50 % and 100 % of
the budget (twenty full trainings: 260, 520 and 1040 epochs).

Per task, each method's regret is the **median over its seeds**. Across tasks, per method:

* **wins**: the tasks on which its median regret is the lowest of all methods (a tie
  gives each tied method the win);
* **median**: the median over tasks of its per-task median regret;
* **mean rank**: the mean over tasks of its rank by median regret (1 = lowest; ties share
  the mean of their ranks);
* **within 1 point**: the runs (task x seed) whose regret at the full budget is at most 1
  point; a method run on fewer seeds (Ray Tune) is compared by its share of runs.

:func:`criteria` checks issue 12's bar for ``hptune-default`` (and any other hptune row, such
as an ablation or a new strategy) against every peer in the table: every method that is
not hptune's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.search.report import DEFAULT, anytime

CHECKPOINTS = (0.25, 0.5, 1.0)
WITHIN_POINTS = 1.0
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"


def checkpoints(budget: int) -> list[int]:
    """Epochs at which regret is read: 25 %, 50 % and 100 % of ``budget``."""
    return [max(1, round(budget * f)) for f in CHECKPOINTS]


def task_id(task: str) -> str:
    """``"lcbench-7593"`` -> ``"7593"``."""
    return task.rsplit("-", 1)[-1]


def run_regrets(
    records: Sequence[Mapping[str, Any]], best_known: Mapping[str, float]
) -> dict[str, dict[str, np.ndarray]]:
    """method -> task -> regret in points, ``[n_seeds, budget]`` (every epoch; NaN before a
    run's first report). Records with an error are left out (:func:`errors` lists them)."""
    out: dict[str, dict[str, list[np.ndarray]]] = {}
    for rec in records:
        if "error" in rec:
            continue
        curve = 100 * anytime(rec["curve"], rec["budget"])
        regret = best_known[task_id(rec["task"])] - curve
        out.setdefault(rec["method"], {}).setdefault(rec["task"], []).append(regret)
    return {m: {t: np.array(v) for t, v in by_task.items()} for m, by_task in out.items()}


def errors(records: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """method -> error messages of its failed runs."""
    out: dict[str, list[str]] = {}
    for rec in records:
        if "error" in rec:
            out.setdefault(rec["method"], []).append(f"{rec['task']} seed {rec['seed']}: "
                                                     f"{rec['error']}")  # fmt: skip
    return out


def medians(regrets: Mapping[str, Mapping[str, np.ndarray]], epoch: int) -> dict[str, dict]:
    """method -> task -> median regret over seeds at ``epoch``."""
    return {
        m: {t: float(np.nanmedian(r[:, epoch - 1])) for t, r in by_task.items()}
        for m, by_task in regrets.items()
    }


def ranks(per_task: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """method -> task -> rank by median regret (1 = lowest; ties share their mean rank).
    Only tasks every method ran are ranked."""
    methods = list(per_task)
    tasks = sorted(set.intersection(*(set(per_task[m]) for m in methods))) if methods else []
    out: dict[str, dict[str, float]] = {m: {} for m in methods}
    for task in tasks:
        values = [per_task[m][task] for m in methods]
        for m, v in zip(methods, values):
            below = sum(x < v for x in values)
            tied = sum(x == v for x in values)
            out[m][task] = below + (tied + 1) / 2
    return out


def summary(regrets: Mapping[str, Mapping[str, np.ndarray]], budget: int) -> dict[str, dict]:
    """Per method, at each checkpoint: wins, median over tasks, mean rank; and the runs
    within 1 point at the full budget."""
    out: dict[str, dict[str, Any]] = {
        m: {"wins": [], "median": [], "mean_rank": []} for m in regrets
    }
    for epoch in checkpoints(budget):
        per_task = medians(regrets, epoch)
        rank = ranks(per_task)
        tasks = next(iter(rank.values())).keys() if rank else []
        lowest = {t: min(per_task[m][t] for m in regrets) for t in tasks}
        for m in regrets:
            out[m]["wins"].append(sum(per_task[m][t] == lowest[t] for t in tasks))
            out[m]["median"].append(float(np.median(list(per_task[m].values()))))
            out[m]["mean_rank"].append(float(np.mean(list(rank[m].values()))))
    for m, by_task in regrets.items():
        final = np.concatenate([r[:, budget - 1] for r in by_task.values()])
        out[m]["within"] = int(np.sum(final <= WITHIN_POINTS))
        out[m]["runs"] = len(final)
        out[m]["seeds"] = sorted({len(r) for r in by_task.values()})
    return out


def is_peer(method: str) -> bool:
    """A method that is not hptune's (hptune's own rows, e.g. ablations, are no peers)."""
    return not method.startswith("hptune")


def criteria(
    stats: Mapping[str, dict], per_task: Sequence[Mapping[str, Mapping[str, float]]],
    n_tasks: int, candidate: str = DEFAULT,
) -> list[str]:  # fmt: skip
    """Issue 12's bar for ``candidate`` against every peer (:func:`is_peer`), one line per
    condition, each with its numbers and PASS/FAIL. ``per_task``: :func:`medians` at each
    checkpoint."""
    peers = [m for m in stats if is_peer(m)]
    if candidate not in stats or not peers:
        return [f"(needs {candidate} and at least one peer in the run)"]
    need = math.ceil(0.75 * n_tasks)
    lines = []
    for pct, table in zip(CHECKPOINTS, per_task):
        ahead = sum(
            all(table[candidate][t] < table[p][t] for p in peers if t in table[p])
            for t in table[candidate]
        )
        lines.append(_line(ahead >= need, f"lower median regret than every peer at "
                           f"{pct * 100:.0f} % of the budget on {ahead}/{n_tasks} tasks (needs >= {need})"))  # fmt: skip
    best_peer = min(peers, key=lambda p: stats[p]["median"][-1])
    own, theirs = stats[candidate]["median"][-1], stats[best_peer]["median"][-1]
    lines.append(_line(own <= theirs / 2, f"median regret at 100 %: {own:.2f} points vs the best "
                       f"peer's {theirs:.2f} ({best_peer}); needs <= half"))  # fmt: skip
    share = {m: stats[m]["within"] / stats[m]["runs"] for m in stats}
    top = max(peers, key=lambda p: share[p])
    lines.append(_line(
        # 0 runs against 0 is no "1.5x as many": the bar needs some runs within a point.
        share[candidate] > 0 and share[candidate] >= 1.5 * share[top],
        f"runs within {WITHIN_POINTS:g} point at 100 %: {stats[candidate]['within']}/"
        f"{stats[candidate]['runs']} vs the best peer's {stats[top]['within']}/"
        f"{stats[top]['runs']} ({top}); needs >= 1.5x (as shares of runs)",
    ))  # fmt: skip
    return lines


def _line(ok: bool, text: str) -> str:
    return f"- **{'PASS' if ok else 'FAIL'}**: {text}"


# -- Markdown and plot ------------------------------------------------------------------------


def _pts(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{x:.2f}"


def summary_table(stats: Mapping[str, dict], tests: Mapping[str, float],
                  seconds: Mapping[str, float], n_tasks: int) -> list[str]:  # fmt: skip
    """The across-task table, one row per method."""
    lines = [
        "| method | seeds per task | tasks won @25 % | @50 % | @100 % | median regret @25 % "
        "| @50 % | @100 % | mean rank @25 % | @50 % | @100 % | runs within 1 point @100 % "
        "| test bal. acc. of chosen | s/run |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for m, s in stats.items():
        seeds = "/".join(map(str, s["seeds"]))
        lines.append(
            f"| {m} | {seeds} | " + " | ".join(f"{w}/{n_tasks}" for w in s["wins"]) + " | "
            + " | ".join(_pts(x) for x in s["median"]) + " | "
            + " | ".join(f"{x:.2f}" for x in s["mean_rank"])
            + f" | {s['within']}/{s['runs']} ({100 * s['within'] / s['runs']:.0f} %) | "
            f"{100 * tests.get(m, math.nan):.1f} | {seconds.get(m, math.nan):.1f} |"
        )  # fmt: skip
    return lines


def task_table(per_task: Mapping[str, Mapping[str, float]], best_known: Mapping[str, float],
               tasks: Sequence[str]) -> list[str]:  # fmt: skip
    """Median regret per task (rows) and method (columns); the lowest in bold."""
    methods = list(per_task)
    lines = [
        "| task | best known | " + " | ".join(methods) + " |",
        "|---|---|" + "---|" * len(methods),
    ]
    for t in tasks:
        values = [per_task[m].get(t, math.nan) for m in methods]
        lo = np.nanmin(values)
        cells = [f"**{_pts(v)}**" if v == lo else _pts(v) for v in values]
        lines.append(f"| {task_id(t)} | {best_known[task_id(t)]:.2f} | " + " | ".join(cells) + " |")
    return lines


def plot(regrets: Mapping[str, Mapping[str, np.ndarray]], budget: int, path: Path) -> None:
    """Median over tasks of the per-task median regret against epochs spent, per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    x = np.arange(1, budget + 1)
    for m, by_task in regrets.items():
        with np.errstate(all="ignore"):
            per_task = np.array([np.nanmedian(r, axis=0) for r in by_task.values()])
            curve = np.nanmedian(per_task, axis=0)
        ax.plot(x, curve, lw=2.6 if m == DEFAULT else 1.3, label=m)
    for epoch in checkpoints(budget):
        ax.axvline(epoch, color="k", lw=0.6, ls=":")
    ax.set_yscale("symlog", linthresh=1.0)
    ax.set(xlabel="epochs spent (52 = one full training)",
           ylabel="regret, points (median over tasks of the median over seeds)",
           title="LCBench, 26 development tasks: regret against the best known value")  # fmt: skip
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def render(records: Sequence[Mapping[str, Any]], best_meta: Mapping[str, Any],
           facts: str, unavailable: Mapping[str, str], plots: bool = True) -> str:  # fmt: skip
    """The "LCBench (external)" section of RESULTS.md (and its plot, unless ``plots`` is
    False)."""
    best_known = {t: float(r["best_val_accuracy"]) for t, r in best_meta["tasks"].items()}
    regrets = run_regrets(records, best_known)
    budget = int(records[0]["budget"])
    tasks = sorted({r["task"] for r in records}, key=lambda t: int(task_id(t)))
    stats = summary(regrets, budget)
    per_task = [medians(regrets, e) for e in checkpoints(budget)]
    tests, seconds = _tests_and_seconds(records)
    png = RESULTS_DIR / "lcbench-regret.png"
    if plots:
        plot(regrets, budget, png)
    q = checkpoints(budget)
    lines = [
        f"## LCBench (external): {len(tasks)} tasks, budget {budget} epochs "
        f"(= {budget // 52} full trainings)",
        "",
        facts,
        "",
        f"Regret = best known - incumbent, in accuracy points; read at {q[0]}, {q[1]} and "
        f"{q[2]} epochs (25 / 50 / 100 % of the budget). Best known: the best validation "
        f"accuracy at epoch 52 of {best_meta['n_configs']:,} random configs (seed "
        f"{best_meta['seed']}; `bench/lcbench/best_known.json`). Test bal. acc.: the "
        f"surrogate's test_balanced_accuracy at epoch 52 of each run's chosen config (its best "
        f"full-length trial), median over seeds, then over tasks. Plot: "
        f"`bench/results/{png.name}`.",
        "",
        *summary_table(stats, tests, seconds, len(tasks)),
        "",
        *bars(stats, per_task, len(tasks)),
        "Median regret per task at 100 % of the budget (lowest in bold):",
        "",
        *task_table(per_task[2], best_known, tasks),
    ]
    for pct, table in zip(("25", "50"), per_task[:2]):
        lines += ["", f"<details><summary>Median regret per task at {pct} % of the budget"
                  "</summary>", "", *task_table(table, best_known, tasks), "", "</details>"]  # fmt: skip
    failed = errors(records)
    notes = [f"- {m}: {len(e)} runs failed, e.g. {e[0][:160]}" for m, e in failed.items()]
    notes += [f"- {name}: {why}" for name, why in unavailable.items()]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines) + "\n"


def bars(stats: Mapping[str, dict], per_task: Sequence[Mapping[str, Mapping[str, float]]],
         n_tasks: int) -> list[str]:  # fmt: skip
    """Issue 12's bar for every hptune row (the default first), each against the peers."""
    lines: list[str] = []
    for m in sorted((m for m in stats if not is_peer(m)), key=lambda m: m != DEFAULT):
        lines += [f"Issue 12's bar for {m} against the peers (the first three lines: each "
                  "checkpoint on its own):", "", *criteria(stats, per_task, n_tasks, m), ""]  # fmt: skip
    return lines


def _tests_and_seconds(records: Sequence[Mapping[str, Any]]) -> tuple[dict, dict]:
    """Per method: median over tasks of the median test balanced accuracy of the chosen
    config, and the median seconds per run."""
    tests: dict[str, dict[str, list[float]]] = {}
    seconds: dict[str, list[float]] = {}
    for rec in records:
        seconds.setdefault(rec["method"], []).append(rec["seconds"])
        if rec.get("test_accuracy") is not None:
            tests.setdefault(rec["method"], {}).setdefault(rec["task"], []).append(
                rec["test_accuracy"]
            )
    test = {m: float(np.median([np.median(v) for v in t.values()])) for m, t in tests.items()}
    return test, {m: float(np.median(v)) for m, v in seconds.items()}
