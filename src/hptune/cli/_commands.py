"""The commands of ``hptune``. Each one: parse, call a public function, print."""

from __future__ import annotations

import contextlib
import dataclasses
import statistics
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.syntax import Syntax

from hptune import runner
from hptune._paths import is_sqlite_file, make_a_file_in
from hptune._secrets import scrub
from hptune.cli._app import (
    STORAGE_DEFAULT,
    Exit,
    Json,
    Storage,
    _emit_json,
    app,
    clean,
    err,
    out,
    styled,
)
from hptune.cli._progress import RunProgress, fmt, leaderboard
from hptune.exceptions import HptuneError
from hptune.metrics import TEST_ACCURACY
from hptune.runner._final import CONFIG, WEIGHTS, default_folder
from hptune.spec import StudySpec, load_spec, parse_duration, wants_lr_auto
from hptune.study import Study, TrialRecord, load_study
from hptune.study._liveness import orphaned
from hptune.study._storage import open_storage, printable_url
from hptune.study._warm import STAGE as WARM_START

SpecPath = Annotated[
    Path, typer.Argument(help="The YAML spec file.", show_default=False, metavar="SPEC")
]
Name = Annotated[str, typer.Argument(help="The study name.", show_default=False, metavar="NAME")]
PerDevice = typer.Option(
    "--trials-per-device",
    help="Most trials per GPU (default: as many as --workers needs, e.g. 2 for 2 workers "
    "on 1 GPU).",
)


def _duration_option(value: str | None) -> float | None:
    """``--timeout``'s seconds (None when not given); a bad duration is a one-line error."""
    if value is None:
        return None
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise HptuneError(f"--timeout: {exc}") from None


def _overridden(
    spec: StudySpec,
    trials: int | None,
    workers: int | None,
    storage: str | None,
    name: str | None,
    timeout: str | None,
    trials_per_device: int | None = None,
) -> StudySpec:
    changes: dict[str, Any] = {}
    budget = spec.budget
    if trials is not None:
        budget = dataclasses.replace(budget, trials=trials)
    if timeout is not None:
        budget = dataclasses.replace(budget, timeout_s=_duration_option(timeout))
    if budget != spec.budget:
        changes["budget"] = budget
    overrides = (
        ("workers", workers), ("trials_per_device", trials_per_device), ("storage", storage),
        ("name", name),
    )  # fmt: skip
    for key, value in overrides:
        if value is not None:
            changes[key] = value
    return spec.replace(**changes) if changes else spec


@contextlib.contextmanager
def _writing(path: Path, what: str) -> Iterator[None]:
    """Check ``path`` can be written (:func:`_writable`), then run the body that writes it;
    a write that fails is a one-line error naming the path, not a traceback."""
    _writable(path, what)
    try:
        yield
    except OSError as exc:
        raise _cannot_write(path, what, exc) from None


