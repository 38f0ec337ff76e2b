"""The exceptions hptune raises (all derive from :class:`HptuneError`), and how an
exception is put in one line."""

from __future__ import annotations


class HptuneError(Exception):
    """Base class of every error hptune raises for bad input or a bad state."""


class ConfigError(HptuneError, ValueError):
    """An argument, option or spec value is invalid. The message names it and the fix."""


class MissingExtraError(HptuneError, ImportError):
    """An optional dependency is not installed; the message names the ``pip install``
    (``pip install 'hptune[mlflow]'``). It is an ``ImportError`` too, so ``except
    ImportError`` around an optional import works.

    Example:
        >>> issubclass(MissingExtraError, ImportError)
        True
    """


class SpecError(ConfigError):
    """A spec failed validation. ``errors`` lists every problem, one line each: a character
    that would break the line or disguise it (a newline, a control character, a bidi
    override) is written as its escape, and a line of over 400 characters is cut in the
    middle, keeping where and what at its start and the fix at its end."""

    def __init__(self, errors: list[str]) -> None:
        errors = [_printable(e) for e in errors]
        self.errors = errors
        head = "invalid spec" if len(errors) == 1 else f"invalid spec ({len(errors)} problems)"
        super().__init__(head + ":\n  " + "\n  ".join(errors))


def one_line(exc: BaseException) -> str:
    """``"ValueError: message"`` on one line (the first of the message), for failure
    reasons and error messages."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _printable(line: str, limit: int = 400) -> str:
    if not line.isprintable():
        line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in line)
    if len(line) > limit:
        line = f"{line[: limit * 2 // 3]} ... {line[-limit // 4 :]}"
    return line
