"""The differences between two spaces as written: what a refusal of a changed space lists."""

from __future__ import annotations

from typing import Any


def space_changes(old: Any, new: Any, path: str = "space") -> list[tuple[str, Any, Any]]:
    """The differences between two spaces as written, key by key (a short diff, not both
    whole spaces): ``(path, old, new)`` with None for a key only one of them has. Works on
    a spec's ``space:`` mapping and on :meth:`Space.to_dict` alike; a conditional's
    ``choice`` key is left out of the paths, so they are parameter names.

    Example:
        >>> space_changes({"lr": "loguniform(1e-3, 1e-1)", "bs": 32},
        ...               {"lr": "loguniform(1e-4, 1e-1)", "bs": 32})
        [('space.lr', 'loguniform(1e-3, 1e-1)', 'loguniform(1e-4, 1e-1)')]
    """
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return [] if old == new else [(path, old, new)]
    changes = []
    for key in dict.fromkeys([*old, *new]):
        sub = f"{path}.{key}" if key != "choice" else path
        if key not in old or key not in new:
            changes.append((sub, old.get(key), new.get(key)))
        else:
            changes += space_changes(old[key], new[key], sub)
    return changes
