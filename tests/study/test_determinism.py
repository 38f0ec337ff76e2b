"""Same seed, same configs in the same order, in separate processes, for every strategy."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hptune.study import list_strategies

_SCRIPT = """
import json, math, sys, warnings
warnings.simplefilter("ignore")
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
from hptune.space import choice, loguniform, randint, uniform
from hptune.study import create_study, list_strategies

space = {
    "lr": loguniform(1e-4, 1e-1),
    "width": randint(8, 64),
    "optimizer": choice({"adam": {"beta1": uniform(0.85, 0.95)}, "sgd": {"momentum": uniform(0.0, 0.9)}}),
}
out = {}
for name in list_strategies():
    options = {"n_points": 2} if name == "grid" else {}
    study = create_study(space, storage=None, strategy=name, seed=int(sys.argv[1]),
                         direction="minimize", strategy_options=options)
    study.optimize(lambda c, t: (math.log10(c["lr"]) + 2.5) ** 2 + c["width"] / 64, n_trials=12)
    out[name] = [[t.config, t.seed] for t in study.trials if t.state == "COMPLETE"]
print(json.dumps(out))
"""


def _run(seed: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _SCRIPT, str(seed)], stdout=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_same_seed_same_sequence_across_processes():
    procs = [_run(0), _run(0), _run(1)]
    outs = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0
        outs.append(json.loads(stdout))
    first, second, other = outs
    assert sorted(first) == sorted(list_strategies())
    for name in first:
        assert len(first[name]) == 12
        assert first[name] == second[name], name
        configs = [c for c, _ in first[name]]
        assert [s for _, s in first[name]] != [s for _, s in other[name]], name
        # Another seed, other configs: for the grid, the same points in another order.
        assert configs != [c for c, _ in other[name]], name