def _writable(path: Path, what: str) -> None:
    """Make the folders ``path`` goes in (as ``mkdir -p``) and check a file can be made
    there, before any work whose result it holds (a model trained for an unwritable path
    was lost). An existing SQLite database is never written over: it may be the study's
    own storage (``hptune report NAME -o hptune.db`` once replaced every trial with HTML)."""
    if is_sqlite_file(path):
        raise HptuneError(
            f"{path} is a SQLite database (a study's storage?); hptune does not write the "
            f"{what} over it: choose another path."
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        make_a_file_in(path.parent)
    except OSError as exc:
        raise _cannot_write(path, what, exc) from None


def _cannot_write(path: Path, what: str, exc: OSError) -> HptuneError:
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(path) else ""
    return HptuneError(
        f"cannot write the {what} to {path}: {exc.strerror or exc}{where}; choose another path."
    )


def _record_json(r: TrialRecord) -> dict[str, Any]:
    return dataclasses.asdict(r)


def _best_json(study: Study) -> dict[str, Any] | None:
    trials = study.trials
    done = [r for r in trials if r.state == "COMPLETE"]
    if not done:
        return None
    best = study.best_trial
    data = {
        "trial": best.number,
        "value": study.best_value,
        "config": best.config,
        "seed": best.seed,
        "attrs": best.attrs,
        "stage": best.stage,
    }
    confirmation = study.confirmation
    chosen = confirmation.best if confirmation is not None else None
    if confirmation is not None and chosen is not None:
        data["confirmed"] = {
            "mean": chosen.mean,
            "std": chosen.std,
            "seeds": len(chosen.values),
            "search_value": chosen.search_value,
            "noise": confirmation.noise,
            "readings": confirmation.n_readings,
            "test_accuracy": _fresh_mean(trials, chosen.values, TEST_ACCURACY),
        }
    return data


def _fresh_mean(trials: Iterable[TrialRecord], numbers: Iterable[int], attr: str) -> float | None:
    """The mean of ``attr`` over the trials ``numbers`` of ``trials`` (a confirmed config's
    fresh seeds); None unless each of them recorded it."""
    attrs = {r.number: r.attrs for r in trials}
    values = [attrs[n].get(attr) for n in numbers]
    if not values or any(not isinstance(v, (int, float)) for v in values):
        return None
    return statistics.fmean(values)


def _test_text(best: dict[str, Any]) -> str:
    """``, test_accuracy = 0.652``: the best trial's, or after a confirmation the mean over
    the fresh seeds whose validation mean chose it (the search run's test reading is as
    lucky as its validation reading); empty when none was recorded."""
    confirmed = best.get("confirmed")
    if confirmed is not None and confirmed["test_accuracy"] is not None:
        seeds = confirmed["seeds"]
        return (
            f", {TEST_ACCURACY} = {fmt(confirmed['test_accuracy'])} (mean of {seeds} fresh "
            f"seed{'s' * (seeds > 1)})"
        )
    test = best["attrs"].get(TEST_ACCURACY)
    if test is None:
        return ""
    return f", {TEST_ACCURACY} = {fmt(test)}" + (" (the search run's)" if confirmed else "")


def _best_value_text(best: dict[str, Any]) -> str:
    """``0.652``, or after a confirmation ``0.661 ± 0.004 (mean of 2 fresh seeds; the
    search read 0.675)``."""
    confirmed = best.get("confirmed")
    if confirmed is None:
        return fmt(best["value"])
    seeds = confirmed["seeds"]
    return (
        f"{_mean_sd(confirmed['mean'], confirmed['std'])} (mean of {seeds} fresh "
        f"seed{'s' * (seeds > 1)}; the search read {fmt(confirmed['search_value'])})"
    )


def _mean_sd(mean: float | None, sd: float | None) -> str:
    """``0.661 ± 0.004``; the mean alone without a spread."""
    return fmt(mean) + (f" ± {fmt(sd)}" if sd is not None else "")


def _confirmation_lines(study: Study) -> list[str]:
    """One line per confirmed config, best first, and the seed noise they show."""
    confirmation = study.confirmation
    if confirmation is None:
        return []
    lines = []
    for c in confirmation.configs:
        mean = f"mean {_mean_sd(c.mean, c.std)}" if c.mean is not None else "no reading"
        extra = [f"{n} {what}" for n, what in ((c.failed, "failed"), (c.pending, "to run")) if n]
        more = f", {', '.join(extra)}" if extra else ""
        lines.append(
            f"  #{c.trial}: {mean} over {len(c.values)} fresh seeds{more} "
            f"(search: {fmt(c.search_value)})"
        )
    noise = confirmation.noise
    head = "confirmation (configs re-trained with fresh seeds, best mean first)"
    if noise is not None:
        head += (
            f"; seed noise ± {fmt(noise)} (pooled sd of {confirmation.n_readings} readings): "
            "smaller differences between configs are noise"
        )
    return [head + ":", *lines]


def _copied(study: Study, best: dict[str, Any]) -> str:
    """`` (copied from study 'old' by a warm start)`` when the best trial is such a copy."""
    if best["stage"] != WARM_START or study.warm_start is None:
        return ""
    return f" (copied from study {study.warm_start['study']!r} by a warm start)"


def _state_counts(study: Study) -> dict[str, int]:
    """Trials per state, of the study's own trials (not those a warm start copied)."""
    counts: dict[str, int] = {}
    for r in study.trials:
        if r.stage != WARM_START:
            counts[r.state] = counts.get(r.state, 0) + 1
    return counts


def _warm_start_line(study: Study) -> str | None:
    """Where a warm-started study's first trials came from, in words."""
    warm = study.warm_start
    if warm is None:
        return None
    return (
        f"warm start: {warm['trials']} trials copied from study {warm['study']!r} "
        "(they count towards the best, not the budget)"
    )


def _print_best(study: Study, label: str) -> None:
    best = _best_json(study)
    if best is None:
        err.print("no trial completed; see `hptune status` for the failure reasons.")
        raise Exit(1)
    out.print(leaderboard(study))
    tested = _test_text(best)
    out.print()
    for line in _confirmation_lines(study):
        out.print(line)
    out.print(
        styled(
            (f"best trial #{best['trial']}", "bold"),
            f": {label} = {_best_value_text(best)}{tested}{_copied(study, best)}",
        )
    )
    config = clean(yaml.safe_dump(best["config"], sort_keys=False))
    out.print(Syntax(config, "yaml", theme="ansi_dark"))
    for note in study.notes:
        out.print(styled(("note:", "yellow"), f" {note}"))


def _lr_auto_line(study: Study) -> str | None:
    """``lr: auto = loguniform(a, b), from the LR range test (adam: suggested 0.0123, ...)``"""
    found = study.optuna_study.user_attrs.get(runner.LR_AUTO_ATTR)
    if found is None:
        return None
    low, high = found["range"]
    each = ", ".join(
        f"{name}: {fmt(o['lr'])} in {fmt(o['range'][0])}-{fmt(o['range'][1])}"
        if o["range"] is not None
        else f"{name}: no range"
        for name, o in found["optimizers"].items()
    )
    return f"lr: auto = loguniform({fmt(low)}, {fmt(high)}) from the LR range test ({each})"


def _value_label(spec: StudySpec) -> str:
    """What a trial's value is called: the spec's metric, except for a task that is a
    full objective whose spec names no metric (its value is whatever it returns)."""
    return runner.metric_name(spec) or "value"


#: How each stop reads, for a run's last line and `hptune status`.
STOP_WORDS = {
    "trials": "the number of trials it was asked for had started",
    "timeout": "its timeout passed",
    "budget": "the trial budget was reached",
    "budget_spent": "the trial budget was already spent",
    "exhausted": "nothing was left to run",
    "interrupted": "it was interrupted",
    "storage_failed": "the storage failed",
}


def _stop_line(study: Study, spec: StudySpec | None = None) -> str | None:
    stop = study.last_stop
    if not stop:
        return None
    words = STOP_WORDS.get(stop["reason"], stop["reason"])
    budget = spec.budget.trials if spec is not None else None
    counted = f"{stop['trials']} of {budget}" if budget else str(stop["trials"])
    return f"stopped: {words} ({counted} trials count, at {stop['at']}){_more(stop['reason'])}"


def _n_finished(study: Study) -> int:
    """The study's finished trials (a run's trials all finish, one way or another; a grid
    enqueues its points as waiting ones before any runs)."""
    return sum(t.state.is_finished() for t in study.optuna_study.get_trials(deepcopy=False))


def _more(reason: str) -> str:
    """What to do after a run that found its budget spent."""
    return "; raise --trials or budget.trials to run more" if reason == "budget_spent" else ""


def _run(study: Study, spec: StudySpec, json_out: bool) -> None:
    """Run a prepared study (checked and opened before anything is drawn: a bad spec,
    storage or changed spec is one line of error, not a half-drawn progress bar)."""
    label = _value_label(spec)
    if json_out:
        reason = runner.optimize(study, spec)
        _emit_json(
            {
                "study": study.name,
                "stopped": reason.value,
                "states": _state_counts(study),
                "best": _best_json(study),
            }
        )
        return
    done = study.n_counted_trials
    verb = "continuing" if done else "running"
    workers = f"{spec.workers} worker{'s' * (spec.workers > 1)}"
    out.print(
        styled(
            f"{verb} study ",
            (spec.name, "bold"),
            f" ({spec.task}, {spec.strategy}/{spec.pruner}, {workers}) in "
            f"{printable_url(spec.storage)}",
        )
    )
    lr_line = _lr_auto_line(study)
    if lr_line is not None:
        out.print(lr_line)
    before = _n_finished(study)
    with RunProgress(out, study, spec.budget.trials) as progress:
        reason = runner.optimize(study, spec, progress)
    _print_best(study, label)
    stop = _stop_line(study, spec)
    if stop is not None:
        out.print(stop)
    if _n_finished(study) == before:
        # The stop above is the run before's; this one started nothing.
        out.print(
            f"nothing run now: {STOP_WORDS.get(reason.value, reason.value)}{_more(reason.value)}"
        )
    confirmation = study.confirmation
    if spec.confirm is not None and (confirmation is None or confirmation.best is None):
        n = spec.confirm["top"] * spec.confirm["seeds"]
        out.print(
            styled(
                ("note:", "yellow"),
                f" the confirmation has not run (it takes the last {n} trials of the budget), "
                "so the best is the search's single best reading; `hptune resume` runs it.",
            )
        )


@app.command()
def run(
    spec_path: SpecPath,
    trials: Annotated[int | None, typer.Option(help="Trial budget (total for the study).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Trials at once, in worker processes.")
    ] = None,
    trials_per_device: Annotated[int | None, PerDevice] = None,
    storage: Annotated[str | None, typer.Option(help="Study database URL.")] = None,
    name: Annotated[str | None, typer.Option(help="Study name (default: the spec's).")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="No new trial after this: 90s, 15m, 2h.")
    ] = None,
    retries: Annotated[
        int | None, typer.Option(help="Attempts after the first for an interrupted trial.")
    ] = None,
    json_out: Json = False,
) -> None:
    """Run the study a spec describes (continuing it if it exists) and print the best."""
    spec = _overridden(
        load_spec(spec_path), trials, workers, storage, name, timeout, trials_per_device
    )
    if retries is not None:
        spec = spec.replace(retries=retries)
    if not json_out and runner.lr_test_due(spec):
        out.print("lr: auto: running the LR range test for the new study ...")
    _run(runner.prepare(spec), spec, json_out)


