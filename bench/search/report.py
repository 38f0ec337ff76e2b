"""Search-efficiency results: aggregates over seeds, anytime plots, Markdown for RESULTS.md.

Per task and method, over seeds:

* **anytime curve**: best validation accuracy seen against epochs spent (a step function of
  the ledger's curve), median and interquartile range, plotted to
  ``bench/results/<task>-anytime.png`` (replay) or ``<task>-anytime-live.png``;
* **epochs to target**: the first epoch count at which the best seen is within 0.5 accuracy
  points of the oracle (the table's best config); a run that never gets there counts as
  infinitely many ("not reached"), so a median of "not reached" means most runs missed it;
* **test accuracy of the chosen config** (the method's own pick: its best complete trial).

The verdict sentence compares ``hptune-default`` with each method that is not hptune's:
by the median epochs to target, or, when either median is "not reached", by the median best
validation accuracy at the full budget. It says "ahead of" or "behind" only when the
medians differ by more than 10 % (epochs) or 0.2 points (accuracy) **and** the difference
holds in at least 95 % of :data:`RESAMPLES` bootstrap resamples of each method's seeds
(drawn independently: a seed means different random numbers to different methods);
otherwise "level with". On the replay tables 20 seeds of a method land on a handful of
table rows, and a 0.2-point gap between two medians is often one row.
"""

from __future__ import annotations

import datetime
import math
import platform
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.search.table import Table, _versions, table_path
from hptune._defaults import DEFAULT_PRUNER, DEFAULT_STRATEGY

RESULTS_MD = Path(__file__).resolve().parents[1] / "RESULTS.md"
RESULTS_DIR = Path(__file__).resolve().parents[1] / "results"
TARGET_POINTS = 0.5
DEFAULT = "hptune-default"
#: Bootstrap resamples of the seeds behind a verdict, and the share of them in which a
#: difference must hold to be called one.
RESAMPLES, CONFIDENCE = 2000, 0.95


def anytime(curve: Sequence[Sequence[float]], budget: int) -> np.ndarray:
    """Best val seen after each epoch 1..budget (NaN before the first report)."""
    out = np.full(budget, np.nan)
    for spent, best in curve:
        out[int(spent) - 1 :] = best
    return out


def epochs_to(curve: Sequence[Sequence[float]], target: float) -> float:
    """Epochs spent when the best seen first reached ``target`` (inf: never)."""
    for spent, best in curve:
        if best >= target - 1e-12:
            return float(spent)
    return math.inf


