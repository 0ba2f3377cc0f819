"""Exactly reversible SGD with momentum in fixed point (Maclaurin et al. 2015, Algorithm 3).

Weights ``w`` and velocity ``v`` of a flat buffer are held as int64 in fixed point
with radix ``2**-RADIX_BITS`` (value = int * 2**-44: a range of +-524288 and a
resolution of 5.7e-14).  One step over the segments of the updated layers, in the
project's (PyTorch) momentum convention::

    v <- gamma * v + g          # gamma = n / d, an exactly reversible multiplication
    w <- w - lr * v             # lr per segment

Adding ``g`` and subtracting ``lr * v`` are exact in fixed point (both are rounded to
the grid *before* they are added, from values the reverse step can recompute).  The
multiplication by ``gamma = n / d`` loses ``log2(d / n)`` bits per element per step;
they are kept in an :class:`InfoBuffer` (one arbitrary-precision Python integer per
element, as the paper's own code does), so :meth:`ReversibleMomentum.reverse`
restores the weights and velocity of the step before **bit for bit**.  The buffer
grows with the number of steps times ``log2(1 / gamma)`` bits per element, not with
the size of the weights of every step.

Pure numerics: the caller supplies the gradients (recomputed from the restored
weights on the way back).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence, Tuple

import numpy as np

RADIX_BITS = 44
"""Fixed point: a value ``x`` is stored as ``round(x * 2**RADIX_BITS)`` in int64."""

SCALE = float(2 ** RADIX_BITS)
LIMIT = float(2 ** 62) / SCALE
"""Largest magnitude a weight, a velocity or an increment may reach (2**18 = 262144)."""

DECAY_BITS = 16
"""Momentum decays are ratios ``n / 2**16`` (resolution 1.5e-5)."""

Segment = Tuple[int, int]


class ReversibleOverflow(ArithmeticError):
    """A value left the fixed-point range (the unroll diverged); names what and where."""


def rational_decay(gamma: float) -> Tuple[int, int]:
    """``(n, d)`` with ``d = 2**DECAY_BITS`` and ``n / d`` the nearest ratio to ``gamma``.

    ``gamma`` must lie in (0, 1); ``n`` is clamped to ``1..d-1`` so the ratio does too.
    """
    g = float(gamma)
    if not (0.0 < g < 1.0):
        raise ValueError(f"momentum decay must be in (0, 1), got {gamma!r}")
    d = 1 << DECAY_BITS
    return min(d - 1, max(1, int(round(g * d)))), d


def to_fixed(x: np.ndarray, what: str) -> np.ndarray:
    """``x`` (float) on the fixed-point grid as int64; raises :class:`ReversibleOverflow`."""
    x = np.asarray(x, dtype=np.float64)
    big = ~(np.abs(x) < LIMIT)  # also catches nan
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise ReversibleOverflow(f"{what}: value {x.ravel()[i]!r} at index {i} is outside the "
                                 f"fixed-point range +-{LIMIT:g} (the unroll diverged)")
    return np.rint(x * SCALE).astype(np.int64)


def to_float(q: np.ndarray) -> np.ndarray:
    """Fixed-point int64 -> float64 (exact while |value| < 2**(53 - RADIX_BITS))."""
    return q.astype(np.float64) / SCALE


class InfoBuffer:
    """Per-element arbitrary-precision integers holding the digits lost by divisions.

    Kept in int64 while every element stays below ``2**SMALL_BITS`` (so ``i * d + r``
    cannot overflow: a few hundred steps at momentum 0.9), and moved to Python integers
    (an object array) for good the first time one would not fit.
    """

    SMALL_BITS = 62 - DECAY_BITS

    def __init__(self, n: int):
        self.store = np.zeros(n, dtype=np.int64)

    def _room(self, lo: int, hi: int) -> np.ndarray:
        """The segment's store, moved to Python integers first when it might overflow."""
        seg = self.store[lo:hi]
        if self.store.dtype == np.int64 and seg.size and int(seg.max()) >= 1 << self.SMALL_BITS:
            self.store = self.store.astype(object)
            seg = self.store[lo:hi]
        return seg

    def _digits(self, c: np.ndarray, k: int) -> np.ndarray:
        r = c % k
        return r if self.store.dtype == np.int64 else r.astype(object)

    def mul_ratio(self, c: np.ndarray, lo: int, hi: int, n: int, d: int) -> None:
        """``c[lo:hi] <- c * n / d`` in place, exactly reversibly (Algorithm 3)."""
        seg = c[lo:hi]
        i = self._room(lo, hi) * d + self._digits(seg, d)   # keep the digit lost by // d
        self.store[lo:hi] = i // n
        seg //= d
        seg *= n
        seg += (i % n).astype(np.int64)                      # a digit back from the buffer

    def div_ratio(self, c: np.ndarray, lo: int, hi: int, n: int, d: int) -> None:
        """The inverse of :meth:`mul_ratio`: ``c[lo:hi] <- c * d / n`` restoring every bit."""
        seg = c[lo:hi]
        i = self._room(lo, hi) * n + self._digits(seg, n)
        self.store[lo:hi] = i // d
        seg //= n
        seg *= d
        seg += (i % d).astype(np.int64)

    def bits(self) -> int:
        """Total size of the buffer in bits (sum over elements of each integer's bit length)."""
        if self.store.dtype == np.int64:  # exact: every value is below 2**53
            return int(np.frexp(self.store.astype(np.float64))[1].sum())
        return int(sum(int(v).bit_length() for v in self.store))

    def is_empty(self) -> bool:
        """Whether every element holds 0 (all stored digits given back)."""
        return not np.any(self.store != 0)


