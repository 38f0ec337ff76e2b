"""The HTML report: self-contained, every section, escaped, exact summary numbers, any
study shape, still readable by Optuna, and really rendered by a browser."""

from __future__ import annotations

import base64
import html
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import optuna
import pytest
import yaml

import hptune.report
from hptune.exceptions import ConfigError, HptuneError
from hptune.report import write_report
from hptune.space import choice, uniform
from hptune.study import create_study, load_study
from hptune.trial import TrialPruned
from tests.conftest import skip_or_fail
from tests.report.conftest import SCRIPT_KEY, sqlite_url

SECTION_IDS = [
    "summary",
    "advice",
    "leaderboard",
    "confirmation",
    "history",
    "curves",
    "params",
    "parallel",
    "importance",
    "failures",
    "best-config",
    "spec",
]


def _section(page: str, sid: str) -> str:
    match = re.search(rf'<section id="{sid}">(.*?)</section>', page, re.S)
    assert match, f"no section {sid}"
    return match.group(1)


def _assert_self_contained(page: str) -> None:
    assert not re.search(r"https?://", page)
    assert not re.search(r"""(src|href)\s*=\s*["']?//""", page, re.I)
    assert not re.search(r"<script", page, re.I)
    assert not re.search(r"url\(|@import|<link|<iframe", page, re.I)
    # Every image is an embedded PNG that decodes.
    for data in re.findall(r'<img [^>]*src="([^"]*)"', page):
        assert data.startswith("data:image/png;base64,")
        assert base64.b64decode(data.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained_and_has_every_section(curve_report):
    page = curve_report.read_text(encoding="utf-8")
    _assert_self_contained(page)
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    for sid in SECTION_IDS:
        assert f'href="#{sid}"' in page  # the table of contents links to it
    # history, curves, params, parallel and importance each carry a plot on this study.
    for sid in ("history", "curves", "params", "parallel", "importance"):
        assert _section(page, sid).count("<img ") == 1, sid
    # Without a confirmation the report says what the best value is, and how to confirm it.
    assert "No config was confirmed" in _section(page, "confirmation")
    assert "confirm: {top: 3, seeds: 2}" in _section(page, "confirmation")


def test_the_pruned_curves_are_explained_when_there_are_some(curve_report):
    curves = _section(curve_report.read_text(), "curves")
    assert "Pruned trials are dashed orange" in curves  # the fixture prunes some


def test_user_strings_are_escaped(curve_report):
    page = curve_report.read_text(encoding="utf-8")
    # The parameter name "<script>alert(1)</script>" and the study name "curves <b>& co</b>".
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<b>" not in page and "curves &lt;b&gt;&amp; co&lt;/b&gt;" in page


def test_escaping_of_values_reasons_and_notes(tmp_path):
    study = create_study(
        {"act": choice("<i>relu</i>", "gelu"), "x": uniform(0, 1, grid=[0.5])},
        name="esc",
        storage=sqlite_url(tmp_path),
        strategy="grid",
        pruner="none",
        strategy_options={"shuffle": False},
        seed=0,
        direction="maximize",
    )

    def objective(config, trial):
        if config["act"] == "gelu":
            raise RuntimeError("<img src=x onerror=alert(1)> & more")
        return 1.0

    study.optimize(objective)
    study.optuna_study.set_user_attr("hptune.notes", ["<u>note</u>"])
    page = write_report(
        load_study("esc", sqlite_url(tmp_path)), tmp_path / "r.html", dpi=40
    ).read_text()
    _assert_self_contained(page)
    assert "<i>" not in page and "&lt;i&gt;relu&lt;/i&gt;" in _section(page, "best-config")
    assert "<img src=x" not in page
    assert "RuntimeError: &lt;img src=x onerror=alert(1)&gt; &amp; more" in _section(
        page, "failures"
    )
    assert "<u>" not in page and "Strategy note: &lt;u&gt;note&lt;/u&gt;" in page


def test_the_study_stays_readable_by_optuna(curve_study, curve_report):
    study, url = curve_study
    ostudy = optuna.load_study(study_name=study.name, storage=url)
    records = {t.number: t for t in study.trials}
    assert len(ostudy.trials) == len(records) == 30
    for t in ostudy.trials:
        assert t.params == records[t.number].params
        if t.state == optuna.trial.TrialState.COMPLETE:
            assert t.value == records[t.number].value
    complete = [t for t in ostudy.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert any(SCRIPT_KEY in t.params and "lr" in t.params for t in complete)
    assert ostudy.best_value == study.best_value


def _scripted(config, trial):
    # Steps reported: 5 + 2 + 3 + 1 + 4 = 15. Full budget: 5 (the most a COMPLETE trial
    # reached). Saved by pruning: (5 - 2) + (5 - 3) = 5 steps, 5 / (15 + 5) = 25%.
    plan = {
        0: (5, "complete"),
        1: (2, "prune"),
        2: (3, "prune"),
        3: (1, "fail"),
        4: (4, "complete"),
    }
    n_steps, end = plan[trial.number]
    for step in range(1, n_steps + 1):
        trial.report(step, config["x"] * step)
    if end == "prune":
        raise TrialPruned("scripted")
    if end == "fail":
        raise RuntimeError("scripted failure")
    return config["x"]


def test_summary_and_leaderboard_numbers(tmp_path):
    space = {"x": uniform(0, 1, grid=[0.1, 0.2, 0.3, 0.4, 0.5])}
    study = create_study(
        space,
        name="nums",
        storage=sqlite_url(tmp_path),
        strategy="grid",
        pruner="none",
        strategy_options={"shuffle": False},
        direction="minimize",
        seed=0,
    )
    study.optimize(_scripted)
    page = write_report(study, tmp_path / "r.html", dpi=40).read_text()
    summary = _section(page, "summary")
    assert "15 steps reported" in summary
    assert "5 steps (25%)" in summary and "full budget taken as 5 steps" in summary
    study.optuna_study.set_user_attr("hptune.step_unit", "epoch")  # as a spec's recipe task
    by_epoch = _section(write_report(study, tmp_path / "e.html", dpi=40).read_text(), "summary")
    assert "15 epochs reported" in by_epoch and "5 epochs (25%)" in by_epoch
    for chip in ("2 complete", "2 pruned", "1 failed"):
        assert chip in summary
    assert "0.1 <small>trial 0</small>" in summary  # minimize: x = 0.1 is the best
    seconds = sum(t.duration for t in study.trials)
    assert f"trial time {seconds:.1f} s" in summary
    # Leaderboard: complete trials by value (0: 0.1, 4: 0.5), then pruned ones by their
    # last value (trial 1: 0.2 * 2 = 0.4, trial 2: 0.3 * 3 = 0.9).
    rows = re.findall(
        r"<tr><td>(\d+)</td><td>(\d+)</td><td>([^<]*)</td>", _section(page, "leaderboard")
    )
    assert rows == [("1", "0", "0.1"), ("2", "4", "0.5"), ("3", "1", "0.4"), ("4", "2", "0.9")]
    assert "# study nums, trial 0, value 0.1" in _section(page, "best-config")
    assert "x: 0.1" in _section(page, "best-config")


def test_the_leaderboard_has_a_test_column_when_trials_recorded_one(tmp_path, curve_report):
    study = create_study(
        {"x": uniform(0, 1, grid=[0.2, 0.4, 0.6])},
        name="test-column",
        storage=sqlite_url(tmp_path),
        strategy="grid",
        pruner="none",
        strategy_options={"shuffle": False},
        seed=0,
        direction="maximize",
    )

    def objective(config, trial):
        trial.report(1, config["x"])
        if config["x"] == 0.2:
            raise TrialPruned("scripted")  # a pruned trial has no test accuracy
        trial.set_attr("test_accuracy", config["x"] - 0.05)  # as the recipe records it
        return config["x"]

    study.optimize(objective)
    board = _section(write_report(study, tmp_path / "r.html", dpi=30).read_text(), "leaderboard")
    head = re.findall(r"<th>([^<]*)</th>", board)
    assert head[:5] == ["#", "trial", "value", "test accuracy", "state"]
    rows = re.findall(r"<tr><td>\d+</td><td>(\d+)</td><td>([^<]*)</td><td>([^<]*)</td>", board)
    assert rows == [("2", "0.6", "0.55"), ("1", "0.4", "0.35"), ("0", "0.2", "—")]
    assert "Test accuracy: on the held-out test split" in board
    # The curve study records none: no column.
    assert "test accuracy" not in _section(curve_report.read_text(), "leaderboard").lower()


def test_top_n_limits_the_leaderboard(curve_study, tmp_path):
    study, _ = curve_study
    page = write_report(study, tmp_path / "r.html", top_n=3, dpi=30).read_text()
    assert len(re.findall(r"<tr><td>\d+</td>", _section(page, "leaderboard"))) == 3


@pytest.mark.parametrize("shape", ["empty", "one", "all_failed"])
def test_reports_of_degenerate_studies(tmp_path, shape):
    study = create_study(
        {"x": uniform(0, 1, grid=[0.25, 0.5])},
        name=shape,
        storage=sqlite_url(tmp_path),
        strategy="grid",
        pruner="none",
        strategy_options={"shuffle": False},
        seed=0,
        direction="maximize",
    )

    def objective(config, trial):
        if shape == "all_failed" or trial.number == 1:
            raise RuntimeError("broken")
        trial.report(1, config["x"])
        return config["x"]

    if shape != "empty":
        study.optimize(objective)
    page = write_report(study, tmp_path / "r.html", dpi=30).read_text()
    _assert_self_contained(page)
    assert re.findall(r'<section id="([^"]+)">', page) == SECTION_IDS
    if shape == "one":
        assert "0.25 <small>trial 0</small>" in _section(page, "summary")
        assert "needs at least 5 complete trials to mean anything; the study has 1." in page
        assert "needs at least 2 complete trials; the study has 1." in _section(page, "parallel")
        assert "dashed orange" not in _section(page, "curves")  # no trial was pruned
    else:
        assert "No trial has completed yet" in _section(page, "best-config")
        assert "Nothing to show: no trial has a value yet." in _section(page, "history")
    if shape == "empty":
        assert "No advice: no trial has completed yet." in _section(page, "advice")
    if shape == "all_failed":
        assert "2 of 2 trials failed: 2 × &#x27;RuntimeError: broken&#x27;." in _section(
            page, "advice"
        )


def test_no_advice_says_which_checks_could_not_run(tmp_path):
    # Two complete configs: the ranges cannot be judged (3 needed), so the report must not
    # claim the best trials sit inside them.
    study = create_study(
        {"x": uniform(0, 1, grid=[0.25, 0.5])}, name="two", storage=sqlite_url(tmp_path),
        strategy="grid", pruner="none", seed=0, direction="maximize",
    )  # fmt: skip
    study.optimize(lambda config, trial: config["x"])
    advice = _section(write_report(study, tmp_path / "r.html", dpi=30).read_text(), "advice")
    assert (
        "No advice: too few configs have completed to judge the ranges (2; the check needs "
        "3); no trial failed; no config was trained twice, so the seed noise is unknown"
    ) in advice


def test_importance_ranks_the_parameter_that_matters(tmp_path):
    from hptune.report._data import gather
    from hptune.report._summary import importance

    space = {"lr": uniform(0, 1), "junk": choice("a", "b")}
    study = create_study(
        space,
        name="imp",
        storage=None,
        strategy="random",
        pruner="none",
        seed=0,
        direction="maximize",
    )
    study.optimize(lambda c, t: c["lr"] ** 2, n_trials=50)
    result = importance(gather(study))
    assert result.method == "PED-ANOVA" and result.n_trials == 50
    assert list(result.values) == ["lr", "junk"] and result.values["lr"] > 0.95
    # 50 trials: 5 in the best 10%, 25 per parameter; nothing to warn about.
    assert result.caveats == () and result.note is None


@pytest.mark.filterwarnings("ignore::UserWarning")  # Optuna's, on its own calls
def test_importance_is_what_optuna_dashboard_shows_for_the_same_study(curve_study, monkeypatch):
    from hptune.report._data import gather
    from hptune.report._summary import importance

    study, url = curve_study
    monkeypatch.setitem(sys.modules, "sklearn", None)  # and it needs no scikit-learn
    ours = importance(gather(study)).values
    ostudy = optuna.load_study(study_name=study.name, storage=url)
    # Optuna's default evaluator, and optuna-dashboard's call: PED-ANOVA with its defaults,
    # every parameter, the objective negated when maximizing (its _importance.py).
    default = optuna.importance.get_param_importances(ostudy)
    dashboard = optuna.importance.get_param_importances(
        ostudy,
        evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
        target=lambda t: -t.values[0],
    )
    assert ours == pytest.approx(default) and ours == pytest.approx(dashboard)
    assert list(ours) == list(default)  # the same ranking
    # Conditional parameters are assessed too (Optuna 5's PED-ANOVA handles them).
    assert "optimizer.adam.beta1" in ours and sum(ours.values()) == pytest.approx(1.0)


def test_importance_says_what_it_rests_on_and_that_it_is_few(curve_study, curve_report):
    from hptune.report._data import gather
    from hptune.report._summary import importance

    data = gather(curve_study[0])
    n = len(data.complete)
    n_pruned = sum(t.state == "PRUNED" for t in data.trials)
    result = importance(data)
    assert (result.n_trials, result.n_pruned) == (n, n_pruned)
    top = -(-n // 10)  # the best 10%, rounded up
    assert result.caveats[0] == (
        f"Few trials: PED-ANOVA compares the best 10% of the complete trials ({top} of {n}) "
        "with all of them; Optuna's documentation advises at least 5 in that best group "
        "(41 or more complete trials)."
    )
    assert f"Fewer than 5 complete trials per parameter ({n} for 7)." in result.caveats
    assert result.caveats[-1] == "Read the ranking as a hint, not a measurement."
    section = _section(curve_report.read_text(encoding="utf-8"), "importance")
    assert (
        f"It rests on the {n} complete trials; the {n_pruned} pruned trials are left out" in section
    )
    assert '<ul class="caution"><li>Few trials: PED-ANOVA compares' in section


def test_importance_names_the_parameters_no_complete_trial_has(tmp_path):
    from hptune.report._data import gather
    from hptune.report._summary import importance

    space = {
        "lr": uniform(0, 1, grid=[0.1, 0.3, 0.5, 0.7, 0.9]),
        "opt": choice(
            {"adam": {"b": uniform(0, 1, grid=[0.5])}, "sgd": {"m": uniform(0, 1, grid=[0.9])}}
        ),
    }
    study = create_study(
        space,
        name="branch",
        storage=None,
        strategy="grid",
        pruner="none",
        seed=0,
        direction="maximize",
    )

    def objective(config, trial):
        trial.report(1, config["lr"])
        if config["opt"]["name"] == "sgd":
            raise TrialPruned("every sgd trial is cut")
        return config["lr"]

    study.optimize(objective)
    result = importance(gather(study))
    assert (result.n_trials, result.n_pruned) == (5, 5)
    assert result.note == "Left out, as no complete trial has them: opt.sgd.m."
    assert "opt.sgd.m" not in result.values and "lr" in result.values


def test_few_trials_counts_the_best_group_as_optuna_does():
    from hptune.report._summary import few_trials

    assert few_trials(41, 2) == []  # ceil(4.1) = 5 in the best 10%, 20 per parameter
    assert few_trials(40, 2)[0].startswith(
        "Few trials: PED-ANOVA compares the best 10% of the complete trials (4 of 40)"
    )
    assert few_trials(60, 13) == ["Fewer than 5 complete trials per parameter (60 for 13)."]


def test_missing_matplotlib_is_a_clear_error(curve_study, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(
        HptuneError, match=re.escape("hptune report needs matplotlib: pip install 'hptune[report]'")
    ):
        write_report(curve_study[0], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_bad_arguments(curve_study, tmp_path):
    with pytest.raises(
        ConfigError, match=re.escape("write_report: top_n must be an int >= 1, got 0.")
    ):
        write_report(curve_study[0], tmp_path / "r.html", top_n=0)


def test_the_report_package_is_reached_from_hptune(curve_study, tmp_path):
    path = hptune.report.write_report(curve_study[0], tmp_path / "r.html", dpi=30)
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_import_hptune_loads_neither_report_nor_matplotlib():
    code = "import sys, hptune; print('hptune.report' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_headless_chromium_renders_the_report(curve_report, tmp_path):
    import matplotlib.image

    browser = _chromium()
    if browser is None:
        skip_or_fail("chromium not found: apt-get install chromium")
    shot = tmp_path / "shot.png"
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1200,2000",
            f"file://{curve_report}",
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1200)
    assert pixels.std() > 0.1  # a blank page is one colour: std 0
    colours = np.unique((pixels * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200  # text, cards, chips and plots, not a flat page


STOP_AT = "2026-11-30T14:02:05+00:00"


def _stopped(reason: str, trials: int, spec: dict | None):
    from hptune.report._data import gather
    from hptune.report._summary import stop_sentence

    study = create_study(
        {"x": uniform(0, 1)}, name="stop", storage=None, seed=0, direction="maximize"
    )
    study.optuna_study.set_user_attr(
        "hptune.stop", {"reason": reason, "at": STOP_AT, "trials": trials}
    )  # as the driver writes it at the end of optimize
    if spec is not None:
        study.optuna_study.set_user_attr("hptune.spec", spec)
    return stop_sentence(gather(study))


@pytest.mark.parametrize(
    ("reason", "trials", "words"),
    [
        ("timeout", 62, "its 4-minute timeout passed with 62 of 100 trials run"),
        ("budget", 100, "its budget of 100 trials was used up (100 of 100 trials run)"),
        (
            "budget_spent",
            100,
            "its budget of 100 trials was already spent when it started (100 of 100 trials run)",
        ),
        (
            "exhausted",
            24,
            "nothing was left to run (a grid run to its end, or a confirmation that re-trained "
            "every config there was) with 24 of 100 trials run",
        ),
        (
            "interrupted",
            40,
            "it was interrupted (Ctrl-C or SIGTERM) with 40 of 100 trials run; the trials then "
            "running are recorded as failed (interrupted) and a resume runs them again",
        ),
        ("trials", 30, "it ran the number of trials it was asked for with 30 of 100 trials run"),
    ],
)
def test_the_stop_reason_is_said_in_words(reason, trials, words):
    spec = {"name": "stop", "budget": {"trials": 100, "epochs": 25, "timeout_s": 240.0}}
    assert _stopped(reason, trials, spec) == f"Stopped at 2026-11-30 14:02 UTC: {words}."


def test_the_stop_reason_without_a_spec_gives_no_limits():
    assert _stopped("timeout", 7, None) == (
        "Stopped at 2026-11-30 14:02 UTC: its timeout passed with 7 trials run."
    )
    assert _stopped("budget", 9, {"budget": {"trials": None}}) == (
        "Stopped at 2026-11-30 14:02 UTC: its trial budget was used up (9 trials run)."
    )


def test_durations_read_as_words():
    from hptune.report._summary import duration_words

    assert [duration_words(s) for s in (240, 7200, 45, 90, 5400)] == [
        "4-minute",
        "2-hour",
        "45-second",
        "1 min 30 s",
        "90-minute",
    ]


def test_the_summary_says_why_it_stopped_and_nothing_when_not_recorded(tmp_path, curve_report):
    study = create_study(
        {"x": uniform(0, 1)}, name="s", storage=sqlite_url(tmp_path), seed=0, direction="maximize"
    )
    study.optimize(lambda c, t: c["x"], n_trials=2)
    study.optuna_study.set_user_attr(
        "hptune.stop", {"reason": "<b>odd</b>", "at": STOP_AT, "trials": 2}
    )
    summary = _section(write_report(study, tmp_path / "r.html", dpi=30).read_text(), "summary")
    assert (
        '<p class="stop">Stopped at 2026-11-30 14:02 UTC: for the reason '
        "&#x27;&lt;b&gt;odd&lt;/b&gt;&#x27; with 2 trials run.</p>" in summary
    )
    # What the driver recorded for the fixture's run, in words.
    assert "it ran the number of trials it was asked for" in _section(
        curve_report.read_text(), "summary"
    )
    fresh = create_study({"x": uniform(0, 1)}, name="f", storage=None, direction="maximize")
    fresh.optuna_study.add_trial(
        optuna.trial.create_trial(
            value=0.5,
            params={"x": 0.5},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
            user_attrs={"hptune.config": {"x": 0.5}},
        )
    )
    unrecorded = _section(write_report(fresh, tmp_path / "f.html", dpi=30).read_text(), "summary")
    assert 'class="stop"' not in unrecorded


def test_a_study_run_from_a_spec_shows_the_spec_escaped_and_collapsed(tmp_path, curve_report):
    from hptune.runner import open_study
    from hptune.spec import parse_spec

    text = f"""
    name: spec-shown
    task: digits-mlp
    storage: {sqlite_url(tmp_path)}
    budget: {{trials: 3, epochs: 2, timeout: 4m}}
    space:
      lr: loguniform(1e-4, 1e-1)
      "<i>odd</i>": choice(1, 2)
    """
    study = open_study(parse_spec(textwrap.dedent(text), "spec.yaml"))  # stores the spec
    spec = _section(write_report(study, tmp_path / "r.html", dpi=30).read_text(), "spec")
    assert spec.startswith("<h2>Spec</h2>\n<details><summary>The spec of its last run")
    code = html.unescape(re.search(r"<pre><code>(.*)</code></pre>", spec, re.S).group(1))
    shown = yaml.safe_load(code)
    assert shown["name"] == "spec-shown" and shown["task"] == "digits-mlp"
    assert shown["space"] == {"lr": "loguniform(1e-4, 1e-1)", "<i>odd</i>": "choice(1, 2)"}
    assert shown["budget"] == {
        "trials": 3,
        "epochs": 2,
        "timeout_s": 240.0,
        "trial_timeout_s": None,
    }
    assert "<i>" not in spec and "&lt;i&gt;odd&lt;/i&gt;" in spec
    # A study made in Python has none, and says so.
    assert "not run from a spec (it was made in Python)" in _section(
        curve_report.read_text(), "spec"
    )


def test_the_spec_shown_hides_the_storage_password(tmp_path):
    study = create_study(
        {"x": uniform(0, 1)}, name="pw", storage=sqlite_url(tmp_path), seed=0, direction="maximize"
    )
    study.optuna_study.set_user_attr(
        "hptune.spec", {"name": "pw", "storage": "postgresql://tuner:s3cret@db.local:5432/hpt"}
    )
    page = write_report(study, tmp_path / "r.html", dpi=30).read_text()
    assert "s3cret" not in page
    assert "storage: postgresql://tuner:***@db.local:5432/hpt" in _section(page, "spec")
