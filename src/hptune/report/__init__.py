"""Reports of a study: one self-contained HTML file, single plots, and advice.

matplotlib (the ``report`` extra) is imported on first use, never by ``import hptune``.

Example:
    >>> from hptune.space import loguniform
    >>> from hptune.study import create_study
    >>> study = create_study({"lr": loguniform(1e-4, 1e-1)}, storage=None, seed=0,
    ...                      direction="maximize")
    >>> study.optimize(lambda config, trial: -abs(config["lr"] - 3e-3), n_trials=8)
    <StopReason.TRIALS: 'trials'>
    >>> write_report(study, "report.html")  # doctest: +SKIP
    PosixPath('report.html')
    >>> [a.kind for a in advise(study)]  # doctest: +SKIP
    []
"""

from __future__ import annotations

from hptune.report import _parallel, _params  # noqa: F401  (they register their plots)
from hptune.report._advice import Advice, advise
from hptune.report._html import write_report
from hptune.report._plots import list_plots, plot

__all__ = ["Advice", "advise", "list_plots", "plot", "write_report"]
