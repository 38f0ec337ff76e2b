"""The benchmark's peers (Ray Tune, Hyperopt): space translations, the chosen-config rule, and
each peer on a fake evaluator with synthetic curves, stopped exactly at the ledger's budget.

The evaluator is a fake (synthetic curves, no training): the peers are what is under test,
and the budget and pruning checks need curves known in advance.
"""

from __future__ import annotations

import math
import re
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bench.search import peers
from bench.search.protocol import Ledger, Report
from bench.search.space import space as common_space

from hptune.exceptions import ConfigError, HptuneError
from hptune.space import Space, choice, loguniform, randint, uniform
from hptune.trial import TrialDiverged
from tests.conftest import in_ci

try:
    import hyperopt  # noqa: F401
except ImportError:
    if in_ci():
        raise  # CI installs the bench peers: a missing one is a broken set-up, not a skip
    pytest.skip("Hyperopt not installed: pip install hyperopt", allow_module_level=True)

MAX_EPOCHS = 4

#: Every kind of dimension, a constant, and a conditional nested in a branch.
RICH = {
    "lr": loguniform(1e-4, 1e-1),
    "width": randint(1, 8, log=True),
    "warmup": randint(0, 3),
    "flag": choice(True, False, None),
    "fixed": 7,
    "optimizer": choice(
        {
            "adam": {"beta1": uniform(0.85, 0.95)},
            "sgd": {"momentum": uniform(0.8, 0.99), "kind": choice({"plain": {}, "nag": {"d": 2}})},
        }
    ),
}


def score(config: dict[str, Any]) -> float:
    """The synthetic final quality of a config: best at lr=1e-2 with adam."""
    penalty = 0.1 * abs(math.log10(config["lr"]) + 2)
    return 0.9 - penalty - (0.05 if config["optimizer"]["name"] == "sgd" else 0.0)


class FakeEvaluator:
    """Reports ``score * (1 - 0.5**epoch)`` each epoch (module level: Ray pickles it by
    reference). With ``diverge_above``, configs with a larger lr report a high accuracy for
    every epoch and then raise TrialDiverged."""

    task = "fake"
    max_epochs = MAX_EPOCHS

    def __init__(self, diverge_above: float | None = None) -> None:
        self.diverge_above = diverge_above
        self.space = common_space()

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        diverges = self.diverge_above is not None and config["lr"] > self.diverge_above
        best = -math.inf
        for epoch in range(1, self.max_epochs + 1):
            value = 0.99 if diverges else score(config) * (1 - 0.5**epoch)
            best = max(best, value)
            if report(epoch, value):
                return best
        if diverges:
            raise TrialDiverged("loss exploded (fake)")
        return best

    def test_accuracy(self, config: dict[str, Any], seed: int) -> float:
        return score(config)


class BrokenEvaluator(FakeEvaluator):
    """Fails after its first epoch, as a bug in an evaluator would."""

    def run(self, config: dict[str, Any], seed: int, report: Report) -> float:
        report(1, 0.5)
        raise ValueError("broken evaluator")


class RecordingLedger(Ledger):
    """A ledger that also keeps, per wrapped trial, the (epoch, value) pairs it counted."""

    def __init__(self, budget_epochs: int) -> None:
        super().__init__(budget_epochs)
        self.trials: list[tuple[dict[str, Any], list[tuple[int, float]]]] = []

    def wrap(self, report: Report | None, config: dict[str, Any]) -> Report:
        counted = super().wrap(report, config)
        epochs: list[tuple[int, float]] = []
        self.trials.append((config, epochs))

        def recording(epoch: int, value: float) -> bool:
            stop = counted(epoch, value)
            epochs.append((epoch, value))
            return stop

        return recording


def best_full(ledger: RecordingLedger) -> dict[str, Any]:
    full = [(max(v for _, v in e), c) for c, e in ledger.trials if len(e) == MAX_EPOCHS]
    return max(full, key=lambda t: t[0])[1]


# -- translations -----------------------------------------------------------------------------


