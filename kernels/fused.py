"""The compiled fused update loops (``kernels/_fused.c``), when the install built them.

``native``: the extension module, or None where it was not built (no C compiler at install
time) or is switched off with the environment variable ``HALO_FUSED=0``.  Callers keep
their NumPy ufunc chains as the fallback and as the reference: the fused loops do the same
float32 operations in the same order, so both give bit-identical results
(tests/test_fused.py).  Read when an optimizer or kernel is built, so a benchmark can
compare both in one process (:func:`enabled`).
"""

from __future__ import annotations

import os
from typing import Any, Optional

try:
    from kernels import _fused as _built
except ImportError:  # no compiler at install time: the ufunc chains serve
    _built = None

ENV = "HALO_FUSED"
"""Set to ``0`` to run the NumPy ufunc chains even where the fused loops are built."""


def built() -> bool:
    """True when the install compiled ``kernels._fused``."""
    return _built is not None


def enabled() -> Optional[Any]:
    """The fused module when built and not switched off by ``HALO_FUSED=0``, else None."""
    if _built is None or os.environ.get(ENV, "1").strip() == "0":
        return None
    return _built


def describe() -> str:
    """Which implementation the updates run, for reports: ``fused C`` or why not."""
    if _built is None:
        return "NumPy ufunc chains (kernels._fused not built)"
    if enabled() is None:
        return f"NumPy ufunc chains ({ENV}=0)"
    return "fused C loops (kernels._fused)"
