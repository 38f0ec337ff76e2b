"""What a study uses when its spec or its caller names nothing: one place for each default
the spec (:mod:`hptune.spec`) and :func:`hptune.study.create_study` share."""

from __future__ import annotations

#: The study database: a SQLite file in the working directory.
DEFAULT_STORAGE = "sqlite:///hptune.db"
#: The search strategy (:func:`hptune.study.list_strategies`) and the pruner
#: (:func:`hptune.study.list_pruners`): one TPE over every rung with the field's priors, and
#: ASHA to stop trials early. On LCBench's 26 development tasks it had the lowest median
#: regret of every method compared, Optuna, Ray Tune, Hyperopt and DEHB included, at a
#: quarter, half and all of a 20-training budget (``bench/RESULTS.md``, "LCBench"). An
#: objective that reports nothing per epoch is never pruned.
DEFAULT_STRATEGY = "multi-fidelity"
DEFAULT_PRUNER = "asha"
