"""Built-in data sets with fixed train/validation/test splits, generated or bundled locally.

Nothing here downloads anything:

* **MNIST-1D** (Greydanus & Kobak, 2020, arXiv 2011.14439) is *generated* with
  ``mnist1d.data.make_dataset`` and its default arguments (5000 samples, seed 42), which give
  the standard 4000 train / 1000 test split. hptune carves a fixed, stratified validation set
  of 1000 from the 4000, so the splits are **3000 train / 1000 val / 1000 test**. The signals
  are standardised by ``make_dataset`` itself (one mean and std over all 5000, as the
  published data set is); hptune leaves them as they are, so results compare with the paper.
* **Digits** is scikit-learn's bundled 8x8 digits (``load_digits``, shipped inside the
  package): 1797 samples, pixels scaled from 0..16 to [0, 1] by the constant 16 (a fixed
  constant, so no statistic leaks from validation or test into training). Fixed stratified
  splits: **1077 train / 360 val / 360 test**.

Both generators need the ``data`` extra (``pip install 'hptune[data]'``), imported only when
a data set is first built. Arrays are cached in the process; MNIST-1D is also cached on disk
(generation takes about a second plus the import of mnist1d), in ``$HPTUNE_CACHE_DIR``, else
``$XDG_CACHE_HOME/hptune``, else ``~/.cache/hptune``; set ``HPTUNE_CACHE_DIR=""`` to turn the
disk cache off. Cache files are written to a temporary name and renamed into place, so
parallel worker processes never read a half-written file; the first to finish wins and the
others' identical copies replace it harmlessly.

Example:
    >>> load_digits().sizes
    (1077, 360, 360)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib
import importlib.metadata
import json
import os
import random
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset

from hptune.exceptions import HptuneError

#: Split sizes (train, val, test). Changing them changes every recorded result: don't.
MNIST1D_SPLITS = (3000, 1000, 1000)
DIGITS_SPLITS = (1077, 360, 360)

# Seeds of hptune's own split permutations (MNIST-1D's generator seed is its own, 42).
_MNIST1D_VAL_SEED = 0
_DIGITS_SPLIT_SEED = 0
# Bump when the cache file layout changes, so stale files are never read.
_CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class TaskData:
    """The three fixed splits of a task's data.

    Args:
        train: Data the model is fitted on.
        val: Data the tuned metric (``val_accuracy``/``val_loss``) is measured on.
        test: Held out from tuning; for the final report only.

    Example:
        >>> import torch
        >>> from torch.utils.data import TensorDataset
        >>> part = TensorDataset(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long))
        >>> TaskData(part, part, part).sizes
        (4, 4, 4)
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset

    @property
    def sizes(self) -> tuple[int, int, int]:
        """``(len(train), len(val), len(test))``."""
        return (len(self.train), len(self.val), len(self.test))


class MissingDependencyError(HptuneError, ImportError):
    """An optional package of the ``data`` extra is not installed; the message says the fix.

    Args:
        package: The distribution to install (``"mnist1d"``, ``"scikit-learn"``).
        who: What needs it, for the message (``"task 'mnist1d-mlp'"``).
    """

    def __init__(self, package: str, who: str = "this data set") -> None:
        super().__init__(f"{who} needs the {package} package: pip install 'hptune[data]'")
        self.package, self.who = package, who

    def __reduce__(self) -> tuple[Any, ...]:
        # Keep the two arguments when pickled across a worker process boundary.
        return (type(self), (self.package, self.who))


