"""Multi-fidelity search: one TPE model that learns from every rung, and priors from the field.

Run it with a pruner that stops trials early (``pruner: asha``): the pruner decides how far
a trial trains, this strategy decides where the next one goes. Every proposal is one of:

* **model**: multivariate TPE (Bergstra et al. 2011) fitted, as BOHB does (Falkner et al.
  2018, arXiv 1807.01774), on the highest step that at least ``min_points_in_model``
  trials reached, over **all** trials of the study: every trial that reported that step is
  shown to TPE as complete with its value there, and trials stopped below it as pruned
  (ranked below the others by how far they got). There are no brackets and no start-up
  trials per bracket, as Optuna's ``HyperbandPruner`` imposes on its samplers: the model
  is used from the ``min_points_in_model``-th trial at the first rung on;
* **modes**: the study's first trial (number 0) is the priors' modes, the default config a
  practitioner would train first (the Tuning Playbook starts tuning from a simple
  configuration known to work; NePS's PriorBand evaluates its default first too,
  ``sample_default_first``); parameters without a prior are drawn uniformly, a choice
  among numbers takes the one nearest the mode;
* **prior**: a draw from the field's priors (:mod:`._priors`: learning rate per optimizer,
  momentum, weight decay, batch size, warmup; each cites its source) and the user's;
* **local**: the best trial at the model's step, each number moved by a normal step of
  ``0.1`` of its range (on its own scale), each choice re-drawn with probability 0.2;
* **uniform**: a uniform draw over the whole space (log-uniform on log dimensions).

The mix is PriorBand's idea (Mallik et al. 2023, arXiv 2306.12370): a fixed share of
uniform draws keeps a wrong prior from trapping the search; the prior's share decays as
evidence grows (``prior_trials / (prior_trials + n)``, ``n`` the trials the model sees),
and drops to none while the best trial so far lies far from the priors (``PRIOR_DOUBT``);
what is left goes to local draws (``local_share``) and to the model. Before the model has
``min_points_in_model`` points, draws come from the prior (and the uniform share).

The random numbers behind each trial's kind and draw depend only on the seed and the
trial number, so a seeded study run sequentially repeats its proposals.

It is hptune's default strategy (with ``pruner: asha``). On the LCBench surrogate (26
development tasks x 10 seeds, 1040 epochs; ``python -m bench search --lcbench --methods
hptune-default``) its median regret was 5.7 / 4.2 / 2.9 points at 25 / 50 / 100 % of the
budget, against 14.4 / 7.1 / 5.3 for TPE + Hyperband and 9.6 / 7.7 / 6.7 for the best
peer; without the first trial at the modes 7.5 / 5.5 / 3.5. Most of that is the field's
priors: without them (``field_priors: False``) it was 14.0 / 10.2 / 7.0, level with TPE +
Hyperband early and behind it later; with a deliberately wrong prior (lr 1e-4, momentum
0.1, weight decay 0.1, batch 512) 14.5 / 10.4 / 5.7.
"""

from __future__ import annotations

import math
import warnings
import zlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from hptune._checks import Bool, Int, Number, Rule, optional
from hptune.exceptions import ConfigError
from hptune.study import _optuna, _records
from hptune.study._view import StudyView
from hptune.study.strategies._base import Strategy
from hptune.study.strategies._priors import NumericPrior, field_prior, parse_priors

UNIFORM, PRIOR, LOCAL, MODEL, MODES = "uniform", "prior", "local", "model", "modes"
#: Normal step of a local draw, as a share of the range (on the dimension's scale), and
#: the probability that a local draw re-draws a choice.
LOCAL_STEP, LOCAL_SWITCH = 0.1, 0.2
#: Prior draws stop while the best trial (at the highest step 3 trials reached) lies
#: further than this from the priors: root mean square distance from the modes, in prior
#: widths (``_prior_distance``). On LCBench (26 tasks x 10 seeds) a deliberately wrong prior
#: cost 7.84 points of median regret at the full budget without this rule, 6.49 with it at
#: 2 widths measured from the model's step only, 5.84 at 1 width measured as here; a good
#: prior 3.94, 3.61 and 3.49.
PRIOR_DOUBT = 1.0
#: The most trials TPE is fitted on (see :func:`rung_view`).
MAX_MODEL_TRIALS = 200


