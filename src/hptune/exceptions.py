"""The exceptions hptune raises. All derive from :class:`HptuneError`."""

from __future__ import annotations


class HptuneError(Exception):
    """Base class of every error hptune raises for bad input or a bad state."""


class ConfigError(HptuneError, ValueError):
    """An argument, option or spec value is invalid. The message names it and the fix."""
