"""The metrics hptune's training recipe measures on the validation split, and which way each
one is better. Everything that needs a metric's direction (the spec, the recipe, tasks, the
runner) reads it here: the table is defined once.

Example:
    >>> direction_of("val_loss")
    'minimize'
"""

from __future__ import annotations

from hptune.exceptions import ConfigError

#: Metric name -> the direction that makes it better.
METRICS: dict[str, str] = {"val_accuracy": "maximize", "val_loss": "minimize"}
#: The trial attribute under which the recipe records the test accuracy of its
#: best-validation epoch (read by the CLI and the report).
TEST_ACCURACY = "test_accuracy"


def direction_of(metric: str) -> str:
    """``"maximize"`` or ``"minimize"`` for ``metric``.

    Raises:
        ConfigError: ``metric`` is not one the recipe measures; the message lists them.
    """
    if metric not in METRICS:
        raise ConfigError(
            f"metric must be one of {', '.join(map(repr, METRICS))} (measured on the "
            f"validation split), got {metric!r}."
        )
    return METRICS[metric]


def direction_problem(metric: str, direction: str) -> str | None:
    """Why ``direction`` does not fit ``metric`` (None when it does, or the metric is
    unknown: that is :func:`direction_of`'s error)."""
    wanted = METRICS.get(metric)
    if wanted is None or direction == wanted:
        return None
    better = "higher" if wanted == "maximize" else "lower"
    return (
        f"direction {direction!r} does not fit metric {metric!r}, which is better {better}; "
        f"use {wanted!r} or leave direction out"
    )