def stratified_split(labels: np.ndarray, sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Split sample indices into parts of exactly ``sizes``, each class spread evenly.

    Samples are shuffled with ``seed``, grouped by class, then dealt to the parts at evenly
    spaced positions (a Bresenham-style schedule), so every class lands in each part in
    proportion to the part's size, to within one sample. Each part's indices are sorted.
    """
    if sum(sizes) != len(labels):
        raise HptuneError(f"split sizes {sizes} must add up to the {len(labels)} samples.")
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    remaining = shuffled[np.argsort(labels[shuffled], kind="stable")]
    parts = []
    for size in sizes[:-1]:
        n = len(remaining)
        k = np.arange(n)
        # Position k goes to this part when floor((k+1)*size/n) steps up: exactly `size` hits.
        taken = ((k + 1) * size) // n > (k * size) // n
        parts.append(np.sort(remaining[taken]))
        remaining = remaining[~taken]
    parts.append(np.sort(remaining))
    return parts


def load_mnist1d(*, channel_dim: bool = False, task_name: str | None = None) -> TaskData:
    """MNIST-1D, 3000/1000/1000, float32 signals of length 40 and int64 labels 0..9.

    Args:
        channel_dim: Shape the signals ``(N, 1, 40)`` for a 1-D CNN instead of ``(N, 40)``.
        task_name: Named in the error when mnist1d is missing.

    Returns:
        Fresh tensors on every call (the cache holds read-only arrays), so a caller that
        edits its tensors in place never changes another trial's data.
    """
    arrays = _cached(_mnist1d_arrays, task_name or "load_mnist1d()")
    x_train, y_train = arrays["x"], arrays["y"]
    train_idx, val_idx = stratified_split(y_train, MNIST1D_SPLITS[:2], _MNIST1D_VAL_SEED)
    shape = (-1, 1, x_train.shape[1]) if channel_dim else (-1, x_train.shape[1])
    return TaskData(
        _dataset(x_train[train_idx], y_train[train_idx], shape),
        _dataset(x_train[val_idx], y_train[val_idx], shape),
        _dataset(arrays["x_test"], arrays["y_test"], shape),
    )


def load_digits(*, task_name: str | None = None) -> TaskData:
    """scikit-learn's digits, 1077/360/360, float32 ``(N, 64)`` pixels in [0, 1], labels 0..9.

    Args:
        task_name: Named in the error when scikit-learn is missing.
    """
    x, y = _cached(_digits_arrays, task_name or "load_digits()")
    parts = stratified_split(y, DIGITS_SPLITS, _DIGITS_SPLIT_SEED)
    return TaskData(*(_dataset(x[idx], y[idx], (-1, x.shape[1])) for idx in parts))


def cache_dir() -> Path | None:
    """Where generated data is cached on disk, or ``None`` when ``HPTUNE_CACHE_DIR=""``."""
    configured = os.environ.get("HPTUNE_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "hptune"


def clear_caches() -> None:
    """Forget the in-process arrays (the disk cache is left alone). For tests."""
    _mnist1d_arrays.cache_clear()
    _digits_arrays.cache_clear()


def _cached(load: Any, who: str) -> Any:
    # The caches hold one data set each, so `who` cannot be an argument of the cached
    # function (each name would generate its own copy); it is only needed in the error.
    try:
        return load()
    except MissingDependencyError as exc:
        raise MissingDependencyError(exc.package, who) from exc.__cause__


def _import(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = "scikit-learn" if module.startswith("sklearn") else module.split(".")[0]
        raise MissingDependencyError(package) from exc


def _dataset(x: np.ndarray, y: np.ndarray, shape: tuple[int, ...]) -> TensorDataset:
    # torch.tensor copies: the cached arrays stay untouched whatever the caller does.
    features = torch.tensor(x, dtype=torch.float32).reshape(shape)
    return TensorDataset(features, torch.tensor(y, dtype=torch.int64))


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    datasets = _import("sklearn.datasets")
    bunch = datasets.load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    return _read_only(x), _read_only(y)


@functools.cache
def _mnist1d_arrays() -> dict[str, np.ndarray]:
    path = _mnist1d_cache_path()
    cached = _read_cache(path) if path is not None else None
    if cached is not None:
        return cached
    arrays = _generate_mnist1d()
    if path is not None:
        _write_cache(path, arrays)
    return arrays


def _mnist1d_args() -> dict[str, Any]:
    # mnist1d's published defaults; the download URL is dropped, it is never used here.
    return {
        "num_samples": 5000,
        "train_split": 0.8,
        "template_len": 12,
        "padding": [36, 60],
        "scale_coeff": 0.4,
        "max_translation": 48,
        "corr_noise_scale": 0.25,
        "iid_noise_scale": 2e-2,
        "shear_scale": 0.75,
        "shuffle_seq": False,
        "final_seq_length": 40,
        "seed": 42,
    }


def _generate_mnist1d() -> dict[str, np.ndarray]:
    data_module = _import("mnist1d.data")
    utils = _import("mnist1d.utils")
    # make_dataset reseeds the global `random` and `np.random` generators: restore them, so
    # building the data never changes the random stream of the caller's own code.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = data_module.make_dataset(utils.ObjectView(_mnist1d_args()))
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return {
        key: _read_only(np.asarray(raw[key], dtype=np.int64 if key.startswith("y") else None))
        for key in ("x", "y", "x_test", "y_test")
    }


def _mnist1d_cache_path() -> Path | None:
    directory = cache_dir()
    if directory is None:
        return None
    try:
        version = importlib.metadata.version("mnist1d")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    key = json.dumps([_CACHE_FORMAT, version, _mnist1d_args()], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return directory / f"mnist1d-{digest}.npz"


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: _read_only(npz[key]) for key in ("x", "y", "x_test", "y_test")}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        # Missing, truncated or unreadable: regenerate (and rewrite) rather than fail.
        return None
    return arrays


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, **arrays)
            os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
            os.replace(tmp, path)  # atomic on POSIX and Windows: readers see all or nothing
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        # A read-only or full disk costs a regeneration next time, never a failed trial.
        return


def _read_only(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array
