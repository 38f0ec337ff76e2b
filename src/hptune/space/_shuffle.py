"""A seeded shuffle of ``range(size)`` that is computed one index at a time, with no list.

Grid search visits its points in a seeded random order so that any prefix of the order
spreads over the whole space (in the space's own order, the first trials would all share
the smallest learning rate). ``random.Random(seed).shuffle`` needs the list of every
point; a grid of 10^12 points has none. What is needed instead is a keyed bijection
``i -> perm[i]`` of ``range(size)``, cheap to evaluate for any ``i``: a small block cipher
on the domain ``range(size)``.

The choice, and what was rejected:

* **A balanced Feistel network** (Luby & Rackoff, "How to construct pseudorandom
  permutations from pseudorandom functions", SIAM J. Comput. 17(2), 1988) on ``2h`` bits,
  the smallest even width with ``2**(2h) >= size``: the index splits into halves
  ``(L, R)`` of ``h`` bits and each round maps them to ``(R, L xor F_k(R))``. Every round
  is invertible whatever ``F_k`` is, so the network is a permutation of ``range(2**(2h))``
  by construction; with a pseudorandom ``F_k``, a few rounds make it look like a random
  permutation (Luby and Rackoff prove 3 rounds pseudorandom, 4 strongly so, for wide
  halves; small domains need more rounds, hence :data:`ROUNDS` = 8). ``F_k`` is keyed
  BLAKE2b (RFC 7693) of the round and the half, keyed by the seed: stable across Python
  versions and machines, unlike ``hash()``.
* **Cycle walking** (Black & Rogaway, "Ciphers with arbitrary finite domains", CT-RSA
  2002) narrows it to ``range(size)``: apply the network again until the result falls
  below ``size``. Following a permutation's cycle from a point of ``range(size)`` reaches
  the next point of ``range(size)`` on that cycle, so this is a permutation of
  ``range(size)``; the domain is less than 4 times ``size``, so fewer than 4 passes are
  needed on average.
* Rejected: an affine map ``(a*i + b) mod size`` with ``gcd(a, size) = 1``. It is a
  permutation and trivial to compute, but a poor shuffle: consecutive positions land a
  fixed stride apart, so a prefix of the order walks the grid along one lattice line
  instead of spreading over it. Also rejected: a linear congruential or LFSR sequence
  (same lattice structure), and shuffling a list (memory in the size of the grid).

Example:
    >>> perm = FeistelPermutation(10, seed=0)
    >>> sorted(perm) == list(range(10))
    True
    >>> perm[3] == FeistelPermutation(10, seed=0)[3]
    True
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterator

from hptune.exceptions import ConfigError

#: Feistel rounds. Luby-Rackoff's bounds need wide halves; a grid of 100 points has halves
#: of 4 bits, where more rounds mix better; 8 rounds of BLAKE2b cost about 10 us per index.
ROUNDS = 8


class FeistelPermutation:
    """A bijection of ``range(size)`` chosen by ``seed``, evaluated index by index.

    ``perm[i]`` is where position ``i`` of the shuffled order points; iterating gives the
    whole order. The same ``(size, seed)`` always gives the same permutation, on any
    machine; another seed gives another. See the module docstring for the construction
    (a keyed Feistel network with cycle walking) and its sources.

    Args:
        size: The number of elements, >= 1.
        seed: Any int >= 0; it keys the round function.

    Example:
        >>> list(FeistelPermutation(5, seed=1))
        [2, 4, 0, 3, 1]
        >>> FeistelPermutation(10**12, seed=1)[0] < 10**12
        True
    """

    def __init__(self, size: int, seed: int) -> None:
        for what, value, low in (("size", size, 1), ("seed", seed, 0)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise ConfigError(
                    f"FeistelPermutation: {what} must be an int >= {low}, got {value!r}."
                )
        self.size, self.seed = int(size), int(seed)
        self._half = max(1, ((self.size - 1).bit_length() + 1) // 2)
        self._mask = (1 << self._half) - 1
        self._digest_size = min(64, (self._half + 7) // 8)
        if 8 * self._digest_size < self._half:
            raise ConfigError(f"FeistelPermutation: size must be below 2**1024, got {size}.")
        # BLAKE2b takes keys of up to 64 bytes; a digest of the seed fits any seed.
        self._key = hashlib.blake2b(str(self.seed).encode(), digest_size=32).digest()

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int) -> int:
        integral = isinstance(index, numbers.Integral) and not isinstance(index, bool)
        if not integral or not 0 <= index < self.size:
            raise ConfigError(
                f"FeistelPermutation: index must be an int in [0, {self.size - 1}], got {index!r}."
            )
        value = self._encrypt(int(index))
        while value >= self.size:  # cycle walking: stays on the cycle through index
            value = self._encrypt(value)
        return value

    def __iter__(self) -> Iterator[int]:
        return (self[i] for i in range(self.size))

    def __repr__(self) -> str:
        return f"FeistelPermutation(size={self.size}, seed={self.seed})"

    def _encrypt(self, value: int) -> int:
        left, right = value >> self._half, value & self._mask
        for round_ in range(ROUNDS):
            left, right = right, left ^ self._round_function(round_, right)
        return (left << self._half) | right

    def _round_function(self, round_: int, half: int) -> int:
        digest = hashlib.blake2b(
            f"{round_}:{half}".encode(), digest_size=self._digest_size, key=self._key
        ).digest()
        return int.from_bytes(digest, "big") & self._mask
