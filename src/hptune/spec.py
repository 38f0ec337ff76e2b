"""The YAML spec: one file that describes a whole study, validated before anything runs.

The contract (DESIGN.md)::

    name: mnist1d-mlp               # study name
    storage: sqlite:///hptune.db    # default; postgresql+psycopg://... for many machines
    task: mnist1d-mlp               # a built-in task, or "package.module:function"
    metric: val_accuracy            # val_accuracy | val_loss (hptune.metrics)
    direction: maximize             # optional: the metric's (hptune.metrics)
    seed: 0                         # an int >= 0
    strategy: multi-fidelity        # default; or {name: tpe, n_startup_trials: 10}
    pruner: asha                    # default; or {name: median, n_startup_trials: 3}
    budget: {trials: 40, epochs: 20, timeout: 15m, trial_timeout: 5m}  # trial_timeout: optional
    confirm: {top: 3, seeds: 2}     # optional: re-train the top 3 with 2 fresh seeds each
    workers: 2
    retries: 1                      # attempts after the first for an interrupted trial
    trials_per_device: 2            # optional: most trials per GPU (default: as workers need)
    warm_start: {study: old-name}   # start a new study from an old one's trials (storage:)
    tracking: {mlflow: {tracking_uri: sqlite:///mlflow.db}, tensorboard: {log_dir: runs}}
    training: {grad_clip: 1.0}      # recipe options (hptune.training.TrainingOptions)
    space: {...}                    # hptune.space forms

Every error names the key path and the line (``spec.yaml:7: strategy: unknown strategy
'tpee'; valid: grid, random, ...``); all errors are reported at once; unknown keys are
errors, never ignored. What YAML a spec may contain (tags, merge keys, sizes) is decided
by :mod:`hptune._spec_yaml`, which reads it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hptune._checks import Int, Number, Rule, violation
from hptune._defaults import DEFAULT_PRUNER, DEFAULT_STORAGE, DEFAULT_STRATEGY
from hptune._spec_yaml import load_yaml, locate, read_text
from hptune.exceptions import ConfigError, SpecError
from hptune.metrics import METRICS, direction_problem
from hptune.training.options import TrainingOptions

_TOP_KEYS = (
    "name", "storage", "task", "metric", "direction", "seed", "strategy", "pruner",
    "budget", "workers", "trials_per_device", "retries", "training", "space", "warm_start",
    "tracking", "confirm",
)  # fmt: skip
_BUDGET_KEYS = ("trials", "epochs", "timeout", "trial_timeout")
#: ``confirm: {}`` re-trains the top 3 configs with 2 fresh seeds each.
CONFIRM_DEFAULTS = {"top": 3, "seeds": 2}
#: ``lr: auto`` in a space: its range comes from the LR range test when the study is created
#: (``hptune.runner._lr_auto``).
LR_AUTO = "auto"
#: What ``lr: auto`` is checked as before the study exists: the range test's own sweep.
LR_AUTO_CHECKED_AS = "loguniform(1e-7, 10.0)"
_POSITIVE = Number(low=0, low_open=True)
_SEED_FIX = (
    "use a seed >= 0 such as 0: numpy's SeedSequence, which derives each trial's seed "
    "from it, takes no negative seeds"
)
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much a study may spend: trials, epochs per trial, wall-clock seconds."""

    trials: int | None = None
    epochs: int | None = None
    timeout_s: float | None = None
    #: The longest one trial may run; past it the trial's worker is stopped and the trial
    #: FAILED (``timeout``), so a hung trial cannot hold the run forever.
    trial_timeout_s: float | None = None