@app.command()
def validate(spec_path: SpecPath, json_out: Json = False) -> None:
    """Check a spec without running anything."""
    spec = load_spec(spec_path)
    runner.check_spec(spec)
    if json_out:
        _emit_json({"valid": True, "spec": runner.spec_to_dict(spec)})
        return
    extras = []
    if spec.confirm is not None:
        extras.append(f"confirm top {spec.confirm['top']} x {spec.confirm['seeds']} seeds")
    if wants_lr_auto(spec.space):
        extras.append("lr: auto (its range test runs when the study is created)")
    more = "".join(f", {e}" for e in extras)
    out.print(
        f"{spec_path}: ok — study '{spec.name}', task {spec.task}, "
        f"{spec.strategy}/{spec.pruner}{more}"
    )


@app.command()
def resume(
    name: Name,
    storage: Storage = STORAGE_DEFAULT,
    workers: Annotated[int | None, typer.Option(help="Trials at once.")] = None,
    retries: Annotated[
        int | None,
        typer.Option(help="Attempts after the first for an interrupted or stale trial [1]."),
    ] = None,
    trials_per_device: Annotated[int | None, PerDevice] = None,
    timeout: Annotated[
        str | None, typer.Option(help="No new trial after this: 90s, 15m, 2h [the spec's].")
    ] = None,
    json_out: Json = False,
) -> None:
    """Continue a study with the spec it was run from until its budget is spent, running
    its interrupted and stale trials again (same config and seed)."""
    study, spec = runner.prepare_resume(
        name,
        storage,
        workers=workers,
        retries=retries,
        trials_per_device=trials_per_device,
        timeout_s=_duration_option(timeout),
    )
    _run(study, spec, json_out)


