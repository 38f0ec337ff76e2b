"""Coarse-to-fine search: look everywhere a little, then look closely where it was good.

The procedure practitioners use by hand (Bengio 2012, "Practical recommendations for
gradient-based training of deep architectures", arXiv 1206.5533, sec. 3.3), made
automatic and recorded:

1. **Coarse stage**: ``coarse_share`` of the trial budget (default 40%) spread over the whole
   space by scrambled Sobol points (or random draws).
2. **Narrowing**, once every coarse trial has finished: for each numeric dimension, the span
   of the ``top_k`` best coarse trials, measured in the dimension's own scale (log for log
   dimensions), widened by ``margin`` times that span on each side (the span is taken as at
   least 10% of the original range, so agreeing trials do not collapse the box), snapped to
   the dimension's step and clipped to its original bounds.
3. **Fine stage**: TPE inside that box. Its sampler sees only the trials inside the box (the
   good coarse trials warm-start it), with their distributions narrowed to the box; the
   stored trials keep the original distributions, so the study stays one homogeneous Optuna
   study. Choices are not narrowed: TPE's categorical model already favours the good ones.

Budget: with ``n_trials`` the coarse stage is ``ceil(coarse_share * n_trials)`` trials of
the first ``optimize`` call. With only a timeout the budget is unknown, so the coarse stage is
``n_coarse_trials`` trials (default 20) and the fine stage runs until the timeout.

Recorded: the plan and the box in the study user attribute ``hptune.coarse_to_fine``, each
trial's stage (``"coarse"``/``"fine"``) in its user attribute ``hptune.stage``. At the end of
each ``optimize`` call a :class:`RangeBoundaryWarning` is issued (and recorded in the study
user attribute ``hptune.notes``) for every float dimension where the median of the three
best trials lies within ``boundary_tolerance`` (default 3%) of a bound of the original range,
in the dimension's scale: the optimum may lie outside the range.

Example:
    >>> strategy = create_strategy("coarse-to-fine", coarse_share=0.5, top_k=3)
"""

from __future__ import annotations

import copy
import math
import statistics
import warnings
from collections.abc import Sequence, Set
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from hptune._checks import Int, Number, OneOf, optional
from hptune.study import _optuna, _records
from hptune.study._view import ViewSampler
from hptune.study.strategies._base import Strategy, create_strategy
from hptune.study.strategies._tpe import tpe_sampler

#: Study user attribute holding the plan, the box and the notes.
ATTR = "hptune.coarse_to_fine"
_Numeric = (FloatDistribution, IntDistribution)


class RangeBoundaryWarning(UserWarning):
    """The best value of a dimension sits at a bound of its range: widen the range."""


class _StagedSampler(BaseSampler):
    """Delegates every call to the sampler of the current stage (set before each ask)."""

    def __init__(self, active: BaseSampler) -> None:
        self.active = active

    def infer_relative_search_space(self, study: Any, trial: FrozenTrial) -> dict[str, Any]:
        return self.active.infer_relative_search_space(study, trial)

    def sample_relative(
        self, study: Any, trial: FrozenTrial, space: dict[str, Any]
    ) -> dict[str, Any]:
        return self.active.sample_relative(study, trial, space)

    def sample_independent(self, study: Any, trial: FrozenTrial, name: str, dist: Any) -> Any:
        return self.active.sample_independent(study, trial, name, dist)

    def before_trial(self, study: Any, trial: FrozenTrial) -> None:
        self.active.before_trial(study, trial)

    def after_trial(
        self, study: Any, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None
    ) -> None:
        self.active.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.active.reseed_rng()


class _BoxSampler(ViewSampler):
    """A sampler that works inside ``box``: it sees only the trials inside, with narrowed
    distributions, and draws independent values from the narrowed distributions."""

    def __init__(self, sampler: BaseSampler, box: dict[str, BaseDistribution]) -> None:
        self.box = box
        super().__init__(sampler, self._inside)

    def _inside(self, study: Any, trials: list[FrozenTrial]) -> list[FrozenTrial]:
        shown = []
        for trial in trials:
            narrowed = {n: d for n, d in self.box.items() if n in trial.params}
            if all(_optuna.contains(d, trial.params[n]) for n, d in narrowed.items()):
                if narrowed:
                    trial = copy.copy(trial)
                    trial.distributions = {**trial.distributions, **narrowed}
                shown.append(trial)
        return shown

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        dist = self.box.get(param_name, param_distribution)
        return super().sample_independent(study, trial, param_name, dist)