@dataclasses.dataclass(frozen=True)
class StudySpec:
    """A validated spec. ``space`` is the raw mapping; ``build_space()`` gives the Space."""

    name: str
    task: str
    space: dict[str, Any]
    storage: str = DEFAULT_STORAGE
    metric: str = "val_accuracy"
    direction: str = "maximize"
    seed: int | None = None
    strategy: str = DEFAULT_STRATEGY
    strategy_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    pruner: str = DEFAULT_PRUNER
    pruner_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    budget: Budget = Budget()
    workers: int = 1
    retries: int = 0
    #: Most trials per GPU; None packs ceil(workers / GPUs) on each (ProcessExecutor).
    trials_per_device: int | None = None
    training: TrainingOptions = TrainingOptions()
    #: ``{"study": name, "storage": url or None}``: the study a new study starts from.
    warm_start: dict[str, Any] | None = None
    #: ``{"top": n, "seeds": n}``: re-train the search's top configs with fresh seeds from
    #: the end of ``budget.trials`` and choose by the mean (``hptune.study.Confirm``).
    confirm: dict[str, int] | None = None
    #: Tracker name -> its options (``hptune.tracking``), in the spec's order.
    tracking: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    source: str = "<string>"
    #: Line of each YAML key path, for errors found after parsing (see :func:`spec_error`).
    lines: dict[tuple[str, ...], int] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def build_space(self) -> Any:
        """The space the checks read; ``lr: auto`` stands for every LR the range test
        sweeps (the study's own space has the range the test found)."""
        from hptune.space import Space

        return Space(with_lr(self.space, LR_AUTO_CHECKED_AS))

    def replace(self, **changes: Any) -> StudySpec:
        """A copy with ``changes`` applied (CLI overrides), validated again."""
        spec = dataclasses.replace(self, **changes)
        _check_overrides(spec)
        return spec


def wants_lr_auto(space: Any) -> bool:
    """Whether a space (as written in a spec) asks for ``lr: auto``."""
    return isinstance(space, dict) and space.get("lr") == LR_AUTO