@app.command("ls")
def list_studies(storage: Storage = STORAGE_DEFAULT, json_out: Json = False) -> None:
    """List the studies in a storage."""
    import optuna

    opened = open_storage(storage, create=False)
    try:
        summaries = optuna.get_all_study_summaries(opened, include_best_trial=True)
    except Exception as exc:
        raise HptuneError(
            f"cannot open storage {printable_url(storage)!r}: {scrub(str(exc), storage)}"
        ) from exc
    rows = [
        {
            "name": s.study_name,
            "trials": s.n_trials,
            "direction": s.direction.name.lower(),
            "best": None if s.best_trial is None else s.best_trial.value,
            "started": s.datetime_start,
        }
        for s in summaries
    ]
    if json_out:
        _emit_json(rows)
        return
    if not rows:
        out.print(f"no studies in {printable_url(storage)}")
        return
    from rich.table import Table

    table = Table(title=printable_url(storage), title_justify="left")
    for col in ("name", "trials", "direction", "best", "started"):
        table.add_column(col)
    for r in rows:
        started = r["started"].strftime("%Y-%m-%d %H:%M") if r["started"] else "-"
        table.add_row(r["name"], str(r["trials"]), r["direction"], fmt(r["best"]), started)
    out.print(table)


@app.command()
def status(name: Name, storage: Storage = STORAGE_DEFAULT, json_out: Json = False) -> None:
    """Trials per state, the best so far and the time spent."""
    from hptune.report._advice import failure_groups

    study = load_study(name, storage)
    trials = [r for r in study.trials if r.stage != WARM_START]
    counts = _state_counts(study)
    compute_s = sum(r.duration or 0.0 for r in trials)
    # Reasons that differ only in numbers (the epoch, the loss) are one group, as in the report.
    groups = failure_groups(trials)
    failures = {reason: len(group) for reason, group in groups}
    data = {
        "study": name,
        "direction": study.direction,
        "trials": len(trials),
        "states": counts,
        "best": _best_json(study),
        "compute_s": compute_s,
        "failures": failures,
        "notes": study.notes,
        "stopped": study.last_stop,
        "warm_start": study.warm_start,
    }
    if json_out:
        _emit_json(data)
        return
    states = ", ".join(f"{k.lower()} {v}" for k, v in sorted(counts.items())) or "no trials"
    out.print(styled((name, "bold"), f" ({study.direction}): {len(trials)} trials: {states}"))
    warm = _warm_start_line(study)
    if warm is not None:
        out.print(warm)
    best = data["best"]
    if best:
        out.print(f"best: trial #{best['trial']} = {_best_value_text(best)}")
    for line in _confirmation_lines(study):
        out.print(line)
    orphans = sum(map(orphaned, study.optuna_study.get_trials(deepcopy=False)))
    if orphans:
        out.print(
            f"  {orphans} of the running trials lost their driver (its process is gone); "
            "`hptune resume` runs them again"
        )
    out.print(f"time spent in trials: {compute_s:.1f} s")
    for reason, group in groups:
        alike = len({r.failure_reason for r in group}) > 1
        more = f" (and {len(group) - 1} alike, numbers differ)" if alike else ""
        out.print(f"  failed ×{len(group)}: {reason}{more}")
    for note in study.notes:
        out.print(f"note: {note}")
    stop = _stop_line(study)
    if stop is not None:
        out.print(stop)