class ReversibleMomentum:
    """Weights and velocity of a flat buffer in fixed point, stepped forward and back exactly.

    ``w0``: float (n,) initial weights; the velocity starts at zero.  Segments are
    ``(lo, hi)`` ranges of the flat buffer (one per layer); a step updates only the
    segments it is given (structural sparsity: the others keep weights and velocity).
    """

    def __init__(self, w0: np.ndarray):
        w0 = np.asarray(w0, dtype=np.float64).ravel()
        self.w = to_fixed(w0, "initial weights")
        self.v = np.zeros_like(self.w)
        self.info = InfoBuffer(self.w.shape[0])
        self.steps = 0

    @property
    def weights(self) -> np.ndarray:
        """Current weights as float64 (n,) (a new array)."""
        return to_float(self.w)

    @property
    def velocity(self) -> np.ndarray:
        """Current velocity as float64 (n,) (a new array)."""
        return to_float(self.v)

    def _lr_step(self, seg: Segment, lr: float) -> np.ndarray:
        lo, hi = seg
        return to_fixed(lr * to_float(self.v[lo:hi]), "lr * velocity")

    def forward(self, grad: np.ndarray, segs: Sequence[Segment], lrs: Sequence[float],
                decays: Sequence[Tuple[int, int]]) -> None:
        """One step: for each segment ``s``, ``v <- n/d v + grad``, ``w <- w - lr v``.

        ``grad``: float (n,), read only on the segments; ``lrs[s]`` and
        ``decays[s] = (n, d)`` (see :func:`rational_decay`) per segment.
        """
        for (lo, hi), lr, (n, d) in zip(segs, lrs, decays):
            self.info.mul_ratio(self.v, lo, hi, n, d)
            self.v[lo:hi] += to_fixed(grad[lo:hi], "gradient")
            self.w[lo:hi] -= self._lr_step((lo, hi), lr)
        self.steps += 1

    def undo_position(self, segs: Sequence[Segment], lrs: Sequence[float]) -> None:
        """First half of a reverse step: ``w <- w + lr v`` (restores the step's input weights).

        The caller then recomputes the step's gradient at :attr:`weights` and calls
        :meth:`undo_velocity` with it.
        """
        for (lo, hi), lr in zip(segs, lrs):
            self.w[lo:hi] += self._lr_step((lo, hi), lr)

    def undo_velocity(self, grad: np.ndarray, segs: Sequence[Segment],
                      decays: Sequence[Tuple[int, int]]) -> None:
        """Second half of a reverse step: ``v <- (v - grad) d/n``, every bit restored."""
        for (lo, hi), (n, d) in zip(segs, decays):
            self.v[lo:hi] -= to_fixed(grad[lo:hi], "gradient")
            self.info.div_ratio(self.v, lo, hi, n, d)
        self.steps -= 1

    def reverse(self, grad_at: Callable[[np.ndarray], np.ndarray], segs: Sequence[Segment],
                lrs: Sequence[float], decays: Sequence[Tuple[int, int]]) -> None:
        """Undo one :meth:`forward` step; ``grad_at(w)`` gives the step's gradient at ``w``."""
        self.undo_position(segs, lrs)
        self.undo_velocity(grad_at(self.weights), segs, decays)

    def buffer_bits(self) -> int:
        """Size of the information buffer in bits."""
        return self.info.bits()


def bits_lost_per_step(gamma: float) -> float:
    """Bits per element the buffer grows by when a decay ``gamma`` is applied once."""
    n, d = rational_decay(gamma)
    return math.log2(d / n)

