"""Integrations with training frameworks: hptune's tuned training inside their trainers.

- :mod:`hptune.integrations.lightning` (``pip install 'hptune[lightning]'``): a
  ``PruningCallback`` for ``lightning.pytorch.Trainer`` and ``configure_optimizers``, which
  turns a trial config into what ``LightningModule.configure_optimizers`` returns.
- :mod:`hptune.integrations.transformers` (``pip install 'hptune[transformers]'``): a
  ``PruningCallback`` for ``transformers.Trainer`` and ``create_optimizer_and_scheduler``,
  whose result goes to ``Trainer(optimizers=...)``.

Each submodule imports its framework when it is imported itself; ``import hptune`` and
``import hptune.integrations`` import neither, and a submodule whose framework is missing
raises :class:`MissingExtraError` with the one ``pip install`` to run.
"""

from __future__ import annotations

from hptune.exceptions import MissingExtraError

__all__ = ["MissingExtraError"]
