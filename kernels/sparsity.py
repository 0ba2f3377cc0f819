"""Structural sparsity (HALO): per-layer update probabilities, per-step masks, update groups.

At each step trainable layer ``j`` (numbered from the input, 0-based) is updated
with probability ``p_j``, independently of the other layers and of earlier steps.
HALO's schedule is 10% / 30% / 50% for the first / middle / last third of the
layers.  Layers map to thirds by where their centre lies in the depth: layer ``j``
of ``n`` belongs to third ``floor(3 (j + 1/2) / n)``.  A centre never falls exactly
on a boundary (``3 (2j + 1) = 2 n k`` has no solution, odd = even), so the rule
needs no tie-break; it is symmetric (layer ``j`` and layer ``n-1-j`` are in mirror
thirds) and the three group sizes differ by at most one:

- ``n = 1``: the one layer is the middle third: 30%;
- ``n = 2``: first and last: 10%, 50%;
- ``n = 3``: 10%, 30%, 50%;  ``n = 4``: 10, 30, 30, 50;  ``n = 5``: 10, 10, 30, 50, 50.

Pure functions, no I/O.
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

HALO_PROBABILITIES = (0.1, 0.3, 0.5)
"""Update probability of the first, middle and last third of the layers (HALO)."""

SCHEMES = ("dense", "halo", "thirds:P1,P2,P3", "last:K", "bias")
"""Schemes accepted by :func:`parse_sparsity` besides a per-layer list."""

THIRDS_PREFIX = "thirds:"
LAST_PREFIX = "last:"


def thirds_scheme(probabilities) -> str:
    """The ``thirds:P1,P2,P3`` scheme text for probabilities of the first, middle and last third."""
    vals = [float(p) for p in probabilities]
    if len(vals) != 3:
        raise ValueError(f"sparsity: thirds need 3 probabilities, got {vals}")
    return THIRDS_PREFIX + ",".join(f"{v:.4g}" for v in vals)


def _check_n_layers(n_layers: int) -> int:
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or n_layers < 1:
        raise ValueError(f"n_layers must be an integer >= 1, got {n_layers!r}")
    return int(n_layers)


def halo_thirds(n_layers: int) -> np.ndarray:
    """The third (0 first, 1 middle, 2 last) of each of ``n_layers`` layers.

    Returns int64 ``(n_layers,)``: ``floor(3 (j + 1/2) / n_layers)`` for layer ``j``
    (see the module docstring).
    """
    n = _check_n_layers(n_layers)
    j = np.arange(n, dtype=np.int64)
    return (3 * (2 * j + 1)) // (2 * n)


def parse_sparsity(text: str, n_layers: int) -> np.ndarray:
    """Per-layer update probabilities from a scheme name or a comma-separated list.

    ``text``: ``"dense"`` (every layer every step), ``"halo"`` (10%/30%/50% by third,
    see :func:`halo_thirds`), ``"thirds:P1,P2,P3"`` (any probabilities by third, as a
    learned optimizer's weights give them), or exactly ``n_layers`` comma-separated
    probabilities in (0, 1], first layer first (``"0.1, 0.3, 0.5"``).  Board-side budgets:
    ``"last:K"`` updates only the last K layers, every step (the others get probability 0:
    no gradient, no back-propagation below them); ``"bias"`` (TinyTL's bias-only updates) is
    dense here, the caller restricts the model to its biases and classifier.  Names are
    case-insensitive; whitespace is ignored.  Returns float64 ``(n_layers,)``, every value
    in [0, 1].
    Raises ``ValueError`` naming the field ``sparsity`` and the value.
    """
    n = _check_n_layers(n_layers)
    if not isinstance(text, str):
        raise ValueError(f"sparsity must be a string, got {text!r}")
    key = text.strip().lower()
    if key in ("dense", "bias"):
        return np.ones(n, dtype=np.float64)
    if key.startswith(LAST_PREFIX):
        k = key[len(LAST_PREFIX):].strip()
        if not k.isdigit() or not 1 <= int(k) <= n:
            raise ValueError(f"sparsity {text!r}: K must be an integer in 1..{n} (the model has {n} "
                             "trainable layers)")
        return (np.arange(n) >= n - int(k)).astype(np.float64)
    if key == "halo":
        return np.asarray(HALO_PROBABILITIES, dtype=np.float64)[halo_thirds(n)]
    if key.startswith(THIRDS_PREFIX):
        thirds = _probabilities(text, key[len(THIRDS_PREFIX):], 3)
        return thirds[halo_thirds(n)]
    return _probabilities(text, key, n)


def _probabilities(text: str, key: str, n: int) -> np.ndarray:
    """``n`` comma-separated probabilities in (0, 1] from ``key``; errors quote ``text``."""
    parts = [s.strip() for s in key.split(",")]
    values = []
    for part in parts:
        try:
            p = float(part)
        except ValueError:
            raise ValueError(
                f"sparsity {text!r}: {part!r} is not a probability; expected one of "
                f"{', '.join(SCHEMES)} or {n} comma-separated probabilities in (0, 1]"
            ) from None
        if not 0.0 < p <= 1.0:  # also rejects nan
            raise ValueError(f"sparsity {text!r}: probability {part!r} is not in (0, 1]")
        values.append(p)
    if len(values) != n:
        raise ValueError(
            f"sparsity {text!r}: {len(values)} probabilities for {n} layers; "
            f"give one per layer, or one of {', '.join(SCHEMES)}"
        )
    return np.asarray(values, dtype=np.float64)


def draw_mask(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Which layers to update this step: independent Bernoulli draws.

    ``probs``: float ``(n_layers,)`` in (0, 1].  Returns bool ``(n_layers,)``,
    ``True`` with probability ``probs[j]`` (always for 1).  Draws ``n_layers``
    uniforms from ``rng``, so a seeded generator gives a reproducible sequence.
    """
    p = np.asarray(probs, dtype=np.float64)
    return rng.random(p.shape[0]) < p


def segments(mask: np.ndarray, counts: np.ndarray) -> List[Tuple[int, int]]:
    """Group the updated layers into runs that one optimizer call can update.

    ``mask``: bool ``(n_layers,)``, the layers updated this step.  ``counts``: int
    ``(n_layers,)``, each layer's update count (what ``StepInfo.count`` will be).
    Returns ``[(first_layer, last_layer), ...]`` (both inclusive, in increasing
    order): maximal runs of adjacent updated layers with equal counts.  A dense step
    with equal counts is one group ``[(0, n_layers - 1)]``; no updated layer, ``[]``.
    Layers are contiguous in the flat buffer, so each group is one segment
    ``[lo of first_layer, hi of last_layer)``.
    """
    m = np.asarray(mask, dtype=bool)
    c = np.asarray(counts)
    if m.ndim != 1 or c.shape != m.shape:
        raise ValueError(
            f"mask and counts must be 1-D of equal length, got {m.shape} and {c.shape}"
        )
    out: List[Tuple[int, int]] = []
    start = -1
    for j in range(m.shape[0]):
        if not m[j]:
            if start >= 0:
                out.append((start, j - 1))
                start = -1
            continue
        if start >= 0 and c[j] != c[start]:
            out.append((start, j - 1))
            start = -1
        if start < 0:
            start = j
    if start >= 0:
        out.append((start, m.shape[0] - 1))
    return out


def adjacent_groups(runs: List[Tuple[int, int]]) -> List[List[Tuple[int, int]]]:
    """:func:`segments`' runs grouped where one ends at the layer before the next starts:
    the segments an optimizer that takes several update counts in one call
    (``Optimizer.runs``) updates at once, e.g. ``[(0, 0), (1, 1), (3, 3)]`` ->
    ``[[(0, 0), (1, 1)], [(3, 3)]]``."""
    groups: List[List[Tuple[int, int]]] = []
    for run in runs:
        if groups and groups[-1][-1][1] + 1 == run[0]:
            groups[-1].append(run)
        else:
            groups.append([run])
    return groups