def _scale(dist: FloatDistribution | IntDistribution) -> tuple[Any, Any]:
    if dist.log:
        return math.log, math.exp
    return (lambda x: x), (lambda x: x)


def narrow(
    originals: dict[str, BaseDistribution], top: list[FrozenTrial], margin: float
) -> dict[str, BaseDistribution]:
    """The box around the ``top`` trials (see the module docstring for the rule)."""
    box: dict[str, BaseDistribution] = {}
    for name, dist in originals.items():
        values = [t.params[name] for t in top if name in t.params]
        if not isinstance(dist, _Numeric) or dist.single() or not values:
            continue
        fwd, back = _scale(dist)
        lo, hi = min(map(fwd, values)), max(map(fwd, values))
        o_lo, o_hi = fwd(dist.low), fwd(dist.high)
        pad = margin * max(hi - lo, 0.1 * (o_hi - o_lo))
        low, high = back(max(o_lo, lo - pad)), back(min(o_hi, hi + pad))
        box[name] = _snapped(dist, low, high)
    return box


def _snapped(
    dist: FloatDistribution | IntDistribution, low: float, high: float
) -> BaseDistribution:
    step = dist.step
    if isinstance(dist, IntDistribution):
        step = step or 1
    if step is not None:
        # Stay on the original grid of steps, or Optuna would shift the bounds itself.
        low = dist.low + math.floor((low - dist.low) / step + 1e-9) * step
        high = dist.low + math.ceil((high - dist.low) / step - 1e-9) * step
    low, high = max(low, dist.low), min(high, dist.high)
    if isinstance(dist, IntDistribution):
        return IntDistribution(int(low), int(high), log=dist.log, step=dist.step)
    return FloatDistribution(low, high, log=dist.log, step=dist.step)


def _dist_record(dist: FloatDistribution | IntDistribution) -> dict[str, Any]:
    kind = "int" if isinstance(dist, IntDistribution) else "float"
    return {"type": kind, "low": dist.low, "high": dist.high, "log": dist.log, "step": dist.step}


def _dist_from_record(rec: dict[str, Any]) -> BaseDistribution:
    cls = IntDistribution if rec["type"] == "int" else FloatDistribution
    return cls(rec["low"], rec["high"], log=rec["log"], step=rec["step"])


def boundary_notes(top: list[FrozenTrial], tolerance: float) -> list[str]:
    """One note per float dimension where the median of the ``top`` trials (best first)
    lies within ``tolerance`` (a fraction of the range, in the dimension's scale) of a bound
    of its original range. The median, not the single best, so that one lucky trial near a
    bound does not raise a false alarm."""
    notes = []
    for name, dist in sorted(top[0].distributions.items()):
        if not isinstance(dist, FloatDistribution) or dist.single():
            continue
        fwd, _ = _scale(dist)
        span = fwd(dist.high) - fwd(dist.low)
        pos = statistics.median(
            (fwd(t.params[name]) - fwd(dist.low)) / span for t in top if name in t.params
        )
        for side, bound, near in (
            ("lower", dist.low, pos <= tolerance),
            ("upper", dist.high, pos >= 1 - tolerance),
        ):
            if near:
                notes.append(
                    f"{name}: the best trials sit at the {side} bound {bound:g} of the "
                    f"original range [{dist.low:g}, {dist.high:g}]; widen it"
                )
    return notes


