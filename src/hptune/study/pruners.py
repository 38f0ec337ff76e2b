"""Pruners: early stopping of unpromising trials, by name, on Optuna's pruners.

The names are those of the CLI and the YAML spec (``pruner: asha``). Each pruner's
resource options are derived from the training budget's ``epochs`` unless given:

========== =================================================================================
name       Optuna pruner and derived options (``E`` = epochs)
========== =================================================================================
none       ``NopPruner``: every trial runs to the end.
median     ``MedianPruner``: ``n_startup_trials=5``; ``n_warmup_steps=E // 4`` (no verdict in
           the first quarter of training, where curves cross), 0 when E is unknown.
asha       ``SuccessiveHalvingPruner`` (asynchronous successive halving, Li et al. 2018,
           arXiv 1810.05934): ``reduction_factor=3``;
           ``min_resource=max(1, (E - 1) // reduction_factor**2)`` so that three rungs
           (``r, 3r, 9r``) fall before the last epoch (a rung at the last epoch would only
           relabel finished trials as pruned); ``"auto"`` (Optuna's estimate) when E is
           unknown.
hyperband  ``HyperbandPruner`` (Li et al. 2016, arXiv 1603.06560): ``reduction_factor=3``;
           ``max_resource=E`` (``"auto"`` when unknown);
           ``min_resource=max(1, (E - 1) // reduction_factor**2)`` (1 when unknown).
           Brackets follow the study's seed (see :class:`SeededHyperbandPruner`).
========== =================================================================================

ASHA is the default pruner, with the ``multi-fidelity`` strategy (``hptune._defaults``):
that strategy's model reads every rung itself and wants no brackets. For TPE, Hyperband
was ahead of or level with ASHA on every task of ``bench/RESULTS.md`` (the ``hptune-tpe-*``
rows; Optuna's "Which Sampler and Pruner Should be Used?" tutorial table says the same).

A "resource" is the ``step`` a task passes to ``trial.report(step, value)``: report epochs
1-based (``1..E``) so that rungs fall where the table says.

With ``epochs`` known, no pruner prunes a trial at its last epoch (``step >= E``): it has
trained fully, and pruning it then would only relabel a finished trial PRUNED (with 1, 3 or
9 epochs a rung of ASHA or Hyperband falls exactly there; the median rule judges every
step). Nor does any prune a trial while its learning rate still warms up (a step up to
its searched ``warmup_epochs``): it is judged from its first report after warmup. See
:class:`Exemptions`.

Example:
    >>> pruner = create_pruner("asha", epochs=20)
    >>> type(pruner).__name__
    'SuccessiveHalvingPruner'
    >>> list_pruners()
    ['asha', 'hyperband', 'median', 'none']
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable
from typing import Any

import optuna

from hptune._checks import Int, Rule, check, optional
from hptune.exceptions import ConfigError
from hptune.study import _optuna
from hptune.study._view import StudyView

#: ``factory(epochs, **options) -> optuna pruner``; ``epochs`` may be None (unknown budget).
PrunerFactory = Callable[..., optuna.pruners.BasePruner]


@dataclasses.dataclass(frozen=True)
class _Entry:
    factory: PrunerFactory
    options: tuple[str, ...]


_REGISTRY: dict[str, _Entry] = {}


def register_pruner(name: str, factory: PrunerFactory, *, options: tuple[str, ...]) -> None:
    """Make ``name`` usable in ``create_study(pruner=...)`` and in YAML specs.

    Args:
        name: The registry name (lower case, as users write it).
        factory: ``factory(epochs, **options) -> optuna.pruners.BasePruner``; ``epochs`` is
            the budget's epoch count or None.
        options: The option names ``factory`` accepts; others are rejected up front.
    """
    if not isinstance(name, str) or not name:
        raise ConfigError(f"a pruner name must be a non-empty string, got {name!r}.")
    _REGISTRY[name] = _Entry(factory, tuple(options))


def list_pruners() -> list[str]:
    """The registered pruner names, sorted."""
    return sorted(_REGISTRY)


def pruner_options(name: str) -> tuple[str, ...]:
    """The options pruner ``name`` accepts."""
    return _entry(name).options


def _entry(name: str) -> _Entry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown pruner {name!r}; valid: {', '.join(list_pruners())}.")
    return _REGISTRY[name]


class _IntOrAuto(Rule):
    """An int >= 1, or ``"auto"`` (Optuna derives it)."""

    def accepts(self, value: Any) -> bool:
        return value == "auto" or Int(low=1).accepts(value)

    def __str__(self) -> str:
        return "an int >= 1 or 'auto'"


#: What each pruner option must be, whichever pruner takes it. Optuna checks some only at
#: the first trial, or never: a Hyperband with ``reduction_factor`` 1 divides by zero in
#: every trial, and a string compared with an int is a bare TypeError.
OPTION_RULES: dict[str, Rule] = {
    "reduction_factor": Int(low=2),
    "min_resource": _IntOrAuto(),
    "max_resource": _IntOrAuto(),
    "bootstrap_count": Int(low=0),
    "min_early_stopping_rate": Int(low=0),
    "n_startup_trials": Int(low=0),
    "n_warmup_steps": Int(low=0),
    "interval_steps": Int(low=1),
    "n_min_trials": Int(low=1),
}


def create_pruner(
    name: str, *, epochs: int | None = None, **options: Any
) -> optuna.pruners.BasePruner:
    """Build the Optuna pruner registered as ``name``.

    Args:
        name: One of :func:`list_pruners`.
        epochs: The training budget in epochs (the largest ``step`` a trial reports), from
            which resource options are derived; None when unknown.
        **options: Options of that pruner (see the module table); they override derived ones.

    Raises:
        ConfigError: For an unknown name, an unknown option or a value Optuna rejects.
    """
    entry = _entry(name)
    check(f"pruner {name!r}: epochs", epochs, optional(Int(low=1)), fix="None when unknown")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise ConfigError(f"pruner {name!r} got unknown option {unknown[0]!r}; valid: {valid}.")
    for key, value in options.items():
        if key in OPTION_RULES:  # a pruner registered elsewhere may take options of its own
            check(f"pruner {name!r}: {key}", value, OPTION_RULES[key])
    try:
        return entry.factory(epochs, **options)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"pruner {name!r} with options {options!r}: {exc}") from exc


def _min_resource(epochs: int | None, reduction_factor: int, unknown: int | str) -> int | str:
    if epochs is None:
        return unknown
    return max(1, (epochs - 1) // reduction_factor**2)


def _none(epochs: int | None) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


class Exemptions:
    """Mixin for an Optuna pruner: the steps at which no trial is judged.

    * Never at or after ``final_step`` (the last epoch), where the trial has trained fully.
      ``final_step`` None (epochs unknown) changes nothing.
    * Never while the trial's learning rate warms up: at a step up to its searched
      ``warmup_epochs`` (the recipe's name, in epochs; any parameter whose last dotted part
      is that). A trial in warmup has trained at a fraction of its learning rate, so
      comparing it at a rung with trials that trained at their full rate judges the warmup,
      not the config: the short-horizon bias of greedy early evaluation (Wu et al. 2018,
      arXiv 1803.02021). It is judged at its first report after warmup, at the rungs it has
      reached then (its value there competes with the others' at each rung). A warmup the
      space does not search is the same for every trial and changes nothing.
    """

    final_step: int | None = None

    def exempt(self, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether ``trial`` is not judged at its last reported step."""
        step = trial.last_step
        if step is None:
            return False
        if self.final_step is not None and step >= self.final_step:
            return True
        warmup = warmup_epochs(trial.params)
        return warmup is not None and step <= warmup

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if self.exempt(trial):
            return False
        return super().prune(study, trial)  # type: ignore[misc]


#: The last dotted part of the parameter that holds a trial's warmup in epochs.
WARMUP_PARAM = "warmup_epochs"


def warmup_epochs(params: dict[str, Any]) -> float | None:
    """A trial's searched warmup in epochs (its ``warmup_epochs`` parameter), or None."""
    for name, value in params.items():
        if name.rsplit(".", 1)[-1] == WARMUP_PARAM and isinstance(value, (int, float)):
            return None if isinstance(value, bool) else float(value)
    return None


class MedianPruner(Exemptions, optuna.pruners.MedianPruner):
    """Optuna's ``MedianPruner``, never pruning at the last epoch."""


class SuccessiveHalvingPruner(Exemptions, optuna.pruners.SuccessiveHalvingPruner):
    """Optuna's ``SuccessiveHalvingPruner`` (ASHA), never pruning at the last epoch."""


def _median(epochs: int | None, **options: Any) -> optuna.pruners.BasePruner:
    options.setdefault("n_startup_trials", 5)
    options.setdefault("n_warmup_steps", 0 if epochs is None else epochs // 4)
    pruner = MedianPruner(**options)
    pruner.final_step = epochs
    return pruner


def _asha(epochs: int | None, **options: Any) -> optuna.pruners.BasePruner:
    rf = options.setdefault("reduction_factor", 3)
    options.setdefault("min_resource", _min_resource(epochs, rf, "auto"))
    pruner = SuccessiveHalvingPruner(**options)
    pruner.final_step = epochs
    return pruner


class SeededHyperbandPruner(Exemptions, optuna.pruners.HyperbandPruner):
    """Optuna's ``HyperbandPruner`` with trials assigned to brackets by the study's seed.

    Optuna assigns trial ``n`` to a bracket by a hash of ``"{study_name}_{n}"``, so two runs
    of one seeded search under different study names (hptune names an unnamed study by the
    clock) prune differently. :class:`~hptune.study.Study` calls :meth:`seed_brackets` with
    the study's recorded seed: every driver of a study, and every re-run of a seeded search,
    then puts each trial number in the same bracket. Unseeded, it behaves as Optuna's.
    """

    bracket_key: str | None = None

    def seed_brackets(self, seed: int) -> None:
        """Assign brackets from ``seed`` (and the trial number) from now on."""
        self.bracket_key = f"seed-{seed}"

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        """Optuna's Hyperband decision, with the bracket's trials read through ``study``
        (a view stays a view: see ``_optuna.hyperband_bracket_pruner``)."""
        if self.exempt(trial):
            return False
        brackets = _optuna.hyperband_bracket_pruner(self, study)
        if brackets is None:
            return False
        bracket = self._get_bracket_id(study, trial)

        def same_bracket(s: Any, trials: list[optuna.trial.FrozenTrial]) -> list:
            return [t for t in trials if self._get_bracket_id(s, t) == bracket]

        return brackets[bracket].prune(StudyView(study, same_bracket), trial)

    # Overrides Optuna's private bracket hook (see _optuna.hyperband_bracket).
    def _get_bracket_id(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> int:
        if self.bracket_key is None:
            return _optuna.hyperband_bracket(self, study, trial)
        # Optuna's hash reads only ``study.study_name``; hand it the seed's key instead.
        keyed = types.SimpleNamespace(study_name=self.bracket_key)
        return _optuna.hyperband_bracket(self, keyed, trial)


def seed_pruner(pruner: optuna.pruners.BasePruner, seed: int) -> None:
    """Tie a pruner's own randomness (Hyperband's brackets) to the study's seed."""
    if isinstance(pruner, SeededHyperbandPruner):
        pruner.seed_brackets(seed)


def _hyperband(epochs: int | None, **options: Any) -> optuna.pruners.BasePruner:
    rf = options.setdefault("reduction_factor", 3)
    options.setdefault("max_resource", "auto" if epochs is None else epochs)
    options.setdefault("min_resource", _min_resource(epochs, rf, 1))
    pruner = SeededHyperbandPruner(**options)
    pruner.final_step = epochs
    return pruner


register_pruner("none", _none, options=())
register_pruner(
    "median",
    _median,
    options=("n_startup_trials", "n_warmup_steps", "interval_steps", "n_min_trials"),
)
register_pruner(
    "asha",
    _asha,
    options=("min_resource", "reduction_factor", "min_early_stopping_rate", "bootstrap_count"),
)
register_pruner(
    "hyperband",
    _hyperband,
    options=("min_resource", "max_resource", "reduction_factor", "bootstrap_count"),
)