def test_parents_name_the_innermost_branch() -> None:
    assert peers.parents(Space(RICH)) == {
        "lr": None,
        "width": None,
        "warmup": None,
        "flag": None,
        "optimizer": None,
        "optimizer.adam.beta1": ("optimizer", "adam"),
        "optimizer.sgd.momentum": ("optimizer", "sgd"),
        "optimizer.sgd.kind": ("optimizer", "sgd"),
    }


def test_to_config_ignores_branches_not_chosen_and_clips_into_bounds() -> None:
    params = {
        "lr": 0.2,  # above the high bound: clipped to 0.1
        "width": 8.4,  # a rounding step beyond 8
        "warmup": -0.0,
        "flag": None,
        "optimizer": "sgd",
        "optimizer.adam.beta1": 0.9,  # a branch not chosen
        "optimizer.sgd.momentum": 0.9,
        "optimizer.sgd.kind": "nag",
    }
    assert peers.to_config(Space(RICH), params) == {
        "lr": 0.1,
        "width": 8,
        "warmup": 0,
        "flag": None,
        "fixed": 7,
        "optimizer": {"name": "sgd", "momentum": 0.9, "kind": {"name": "nag", "d": 2}},
    }


def test_hyperopt_space_draws_configs_of_the_space_with_every_value() -> None:
    import numpy as np
    from hyperopt.pyll import stochastic

    space = Space(RICH)
    rng = np.random.default_rng(0)
    configs = [
        peers.to_config(
            space, peers.hyperopt_params(stochastic.sample(peers.hyperopt_space(space), rng))
        )
        for _ in range(300)
    ]
    for config in configs:
        space.flatten(config)  # raises for a config outside the space
    assert {c["warmup"] for c in configs} == {0, 1, 2, 3}  # both ends inclusive
    assert {c["flag"] for c in configs} == {True, False, None}
    kinds = {c["optimizer"].get("kind", {}).get("name") for c in configs}
    assert kinds == {None, "plain", "nag"}
    assert min(c["width"] for c in configs) == 1 and max(c["width"] for c in configs) == 8
    # log-uniform: about a third of the draws in each decade of [1e-4, 1e-1]
    assert 60 < sum(c["lr"] < 1e-3 for c in configs) < 140


def test_ray_space_draws_configs_of_the_space_with_every_value() -> None:
    pytest.importorskip("ray")
    space = Space(RICH)
    domains = peers.ray_space(space)
    assert set(domains) == {name for name, _ in space.dimensions()}
    configs = [
        peers.to_config(space, {k: d.sample() for k, d in domains.items()}) for _ in range(300)
    ]
    for config in configs:
        space.flatten(config)
    assert {c["warmup"] for c in configs} == {0, 1, 2, 3}  # Tune's exclusive high is moved up
    assert {c["optimizer"]["name"] for c in configs} == {"adam", "sgd"}
    assert 60 < sum(c["lr"] < 1e-3 for c in configs) < 140


def test_trial_seed_depends_on_run_seed_and_config() -> None:
    a, b = {"lr": 0.01}, {"lr": 0.02}
    assert peers.trial_seed(0, a) == peers.trial_seed(0, dict(a))
    assert len({peers.trial_seed(0, a), peers.trial_seed(1, a), peers.trial_seed(0, b)}) == 3
    assert all(0 <= peers.trial_seed(s, a) < 2**31 for s in (0, 5, 10**9))


def test_chosen_config_is_the_best_full_trial_else_the_best_partial() -> None:
    best = peers.BestOfTrials(max_epochs=2)
    best.counted("partial", {"n": 1}, 1, 0.95)
    assert best.chosen() == {"n": 1}  # no full trial yet
    best.counted("full", {"n": 2}, 1, 0.6)
    best.counted("full", {"n": 2}, 2, 0.7)
    best.counted("diverged", {"n": 3}, 1, 0.9)
    best.counted("diverged", {"n": 3}, 2, 0.9)
    best.diverged("diverged")
    assert best.chosen() == {"n": 2}


def test_chosen_config_needs_a_counted_epoch() -> None:
    with pytest.raises(ConfigError, match=re.escape("no trial ran an epoch within the budget")):
        peers.BestOfTrials(max_epochs=2).chosen()


