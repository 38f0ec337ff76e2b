"""Priors from the field: where good training hyperparameters usually lie, by name.

A prior is a belief held *before* any trial: the defaults that published training recipes
use, widened so that a space far from them is still searched. They are never fitted to a
benchmark. Each entry below cites where its centre comes from; the widths are ours, chosen
wide (a decade for learning rates and weight decay) so that a wrong prior costs little.

A parameter is recognised by the last part of its name (``optimizer.sgd.momentum`` is a
momentum), and a learning rate's prior depends on its optimizer:

============== ==================================================================== =========
parameter      centre (mode) and width                                              source
============== ==================================================================== =========
lr, SGD        0.03 (log-normal, 1 decade): between 0.1 (He et al. 2016, batch     [1] [2]
               256) and 0.01 (Krizhevsky et al. 2012, batch 128), both SGD with
               momentum 0.9
lr, Adam(W)    1e-3 (log-normal, 1 decade): Adam's default step size               [3]
lr, unknown    3e-3 (log-normal, 1.5 decades): between the two above
momentum       1 - momentum = 0.1 (log-normal, 0.5 decade): momentum 0.9, and its   [1] [2]
               complement searched on a log scale as the Tuning Playbook advises    [5]
beta1          1 - beta1 = 0.1 (log-normal, 0.5 decade): Adam's default 0.9         [3] [5]
weight_decay   3e-4 (log-normal, 1 decade): between 1e-4 [1] and 5e-4 [2]           [1] [2]
batch_size     32 (log-normal, 0.6 decade): "32 is a good default value" [4]; small [4] [6]
               batches generalise at least as well [6]
warmup         5 % of the epochs (normal, 10 % of the epochs): 5 of 90 epochs [7]  [7]
============== ==================================================================== =========

[1] He, Zhang, Ren, Sun. Deep Residual Learning for Image Recognition. CVPR 2016.
[2] Krizhevsky, Sutskever, Hinton. ImageNet Classification with Deep Convolutional Neural
    Networks. NeurIPS 2012.
[3] Kingma, Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.
[4] Bengio. Practical Recommendations for Gradient-Based Training of Deep Architectures.
    arXiv 1206.5533, 2012.
[5] Godbole, Dahl, Gilmer, Shallue, Nado. Deep Learning Tuning Playbook. Google, 2023.
[6] Masters, Luschi. Revisiting Small Batch Training for Deep Neural Networks. arXiv
    1804.07612, 2018.
[7] Goyal et al. Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour. arXiv
    1706.02677, 2017.

Parameters without an entry (architecture, dropout, anything the user named otherwise)
have no prior: they are drawn uniformly (log-uniformly on a log scale) from the space.
The optimizer of a learning rate is the branch of a conditional named ``optimizer`` when
the space has one (``sgd``, ``adam``, ``adamw``...), SGD when the space has a momentum and
no optimizer choice (as LCBench's networks are trained), otherwise unknown.

Example:
    >>> prior = field_prior("lr", optimizer="adam")
    >>> prior.mode, prior.scale
    (0.001, 'log')
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from typing import Any

import numpy as np

from hptune.exceptions import ConfigError


@dataclasses.dataclass(frozen=True)
class NumericPrior:
    """A normal belief about one number, on a scale where that is natural.

    Args:
        mode: The most likely value.
        width: The standard deviation on the scale: decades (log10) for ``log`` and
            ``log1m``, the parameter's own unit for ``linear``.
        scale: ``log`` (a log-normal: learning rates), ``log1m`` (``1 - x`` is log-normal:
            momentum), ``linear``.
        source: Where the mode comes from (shown in the docs and notes).
    """

    mode: float
    width: float
    scale: str = "log"
    source: str = ""

    def __post_init__(self) -> None:
        if self.scale not in ("log", "log1m", "linear") or not self.width > 0:
            raise ConfigError(
                f"a prior needs scale log, log1m or linear and width > 0, got "
                f"scale={self.scale!r}, width={self.width!r}."
            )
        if not math.isfinite(self.mode) or not math.isfinite(self.width):
            raise ConfigError(f"a prior's mode and width must be finite, got {self!r}.")
        if (self.scale == "log" and self.mode <= 0) or (self.scale == "log1m" and self.mode >= 1):
            raise ConfigError(
                f"a prior on scale {self.scale!r} needs a mode "
                f"{'> 0' if self.scale == 'log' else '< 1'}, got {self.mode!r}."
            )

    def to_scale(self, x: float) -> float:
        """``x`` on the prior's scale (bounds at 0 are pushed in by a hair)."""
        if self.scale == "log":
            return math.log10(max(x, 1e-300))
        if self.scale == "log1m":
            return math.log10(max(1.0 - x, 1e-300))
        return x

    def from_scale(self, y: float) -> float:
        if self.scale == "log":
            return 10.0**y
        if self.scale == "log1m":
            return 1.0 - 10.0**y
        return y

    def sample(self, low: float, high: float, rng: np.random.RandomState) -> float:
        """One draw truncated to ``[low, high]`` (inverse CDF, so never a rejection loop)."""
        a, b = sorted((self.to_scale(low), self.to_scale(high)))
        dist = statistics.NormalDist(self.to_scale(self.mode), self.width)
        pa, pb = dist.cdf(a), dist.cdf(b)
        if pb - pa < 1e-12:  # the range lies far in one tail: its nearest end
            y = a if abs(a - dist.mean) < abs(b - dist.mean) else b
        else:
            y = dist.inv_cdf(min(max(pa + (pb - pa) * rng.uniform(), 1e-15), 1 - 1e-15))
        return min(max(self.from_scale(min(max(y, a), b)), low), high)

    def clipped_mode(self, low: float, high: float) -> float:
        """The mode, moved into ``[low, high]`` when outside."""
        return min(max(self.mode, low), high)

    def log_density(self, x: float) -> float:
        """Log density on the prior's scale (up to a constant), for weighting."""
        z = (self.to_scale(x) - self.to_scale(self.mode)) / self.width
        return -0.5 * z * z