def _rng(seed: int, number: int, salt: str) -> np.random.RandomState:
    return np.random.RandomState(zlib.crc32(f"{seed}:{number}:{salt}".encode()) & 0x7FFFFFFF)


def _reported(trial: FrozenTrial) -> dict[int, float]:
    """The finite values a trial reported, by step."""
    return {s: v for s, v in trial.intermediate_values.items() if math.isfinite(v)}


def model_step(trials: Sequence[FrozenTrial], n_min: int) -> int | None:
    """The highest step that at least ``n_min`` trials reported (BOHB's rule: the model is
    fitted on the highest fidelity with enough observations); None when there is none."""
    counts: dict[int, int] = {}
    for t in trials:
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            for step in _reported(t):
                counts[step] = counts.get(step, 0) + 1
    steps = [s for s, c in counts.items() if c >= n_min]
    return max(steps) if steps else None


def _shown(trial: FrozenTrial, state: TrialState, value: float | None, values: dict) -> FrozenTrial:
    return FrozenTrial(
        number=trial.number,
        state=state,
        value=value,
        datetime_start=trial.datetime_start,
        datetime_complete=trial.datetime_complete,
        params=trial.params,
        distributions=trial.distributions,
        user_attrs={},
        system_attrs={},
        intermediate_values=values,
        trial_id=_optuna.trial_id(trial),
    )


def rung_view(
    trials: Sequence[FrozenTrial],
    step: int | None,
    max_trials: int | None = None,
    maximize: bool = True,
) -> list[FrozenTrial]:
    """The trials as the model sees them at ``step``: a trial that reported ``step`` is
    COMPLETE with its value there; a COMPLETE trial that reported nothing at or after
    ``step`` keeps its final value (a failed trial, shown complete with the worst value by
    :class:`~hptune.study._view.PenalizingSampler`, stays the worst); a PRUNED trial stopped
    below ``step`` stays PRUNED with its values (TPE ranks it below every complete one);
    running trials below ``step`` are left out. ``step`` None: the complete trials.

    ``max_trials``: at most this many trials in all; the pruned ones that went furthest
    (then scored best there) are kept, the earliest-stopped worst ones left out. TPE's
    cost grows with the trials it sees (Optuna's discrete truncated normals loop in
    Python: ~70 ms per proposal at 500 trials of LCBench's space here, ~25 ms at 200),
    and the trials left out lie in its "bad" group, where the earliest-stopped worst
    ones add least."""
    out, pruned = [], []
    for t in trials:
        values = _reported(t)
        if step is None:
            if t.state == TrialState.COMPLETE:
                out.append(t)
        elif t.state not in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
            continue
        elif step in values:
            out.append(_shown(t, TrialState.COMPLETE, values[step], {}))
        elif t.state == TrialState.COMPLETE and (not values or max(values) < step):
            out.append(_shown(t, TrialState.COMPLETE, t.value, {}))
        elif t.state == TrialState.PRUNED and values:
            pruned.append(t)
    if max_trials is not None and len(out) + len(pruned) > max_trials:
        sign = 1.0 if maximize else -1.0

        def reach(t: FrozenTrial) -> tuple[int, float]:
            values = _reported(t)
            return max(values), sign * values[max(values)]

        pruned.sort(key=reach)
        pruned = pruned[len(pruned) - max(max_trials - len(out), 0) :]
    shown = [_shown(t, TrialState.PRUNED, None, _reported(t)) for t in pruned]
    return sorted(out + shown, key=lambda t: t.number)


