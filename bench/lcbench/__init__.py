"""LCBench (YAHPO Gym's surrogate), the external benchmark of ``python -m bench search``.

``surrogate``: the ONNX model and its space; ``best_known``: the best value per task, from
a large seeded random sample. Provenance, units and citations: ``README.md`` here.
"""

from __future__ import annotations

from bench.lcbench.surrogate import (
    MAX_EPOCHS,
    OUTPUTS,
    UNITS,
    Surrogate,
    lcbench_space,
    load_surrogate,
)

#: The development set of issue 12, and no others: the OpenML task ids a new strategy may
#: be tuned on. The remaining 8 of the surrogate's 34 tasks are held out.
DEV_TASKS = (
    7593, 126025, 126029, 167104, 167149, 167152, 167161, 167181, 167184, 167185, 167190,
    167200, 167201, 168329, 168331, 168335, 168868, 168908, 168910, 189354, 189862, 189866,
    189873, 189905, 189906, 189908,
)  # fmt: skip

__all__ = [
    "DEV_TASKS",
    "MAX_EPOCHS",
    "OUTPUTS",
    "UNITS",
    "Surrogate",
    "lcbench_space",
    "load_surrogate",
]
