"""The exceptions hptune raises (all derive from :class:`HptuneError`), and how an
exception is put in one line."""

from __future__ import annotations


class HptuneError(Exception):
    """Base class of every error hptune raises for bad input or a bad state."""


class ConfigError(HptuneError, ValueError):
    """An argument, option or spec value is invalid. The message names it and the fix."""


class SpecError(ConfigError):
    """A spec failed validation. ``errors`` lists every problem, one line each."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        head = "invalid spec" if len(errors) == 1 else f"invalid spec ({len(errors)} problems)"
        super().__init__(head + ":\n  " + "\n  ".join(errors))


def one_line(exc: BaseException) -> str:
    """``"ValueError: message"`` on one line (the first of the message), for failure
    reasons and error messages."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