class _Param:
    """One parameter as the sampler draws it: uniformly, from its prior, or near a value."""

    def __init__(self, dist: BaseDistribution, prior: NumericPrior | None) -> None:
        self.dist, self.prior = dist, prior

    def uniform(self, rng: np.random.RandomState) -> Any:
        d = self.dist
        if isinstance(d, CategoricalDistribution):
            return d.choices[rng.randint(len(d.choices))]
        if d.log:
            return self._fit(math.exp(rng.uniform(math.log(d.low), math.log(d.high))))
        return self._fit(rng.uniform(d.low, d.high))

    def at_mode(self, rng: np.random.RandomState) -> Any:
        """The prior's mode (clipped to the range; the nearest on the prior's scale of a
        choice among numbers); a uniform draw without a prior or among other choices."""
        d, prior = self.dist, self.prior
        if prior is None:
            return self.uniform(rng)
        if isinstance(d, CategoricalDistribution):
            if not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in d.choices):
                return self.uniform(rng)
            mode = prior.to_scale(prior.mode)
            return min(d.choices, key=lambda c: abs(prior.to_scale(c) - mode))
        return self._fit(prior.clipped_mode(d.low, d.high))

    def from_prior(self, rng: np.random.RandomState) -> Any:
        if self.prior is None or isinstance(self.dist, CategoricalDistribution):
            return self.uniform(rng)
        return self._fit(self.prior.sample(self.dist.low, self.dist.high, rng))

    def near(self, value: Any, rng: np.random.RandomState) -> Any:
        d = self.dist
        if isinstance(d, CategoricalDistribution):
            return self.uniform(rng) if rng.uniform() < LOCAL_SWITCH else value
        scale = math.log if d.log else float
        lo, hi = scale(d.low), scale(d.high)
        u = (scale(value) - lo) / (hi - lo) if hi > lo else 0.5
        x = lo + min(max(u + rng.normal(0.0, LOCAL_STEP), 0.0), 1.0) * (hi - lo)
        return self._fit(math.exp(x) if d.log else x)

    def _fit(self, x: float) -> Any:
        d = self.dist
        if isinstance(d, IntDistribution):
            return int(min(max(d.low + round((x - d.low) / d.step) * d.step, d.low), d.high))
        assert isinstance(d, FloatDistribution)
        if d.step is not None:
            x = d.low + round((x - d.low) / d.step) * d.step
        return float(min(max(x, d.low), d.high))


def _names_optimizer(name: str) -> bool:
    """Whether a choice named ``name`` picks the optimizer (its branches are what a prior
    per optimizer, and the field's LR prior, are keyed by)."""
    return name.rsplit(".", 1)[-1] == "optimizer"


def _check_priors(
    priors: Mapping[str, NumericPrior | dict[str, NumericPrior]],
    dims: Sequence[tuple[str, BaseDistribution]],
) -> None:
    """Refuse a user prior on a parameter the space lacks or has as a choice, for an
    optimizer the space does not offer, or whose mode lies outside the parameter's range:
    each would be dropped or clipped without a word."""
    numeric = {n: d for n, d in dims if not isinstance(d, CategoricalDistribution)}
    optimizers = sorted(
        {
            str(choice)
            for n, d in dims
            if _names_optimizer(n) and isinstance(d, CategoricalDistribution)
            for choice in d.choices
        }
    )
    for name, given in priors.items():
        dist = numeric.get(name)
        if dist is None:
            names = ", ".join(sorted(numeric)) or "none"
            raise ConfigError(
                f"strategy 'multi-fidelity': priors names {name!r}, which is not a numeric "
                f"parameter of the space (its numeric parameters: {names}); use the full "
                "dotted name, e.g. optimizer.sgd.momentum."
            )
        low, high = dist.low, dist.high  # type: ignore[attr-defined]
        for optimizer, prior in (given if isinstance(given, dict) else {"": given}).items():
            label = f"{name!r} for {optimizer!r}" if optimizer else repr(name)
            if optimizer and optimizer not in optimizers:
                raise ConfigError(
                    f"strategy 'multi-fidelity': the prior of {label} names an optimizer the "
                    f"space's optimizer choice lacks (its optimizers: "
                    f"{', '.join(optimizers) or 'none'}); give {name!r} one prior, or one per "
                    "optimizer the space offers."
                )
            if not low <= prior.mode <= high:
                raise ConfigError(
                    f"strategy 'multi-fidelity': the prior of {label} has its mode at "
                    f"{prior.mode:g}, outside the parameter's range [{low:g}, {high:g}]; give "
                    "a mode inside the range, or widen the range."
                )