@pytest.mark.parametrize("name", sorted(peers.PEER_METHODS))
def test_a_spent_ledger_is_refused(name: str) -> None:
    ledger = Ledger(budget_epochs=5, spent=5)
    with pytest.raises(ConfigError, match=re.escape("ledger has 0 epochs left (budget_epochs=5")):
        peers.PEER_METHODS[name](FakeEvaluator(), ledger, 0)


# -- Hyperopt ---------------------------------------------------------------------------------


def test_hyperopt_runs_full_trials_until_the_budget_and_chooses_the_best() -> None:
    ledger = RecordingLedger(30)
    chosen = peers.hyperopt_tpe(FakeEvaluator(), ledger, seed=0)
    assert ledger.spent == 30 and len(ledger.curve) == 30
    # no pruning: 7 full trials, then the 8th stopped by the budget after 2 epochs
    assert [len(e) for _, e in ledger.trials] == [4] * 7 + [2]
    assert chosen == best_full(ledger)
    common_space().flatten(chosen)  # inside the common space


def test_hyperopt_is_deterministic_per_seed() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        ledger = RecordingLedger(12)
        peers.hyperopt_tpe(FakeEvaluator(), ledger, seed=seed)
        return [c for c, _ in ledger.trials]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_hyperopt_never_chooses_a_diverged_trial() -> None:
    ledger = RecordingLedger(40)
    chosen = peers.hyperopt_tpe(FakeEvaluator(diverge_above=3e-3), ledger, seed=0)
    assert ledger.spent == 40
    assert any(c["lr"] > 3e-3 for c, _ in ledger.trials)  # diverging trials did run...
    assert chosen["lr"] <= 3e-3  # ...reporting 0.99, yet are not chosen


def test_hyperopt_with_a_budget_below_one_trial_chooses_the_partial_one() -> None:
    ledger = RecordingLedger(3)
    chosen = peers.hyperopt_tpe(FakeEvaluator(), ledger, seed=0)
    assert ledger.spent == 3 and [len(e) for _, e in ledger.trials] == [3]
    assert chosen == ledger.trials[0][0]


def test_hyperopt_lets_an_evaluator_error_through() -> None:
    ledger = Ledger(30)
    with pytest.raises(ValueError, match="broken evaluator"):
        peers.hyperopt_tpe(BrokenEvaluator(), ledger, seed=0)
    assert ledger.spent == 1


# -- Ray Tune ---------------------------------------------------------------------------------


@pytest.fixture
def temp_base(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A temporary directory of this test's own as ``tempfile``'s default, so the check that
    the peer removed its Ray directory sees no other run's (other processes may run Ray
    peers at the same time). Short: Ray's socket paths inside must stay under 108 chars."""
    base = Path(tempfile.mkdtemp(prefix="pr"))
    monkeypatch.setattr(tempfile, "tempdir", str(base))
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "rungs"),
    [
        # hptune's ASHA options: grace (4 - 1) // 9 -> 1, factor 3: rungs 1 and 3 of 4
        ("ray-asha-random", {1, 3, 4}),
        ("ray-asha-optuna", {1, 3, 4}),
        # Tune's defaults: grace 1, factor 4: one rung at 1 (the next, 4, is max_t)
        ("ray-asha-defaults", {1, 4}),
    ],
)
def test_ray_tune_with_asha_stops_at_the_budget(name: str, rungs: set, temp_base: Path) -> None:
    try:
        import ray
    except ImportError:
        if in_ci():
            raise
        pytest.skip("Ray not installed")
    if ray.is_initialized():
        pytest.fail("Ray is already initialised in this process; the peers start their own")
    ledger = RecordingLedger(30)
    sigint = signal.getsignal(signal.SIGINT)
    chosen = peers.PEER_METHODS[name](FakeEvaluator(), ledger, 0)

    # Ray Tune leaves its own SIGINT handler behind; the peer must put ours back.
    assert signal.getsignal(signal.SIGINT) is sigint
    assert ledger.spent == 30 and len(ledger.curve) == 30
    lengths = [len(e) for _, e in ledger.trials]
    # every trial's counted epochs are 1, 2, ... in order (counted in the driver)
    assert all([ep for ep, _ in e] == list(range(1, len(e) + 1)) for _, e in ledger.trials)
    # ASHA ends a trial at a rung, or it runs all 4 epochs; only the last one may be cut
    # elsewhere by the budget (one trial at a time)
    assert set(lengths[:-1]) <= rungs
    assert 1 in lengths[:-1] and 4 in lengths  # it pruned, and some trials ran in full
    assert chosen == best_full(ledger)
    common_space().flatten(chosen)
    assert not ray.is_initialized()
    assert list(temp_base.iterdir()) == []  # its temporary directory is gone