def with_lr(space: dict[str, Any], lr: Any) -> dict[str, Any]:
    """The space with ``lr: auto`` replaced by ``lr`` (a form such as ``"loguniform(a,
    b)"``); any other space as it is."""
    return {**space, "lr": lr} if wants_lr_auto(space) else space


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``; raises ValueError otherwise,
    and for a duration that is not a finite number of seconds > 0 (NaN, infinity)."""
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int beyond a float's range
            seconds = math.inf
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(
                f"cannot read {value!r} as a duration; use seconds, '90s', '15m' or '1h30m'"
            )
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + s
    if not _POSITIVE.accepts(seconds):  # nan <= 0 is False: a plain comparison lets NaN in
        raise ValueError(f"a duration must be a finite number of seconds > 0, got {value!r}")
    return seconds


# --- validation ---------------------------------------------------------------------------


class _Checker:
    """Collects errors with their key path and line."""

    def __init__(self, source: str, lines: dict[tuple[str, ...], int]) -> None:
        self.source, self.lines, self.errors = source, lines, []

    def error(self, path: tuple[str, ...], message: str) -> None:
        known = path
        while known and known not in self.lines:  # the nearest ancestor that has a line
            known = known[:-1]
        line = self.lines.get(known) if known else None  # a missing top-level key has no line
        self.errors.append(locate(self.source, line, path, message))

    def unknown_keys(
        self, mapping: dict, allowed: tuple[str, ...] | dict, path: tuple[str, ...]
    ) -> None:
        for key in mapping:
            if key not in allowed:
                self.error((*path, str(key)), unknown_key_message(key, allowed))

    def ruled(self, data: dict, key: str, rule: Rule, fix: str) -> Any:
        """``data[key]``, or None when it is absent or breaks ``rule`` (an error then)."""
        value = data.get(key)
        if value is not None and (message := violation(value, rule, fix)) is not None:
            self.error((key,), message)
            return None
        return value

    def typed(self, data: dict, key: str, kind: type | tuple, what: str, path=()) -> Any:
        value = data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) and bool not in (kind if isinstance(kind, tuple) else (kind,)):
            self.error((*path, key), f"expected {what}, got {value!r}")
            return None
        if not isinstance(value, kind):
            self.error((*path, key), f"expected {what}, got {value!r}")
            return None
        return value


def unknown_key_message(key: Any, allowed: Any) -> str:
    """``unknown key (did you mean 'lr'?); valid: lr, batch_size, ...``"""
    close = difflib.get_close_matches(str(key), [str(a) for a in allowed], n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown key{hint}; valid: {', '.join(map(str, allowed))}"


def _named(checker: _Checker, data: dict, key: str, valid: Callable[[], list[str]], default: str):
    """``strategy: tpe`` or ``strategy: {name: tpe, <options>}`` -> (name, options)."""
    value = data.get(key, default)
    options: dict[str, Any] = {}
    if isinstance(value, dict):
        options = dict(value)
        value = options.pop("name", None)
        if value is None:
            checker.error((key,), f"a mapping form needs 'name', e.g. {{name: {default}}}")
            return default, {}
    if not isinstance(value, str):
        checker.error((key,), f"expected a name, got {value!r}")
        return default, {}
    names = valid()
    canonical = value.strip().lower().replace("_", "-")
    if canonical not in names:
        close = difflib.get_close_matches(canonical, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        checker.error((key,), f"unknown {key} '{value}'{hint}; valid: {', '.join(names)}")
    return canonical, options


def _check_budget(checker: _Checker, raw: Any) -> Budget:
    if raw is None:
        return Budget()
    if not isinstance(raw, dict):
        checker.error(
            ("budget",),
            f"expected a mapping like {{trials: 40, epochs: 20, timeout: 15m}}, got {raw!r}",
        )
        return Budget()
    checker.unknown_keys(raw, _BUDGET_KEYS, ("budget",))
    counts = {}
    for key in ("trials", "epochs"):
        value = checker.typed(raw, key, int, "an integer >= 1", ("budget",))
        if value is not None and value < 1:
            checker.error(("budget", key), f"must be >= 1, got {value}")
            value = None
        elif value is not None and value > _MOST:
            checker.error(("budget", key), f"must be at most {_MOST}, got {value}")
            value = None
        counts[key] = value
    durations: dict[str, float | None] = {}
    for key in ("timeout", "trial_timeout"):
        durations[key] = None
        if raw.get(key) is not None:
            try:
                durations[key] = parse_duration(raw[key])
            except ValueError as exc:
                checker.error(("budget", key), str(exc))
    return Budget(counts["trials"], counts["epochs"], durations["timeout"],
                  durations["trial_timeout"])  # fmt: skip


#: The most trials or epochs a budget may hold (an epoch count past it overflows torch).
_MOST = 10**7


def _check_training(checker: _Checker, raw: Any) -> TrainingOptions:
    """The ``training:`` section as :class:`TrainingOptions`, each problem at its line."""
    if raw is None:
        return TrainingOptions()
    if not isinstance(raw, dict):
        checker.error(("training",), f"expected a mapping of recipe options, got {raw!r}")
        return TrainingOptions()
    problems = TrainingOptions.problems(raw)
    for key, message in problems:
        checker.error(("training", key), message)
    return TrainingOptions() if problems else TrainingOptions.from_mapping(raw)


def _check_tracking(checker: _Checker, raw: Any) -> dict[str, dict[str, Any]]:
    """``tracking: {mlflow: {...}, tensorboard: {...}}``: known trackers, known options
    (checked without importing the trackers' packages); ``mlflow:`` alone or ``{}`` takes
    the defaults."""
    if raw is None:
        return {}
    from hptune.tracking import list_trackers, option_problems

    if not isinstance(raw, dict):
        checker.error(
            ("tracking",), f"expected {{mlflow: {{...}}, tensorboard: {{...}}}}, got {raw!r}"
        )
        return {}
    checker.unknown_keys(raw, tuple(list_trackers()), ("tracking",))
    section: dict[str, dict[str, Any]] = {}
    for name, options in raw.items():
        if name not in list_trackers():
            continue
        if options is not None and not isinstance(options, dict):
            checker.error(("tracking", name), f"expected a mapping of options, got {options!r}")
            continue
        problems = option_problems(name, options or {})
        for key, message in problems:
            checker.error(("tracking", name, str(key)), message)
        section[name] = dict(options or {})
    return section


def _check_warm_start(checker: _Checker, raw: Any) -> dict[str, Any] | None:
    """``warm_start: old-name`` or ``{study: old-name, storage: url}`` (storage: the spec's)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        raw = {"study": raw}
    if not isinstance(raw, dict):
        checker.error(("warm_start",), f"expected {{study: old-name}} or a name, got {raw!r}")
        return None
    checker.unknown_keys(raw, ("study", "storage"), ("warm_start",))
    study = checker.typed(raw, "study", str, "the old study's name", ("warm_start",))
    storage = checker.typed(raw, "storage", str, "a storage URL", ("warm_start",))
    if raw.get("study") is None:
        checker.error(("warm_start", "study"), "missing: the name of the study to start from")
    return {"study": study, "storage": storage} if study else None


def _check_confirm(checker: _Checker, raw: Any, budget: Budget) -> dict[str, int] | None:
    """``confirm: {top: 3, seeds: 2}`` (``{}`` takes both defaults): positive integers whose
    product leaves room in ``budget.trials`` for the search."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        checker.error(("confirm",), f"expected a mapping like {{top: 3, seeds: 2}}, got {raw!r}")
        return None
    checker.unknown_keys(raw, tuple(CONFIRM_DEFAULTS), ("confirm",))
    confirm = dict(CONFIRM_DEFAULTS)
    for key in CONFIRM_DEFAULTS:
        value = raw.get(key)
        if value is None:
            continue
        if (message := violation(value, Int(low=1), f"e.g. {key}: {confirm[key]}")) is not None:
            checker.error(("confirm", key), message)
            return None
        confirm[key] = value
    if (message := confirm_problem(confirm, budget.trials)) is not None:
        checker.error(("confirm",), message)
        return None
    return confirm


def confirm_problem(confirm: dict[str, int] | None, trials: int | None) -> str | None:
    """Why ``confirm`` does not fit a budget of ``trials`` (None when it does)."""
    if confirm is None:
        return None
    n = confirm["top"] * confirm["seeds"]
    if trials is None:
        return (
            f"needs budget.trials: its {n} trials (top x seeds) come from the end of that "
            "budget; add budget: {trials: ...}"
        )
    if n >= trials:
        return (
            f"takes its {n} trials (top x seeds) from budget.trials, which must be larger, "
            f"got {trials}; raise budget.trials or lower confirm's top or seeds"
        )
    return None


def _check_space(checker: _Checker, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        checker.error(
            ("space",),
            "expected a non-empty mapping of parameters, e.g. {lr: loguniform(1e-4, 1e-1)}",
        )
        return {}
    from hptune.space import Space

    try:
        Space(with_lr(raw, LR_AUTO_CHECKED_AS))
    except ConfigError as exc:
        message = str(exc)
        match = re.match(r"^space\.([\w.\-]+):\s*(.*)$", message, re.S)
        path: tuple[str, ...] = ("space",)
        if match:
            path = _yaml_path(checker.lines, ("space", *match.group(1).split(".")))
            message = match.group(2)
        checker.error(path, message)
    return raw


def _yaml_path(lines: dict[tuple[str, ...], int], dotted: tuple[str, ...]) -> tuple[str, ...]:
    """Map a space parameter path (``optimizer.sgd.momentum``) onto the YAML key path,
    which has a ``choice`` key between a conditional parameter and its branches."""
    path: tuple[str, ...] = dotted[:1]
    for part in dotted[1:]:
        if (*path, part) in lines:
            path = (*path, part)
        elif (*path, "choice", part) in lines:
            path = (*path, "choice", part)
        else:
            return (*path, part)
    return path


def _valid_strategies() -> list[str]:
    from hptune.study import list_strategies

    return list(list_strategies())


def _valid_pruners() -> list[str]:
    from hptune.study import list_pruners

    return list(list_pruners())


def parse_spec(
    text: str, source: str = "<string>", *, default_name: str | None = None
) -> StudySpec:
    """Validate a spec given as YAML text; raise :class:`SpecError` listing every problem."""
    data, lines = load_yaml(text, source)
    checker = _Checker(source, lines)
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{source}: a spec is a mapping of keys (name, task, space, ...), got {type(data).__name__}"
            ]
        )
    checker.unknown_keys(data, _TOP_KEYS, ())

    name = checker.typed(data, "name", str, "a study name")
    if name is not None and (not name.strip() or name != name.strip() or "\n" in name):
        # An empty name used to become the file's name without a word.
        checker.error(
            ("name",),
            "must be a study name without blanks at its ends or line breaks (or left out: "
            f"the file's name), got {name!r}",
        )
        name = None
    name = name or default_name
    if not name:
        checker.error(("name",), "missing: give the study a name")
    task = checker.typed(data, "task", str, "a built-in task or 'package.module:function'")
    if data.get("task") is None:
        checker.error(
            ("task",), "missing: a built-in task (e.g. mnist1d-mlp) or 'package.module:function'"
        )
    storage = (
        checker.typed(data, "storage", str, "a storage URL like sqlite:///hptune.db")
        or DEFAULT_STORAGE
    )
    if in_memory(storage):
        checker.error(("storage",), IN_MEMORY)
    metric = checker.typed(data, "metric", str, "a metric name") or "val_accuracy"
    if metric not in METRICS:
        checker.error(("metric",), f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    direction = data.get("direction", METRICS.get(metric, "maximize"))
    if direction not in ("minimize", "maximize"):
        checker.error(("direction",), f"expected minimize or maximize, got {direction!r}")
    elif (mismatch := direction_problem(metric, direction)) is not None:
        checker.error(("direction",), mismatch)
    seed = checker.ruled(data, "seed", Int(low=0), _SEED_FIX)
    workers = checker.ruled(data, "workers", Int(low=1), "use 1 to run one trial at a time")
    retries = checker.ruled(data, "retries", Int(low=0), "use 0 to run no trial twice")
    per_device = checker.ruled(
        data, "trials_per_device", Int(low=1), "or leave it out to pack as workers need"
    )
    strategy, strategy_options = _named(
        checker, data, "strategy", _valid_strategies, DEFAULT_STRATEGY
    )
    pruner, pruner_options = _named(checker, data, "pruner", _valid_pruners, DEFAULT_PRUNER)
    budget = _check_budget(checker, data.get("budget"))
    training = _check_training(checker, data.get("training"))
    space = _check_space(checker, data.get("space"))
    warm_start = _check_warm_start(checker, data.get("warm_start"))
    tracking = _check_tracking(checker, data.get("tracking"))
    confirm = _check_confirm(checker, data.get("confirm"), budget)
    if checker.errors:
        raise SpecError(checker.errors)
    return StudySpec(
        name=name, task=task, space=space, storage=storage, metric=metric,
        direction=direction, seed=seed, strategy=strategy, strategy_options=strategy_options,
        pruner=pruner, pruner_options=pruner_options, budget=budget, workers=workers or 1,
        retries=retries or 0, trials_per_device=per_device, warm_start=warm_start,
        tracking=tracking, confirm=confirm,
        training=training, source=source, lines=lines,
    )  # fmt: skip


def spec_error(spec: StudySpec, problems: list[tuple[tuple[str, ...], str]]) -> SpecError:
    """A :class:`SpecError` for problems found after parsing (by ``runner.check_spec``),
    each named like the parser's own errors: the spec's file, the line and the key path.

    Args:
        spec: The spec; its ``lines`` locate the keys (a spec built in Python has none,
            and the errors then name the key path only).
        problems: ``(key path, message)``; a path into the space uses parameter names
            (``("space", "optimizer", "sgd", "momentum")``), mapped onto the YAML keys.
    """
    checker = _Checker(spec.source, spec.lines)
    for path, message in problems:
        if path[:1] == ("space",):
            path = _yaml_path(spec.lines, path)
        checker.error(path, message)
    return SpecError(checker.errors)


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a YAML spec file. The study name defaults to the file's stem."""
    path = Path(path)
    return parse_spec(read_text(path), str(path), default_name=path.stem)


IN_MEMORY = (
    "an in-memory database keeps nothing once the run ends; give a file "
    "(sqlite:///hptune.db) or a database server"
)


def in_memory(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///``,
    ``sqlite:///:memory:``, a ``mode=memory`` URI): fine for a study in Python, useless
    for a run from a spec, whose results must outlive it."""
    if not url.startswith("sqlite:"):
        return False
    rest = url[len("sqlite:") :].lstrip("/")
    return rest in ("", ":memory:") or "mode=memory" in url


def _check_overrides(spec: StudySpec) -> None:
    errors = []
    if spec.workers < 1:
        errors.append(f"--workers must be >= 1, got {spec.workers}")
    if spec.retries < 0:
        errors.append(f"--retries must be >= 0, got {spec.retries}")
    if spec.trials_per_device is not None and spec.trials_per_device < 1:
        errors.append(f"--trials-per-device must be >= 1, got {spec.trials_per_device}")
    if spec.budget.trials is not None and spec.budget.trials < 1:
        errors.append(f"--trials must be >= 1, got {spec.budget.trials}")
    elif (problem := confirm_problem(spec.confirm, spec.budget.trials)) is not None:
        errors.append(f"--trials {spec.budget.trials}: confirm {problem}")
    if not spec.name:
        errors.append("--name must not be empty")
    if in_memory(spec.storage):
        errors.append(f"--storage {spec.storage}: {IN_MEMORY}")
    if errors:
        raise SpecError(errors)
