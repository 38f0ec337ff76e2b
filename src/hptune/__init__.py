"""hptune: tune the training hyperparameters of PyTorch models.

The search engine lives here (``hptune.create_study``, the space builders); the training
toolkit in :mod:`hptune.training`. ``import hptune`` loads neither ray, matplotlib nor the
report code.
"""

from __future__ import annotations

from hptune.exceptions import ConfigError, HptuneError
from hptune.space import Space, choice, loguniform, randint, uniform
from hptune.study import (
    Confirm,
    Study,
    TrialRecord,
    create_study,
    grid_search,
    list_pruners,
    list_strategies,
    load_study,
    random_search,
)
from hptune.trial import Trial, TrialDiverged, TrialPruned

__version__ = "0.1.0"


def __getattr__(name: str):
    # ``hptune.report`` (the report package) loads on first use only, so ``import hptune``
    # never imports matplotlib.
    if name == "report":
        import importlib

        return importlib.import_module("hptune.report")
    raise AttributeError(f"module 'hptune' has no attribute {name!r}")


__all__ = [
    "ConfigError",
    "Confirm",
    "HptuneError",
    "Space",
    "Study",
    "Trial",
    "TrialDiverged",
    "TrialPruned",
    "TrialRecord",
    "__version__",
    "choice",
    "create_study",
    "grid_search",
    "list_pruners",
    "list_strategies",
    "load_study",
    "loguniform",
    "random_search",
    "randint",
    "report",
    "uniform",
]
