"""What a study uses when its spec or its caller names nothing: one place for each default
the spec (:mod:`hptune.spec`) and :func:`hptune.study.create_study` share."""

from __future__ import annotations

#: The study database: a SQLite file in the working directory.
DEFAULT_STORAGE = "sqlite:///hptune.db"
#: The search strategy (:func:`hptune.study.list_strategies`).
DEFAULT_STRATEGY = "tpe"
#: The pruner (:func:`hptune.study.list_pruners`).
DEFAULT_PRUNER = "none"