@app.command()
def best(
    name: Name,
    storage: Storage = STORAGE_DEFAULT,
    export: Annotated[
        Path | None, typer.Option(help="Write the best config to this YAML file.")
    ] = None,
    json_out: Json = False,
) -> None:
    """The best trial's config (optionally exported as YAML)."""
    study = load_study(name, storage)
    data = _best_json(study)
    if data is None:
        raise HptuneError(f"study {name!r} has no completed trial yet.")
    if export is not None:
        with _writing(export, "best config"):
            study.export_best(export)
    if json_out:
        _emit_json(data)
        return
    copied = _copied(study, data)
    value = _best_value_text(data)
    for line in _confirmation_lines(study):
        out.print(line)
    out.print(
        f"best trial #{data['trial']}: {value}{_test_text(data)} (seed {data['seed']}){copied}"
    )
    out.print(Syntax(yaml.safe_dump(data["config"], sort_keys=False), "yaml", theme="ansi_dark"))
    if export is not None:
        out.print(f"written to {export}")


def _confirmed_line(study: Study, r: TrialRecord) -> list[str]:
    """For a search trial whose config was confirmed: its fresh seeds' mean and spread."""
    confirmation = study.confirmation
    for c in confirmation.configs if confirmation is not None else ():
        if c.trial == r.number and c.values:
            trials = ", ".join(f"#{n}" for n in c.values)
            return [f"confirmed: mean {_mean_sd(c.mean, c.std)} over fresh seeds ({trials})"]
    return []


def _record(study: Study, number: int) -> TrialRecord:
    for r in study.trials:
        if r.number == number:
            return r
    raise HptuneError(f"study {study.name!r} has no trial {number}.")