class CoarseToFineStrategy(Strategy):
    """A coarse stage over the whole space, then TPE in the box around the best trials.

    Args:
        coarse: The coarse stage's strategy, ``"sobol"`` (default) or ``"random"``.
        coarse_share: Share of ``n_trials`` spent on the coarse stage (default 0.4).
        n_coarse_trials: Coarse trials when ``optimize`` has no ``n_trials`` (default 20).
        top_k: Best coarse trials that span the box (default ``max(3, n_coarse // 4)``).
        margin: Widening of the box on each side, as a fraction of its span (default 0.5).
        boundary_tolerance: Distance to a bound, as a fraction of the range, at which the best
            value counts as "at the bound" (default 0.03).
        n_startup_trials: Trials in the box before the fine TPE models them (default 4).
    """

    name = "coarse-to-fine"
    reads_running_stages = True
    option_rules = {
        "coarse": OneOf(("sobol", "random")),
        "coarse_share": Number(low=0, high=1),
        "n_coarse_trials": Int(low=1),
        "top_k": optional(Int(low=1)),
        "margin": Number(low=0),
        "boundary_tolerance": Number(low=0, high=0.5),
        "n_startup_trials": Int(low=0),
    }

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.coarse = self.option("coarse", "sobol")
        self.coarse_share = float(self.option("coarse_share", 0.4))
        self.margin = float(self.option("margin", 0.5))
        self.tolerance = float(self.option("boundary_tolerance", 0.03))
        self.n_coarse_trials = self.option("n_coarse_trials", 20)
        self.top_k = self.option("top_k", None)
        self.n_startup_trials = self.option("n_startup_trials", 4)
        self._plan: dict[str, Any] | None = None

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        self._coarse_sampler = create_strategy(self.coarse).create_sampler(seed, n_existing_trials)
        fine_seed = _records.derive_sampler_seed(seed, n_existing_trials) ^ 0x5EED
        self._tpe = tpe_sampler(fine_seed, n_startup_trials=self.n_startup_trials)
        self._fine: BaseSampler | None = None
        self._staged = _StagedSampler(self._coarse_sampler)
        return self._staged

    def prepare(self, study: optuna.Study, space: Any, seed: int) -> None:
        self._plan = study.user_attrs.get(ATTR)

    def begin(self, study: optuna.Study, space: Any, n_trials: int | None) -> None:
        if self._plan is not None:
            return
        n_coarse = (
            self.n_coarse_trials if n_trials is None else math.ceil(self.coarse_share * n_trials)
        )
        self._plan = {"n_coarse": n_coarse, "coarse": self.coarse, "box": None}
        study.set_user_attr(ATTR, self._plan)

    def next_stage(self, study: optuna.Study, running: Set[int]) -> str | None:
        assert self._plan is not None, "begin() runs before next_stage()"
        trials = study.get_trials(deepcopy=False)
        coarse = [t for t in trials if t.user_attrs.get(_records.STAGE) == "coarse"]
        if len(coarse) < self._plan["n_coarse"]:
            self._staged.active = self._coarse_sampler
            return "coarse"
        if any(t.number in running and t.state == TrialState.RUNNING for t in coarse):
            return None  # the box needs every coarse result
        if self._fine is None:
            # The box is built once per study and recorded; a re-opened study reads it back.
            # (Built here, not in prepare: create_sampler may be called again in between.)
            recorded = self._plan.get("box")
            box = (
                {n: _dist_from_record(d) for n, d in recorded.items()}
                if recorded is not None
                else self._narrow(study, coarse)
            )
            self._fine = _BoxSampler(self._tpe, box)
        self._staged.active = self._fine
        return "fine"

    def _narrow(
        self, study: optuna.Study, coarse: list[FrozenTrial]
    ) -> dict[str, BaseDistribution]:
        done = [t for t in coarse if t.state == TrialState.COMPLETE and math.isfinite(t.value)]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        done.sort(key=lambda t: t.value, reverse=maximize)
        top_k = self.top_k or max(3, self._plan["n_coarse"] // 4)
        originals: dict[str, BaseDistribution] = {}
        for t in coarse:
            for name, dist in t.distributions.items():
                originals.setdefault(name, dist)
        box = narrow(originals, done[:top_k], self.margin)
        self._plan = {**self._plan, "top_k": top_k, "top_trials": [t.number for t in done[:top_k]]}
        self._plan["box"] = {n: _dist_record(d) for n, d in box.items()}
        self._plan["original"] = {n: _dist_record(originals[n]) for n in box}
        study.set_user_attr(ATTR, self._plan)
        return box

    def finish(self, study: optuna.Study) -> list[str]:
        done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
        done = [t for t in done if math.isfinite(t.value)]
        if not done:
            return []
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        done.sort(key=lambda t: t.value, reverse=maximize)
        notes = boundary_notes(done[:3], self.tolerance)
        for note in notes:
            warnings.warn(note, RangeBoundaryWarning, stacklevel=4)
        return notes
