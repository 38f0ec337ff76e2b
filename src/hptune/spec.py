"""The YAML spec: one file that describes a whole study, validated before anything runs.

The contract (DESIGN.md)::

    name: mnist1d-mlp               # study name
    storage: sqlite:///hptune.db    # default; postgresql+psycopg://... for many machines
    task: mnist1d-mlp               # a built-in task, or "package.module:function"
    metric: val_accuracy            # val_accuracy | val_loss (hptune.metrics)
    direction: maximize             # optional: the metric's (hptune.metrics)
    seed: 0
    strategy: tpe                   # or {name: coarse-to-fine, coarse_share: 0.4}
    pruner: asha                    # or {name: median, n_startup_trials: 3}
    budget: {trials: 40, epochs: 20, timeout: 15m}
    workers: 2
    trials_per_device: 2            # optional: most trials per GPU (default: as workers need)
    training: {grad_clip: 1.0}      # recipe options (hptune.training.TrainingOptions)
    space: {...}                    # hptune.space forms

Every error names the key path and the line (``spec.yaml:7: strategy: unknown strategy
'tpee'; valid: grid, random, ...``); all errors are reported at once; unknown keys are
errors, never ignored.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from hptune.exceptions import ConfigError
from hptune.metrics import METRICS, direction_problem
from hptune.training.options import TrainingOptions

DEFAULT_STORAGE = "sqlite:///hptune.db"

_TOP_KEYS = (
    "name", "storage", "task", "metric", "direction", "seed", "strategy", "pruner",
    "budget", "workers", "trials_per_device", "training", "space",
)  # fmt: skip
_BUDGET_KEYS = ("trials", "epochs", "timeout")
# A space form not already inside quotes: uniform(...), loguniform(...), randint(...), choice(...)
_FORM = re.compile(
    r"(?<![\w'\"])(?:log)?uniform\([^()]*\)|(?<![\w'\"])(?:randint|choice)\([^()]*\)"
)
_SCI_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*(?:(\d+(?:\.\d+)?)\s*m)?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*$"
)


class SpecError(ConfigError):
    """A spec failed validation. ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        head = "invalid spec" if len(errors) == 1 else f"invalid spec ({len(errors)} problems)"
        super().__init__(head + ":\n  " + "\n  ".join(errors))


@dataclasses.dataclass(frozen=True)
class Budget:
    """How much a study may spend: trials, epochs per trial, wall-clock seconds."""

    trials: int | None = None
    epochs: int | None = None
    timeout_s: float | None = None


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
    strategy: str = "tpe"
    strategy_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    pruner: str = "none"
    pruner_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    budget: Budget = Budget()
    workers: int = 1
    #: Most trials per GPU; None packs ceil(workers / GPUs) on each (ProcessExecutor).
    trials_per_device: int | None = None
    training: TrainingOptions = TrainingOptions()
    source: str = "<string>"
    #: Line of each YAML key path, for errors found after parsing (see :func:`spec_error`).
    lines: dict[tuple[str, ...], int] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    def build_space(self) -> Any:
        from hptune.space import Space

        return Space(self.space)

    def replace(self, **changes: Any) -> StudySpec:
        """A copy with ``changes`` applied (CLI overrides), validated again."""
        spec = dataclasses.replace(self, **changes)
        _check_overrides(spec)
        return spec


