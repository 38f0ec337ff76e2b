"""Reports of a study: one self-contained HTML file, single plots, and advice.

matplotlib (the ``report`` extra) is imported on first use, never by ``import hptune``.

Example:
    >>> from hptune.space import loguniform
    >>> from hptune.study import create_study
    >>> study = create_study({"lr": loguniform(1e-4, 1e-1)}, storage=None, seed=0)
    >>> study.optimize(lambda config, trial: -abs(config["lr"] - 3e-3), n_trials=8)
    >>> report(study, "report.html")  # doctest: +SKIP
    PosixPath('report.html')
    >>> [a.kind for a in advise(study)]  # doctest: +SKIP
    []
"""

from __future__ import annotations

import sys
import types
from typing import Any

from hptune.report import _parallel, _params  # noqa: F401  (they register their plots)
from hptune.report._advice import Advice, advise
from hptune.report._html import write_report
from hptune.report._plots import list_plots, plot

#: ``hptune.report(study, path)``: the same function as :func:`write_report`.
report = write_report

__all__ = ["Advice", "advise", "list_plots", "plot", "report", "write_report"]


class _CallableModule(types.ModuleType):
    """This package, callable as :func:`write_report`.

    ``hptune.report`` names both this package and the function ``hptune.report(study,
    path)``; importing a submodule rebinds the attribute ``hptune.report`` to the package,
    so the package itself must be the function for that spelling to keep working.
    """

    def __call__(self, study: Any, path: Any, **options: Any) -> Any:
        return write_report(study, path, **options)


sys.modules[__name__].__class__ = _CallableModule
