"""Argument checks in one place, every error in one shape: what, the rule, the value, the fix.

    >>> check("optimize: n_workers", 0, Int(low=1), fix="use 1 to run trials in this process")
    Traceback (most recent call last):
    ...
    hptune.exceptions.ConfigError: optimize: n_workers must be an int >= 1, got 0; use 1 to run trials in this process.

A rule says what it accepts and describes itself in words, so the message and the test
can never disagree. The idea is scikit-learn's parameter constraints (``Interval``,
``StrOptions``): a value is checked where it enters, against a declared rule, and code
further in trusts it. Booleans are never numbers here (``True`` is not an int >= 1), and a
real number must be finite unless the rule says otherwise.

This module imports nothing from hptune but its exceptions, so every layer, the training
toolkit included, may use it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

from hptune.exceptions import ConfigError

__all__ = [
    "Bool",
    "Int",
    "Number",
    "OneOf",
    "Pattern",
    "Rule",
    "check",
    "optional",
    "problem",
    "violation",
]


class Rule:
    """What a value must be. Subclasses implement :meth:`accepts` and ``__str__`` (the
    rule in words, after "must be")."""

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError


def _bound(low: Any, high: Any, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return ""


def _within(value: float, low: Any, high: Any, low_open: bool, high_open: bool) -> bool:
    if low is not None and (value <= low if low_open else value < low):
        return False
    return high is None or (value < high if high_open else value <= high)


@dataclasses.dataclass(frozen=True)
class Int(Rule):
    """An integer (not a bool) in ``[low, high]``; either bound may be None (open-ended)."""

    low: int | None = None
    high: int | None = None

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, Integral):
            return False
        return _within(int(value), self.low, self.high, False, False)

    def __str__(self) -> str:
        return f"an int {_bound(self.low, self.high, False, False)}".rstrip()


@dataclasses.dataclass(frozen=True)
class Number(Rule):
    """A real number (int or float, not a bool), finite unless ``finite=False``, within the
    bounds; ``low_open``/``high_open`` exclude the bound itself."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    finite: bool = True

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, Real):
            return False
        value = float(value)
        if math.isnan(value) or (self.finite and math.isinf(value)):
            return False
        return _within(value, self.low, self.high, self.low_open, self.high_open)

    def __str__(self) -> str:
        bound = _bound(self.low, self.high, self.low_open, self.high_open)
        kind = "a finite number" if self.finite and not bound.startswith("in") else "a number"
        return f"{kind} {bound}".rstrip()


@dataclasses.dataclass(frozen=True)
class OneOf(Rule):
    """One of a fixed set of values (compared with ``==``; a bool never equals 0 or 1 here)."""

    values: tuple[Any, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        object.__setattr__(self, "values", tuple(values))

    def accepts(self, value: Any) -> bool:
        return any(type(value) is type(v) and value == v for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(map(repr, self.values))


@dataclasses.dataclass(frozen=True)
class Bool(Rule):
    """``True`` or ``False`` (not 0 or 1)."""

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def __str__(self) -> str:
        return "True or False"


@dataclasses.dataclass(frozen=True)
class Pattern(Rule):
    """A string that matches ``regex`` as a whole; ``description`` says which, in words."""

    regex: str
    description: str

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.regex, value) is not None

    def __str__(self) -> str:
        return self.description


@dataclasses.dataclass(frozen=True)
class _Optional(Rule):
    rule: Rule

    def accepts(self, value: Any) -> bool:
        return value is None or self.rule.accepts(value)

    def __str__(self) -> str:
        return f"{self.rule} or None"


def optional(rule: Rule) -> Rule:
    """``rule``, or None."""
    return _Optional(rule)


def violation(value: Any, rule: Rule, fix: str | None = None) -> str | None:
    """``"must be {rule}, got {value!r}; {fix}"`` when ``value`` breaks ``rule``, else None:
    the message without its subject, for callers that name the subject themselves (a spec
    names the key path and line)."""
    if rule.accepts(value):
        return None
    tail = f"; {fix}" if fix else ""
    return f"must be {rule}, got {value!r}{tail}"


def problem(what: str, value: Any, rule: Rule, fix: str | None = None) -> str | None:
    """The message for ``value`` breaking ``rule`` (None when it does not): ``"{what} must
    be {rule}, got {value!r}; {fix}."``. For callers that collect every problem at once."""
    message = violation(value, rule, fix)
    return None if message is None else f"{what} {message}."


def check(what: str, value: Any, rule: Rule, fix: str | None = None) -> Any:
    """Return ``value`` when it follows ``rule``; else raise :class:`ConfigError` with the
    message of :func:`problem`."""
    message = problem(what, value, rule, fix)
    if message is not None:
        raise ConfigError(message)
    return value