def parse_duration(value: Any) -> float:
    """Seconds from ``90``, ``"90s"``, ``"15m"``, ``"1h30m"``; raises ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("a duration cannot be a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match or not any(match.groups()):
            raise ValueError(
                f"cannot read {value!r} as a duration; use seconds, '90s', '15m' or '1h30m'"
            )
        h, m, s = (float(g) if g else 0.0 for g in match.groups())
        seconds = 3600 * h + 60 * m + s
    if seconds <= 0:
        raise ValueError(f"a duration must be > 0, got {value!r}")
    return seconds


# --- YAML with line numbers -------------------------------------------------------------


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _to_python(node: yaml.Node, path: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> Any:
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            sub = (*path, str(key))
            lines[sub] = key_node.start_mark.line + 1
            if key in out:
                raise SpecError([f"line {lines[sub]}: {'.'.join(sub)}: duplicate key"])
            out[key] = _to_python(value_node, sub, lines)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(v, (*path, str(i)), lines) for i, v in enumerate(node.value)]
    value = _scalar(node)
    # YAML 1.1 (PyYAML) reads a plain 1e-4 as a string; every user means the number.
    if isinstance(value, str) and node.style is None and _SCI_FLOAT.match(value):
        return float(value)
    return value


def _quote_forms(text: str) -> str:
    """Quote unquoted space forms so YAML keeps their commas.

    In a flow mapping, ``{beta1: uniform(0.85, 0.95)}`` would otherwise split at the comma
    into ``beta1: "uniform(0.85"`` and a stray key. Quoting stays on the same line, so line
    numbers in errors are unchanged.
    """
    return _FORM.sub(lambda m: "'" + m.group(0).replace("'", "''") + "'", text)


def _load_yaml(text: str, source: str) -> tuple[Any, dict[tuple[str, ...], int]]:
    try:
        node = yaml.compose(_quote_forms(text), Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{where}: not valid YAML: {problem}"]) from exc
    if node is None:
        raise SpecError([f"{source}: the spec is empty; it needs at least 'task' and 'space'"])
    lines: dict[tuple[str, ...], int] = {}
    return _to_python(node, (), lines), lines


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
        where = f"{self.source}:{line}" if line else self.source
        shown = (
            ".".join(p for p in path if p != "choice") if path[:1] == ("space",) else ".".join(path)
        )
        self.errors.append(f"{where}: {shown or '(top)'}: {message}")

    def unknown_keys(
        self, mapping: dict, allowed: tuple[str, ...] | dict, path: tuple[str, ...]
    ) -> None:
        for key in mapping:
            if key not in allowed:
                self.error((*path, str(key)), unknown_key_message(key, allowed))

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
        counts[key] = value
    timeout = None
    if raw.get("timeout") is not None:
        try:
            timeout = parse_duration(raw["timeout"])
        except ValueError as exc:
            checker.error(("budget", "timeout"), str(exc))
    return Budget(counts["trials"], counts["epochs"], timeout)


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


def _check_space(checker: _Checker, raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict) or not raw:
        checker.error(
            ("space",),
            "expected a non-empty mapping of parameters, e.g. {lr: loguniform(1e-4, 1e-1)}",
        )
        return {}
    from hptune.space import Space

    try:
        Space(raw)
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
    data, lines = _load_yaml(text, source)
    checker = _Checker(source, lines)
    if not isinstance(data, dict):
        raise SpecError(
            [
                f"{source}: a spec is a mapping of keys (name, task, space, ...), got {type(data).__name__}"
            ]
        )
    checker.unknown_keys(data, _TOP_KEYS, ())

    name = checker.typed(data, "name", str, "a study name") or default_name
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
    metric = checker.typed(data, "metric", str, "a metric name") or "val_accuracy"
    if metric not in METRICS:
        checker.error(("metric",), f"unknown metric {metric!r}; valid: {', '.join(METRICS)}")
    direction = data.get("direction", METRICS.get(metric, "maximize"))
    if direction not in ("minimize", "maximize"):
        checker.error(("direction",), f"expected minimize or maximize, got {direction!r}")
    elif (mismatch := direction_problem(metric, direction)) is not None:
        checker.error(("direction",), mismatch)
    seed = checker.typed(data, "seed", int, "an integer seed")
    workers = checker.typed(data, "workers", int, "an integer >= 1")
    if workers is not None and workers < 1:
        checker.error(("workers",), f"must be >= 1, got {workers}")
    per_device = checker.typed(data, "trials_per_device", int, "an integer >= 1")
    if per_device is not None and per_device < 1:
        checker.error(("trials_per_device",), f"must be >= 1, got {per_device}")
    strategy, strategy_options = _named(checker, data, "strategy", _valid_strategies, "tpe")
    pruner, pruner_options = _named(checker, data, "pruner", _valid_pruners, "none")
    budget = _check_budget(checker, data.get("budget"))
    training = _check_training(checker, data.get("training"))
    space = _check_space(checker, data.get("space"))
    if checker.errors:
        raise SpecError(checker.errors)
    return StudySpec(
        name=name, task=task, space=space, storage=storage, metric=metric,
        direction=direction, seed=seed, strategy=strategy, strategy_options=strategy_options,
        pruner=pruner, pruner_options=pruner_options, budget=budget, workers=workers or 1,
        trials_per_device=per_device, training=training, source=source, lines=lines,
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
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError([f"{path}: no such file"]) from None
    except OSError as exc:
        raise SpecError([f"{path}: cannot read: {exc.strerror}"]) from None
    return parse_spec(text, str(path), default_name=path.stem)


def _check_overrides(spec: StudySpec) -> None:
    errors = []
    if spec.workers < 1:
        errors.append(f"--workers must be >= 1, got {spec.workers}")
    if spec.trials_per_device is not None and spec.trials_per_device < 1:
        errors.append(f"--trials-per-device must be >= 1, got {spec.trials_per_device}")
    if spec.budget.trials is not None and spec.budget.trials < 1:
        errors.append(f"--trials must be >= 1, got {spec.budget.trials}")
    if not spec.name:
        errors.append("--name must not be empty")
    if errors:
        raise SpecError(errors)
