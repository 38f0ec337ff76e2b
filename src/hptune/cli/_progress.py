"""What the terminal shows while a study runs: one live progress line, then a leaderboard."""

from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from hptune.metrics import TEST_ACCURACY
from hptune.study import Study, TrialRecord
from hptune.study._budget import NOT_COUNTED
from hptune.study._warm import STAGE as WARM_START


class RunProgress:
    """A driver listener that draws ``done/total | running | pruned | failed | best`` for
    the whole study: the trials earlier runs (and other drivers) finished are counted from
    the start, so a continued study shows where the study stands, not this run alone.
    Trials a warm start copied from another study count only towards the best.

    The driver calls :meth:`trial_started` when a trial is submitted and
    :meth:`trial_finished` when it is told, both in the driver process.

    Args:
        console: Where to draw.
        study: The study being run.
        budget: Its trial budget (None: no total to show).
    """

    def __init__(self, console: Console, study: Study, budget: int | None) -> None:
        self.console = console
        self.direction = study.direction
        self.running = 0
        self.counts = {"COMPLETE": 0, "PRUNED": 0, "FAILED": 0}
        self.best: float | None = None
        for record in study.trials:
            self._count(record)
        done = study.n_counted_trials
        total = budget if budget is None else max(budget, done)
        self.started_at = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]trials"),
            BarColumn(),
            TextColumn(
                "{task.completed:.0f}/{task.total:.0f}" if total else "{task.completed:.0f}"
            ),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            # Without a total (a grid's or a timeout's end) there is no time remaining.
            *((TextColumn("eta"), TimeRemainingColumn()) if total else ()),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("", total=total)
        self.progress.update(self.task, completed=done)

    def __enter__(self) -> RunProgress:
        self.progress.start()
        self._refresh()
        return self

    def __exit__(self, *exc: object) -> None:
        self._refresh()
        self.progress.stop()

    def trial_started(self, number: int, config: dict[str, Any]) -> None:
        self.running += 1
        self._refresh()

    def _count(self, record: TrialRecord) -> None:
        if record.state not in self.counts:
            return  # running or waiting elsewhere
        if record.stage != WARM_START:  # a copy from another study: its best only
            self.counts[record.state] += 1
        if record.state == "COMPLETE" and record.value is not None and self._better(record.value):
            self.best = record.value

    def trial_finished(self, record: TrialRecord) -> None:
        self.running = max(0, self.running - 1)
        self._count(record)
        if record.failure_kind not in NOT_COUNTED:  # an interrupted trial used no budget
            self.progress.advance(self.task)
        self._refresh()
        if not self.console.is_terminal:  # logs and CI: no live bar, so one line per trial
            detail = record.failure_reason or fmt(record.value)
            if record.repeat_of is not None:
                detail += f" (confirms #{record.repeat_of} with a fresh seed)"
            self.console.print(
                f"trial {record.number} {record.state.lower()}: {detail}", markup=False
            )

    def _better(self, value: float) -> bool:
        if self.best is None:
            return True
        return value > self.best if self.direction == "maximize" else value < self.best

    def _refresh(self) -> None:
        best = "-" if self.best is None else f"{self.best:.4g}"
        self.progress.update(
            self.task,
            description=(
                f"run {self.running} pruned {self.counts['PRUNED']} "
                f"failed {self.counts['FAILED']} best {best}"
            ),
        )


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3g}"
    return str(value)


def flat_config(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"name": "sgd", "momentum": 0.9}}`` -> ``{"optimizer": "sgd",
    "optimizer.momentum": 0.9}``: one column per hyperparameter."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            if "name" in value:
                out[path] = value["name"]
            out.update(flat_config({k: v for k, v in value.items() if k != "name"}, path + "."))
        else:
            out[path] = value
    return out


def compact_config(config: dict[str, Any]) -> str:
    """``lr=0.00535 batch_size=32 optimizer=adam(beta1=0.85) scheduler=cosine``."""
    parts = []
    for key, value in config.items():
        if isinstance(value, dict):
            inner = " ".join(f"{k}={fmt(v)}" for k, v in value.items() if k != "name")
            name = value.get("name", "")
            parts.append(f"{key}={name}({inner})" if inner else f"{key}={name or '{}'}")
        else:
            parts.append(f"{key}={fmt(value)}")
    return " ".join(parts)


def leaderboard(study: Study, top: int = 10) -> Table:
    """The best ``top`` complete trials; the config column wraps, so it reads at any width.
    Trials a warm start copied are marked ``*``; a confirmation's, ``(#n)``: trial ``n``'s
    config with a fresh seed."""
    done = [r for r in study.trials if r.state == "COMPLETE" and r.value is not None]
    done.sort(key=lambda r: r.value, reverse=study.direction == "maximize")
    done = done[:top]
    has_test = any(TEST_ACCURACY in r.attrs for r in done)
    table = Table(title=f"leaderboard: {study.name} (top {len(done)})", title_justify="left")
    # Strings here are printed as they are (see cli._app.SafeConsole): no markup.
    table.add_column("#", justify="right")
    table.add_column("value", justify="right", style="bold")
    if has_test:
        table.add_column("test", justify="right")
    table.add_column("time", justify="right")
    table.add_column("config", overflow="fold", ratio=1)
    copied = repeated = False
    for r in done:
        test = [fmt(r.attrs.get(TEST_ACCURACY))] if has_test else []
        number = str(r.number)
        if r.stage == WARM_START:
            number, copied = f"{number}*", True
        if r.repeat_of is not None:
            number, repeated = f"{number} (#{r.repeat_of})", True
        table.add_row(
            number, fmt(r.value), *test, f"{r.duration or 0:.1f}s", compact_config(r.config)
        )
    captions = [
        text
        for shown, text in (
            (copied, "* copied from another study by a warm start"),
            (repeated, "(#n) re-trains trial n's config with a fresh seed (confirmation)"),
        )
        if shown
    ]
    if captions:
        table.caption = "\n".join(captions)
        table.caption_justify = "left"
    return table
