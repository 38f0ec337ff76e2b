"""The HTML report: one self-contained file, readable offline for years.

Everything is inside the file: inline CSS, plots as base64 PNG data URIs, no script, no
font, no link to anywhere outside the page. Every string that comes from the user (study
name, parameter names, config values, failure reasons, notes) goes through
:func:`html.escape`.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hptune._secrets import printable_url
from hptune.exceptions import ConfigError
from hptune.metrics import TEST_ACCURACY
from hptune.report import _summary
from hptune.report._advice import Advice, advice_for, distinct_configs
from hptune.report._css import CSS
from hptune.report._data import Empty, ReportData, fmt, fmt_seconds, gather, require_matplotlib
from hptune.report._plots import importance_figure, png, render
from hptune.study import Study

#: Section ids, in page order (the tests and any link into a report rely on them).
SECTIONS = (
    ("summary", "Summary"),
    ("advice", "Advice"),
    ("leaderboard", "Leaderboard"),
    ("confirmation", "Confirmation"),
    ("history", "Optimization history"),
    ("curves", "Learning curves"),
    ("params", "Objective against each parameter"),
    ("parallel", "Parallel coordinates"),
    ("importance", "Parameter importance"),
    ("failures", "Failed trials"),
    ("best-config", "Best config"),
    ("spec", "Spec"),
)
#: Parameters shown as leaderboard columns; more are listed in one column.
_MAX_PARAM_COLUMNS = 6


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def write_report(study: Study, path: str | Path, *, top_n: int = 10, dpi: int = 100) -> Path:
    """Write the HTML report of ``study`` to ``path``: summary, advice, leaderboard,
    optimization history, learning curves, the objective against each parameter,
    parallel coordinates, parameter importance, failed trials, the best config as YAML and
    the spec the study was run from. Works on any study: empty, all failed, a single trial.

    Args:
        study: The study (``hptune.load_study(name, storage)`` opens a stored one).
        path: The HTML file to write.
        top_n: Rows of the leaderboard.
        dpi: Resolution of the plots.

    Returns:
        The path written.

    Example:
        >>> from hptune.space import loguniform
        >>> from hptune.study import create_study
        >>> study = create_study({"lr": loguniform(1e-4, 1e-1)}, storage=None, seed=0,
        ...                      direction="maximize")
        >>> study.optimize(lambda config, trial: -abs(config["lr"] - 3e-3), n_trials=8)
        <StopReason.TRIALS: 'trials'>
        >>> write_report(study, "report.html")  # doctest: +SKIP
        PosixPath('report.html')
    """
    for key, value in (("top_n", top_n), ("dpi", dpi)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"write_report: {key} must be an int >= 1, got {value!r}.")
    require_matplotlib()  # fail before any work, with the install hint
    data = gather(study)
    bodies = _bodies(data, top_n, dpi)
    page = _page(data, [(sid, title, bodies[sid]()) for sid, title in SECTIONS])
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path


def _bodies(data: ReportData, top_n: int, dpi: int) -> dict[str, Callable[[], str]]:
    return {
        "summary": lambda: _summary_html(data),
        "advice": lambda: _advice_html(data, advice_for(data)),
        "leaderboard": lambda: _leaderboard_html(data, top_n),
        "confirmation": lambda: _confirmation_html(data),
        "history": lambda: _plot_html("history", data, dpi),
        "curves": lambda: _plot_html("curves", data, dpi, _curves_note(data)),
        "params": lambda: _plot_html("params", data, dpi, _params_note(data.step_unit)),
        "parallel": lambda: _plot_html("parallel", data, dpi),
        "importance": lambda: _importance_html(data, dpi),
        "failures": lambda: _failures_html(data),
        "best-config": lambda: _best_config_html(data),
        "spec": lambda: _spec_html(data),
    }


def _curves_note(data: ReportData) -> str:
    """How to read the pruned curves, when there are any."""
    if not any(t.state == "PRUNED" for t in data.trials):
        return ""
    return "Pruned trials are dashed orange and end at an x where the pruner cut them."


def _params_note(unit: str) -> str:
    return (
        "Filled blue: complete trials, the star the best. Hollow orange: pruned trials at the "
        f"value they last reported, at the {unit} the pruner cut them (lighter = cut earlier): "
        f"a reading after fewer {unit}s, not comparable with a complete trial's value, but "
        "evidence of where the search went. Red crosses: diverged trials (no value). Dashed "
        "lines: the range bounds."
    )


def _page(data: ReportData, sections: list[tuple[str, str, str]]) -> str:
    nav = "".join(f'<a href="#{sid}">{esc(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(
        f'<section id="{sid}"><h2>{esc(title)}</h2>\n{content}</section>'
        for sid, title, content in sections
    )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>hptune report: {esc(data.name)}</title>\n<style>{CSS}</style>\n</head>\n"
        f'<body>\n<header><p class="kicker">hptune study report</p>'
        f"<h1>{esc(data.name)}</h1><nav>{nav}</nav></header>\n<main>\n{body}\n</main>\n"
        "</body>\n</html>\n"
    )


def _note(message: str) -> str:
    return f'<p class="note">{esc(message)}</p>'


# -- summary ------------------------------------------------------------------------------------


def _summary_html(data: ReportData) -> str:
    best, spent = data.best, _summary.compute(data)
    states = "".join(
        f'<span class="chip {s.lower()}">{n} {s.lower()}</span>'
        for s, n in _summary.state_counts(data).items()
    )
    cards = [
        ("Direction", esc(data.direction)),
        ("Best value", _best_value_html(data)),
        ("Trials", f"{len(data.trials)} {states}"),
        (
            "Compute spent",
            f"{spent.n_steps} {esc(data.step_unit)}s reported<br>"
            f"<small>trial time {esc(fmt_seconds(spent.seconds))}</small>",
        ),
        ("Saved by pruning", _saved_html(spent, data.step_unit)),
    ]
    grid = "".join(f'<div class="card"><h3>{k}</h3><p>{v}</p></div>' for k, v in cards)
    parts = [f'<div class="cards">{grid}</div>']
    stopped = _summary.stop_sentence(data)
    if stopped is not None:
        parts.append(f'<p class="stop">{esc(stopped)}</p>')
    warm = _summary.warm_start_sentence(data)
    if warm is not None:
        parts.append(f'<p class="stop">{esc(warm)}</p>')
    if best is not None:
        parts.append(f"<p>Best config (trial {best.number}): {_inline_config(best.params)}</p>")
    else:
        parts.append(_note("No trial has completed yet, so there is no best value or config."))
    parts += [f'<p class="note">Strategy note: {esc(n)}</p>' for n in data.notes]
    return "\n".join(parts)


def _best_value_html(data: ReportData) -> str:
    best = data.best
    if best is None:
        return "—"
    chosen = data.confirmation.best if data.confirmation is not None else None
    if chosen is None or chosen.mean is None:
        return f"{esc(fmt(best.value))} <small>trial {best.number}</small>"
    spread = f" ± {esc(fmt(chosen.std))}" if chosen.std is not None else ""
    n = len(chosen.values)
    return (
        f"{esc(fmt(chosen.mean))}{spread} <small>trial {best.number}'s config, mean of {n} "
        f"fresh seed{'s' * (n > 1)} (the search read {esc(fmt(chosen.search_value))})</small>"
    )


def _saved_html(spent: _summary.Compute, unit: str) -> str:
    unit = esc(unit)
    if spent.full_budget is None:
        return f"—<br><small>no complete trial reported {unit}s</small>"
    share = spent.saved_fraction or 0.0
    return (
        f"{spent.n_steps_saved} {unit}s ({share:.0%})<br><small>full budget taken as "
        f"{spent.full_budget} {unit}s, the most a complete trial reached</small>"
    )


def _inline_config(params: dict[str, Any]) -> str:
    return (
        " ".join(f'<code class="param">{esc(k)}={esc(fmt(v))}</code>' for k, v in params.items())
        or "—"
    )


# -- advice -------------------------------------------------------------------------------------


def _advice_html(data: ReportData, advice: list[Advice]) -> str:
    if not advice:
        return _note(_no_advice(data))
    items = "".join(
        f'<li class="advice {esc(a.kind)}"><span class="badge">{esc(a.kind.replace("_", " "))}</span> '
        f"{esc(a.message)}<details><summary>evidence</summary>{_evidence(a.evidence)}</details></li>"
        for a in advice
    )
    return f'<ul class="advice-list">{items}</ul>'


def _no_advice(data: ReportData) -> str:
    """Why there is no advice, saying which checks could run on these trials."""
    n = len(distinct_configs(data))
    if not n:
        return "No advice: no trial has completed yet."
    ranges = (
        "the best trials crowd no bound of a range"
        if n >= 3
        else f"too few configs have completed to judge the ranges ({n}; the check needs 3)"
    )
    failed = any(t.state == "FAILED" for t in data.trials)
    return (
        f"No advice: {ranges}; {'failures are rare' if failed else 'no trial failed'}; no "
        "config was trained twice, so the seed noise is unknown (a spec's confirm: measures "
        "it)."
    )


def _evidence(evidence: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{esc(k)}</th><td><code>{esc(json.dumps(v, ensure_ascii=False, default=str))}</code></td></tr>"
        for k, v in evidence.items()
    )
    return f'<table class="evidence">{rows}</table>'


# -- leaderboard ----------------------------------------------------------------------------------


def _leaderboard_html(data: ReportData, top_n: int) -> str:
    rows = _summary.leaderboard(data, top_n)
    if not rows:
        return _note("No trial has a value yet.")
    names = [n for n, _ in data.dimensions if any(n in t.params for t in rows)]
    columns = names if len(names) <= _MAX_PARAM_COLUMNS else []
    has_test = any(TEST_ACCURACY in t.attrs for t in rows)
    head = ["#", "trial", "value", *(["test accuracy"] if has_test else []), "state"]
    head += map(esc, columns)
    head += [] if columns else ["parameters"]
    head.append("duration")
    body = []
    for rank, t in enumerate(rows, 1):
        number = str(t.number)
        if t.repeat_of is not None:
            number += f" <small>(#{t.repeat_of})</small>"
        cells = [
            str(rank),
            number,
            esc(fmt(t.value)),
            *([esc(fmt(t.attrs.get(TEST_ACCURACY, "—")))] if has_test else []),
            f'<span class="chip {t.state.lower()}">{t.state.lower()}</span>',
        ]
        if columns:
            cells += [esc(fmt(t.params[n])) if n in t.params else "—" for n in columns]
        else:
            cells.append(_inline_config(t.params))
        cells.append(esc(fmt_seconds(t.duration)) if t.duration is not None else "—")
        body.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    caption = (
        "Complete trials ranked by value; pruned ones (ranked by their last value) fill the rest."
    )
    if any(t.repeat_of is not None for t in rows):
        caption += " (#n): a confirmation trial, trial n's config with a fresh seed."
    if has_test:
        caption += (
            " Test accuracy: on the held-out test split, of the epoch the value comes from; "
            "for reading, not for choosing (choose by the value)."
        )
    return f'<table class="board"><thead>{table}</thead><tbody>{"".join(body)}</tbody></table>{_note(caption)}'


def _confirmation_html(data: ReportData) -> str:
    confirmation = data.confirmation
    if confirmation is None:
        return _note(
            "No config was confirmed: the best value is the single best reading of the search, "
            "which is biased upwards by seed noise. Add confirm: {top: 3, seeds: 2} to the "
            "spec to re-train the best configs with fresh seeds and choose by the mean."
        )
    head = ["#", "trial", "search value", "fresh mean", "sd", "fresh seeds", "failed", "to run"]
    body = []
    for rank, c in enumerate(confirmation.configs, 1):
        readings = ", ".join(f"{fmt(v)} <small>(#{n})</small>" for n, v in c.values.items())
        cells = [
            str(rank),
            str(c.trial),
            esc(fmt(c.search_value)),
            esc(fmt(c.mean)) if c.mean is not None else "—",
            esc(fmt(c.std)) if c.std is not None else "—",
            readings or "—",
            str(c.failed),
            str(c.pending),
        ]
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in cells) + "</tr>")
    table = "<tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"
    noise = confirmation.noise
    words = (
        f"Seed noise: ± {fmt(noise)} (the pooled standard deviation of "
        f"{confirmation.n_readings} fresh readings); configs whose means differ by less are "
        "not told apart by this study."
        if noise is not None
        else "Seed noise: unknown (it needs two fresh readings of one config)."
    )
    caption = (
        "The search's best configs, each re-trained with fresh seeds and never pruned, ranked "
        "by their fresh mean (a config with a failed seed ranks last). The search value picked "
        f"them and is left out of the mean: it is biased upwards. {words}"
    )
    return (
        f'<table class="board"><thead>{table}</thead><tbody>{"".join(body)}</tbody></table>'
        f"{_note(caption)}"
    )


# -- plots --------------------------------------------------------------------------------------


def _img(png_bytes: bytes, alt: str) -> str:
    encoded = base64.b64encode(png_bytes).decode("ascii")
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{encoded}">'


def _plot_html(kind: str, data: ReportData, dpi: int, caption: str | None = None) -> str:
    try:
        image = _img(render(kind, data, dpi), f"{kind} plot")
    except Empty as why:
        return _note(f"Nothing to show: {why}")
    return image + (_note(caption) if caption else "")


def _importance_html(data: ReportData, dpi: int) -> str:
    result = _summary.importance(data)
    try:
        image = _img(png(lambda: importance_figure(result), dpi), "importance plot")
    except Empty as why:
        return _note(f"Nothing to show: {why}")
    unit = data.step_unit
    basis = (
        f"Evaluator: {result.method}, Optuna's default, the one optuna-dashboard uses, with the "
        f"same settings, so the two show the same numbers. It rests on the {result.n_trials} "
        "complete trials"
    )
    if result.n_pruned:
        basis += (
            f"; the {result.n_pruned} pruned trials are left out: their last values were read "
            f"after fewer {unit}s and are not comparable with a finished trial's"
        )
    parts = [image, _note(basis + "."), _note(result.note) if result.note else ""]
    if result.caveats:
        items = "".join(f"<li>{esc(c)}</li>" for c in result.caveats)
        parts.append(f'<ul class="caution">{items}</ul>')
    return "".join(parts)


# -- failures and best config ---------------------------------------------------------------------


def _failures_html(data: ReportData) -> str:
    failed = [t for t in data.trials if t.state == "FAILED"]
    if not failed:
        return _note("No trial failed.")
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{'diverged' if t.number in data.diverged else 'error'}</td>"
        f"<td><code>{esc(t.failure_reason or 'no reason recorded')}</code></td>"
        f"<td>{_inline_config(t.params)}</td></tr>"
        for t in failed
    )
    head = "<tr><th>trial</th><th>kind</th><th>reason</th><th>parameters</th></tr>"
    return f'<table class="board"><thead>{head}</thead><tbody>{rows}</tbody></table>'


def _best_config_html(data: ReportData) -> str:
    best = data.best
    if best is None:
        return _note("No trial has completed yet.")
    name = " ".join(data.name.split())  # a newline in the name would end the YAML comment
    chosen = data.confirmation.best if data.confirmation is not None else None
    value = fmt(best.value)
    if chosen is not None and chosen.mean is not None:
        value = f"{fmt(chosen.mean)} (mean of {len(chosen.values)} fresh seeds)"
    header = f"# study {name}, trial {best.number}, value {value}, seed {best.seed}\n"
    text = header + yaml.safe_dump(best.config, sort_keys=False, allow_unicode=True)
    return f"<pre><code>{esc(text)}</code></pre>" + _note(
        "Copy it into a YAML spec or pass it to your training function as a dict."
    )


def _spec_html(data: ReportData) -> str:
    if data.spec is None:
        return _note("This study was not run from a spec (it was made in Python): none to show.")
    spec = dict(data.spec)
    if isinstance(spec.get("storage"), str):
        spec["storage"] = printable_url(spec["storage"])
    text = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True)
    return (
        "<details><summary>The spec of its last run, command-line overrides applied "
        f"(YAML)</summary><pre><code>{esc(text)}</code></pre></details>"
    )