class MultiFidelitySampler(BaseSampler):
    """The sampler of :class:`MultiFidelityStrategy` (see the module docstring).

    Args:
        seed: Seeds the kind of each trial, its draw and the TPE model.
        priors: A prior per parameter name, or per name and optimizer (the user's; they win
            over the field's).
        field_priors: Use the field's priors for parameters the user gave none.
        uniform_share, local_share, prior_trials, min_points_in_model, start_at_prior: As
            the strategy's.
    """

    def __init__(
        self,
        seed: int,
        *,
        priors: Mapping[str, NumericPrior | dict[str, NumericPrior]],
        field_priors: bool,
        uniform_share: float,
        local_share: float,
        prior_trials: float,
        min_points_in_model: int | None,
        start_at_prior: bool = True,
    ) -> None:
        self._seed = seed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self._model = optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=0, multivariate=True, group=True
            )
        self._priors, self._field_priors = dict(priors), field_priors
        self._uniform_share, self._local_share = uniform_share, local_share
        self._prior_trials, self._min_points = prior_trials, min_points_in_model
        self._start_at_prior = start_at_prior
        self._dims: list[tuple[str, BaseDistribution]] = []
        self._branches: dict[str, tuple[str, ...]] = {}
        self._epochs: int | None = None
        self._n_min = min_points_in_model or 2
        self._plans: dict[int, tuple[str, dict[str, Any] | None, list[FrozenTrial]]] = {}

    def configure(self, dims: Sequence[tuple[str, Any]], epochs: int | None) -> None:
        """The space's ``(name, dimension)`` pairs (:meth:`hptune.space.Space.dimensions`)
        and the training epochs (for the warmup prior; None when unknown)."""
        from hptune.space import Conditional

        self._dims = [(n, d.distribution()) for n, d in dims]
        self._branches = {n: tuple(d.names) for n, d in dims if isinstance(d, Conditional)}
        self._epochs = epochs
        self._n_min = self._min_points or len(self._dims) + 1

    # -- drawing a whole config ------------------------------------------------------------
    def _prior(self, name: str, optimizer: str | None) -> NumericPrior | None:
        given = self._priors.get(name)
        if isinstance(given, dict):  # one per optimizer
            given = given.get(optimizer or "")
        if given is not None:
            return given
        return field_prior(name, optimizer, self._epochs) if self._field_priors else None

    def _prior_distance(self, params: Mapping[str, Any]) -> float:
        """How far ``params`` lie from the priors: the root mean square, over the numeric
        parameters that have one, of the distance from its mode in prior widths, each
        capped at 3 (a weight decay of 0 on a log prior is far, not infinitely far); 0
        when none has a prior."""
        optimizer = self._optimizer({n: params[n] for n in self._branches if n in params})
        z2 = []
        for name, dist in self._dims:
            prior = self._prior(name, optimizer)
            if (
                prior is not None
                and name in params
                and not isinstance(dist, CategoricalDistribution)
            ):
                z2.append(min(-2.0 * prior.log_density(params[name]), 9.0))
        return math.sqrt(sum(z2) / len(z2)) if z2 else 0.0

    def _optimizer(self, chosen: Mapping[str, str]) -> str | None:
        """The optimizer a config trains with: the branch of a choice named ``optimizer``;
        SGD when the space has a momentum and no such choice (LCBench's networks); None."""
        for cond, branch in chosen.items():
            if _names_optimizer(cond):
                return branch
        if any(n.rsplit(".", 1)[-1] == "momentum" for n, _ in self._dims):
            return "sgd"
        return None

    def _active(self, name: str, chosen: Mapping[str, str]) -> bool:
        """Whether ``name`` is drawn given the branches ``chosen`` so far."""
        return not any(
            name.startswith(cond + ".")
            and (cond not in chosen or not name.startswith(f"{cond}.{chosen[cond]}."))
            for cond in self._branches
        )

    def _draw(self, how: str, rng: np.random.RandomState, base: Mapping[str, Any] | None) -> dict:
        """A whole config: branches first (so a learning rate knows its optimizer), then the
        other parameters."""
        chosen: dict[str, str] = {}
        params: dict[str, Any] = {}
        for name, dist in self._dims:
            if name in self._branches and self._active(name, chosen):
                p = _Param(dist, None)
                near = how == LOCAL and base is not None and name in base
                chosen[name] = params[name] = p.near(base[name], rng) if near else p.uniform(rng)
        optimizer = self._optimizer(chosen)
        for name, dist in self._dims:
            if name in self._branches or not self._active(name, chosen):
                continue
            p = _Param(dist, self._prior(name, optimizer))
            if how == LOCAL and base is not None and name in base:
                params[name] = p.near(base[name], rng)
            elif how == MODES:
                params[name] = p.at_mode(rng)
            elif how in (PRIOR, LOCAL):
                params[name] = p.from_prior(rng)
            else:
                params[name] = p.uniform(rng)
        return params

    # -- the plan of one trial -------------------------------------------------------------
    def _plan(self, study: Any, trial: FrozenTrial) -> tuple[str, dict | None, list]:
        if trial.number in self._plans:
            return self._plans[trial.number]
        trials = [t for t in _optuna.cached_trials(study) if t.number != trial.number]
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        view = rung_view(trials, model_step(trials, self._n_min), MAX_MODEL_TRIALS, maximize)
        n = sum(t.state == TrialState.COMPLETE for t in view)
        u = _rng(self._seed, trial.number, "kind").uniform()
        prior = self._prior_trials / (self._prior_trials + n) if self._prior_trials else 0.0
        best = _best(view, study) if n >= self._n_min else None
        # The evidence contradicts the prior: draw from it no more (uniformly instead,
        # before the model has its points), until a best trial near it comes back.
        early = _best(rung_view(trials, model_step(trials, 3)), study)
        doubted = early is not None and self._prior_distance(early.params) > PRIOR_DOUBT
        if doubted:
            prior = 0.0
        if trial.number == 0 and self._start_at_prior:
            kind = MODES
        elif u < self._uniform_share:
            kind = UNIFORM
        elif n < self._n_min:
            kind = UNIFORM if doubted else PRIOR
        elif u < self._uniform_share + (1 - self._uniform_share) * prior:
            kind = PRIOR
        else:
            rest = (u - self._uniform_share) / (1 - self._uniform_share) - prior
            kind = LOCAL if rest < (1 - prior) * self._local_share else MODEL
        params = None
        if kind != MODEL:
            rng = _rng(self._seed, trial.number, "draw")
            base = best.params if best is not None and kind == LOCAL else None
            params = self._draw(kind, rng, base)
        self._plans = {trial.number: (kind, params, view)}  # the driver asks one at a time
        return self._plans[trial.number]

    def _view(self, study: Any, view: list[FrozenTrial]) -> StudyView:
        return StudyView(study, lambda s, trials: view)

    # -- Optuna's sampler interface --------------------------------------------------------
    def infer_relative_search_space(self, study: Any, trial: FrozenTrial) -> dict:
        kind, _, view = self._plan(study, trial)
        if kind != MODEL:
            return {}
        return self._model.infer_relative_search_space(self._view(study, view), trial)

    def sample_relative(self, study: Any, trial: FrozenTrial, search_space: dict) -> dict:
        kind, _, view = self._plan(study, trial)
        if kind != MODEL or not search_space:
            return {}
        return self._model.sample_relative(self._view(study, view), trial, search_space)

    def sample_independent(
        self, study: Any, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution
    ) -> Any:
        kind, params, view = self._plan(study, trial)
        if kind == MODEL:
            return self._model.sample_independent(
                self._view(study, view), trial, param_name, param_distribution
            )
        assert params is not None
        if param_name in params and _optuna.contains(param_distribution, params[param_name]):
            return params[param_name]
        # A parameter the space did not announce (or out of its recorded range): uniform.
        return _Param(param_distribution, None).uniform(_rng(self._seed, trial.number, param_name))

    def before_trial(self, study: Any, trial: FrozenTrial) -> None:
        self._plans.pop(trial.number, None)

    def after_trial(self, study: Any, trial: FrozenTrial, state: TrialState, values: Any) -> None:
        self._plans.pop(trial.number, None)

    def reseed_rng(self) -> None:
        self._model.reseed_rng()


