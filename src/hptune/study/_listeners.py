"""Several driver listeners at once: a progress bar and any number of trackers.

The driver takes one ``listener`` (``trial_started(number, config)``,
``trial_finished(record)``, both called in the driver process) and stays unaware of how many
there are: :class:`Listeners` fans each call out. The plain listener (the CLI's progress
bar) is called as it is; a tracker's failure to log a trial (a store gone away, a full
disk) is logged as a warning and the study goes on, since the trial is safely in the study
already and the tracker logs what it missed when it is next opened. ``Study.optimize``
opens the trackers before its first trial (an error there stops it before any trial runs)
and closes them when it ends.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from hptune.exceptions import ConfigError, one_line

logger = logging.getLogger("hptune.study")

_TRACKER_METHODS = ("open", "trial_started", "trial_finished", "close")


class Listeners:
    """One listener for the driver made of ``listener`` (or None) and ``trackers``."""

    def __init__(self, listener: Any, trackers: Sequence[Any]) -> None:
        self.listener = listener
        self.trackers = list(trackers)

    def trial_started(self, number: int, config: dict[str, Any]) -> None:
        if self.listener is not None:
            self.listener.trial_started(number, config)
        for tracker in self.trackers:
            self._guarded(tracker, "trial_started", number, number, config)

    def trial_finished(self, record: Any) -> None:
        if self.listener is not None:
            self.listener.trial_finished(record)
        for tracker in self.trackers:
            self._guarded(tracker, "trial_finished", record.number, record)

    @staticmethod
    def _guarded(tracker: Any, method: str, number: int, *args: Any) -> None:
        try:
            getattr(tracker, method)(*args)
        except Exception as exc:
            logger.warning(
                "tracker %s could not log trial %d (%s); the study goes on, and the trial "
                "is logged when the tracker is next opened",
                getattr(tracker, "name", type(tracker).__name__),
                number,
                one_line(exc),
            )


def check_trackers(trackers: Sequence[Any]) -> list[Any]:
    """``trackers`` as a list, each with the methods a tracker has (see
    :class:`hptune.tracking.Tracker`)."""
    if trackers is None or isinstance(trackers, str) or not isinstance(trackers, Sequence):
        raise ConfigError(
            f"optimize: trackers must be a list of trackers, got {trackers!r}; e.g. "
            "trackers=[hptune.tracking.MlflowTracker()]."
        )
    for tracker in trackers:
        missing = [m for m in _TRACKER_METHODS if not callable(getattr(tracker, m, None))]
        if missing:
            raise ConfigError(
                f"optimize: {tracker!r} is not a tracker (it lacks {', '.join(missing)}); "
                "subclass hptune.tracking.Tracker."
            )
    return list(trackers)


@contextlib.contextmanager
def opened(trackers: Sequence[Any], study: Any) -> Iterator[None]:
    """Open every tracker for ``study``; close those opened when the block ends (telling
    them whether it ended by an exception: Ctrl-C, SIGTERM, an error)."""
    opened_ones: list[Any] = []
    interrupted = False
    try:
        for tracker in trackers:
            tracker.open(study)
            opened_ones.append(tracker)
        yield
    except BaseException:
        interrupted = True
        raise
    finally:
        for tracker in opened_ones:
            try:
                tracker.close(interrupted)
            except Exception as exc:
                logger.warning("tracker could not be closed: %s", one_line(exc))