@app.command()
def show(
    name: Name,
    trial: Annotated[int, typer.Argument(help="The trial number.", metavar="TRIAL")],
    storage: Storage = STORAGE_DEFAULT,
    json_out: Json = False,
) -> None:
    """Everything recorded about one trial."""
    study = load_study(name, storage)
    r = _record(study, trial)
    if json_out:
        _emit_json(_record_json(r))
        return
    out.print(
        styled(
            (f"trial #{r.number}", "bold"),
            f" {r.state} value={fmt(r.value)} seed={r.seed} duration={fmt(r.duration)}s "
            f"stage={r.stage or '-'}",
        )
    )
    if r.failure_reason:
        kind = r.failure_kind.value if r.failure_kind else "error"
        out.print(f"failure ({kind}): {r.failure_reason}")
    if r.repeat_of is not None:
        out.print(f"re-trains trial #{r.repeat_of}'s config with a fresh seed (confirmation)")
    for line in _confirmed_line(study, r):
        out.print(line)
    out.print(Syntax(yaml.safe_dump(r.config, sort_keys=False), "yaml", theme="ansi_dark"))
    if r.intermediate_values:
        curve = ", ".join(f"{k}: {fmt(v)}" for k, v in sorted(r.intermediate_values.items()))
        out.print(f"curve: {curve}")
    if r.attrs:
        out.print("attrs: " + ", ".join(f"{k}={fmt(v)}" for k, v in sorted(r.attrs.items())))
    if r.runtime:
        runtime = ", ".join(f"{k}={v}" for k, v in r.runtime.items())
        out.print(f"runtime: {runtime}")
    if r.env:
        out.print("env: " + ", ".join(f"{k}={v}" for k, v in r.env.items() if v is not None))


@app.command()
def rerun(
    name: Name,
    trial: Annotated[int, typer.Argument(help="The trial number.", metavar="TRIAL")],
    storage: Storage = STORAGE_DEFAULT,
    json_out: Json = False,
) -> None:
    """Run one trial again with its config and seed and check it does what it did: the same
    value, the same value where it was pruned, or the same failure."""
    study = load_study(name, storage)
    record = runner.check_rerun(study, trial)  # before saying "re-running"
    unit = study.optuna_study.user_attrs.get(runner.STEP_UNIT_ATTR, "step")
    if not json_out:
        stop = ""
        if record.state == "PRUNED":
            stop = f", stopping after {unit} {max(record.intermediate_values)} as the pruner did"
        out.print(
            f"re-running trial #{trial} of {name} with its recorded config and seed{stop} ..."
        )
    result = runner.rerun(study, trial)
    if json_out:
        _emit_json(dataclasses.asdict(result) | {"identical": result.identical})
        if not result.identical:
            raise Exit(1)
        return
    at = f" (at {unit} {result.step})" if result.step is not None else ""
    original = result.original_reason if result.original_state == "FAILED" else None
    out.print(f"original: {_outcome(result.original, original)}{at}")
    out.print(f"rerun:    {_outcome(result.new, result.reason)}{at}")
    out.print(styled("identical") if result.identical else styled(("different", "yellow")))
    if not result.identical:
        raise Exit(1)


def _outcome(value: float | None, failure: str | None) -> str:
    return f"failed: {failure}" if failure else fmt(value)