def _best(view: list[FrozenTrial], study: Any) -> FrozenTrial | None:
    done = [t for t in view if t.state == TrialState.COMPLETE and t.value is not None]
    if not done:
        return None
    sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
    return max(done, key=lambda t: sign * t.value)


class _Priors(Rule):
    """A mapping of parameter name to a mode, or to ``{mode, width, scale}``."""

    def accepts(self, value: Any) -> bool:
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            return False
        try:
            parse_priors(value)
        except (ConfigError, TypeError, ValueError):
            return False
        return True

    def __str__(self) -> str:
        return (
            "a mapping of parameter name to a number (the mode), to {mode, width, scale} "
            "(scale log, log1m or linear; width > 0), or to one of those per optimizer "
            "({adam: 3e-3, sgd: 0.05})"
        )


class MultiFidelityStrategy(Strategy):
    """TPE on the highest well-observed rung over all trials, mixed with draws from priors,
    near the incumbent and uniform (see the module docstring). Use it with ``pruner: asha``.

    Args:
        priors: ``{parameter name: mode}`` or ``{name: {mode, width, scale}}``: your belief
            about where a parameter's good values lie; wins over the field's prior for that
            name (default none). ``{name: {optimizer: mode or {mode, width, scale}}}`` gives
            one per branch of the space's ``optimizer`` choice (a learning rate that SGD and
            Adam share); an optimizer left out keeps the field's prior.
        field_priors: Use the field's priors (``strategies/_priors.py``) for the parameters
            you gave none (default True). False: those are drawn uniformly.
        uniform_share: Share of uniform draws, always (default 0.2).
        local_share: Share of the non-prior draws taken near the best trial (default 0.3).
        prior_trials: The priors weigh as much as this many trials: their share of draws is
            ``prior_trials / (prior_trials + n)`` after ``n`` trials at the model's step
            (default 10; 0 turns prior draws off once the model has its points).
        min_points_in_model: Trials a step needs before TPE is fitted there (default the
            number of parameters + 1, as BOHB).
        start_at_prior: The study's first trial (number 0) is the priors' modes: the
            field's defaults and yours (default True).
    """

    name = "multi-fidelity"
    option_rules = {
        "priors": _Priors(),
        "field_priors": Bool(),
        "uniform_share": Number(low=0, high=1, high_open=True),
        "local_share": Number(low=0, high=1),
        "prior_trials": Number(low=0),
        "min_points_in_model": optional(Int(low=2)),
        "start_at_prior": Bool(),
    }

    _space: tuple[list[tuple[str, Any]], int | None] | None = None

    def create_sampler(self, seed: int, n_existing_trials: int) -> BaseSampler:
        self._sampler = MultiFidelitySampler(
            _records.derive_sampler_seed(seed, n_existing_trials),
            priors=parse_priors(self.option("priors", {})),
            field_priors=self.option("field_priors", True),
            uniform_share=self.option("uniform_share", 0.2),
            local_share=self.option("local_share", 0.3),
            prior_trials=self.option("prior_trials", 10),
            min_points_in_model=self.option("min_points_in_model", None),
            start_at_prior=self.option("start_at_prior", True),
        )
        if self._space is not None:  # a sampler re-created after prepare (a new seed)
            self._sampler.configure(*self._space)
        return self._sampler

    def check_space(self, space: Any) -> None:
        dims = [(n, d.distribution()) for n, d in space.dimensions()]
        _check_priors(parse_priors(self.option("priors", {})), dims)

    def prepare(self, study: optuna.Study, space: Any, seed: int) -> None:
        self.check_space(space)
        epochs = (study.user_attrs.get("hptune.pruner") or {}).get("epochs")
        self._space = (list(space.dimensions()), epochs)
        self._sampler.configure(*self._space)
