"""Shared helpers of the hand-designed optimizers: hyperparameter checks and the chunk loop."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np

# Elements per chunk of an update.  The chunk of every array an update touches
# (params, grads, state, scratch: up to 6 x 256 KiB) stays in the on-chip caches
# while the ufunc chain runs over it, so a step reads and writes DRAM about once
# instead of once per ufunc.  Measured (Adam, this 2-core x86 box, under load):
# 15% faster at 4e6 parameters, 7% slower at 1e6 when everything is L3-warm (~16
# chunks x 12 calls of overhead, docs/references.md §1.1).  The HALO CNNs and MLPs
# (2k-17k parameters) fit in one chunk.
CHUNK = 65536


def chunked(kernel: Callable[..., None], arrays: Sequence[np.ndarray], *scalars: Any) -> None:
    """Call ``kernel(*arrays, *scalars)`` on consecutive ``CHUNK``-element slices.

    ``arrays``: same-length 1-D arrays (views are taken, nothing is copied).  The
    kernels are elementwise, so the result is bit-for-bit the same as one call on
    the whole arrays.
    """
    n = arrays[0].shape[0]
    if n <= CHUNK:
        kernel(*arrays, *scalars)
        return
    for lo in range(0, n, CHUNK):
        hi = lo + CHUNK
        kernel(*[a[lo:hi] for a in arrays], *scalars)


def ema_moments(g: np.ndarray, m: np.ndarray, v: np.ndarray, tmp: np.ndarray,
                b1: np.float32, omb1: np.float32, b2: np.float32, omb2: np.float32) -> None:
    """Adam's moments in place: ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``.

    Seven float32 ufunc calls with ``tmp`` as scratch (same length as ``g``); the
    order of operations is fixed, so every optimizer that calls it rounds alike."""
    np.multiply(m, b1, m)
    np.multiply(g, omb1, tmp)
    np.add(m, tmp, m)
    np.multiply(v, b2, v)
    np.multiply(g, g, tmp)
    np.multiply(tmp, omb2, tmp)
    np.add(v, tmp, v)


def f32(x: float) -> np.float32:
    """``x`` as a NumPy float32 scalar (ufuncs then stay in float32 and skip a conversion)."""
    return np.float32(x)


def zeros(n: int) -> np.ndarray:
    """A zero float32 state array of length ``n``."""
    return np.zeros(int(n), dtype=np.float32)


UNUSED = np.zeros(0, dtype=np.float32)
"""A length-0 float32 array for a state field an optimizer configuration does not use."""


# --- hyperparameter checks: each returns the value as a Python float / bool ------------


def _as_float(opt: str, field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{opt}: {field} must be a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{opt}: {field} must be a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{opt}: {field} must be finite, got {value!r}")
    return out


def positive(opt: str, field: str, value: Any) -> float:
    """``value`` as a float; ``ValueError`` naming ``field`` unless finite and > 0."""
    out = _as_float(opt, field, value)
    if out <= 0.0:
        raise ValueError(f"{opt}: {field} must be > 0, got {value!r}")
    return out


def nonnegative(opt: str, field: str, value: Any) -> float:
    """``value`` as a float; ``ValueError`` naming ``field`` unless finite and >= 0."""
    out = _as_float(opt, field, value)
    if out < 0.0:
        raise ValueError(f"{opt}: {field} must be >= 0, got {value!r}")
    return out


def decay(opt: str, field: str, value: Any) -> float:
    """An EMA decay (beta, rho, momentum): ``ValueError`` naming ``field`` unless in [0, 1)."""
    out = _as_float(opt, field, value)
    if not 0.0 <= out < 1.0:
        raise ValueError(f"{opt}: {field} must be in [0, 1), got {value!r}")
    return out


def fraction(opt: str, field: str, value: Any) -> float:
    """A fraction of the budget: ``ValueError`` naming ``field`` unless in [0, 1]."""
    out = _as_float(opt, field, value)
    if not 0.0 <= out <= 1.0:
        raise ValueError(f"{opt}: {field} must be in [0, 1], got {value!r}")
    return out


def flag(opt: str, field: str, value: Any) -> bool:
    """A boolean switch: ``ValueError`` naming ``field`` unless a bool."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{opt}: {field} must be True or False, got {value!r}")
    return bool(value)