@pytest.mark.slow
def test_ray_tune_stops_at_the_first_failed_trial_and_says_why(temp_base: Path) -> None:
    ray = pytest.importorskip("ray")
    ledger = Ledger(30)
    with pytest.raises(HptuneError, match=r"a Ray Tune trial failed: .*broken evaluator"):
        peers.ray_asha_random(BrokenEvaluator(), ledger, 0)
    assert ledger.spent == 1  # fail fast: no trial after the broken one
    assert not ray.is_initialized() and list(temp_base.iterdir()) == []


def test_ray_refuses_to_run_inside_an_existing_ray(monkeypatch: pytest.MonkeyPatch) -> None:
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    with pytest.raises(HptuneError, match=re.escape("call ray.shutdown() first")):
        peers.ray_asha_random(FakeEvaluator(), Ledger(10), 0)


# -- DEHB -------------------------------------------------------------------------------------


def test_configspace_of_draws_configs_of_the_space_with_every_value() -> None:
    pytest.importorskip("ConfigSpace")
    from bench.search.peers_dehb import configspace_of

    space = Space(RICH)
    cs, decode = configspace_of(space, seed=0)
    configs = [decode(c) for c in cs.sample_configuration(300)]
    for config in configs:
        space.flatten(config)  # raises for a config outside the space
    assert {c["warmup"] for c in configs} == {0, 1, 2, 3}
    assert {c["flag"] for c in configs} == {True, False, None}  # None survives as an index
    assert {c["optimizer"].get("kind", {}).get("name") for c in configs} == {None, "plain", "nag"}
    assert min(c["width"] for c in configs) == 1 and max(c["width"] for c in configs) == 8


def _dehb() -> Any:
    """The DEHB peer; skipped where DEHB is not installed (it is not in CI's extras)."""
    pytest.importorskip("dehb", reason="DEHB not installed: pip install --no-deps dehb==0.1.2")
    from bench.search.peers_dehb import dehb

    return dehb


def test_dehb_trains_each_job_from_scratch_to_its_fidelity_until_the_budget() -> None:
    dehb = _dehb()
    ledger = RecordingLedger(40)
    chosen = dehb(FakeEvaluator(), ledger, seed=0)
    assert ledger.spent == 40 and len(ledger.curve) == 40
    lengths = [len(e) for _, e in ledger.trials]
    # 4 epochs, eta 3: fidelities 4/3 and 4, trained round(f) = 1 and 4 epochs, each from 1
    assert set(lengths[:-1]) == {1, 4}
    assert all([ep for ep, _ in e] == list(range(1, len(e) + 1)) for _, e in ledger.trials)
    assert chosen == best_full(ledger)
    common_space().flatten(chosen)


def test_dehb_is_deterministic_per_seed() -> None:
    dehb = _dehb()

    def run(seed: int) -> list[dict[str, Any]]:
        ledger = RecordingLedger(20)
        dehb(FakeEvaluator(), ledger, seed=seed)
        return [c for c, _ in ledger.trials]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_dehb_never_chooses_a_diverged_job() -> None:
    dehb = _dehb()
    ledger = RecordingLedger(60)
    chosen = dehb(FakeEvaluator(diverge_above=3e-3), ledger, seed=0)
    assert any(c["lr"] > 3e-3 and len(e) == MAX_EPOCHS for c, e in ledger.trials)
    assert chosen["lr"] <= 3e-3
