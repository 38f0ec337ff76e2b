"""A strategy's own time per ask in a long study: the time its sampler takes to propose one
config once the study holds N trials (issue 12's bar: under 50 ms at 500 trials).

The study searches LCBench's space (7 parameters, 3 of them integers) with ASHA on 52
epochs, on synthetic learning curves (no surrogate, no training), in memory; N trials are
run, then the sampler's calls (``infer_relative_search_space``, ``sample_relative``,
``sample_independent``) are timed over the next ``--asks`` trials. The driver's own
overhead (storage, records) is left out: ``bench/overhead.py`` measures that.

Run from the repository root: ``python -m bench.ask_time [--strategy multi-fidelity]
[--trials 500] [--asks 50] [--pruner asha]``. Prints the mean, median, 90th percentile and
maximum in milliseconds.
"""

from __future__ import annotations

import argparse
import logging
import math
import statistics
import time
from typing import Any

import optuna
from optuna.samplers import BaseSampler

from hptune.space import loguniform, randint, uniform
from hptune.study import create_study

SPACE = {
    "batch_size": randint(16, 512, log=True),
    "learning_rate": loguniform(1e-4, 0.1),
    "momentum": uniform(0.1, 0.99),
    "weight_decay": loguniform(1e-5, 0.1),
    "num_layers": randint(1, 5),
    "max_units": randint(64, 1024, log=True),
    "max_dropout": uniform(0.0, 1.0),
}
EPOCHS = 52


def curve(config: dict[str, Any], trial: Any) -> float:
    """A learning curve whose ceiling peaks at lr 0.03, momentum 0.9."""
    ceiling = math.exp(
        -((math.log10(config["learning_rate"]) + 1.5) ** 2) - (config["momentum"] - 0.9) ** 2
    )
    value = 0.0
    for epoch in range(1, EPOCHS + 1):
        value = ceiling * (1 - math.exp(-epoch / 5))
        trial.report(epoch, value)
    return value


class TimedSampler(BaseSampler):
    """Delegates to ``sampler`` and adds the time of its proposal calls per trial number."""

    def __init__(self, sampler: BaseSampler) -> None:
        self.sampler = sampler
        self.seconds: dict[int, float] = {}

    def _timed(self, trial: Any, call: Any, *args: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args)
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[trial.number] = self.seconds.get(trial.number, 0.0) + elapsed

    def infer_relative_search_space(self, study: Any, trial: Any) -> Any:
        return self._timed(trial, self.sampler.infer_relative_search_space, study, trial)

    def sample_relative(self, study: Any, trial: Any, search_space: Any) -> Any:
        return self._timed(trial, self.sampler.sample_relative, study, trial, search_space)

    def sample_independent(self, study: Any, trial: Any, name: str, dist: Any) -> Any:
        return self._timed(trial, self.sampler.sample_independent, study, trial, name, dist)

    def before_trial(self, study: Any, trial: Any) -> None:
        self.sampler.before_trial(study, trial)

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        self.sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.sampler.reseed_rng()


def measure(strategy: str, n_trials: int, n_asks: int, pruner: str) -> list[float]:
    """Milliseconds of the strategy's sampler per ask, for trials ``n_trials`` onwards."""
    study = create_study(
        SPACE, storage=None, strategy=strategy, pruner=pruner, epochs=EPOCHS, seed=0,
        direction="maximize",
    )  # fmt: skip
    study.optimize(curve, n_trials=n_trials)
    penalizing = study.optuna_study.sampler  # hptune's wrapper; the strategy's sampler inside
    timed = TimedSampler(penalizing.sampler)
    penalizing.sampler = timed
    study.optimize(curve, n_trials=n_asks)
    return [1000 * s for s in timed.seconds.values()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--strategy", default="multi-fidelity")
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--asks", type=int, default=50)
    parser.add_argument("--pruner", default="asha")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.getLogger("hptune").setLevel(logging.WARNING)
    ms = sorted(measure(args.strategy, args.trials, args.asks, args.pruner))
    p90 = ms[min(len(ms) - 1, round(0.9 * (len(ms) - 1)))]
    print(
        f"{args.strategy} + {args.pruner}, asks {args.trials + 1}-{args.trials + args.asks}: "
        f"mean {statistics.mean(ms):.1f} ms, median {statistics.median(ms):.1f} ms, "
        f"p90 {p90:.1f} ms, max {ms[-1]:.1f} ms"
    )


if __name__ == "__main__":
    main()