#: Learning-rate priors by optimizer family.
_LR = {
    "sgd": NumericPrior(0.03, 1.0, "log", "He et al. 2016 (0.1), Krizhevsky et al. 2012 (0.01)"),
    "adam": NumericPrior(1e-3, 1.0, "log", "Kingma & Ba 2015"),
    None: NumericPrior(3e-3, 1.5, "log", "between the SGD and Adam defaults"),
}
#: Other priors by parameter name (the last part of a dotted Optuna name).
_BY_NAME = {
    "momentum": NumericPrior(0.9, 0.5, "log1m", "He et al. 2016; Krizhevsky et al. 2012"),
    "beta1": NumericPrior(0.9, 0.5, "log1m", "Kingma & Ba 2015"),
    "weight_decay": NumericPrior(3e-4, 1.0, "log", "He et al. 2016 (1e-4), Krizhevsky (5e-4)"),
    "batch_size": NumericPrior(32, 0.6, "log", "Bengio 2012; Masters & Luschi 2018"),
}
_LR_NAMES = ("lr", "learning_rate")
_WARMUP_NAMES = ("warmup_epochs", "warmup")
_ADAM_LIKE = ("adam", "adamw", "nadam", "radam", "lamb", "adamax")
_SGD_LIKE = ("sgd", "nesterov", "momentum", "rmsprop")


def optimizer_family(name: str | None) -> str | None:
    """``sgd``, ``adam`` or None for an optimizer (branch) name."""
    if name is None:
        return None
    low = name.lower()
    if low in _ADAM_LIKE or low.startswith("adam"):
        return "adam"
    if low in _SGD_LIKE:
        return "sgd"
    return None


def field_prior(
    name: str, optimizer: str | None = None, epochs: int | None = None
) -> NumericPrior | None:
    """The field's prior for parameter ``name`` (a dotted Optuna name), or None.

    Args:
        name: The parameter's name; only its last part is read.
        optimizer: The optimizer (branch) name the config trains with, if known.
        epochs: The training epochs (for warmup), if known.
    """
    leaf = name.rsplit(".", 1)[-1].lower()
    if leaf in _LR_NAMES:
        return _LR[optimizer_family(optimizer)]
    if leaf in _WARMUP_NAMES:
        if epochs is None:
            return None
        return NumericPrior(0.05 * epochs, max(0.1 * epochs, 0.5), "linear", "Goyal et al. 2017")
    return _BY_NAME.get(leaf)


_PRIOR_KEYS = {"mode", "width", "scale"}


def parse_priors(priors: Mapping[str, Any]) -> dict[str, Any]:
    """User priors as NumericPriors: ``{name: mode}``, ``{name: {mode, width, scale}}``, or
    one per optimizer, ``{name: {optimizer: mode or {mode, width, scale}}}`` (the branch
    names of the space's ``optimizer`` choice: a learning rate shared by SGD and Adam wants
    a prior for each).

    A bare number keeps the field prior's width and scale for that name when there is one
    (a log scale of 1 decade otherwise).
    """
    out: dict[str, Any] = {}
    for name, spec in priors.items():
        if isinstance(spec, Mapping) and spec and not set(spec) & _PRIOR_KEYS:
            out[name] = {
                str(optimizer): _one_prior(f"{name} for {optimizer}", name, optimizer, given)
                for optimizer, given in spec.items()
            }
        else:
            out[name] = _one_prior(name, name, None, spec)
    return out


def _one_prior(label: str, name: str, optimizer: str | None, spec: Any) -> NumericPrior:
    base = field_prior(name, optimizer) or NumericPrior(1.0, 1.0, "log")
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - _PRIOR_KEYS)
        if unknown or "mode" not in spec:
            raise ConfigError(
                f"prior {label!r} must be a number or {{mode, width, scale}}, got {dict(spec)!r}."
            )
        return NumericPrior(
            float(spec["mode"]),
            float(spec.get("width", base.width)),
            str(spec.get("scale", base.scale)),
            "given",
        )
    return NumericPrior(float(spec), base.width, base.scale, "given")