@app.command("train-best")
def train_best(
    name: Name,
    storage: Storage = STORAGE_DEFAULT,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Folder for model.pt and config.yaml."),
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Epochs [the study's].")] = None,
    on: Annotated[
        str, typer.Option("--on", help="train (the trial again) or train+val (last epoch kept).")
    ] = "train",
    seed: Annotated[int | None, typer.Option(help="Training seed [the best trial's].")] = None,
    json_out: Json = False,
) -> None:
    """Train the best config again and save the model (model.pt) with its config
    (config.yaml): on the train split as its trial did, or on train+val."""
    study = load_study(name, storage)
    best = study.best_trial
    folder = output if output is not None else default_folder(study)
    runner.check_train_best(epochs, on, seed)
    with _writing(folder / WEIGHTS, "model"):
        if not json_out:
            out.print(f"training trial #{best.number}'s config of {name} on {on} ...")
        saved = runner.train_best(study, folder, epochs=epochs, train_on=on, seed=seed)
    if json_out:
        _emit_json({"folder": str(saved.folder), **saved.info})
        return
    info = saved.info
    shown = ", ".join(f"{k} = {fmt(v)}" for k, v in info["metrics"].items())
    out.print(f"{info['epochs']} epochs, seed {info['seed']}, {info['weights']} kept: {shown}")
    out.print(f"saved {saved.weights} and {saved.folder / CONFIG}")


@app.command("lr-find")
def lr_find_command(
    spec_path: SpecPath,
    plot: Annotated[Path, typer.Option(help="Where to save the loss-vs-LR plot.")] = Path(
        "lr-find.png"
    ),
    n_steps: Annotated[int, typer.Option(help="Steps of the exponential LR sweep.")] = 100,
    json_out: Json = False,
) -> None:
    """LR range test (Smith 2017) on the spec's task: a suggested LR and search range."""
    from hptune.tasks import Task, get_task, resolve_task
    from hptune.training import lr_find

    spec = load_spec(spec_path)
    if not isinstance(resolve_task(spec.task), Task):
        raise HptuneError(f"task {spec.task!r} is a full objective; lr-find needs a model task.")
    config = runner.representative_config(spec)
    if not json_out:
        shown = {k: v for k, v in config.items() if k != "lr"}
        out.print(f"LR range test on {spec.task} with {shown} ...")
    _writable(plot, "plot")  # before the test, not after it
    result = lr_find(get_task(spec.task), config, seed=spec.seed or 0, n_steps=n_steps)
    with _writing(plot, "plot"):
        result.plot(plot)
    span = result.suggested_range
    # Why the test found nothing to suggest, in words (newer LRFinderResult has it).
    why = getattr(result, "no_suggestion_reason", None)
    if json_out:
        _emit_json(
            {
                "suggested_lr": result.suggested_lr,
                "suggested_range": None if span is None else list(span),
                "no_suggestion_reason": why,
                "stop_reason": result.stop_reason,
                "plot": str(plot),
            }
        )
        return
    for line in _lr_find_lines(result.suggested_lr, span, why):
        out.print(line)
    out.print(f"stopped: {result.stop_reason}; plot saved to {plot}")


def _lr_find_lines(lr: float | None, span: Any, why: str | None) -> list[str]:
    """What the LR range test suggests, and a line saying so when it found nothing."""
    lines = []
    if lr is not None:
        lines.append(f"suggested lr: {lr:.3g}")
    if span is not None:
        lines.append(f"search range: loguniform({span[0]:.3g}, {span[1]:.3g})")
    if lr is None or span is None:
        missing = "search range" if lr is not None else "suggested lr or search range"
        reason = why or "the loss never fell steadily over a stretch of LRs"
        lines.append(f"no {missing}: {reason}; read the curve in the plot")
    return lines


@app.command()
def report(
    name: Name,
    storage: Storage = STORAGE_DEFAULT,
    output: Annotated[Path, typer.Option("-o", "--output", help="The HTML file.")] = Path(
        "report.html"
    ),
    json_out: Json = False,
) -> None:
    """One self-contained HTML report: plots, leaderboard and advice."""
    from hptune.report import advise, write_report

    study = load_study(name, storage)
    with _writing(output, "report"):
        path = write_report(study, output)
    advice = advise(study)
    if json_out:
        _emit_json({"report": str(path), "advice": [dataclasses.asdict(a) for a in advice]})
        return
    out.print(f"report written to {path}")
    for item in advice:
        out.print(f"advice: {item.message}")


@app.command()
def plot(
    name: Name,
    kind: Annotated[
        str, typer.Option(help="history, curves, lr, params, parallel or importance.")
    ] = "history",
    storage: Storage = STORAGE_DEFAULT,
    output: Annotated[
        Path, typer.Option("-o", "--output", help="The file: .png, .svg or .pdf.")
    ] = Path("plot.png"),
    json_out: Json = False,
) -> None:
    """A single plot of a study as PNG, SVG or PDF."""
    from hptune.report import plot as draw

    study = load_study(name, storage)
    with _writing(output, "plot"):
        path = draw(study, kind, output)
    if json_out:
        _emit_json({"plot": str(path), "kind": kind})
        return
    out.print(f"{kind} plot written to {path}")