def oracle_of(task: str, records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The table's oracle; without a table, the best value any run saw (said so)."""
    path = table_path(task)
    if path.exists():
        table = Table.load(path)
        return {**table.oracle, "source": f"table ({len(table.rows)} configs)", "meta": table.meta}
    best = max((r["curve"][-1][1] for r in records if r["curve"]), default=float("nan"))
    return {"best_val": best, "test_accuracy": float("nan"), "source": "best of all runs"}


def summarize(records: Sequence[Mapping[str, Any]], oracle_val: float) -> dict[str, dict]:
    """Per method: medians and IQRs over its seeds."""
    target = oracle_val - TARGET_POINTS / 100
    by_method: dict[str, list[Mapping[str, Any]]] = {}
    for rec in records:
        by_method.setdefault(rec["method"], []).append(rec)
    out = {}
    for method, recs in by_method.items():
        ok = [r for r in recs if "error" not in r]
        budget = recs[0]["budget"]
        curves = (
            np.array([anytime(r["curve"], budget) for r in ok]) if ok else np.empty((0, budget))
        )
        reach = [epochs_to(r["curve"], target) for r in ok]
        tests = [r["test_accuracy"] for r in ok if r.get("test_accuracy") is not None]
        out[method] = {
            "n": len(recs),
            "errors": [r["error"] for r in recs if "error" in r],
            "curves": curves,
            "budget": budget,
            "reach": reach,
            "epochs_to_target": float(np.median(reach)) if reach else math.inf,
            "reached": sum(math.isfinite(x) for x in reach),
            "test_median": float(np.median(tests)) if tests else float("nan"),
            "test_iqr": tuple(np.percentile(tests, [25, 75])) if tests else (math.nan,) * 2,
            "seconds": float(np.median([r["seconds"] for r in recs])),
        }
    return out


def _at(curves: np.ndarray, epoch: int) -> float:
    col = curves[:, epoch - 1] if len(curves) else np.array([np.nan])
    return float(np.nanmedian(col)) if np.isfinite(col).any() else float("nan")


def _pct(x: float) -> str:
    return "–" if not math.isfinite(x) else f"{100 * x:.1f}"


def _epochs(x: float) -> str:
    return "not reached" if not math.isfinite(x) else f"{x:.0f}"


def plot(task: str, stats: Mapping[str, dict], oracle_val: float, path: Path) -> None:
    """Median and IQR of the anytime curves of every method, one task."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, max(len(stats), 2)))
    for color, (method, s) in zip(colors, stats.items()):
        if not len(s["curves"]):
            continue
        x = np.arange(1, s["budget"] + 1)
        with np.errstate(all="ignore"):
            q25, med, q75 = np.nanpercentile(s["curves"], [25, 50, 75], axis=0)
        lw = 2.6 if method == DEFAULT else 1.2
        ax.plot(x, 100 * med, color=color, lw=lw, label=method)
        ax.fill_between(x, 100 * q25, 100 * q75, color=color, alpha=0.12)
    ax.axhline(100 * oracle_val, color="k", lw=0.8, label="oracle")
    ax.axhline(100 * oracle_val - TARGET_POINTS, color="k", lw=0.8, ls="--", label="oracle - 0.5")
    ax.set(xlabel="epochs spent", ylabel="best val accuracy seen (%)", title=f"{task}: anytime")
    lows = [np.nanpercentile(s["curves"][:, -1], 25) for s in stats.values() if len(s["curves"])]
    ax.set_ylim(max(0.0, 100 * min(lows, default=0.5) - 5), 100 * oracle_val + 1.5)
    ax.legend(fontsize=7, ncol=2, loc="lower right")
    ax.grid(alpha=0.3)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)


def _holds(a: Sequence[float], b: Sequence[float], better: int) -> float:
    """The share of bootstrap resamples (each method's seeds drawn with replacement) in
    which ``a``'s median beats ``b``'s in the direction ``better`` (+1: higher is better;
    -1: lower). Seeded, so a table re-renders the same."""
    rng = np.random.default_rng(0)
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    x, y = x[~np.isnan(x)], y[~np.isnan(y)]  # runs that reported nothing by then
    if not len(x) or not len(y):
        return 0.0
    mx = np.median(x[rng.integers(0, len(x), (RESAMPLES, len(x)))], axis=1)
    my = np.median(y[rng.integers(0, len(y), (RESAMPLES, len(y)))], axis=1)
    return float(np.mean(better * (mx - my) > 0))


def _verdict(a: dict, b: dict, budget: int) -> str:
    ea, eb = a["epochs_to_target"], b["epochs_to_target"]
    va, vb = _at(a["curves"], budget), _at(b["curves"], budget)
    if math.isfinite(ea) and math.isfinite(eb):
        sign, xa, xb = -1, a["reach"], b["reach"]
        clear = abs(ea - eb) > 0.1 * max(ea, eb)
    else:
        sign, xa, xb = 1, a["curves"][:, budget - 1], b["curves"][:, budget - 1]
        clear = abs(va - vb) >= 0.002
    better, worse = _holds(xa, xb, sign), _holds(xa, xb, -sign)
    word = "level with"
    if clear and better >= CONFIDENCE:
        word = "ahead of"
    elif clear and worse >= CONFIDENCE:
        word = "behind"
    return (f"**{word}** ({_epochs(ea)} vs {_epochs(eb)} epochs to target; best val at the "
            f"budget {_pct(va)} vs {_pct(vb)} %; better in {100 * better:.0f} %, worse in "
            f"{100 * worse:.0f} % of seed resamples)")  # fmt: skip


def task_section(
    task: str, records: Sequence[Mapping[str, Any]], mode: str, plots: bool = True
) -> str:
    oracle = oracle_of(task, records)
    stats = summarize(records, oracle["best_val"])
    budget = next(iter(stats.values()))["budget"]
    n_seeds = max(s["n"] for s in stats.values())
    suffix = "" if mode == "replay" else "-live"
    png = RESULTS_DIR / f"{task}-anytime{suffix}.png"
    if plots:
        plot(task, stats, oracle["best_val"], png)
    q = [max(1, budget // 4), budget // 2, budget]
    lines = [
        f"### {task} ({mode}, {n_seeds} seeds, budget {budget} epochs)",
        "",
        f"Oracle ({oracle['source']}): best val {_pct(oracle['best_val'])} %, its test "
        f"accuracy {_pct(oracle['test_accuracy'])} %; target = oracle - {TARGET_POINTS} points. "
        f"Plot: `bench/results/{png.name}`.",
        "",
        f"| method | best val @{q[0]} | @{q[1]} | @{q[2]} epochs | epochs to target (median) "
        "| reached | test acc of chosen: median (IQR) | s/run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for method, s in stats.items():
        if s["errors"] and not len(s["curves"]):
            lines.append(f"| {method} | failed: {s['errors'][0][:80]} | | | | | | |")
            continue
        lo, hi = s["test_iqr"]
        lines.append(
            f"| {method} | {_pct(_at(s['curves'], q[0]))} | {_pct(_at(s['curves'], q[1]))} | "
            f"{_pct(_at(s['curves'], q[2]))} | {_epochs(s['epochs_to_target'])} | "
            f"{s['reached']}/{s['n']} | {_pct(s['test_median'])} ({_pct(lo)}–{_pct(hi)}) | "
            f"{s['seconds']:.1f} |"
        )
    if DEFAULT in stats:
        pair = f"{DEFAULT_STRATEGY}+{DEFAULT_PRUNER}"
        lines += ["", f"hptune (default, {pair}) on {task}, {mode}:"]
        for method in stats:
            if not method.startswith("hptune"):
                lines.append(f"- vs {method}: {_verdict(stats[DEFAULT], stats[method], budget)}")
    return "\n".join(lines)


def render(
    records: Mapping[str, Sequence[Mapping[str, Any]]], mode: str, command: str,
    unavailable: Mapping[str, str], plots: bool = True,
) -> dict[str, str]:  # fmt: skip
    """Markdown blocks of one mode (replay or live): a header, then one per task, each with
    the command, date, machine and versions of the run that produced it; ``plots``
    False: the plots are not drawn (a trial run that leaves ``bench/results`` alone)."""
    v = _versions()
    facts = (
        f"Command: `{command}`. Date: {datetime.date.today().isoformat()}. Machine: "
        f"{platform.machine()}, 2 CPU cores, no GPU, shared with other work (epochs are "
        f"counted, not seconds, so load does not change the tables; s/run does). Python "
        f"{v['python']}, torch {v['torch']}, optuna {v['optuna']}."
    )
    notes = "".join(f"\n- {name}: {why}" for name, why in unavailable.items())
    blocks = {mode: f"## Search efficiency, {mode} mode\n"}
    for task, recs in records.items():
        if recs:
            blocks[f"{mode}:{task}"] = (
                f"{task_section(task, recs, mode, plots)}\n\n{facts}{notes}\n"
            )
    return blocks


INTRO = """# Search efficiency — results

Every method searches the same space (`bench/search/space.py`: LR log-uniform 1e-4..1e-1,
effective batch 32/64/128, weight decay log-uniform 1e-6..1e-2, warmup 0 or 2 epochs, adam
with beta1 or sgd (nesterov) with momentum in 0.8..0.95, cosine or plateau scheduler) on
each task under the same budget **counted in training epochs** (default: twenty full
trainings, i.e. 20 x a trial's max epochs: 400 epochs on digits-mlp's 20-epoch table),
over several seeds. Methods and their pruners: `bench/search/methods.py`. hptune's default
(the main job's pair) is the multi-fidelity strategy with ASHA since 2026-12-05; before, it
was TPE + Hyperband (`hptune-tpe-hyperband`; it was TPE + ASHA until the pruner ablation
rows `hptune-tpe-*` below showed Hyperband ahead or level on every task), and every other
hptune strategy runs with Hyperband, so the strategies differ in one thing only.

**Replay mode** trains nothing: each proposed config is snapped to the nearest config of a
dense table of full learning curves (`bench/data/<task>-curves.json.gz`, built once by
`python -m bench replay-build --task <task>`; categoricals must match, numeric dimensions
by normalized log/linear distance) and its cached curve is reported epoch by epoch through
the same `report(epoch, value)` path into the method's pruner as a live run, so pruning
decisions are the live ones for those values. The table was trained with one seed, so in
replay the seeds vary the methods' randomness only, and a method gains nothing from
proposing a config twice. The **oracle** is the table's best config (best validation
accuracy at any epoch); "epochs to target" is the epochs spent until a method's best
validation accuracy came within 0.5 points of it. Test accuracy is that of each method's
chosen config (its best complete trial), trained the table's full epochs (best-val epoch).

Tables (full grids, 20 epochs each, built on this 2-core machine with 2 processes while
other work ran): `digits-mlp` and `mnist1d-mlp` 1008 configs (7 LRs, 3 weight decays, 2
beta1/momentum levels; 337 s and 508 s to build), `mnist1d-cnn` 192 configs (4 LRs, 2
weight decays, one beta1/momentum of 0.9; 466 s). The CNN's coarser LR grid snaps a
method's fine placement of the LR to the nearest decade, which favours no one but blunts
model-based search. Each table file records its exact command, build time, machine and versions.

Reproduce everything: `python -m bench all` (or `python -m bench search --replay` for the
replay tables below; `--quick` for a 5-seed replay run in a few minutes).
"""


def write_section(blocks: Mapping[str, str]) -> None:
    """Replace each block in RESULTS.md (re-read just now), or append it; the search intro
    block likewise. Blocks of tasks not in this run are left as they are."""
    write_block("intro", INTRO)
    for name, text in blocks.items():
        write_block(name, text)


def write_block(name: str, text: str) -> None:
    """Replace the block ``name`` of RESULTS.md (between ``<!-- search:NAME:start -->`` and
    its end marker; re-read just now) with ``text``, or append it; nothing else changes."""
    start, end = f"<!-- search:{name}:start -->", f"<!-- search:{name}:end -->"
    block = f"{start}\n{text}{end}"
    current = RESULTS_MD.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(start) + ".*?" + re.escape(end), re.S)
    if pattern.search(current):
        updated = pattern.sub(lambda _: block, current)
    else:
        updated = current.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS_MD.write_text(updated, encoding="utf-8")
