"""The per-mask step cost table and the expected cost of update probabilities.

A training step with mask ``m`` (which layers are updated) costs a forward pass plus a
backward pass down to the lowest updated layer plus the updates; a step that updates
no layer costs nothing (``models.train.Trainer``).  The table holds each mask's
median wall time relative to the dense step, measured on this machine with the
optimizee, so the energy penalty of meta-training prices what the hardware
actually pays (on this CPU, updating the first conv layer costs ~45% of a step
because it needs the second layer's input gradient at full resolution;
feasibility.md).  Keys are masks as strings, first layer first (``"101"``).

The table used by a run is part of its config, so a run reproduces without
re-timing; ``halo-agent meta-train --measure-costs`` prints a fresh one.
"""

from __future__ import annotations

import itertools
import statistics
import time
from typing import Dict, Mapping, Sequence

import numpy as np

from kernels.optimizers import make_optimizer
from kernels.sparsity import halo_thirds
from models.nets import build_network
from models.train import Trainer


def mask_key(mask: Sequence[bool]) -> str:
    return "".join("1" if m else "0" for m in mask)


def all_masks(n_layers: int):
    """Every mask of ``n_layers`` layers, as bool tuples (the empty one first)."""
    return list(itertools.product((False, True), repeat=n_layers))


def measure_cost_table(arch: str, input_shape: Sequence[int], num_classes: int,
                       batch_size: int = 64, rounds: int = 15, seed: int = 0) -> Dict[str, float]:
    """Median step time per mask relative to the dense step (masks interleaved per round).

    Uses Adam for the update (its cost is that of any elementwise rule within a few
    per cent of the step); the network is random, the inputs Gaussian: the cost does
    not depend on values.
    """
    net = build_network(arch, input_shape, num_classes, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch_size, *input_shape)).astype(np.float32)
    y = rng.integers(0, num_classes, batch_size)
    trainer = Trainer(net, make_optimizer("adam", lr=1e-9))
    masks = [m for m in all_masks(net.n_layers) if any(m)]
    times: Dict[str, list] = {mask_key(m): [] for m in masks}
    for r in range(rounds + 2):  # two warm-up rounds, not recorded
        for m in masks[r % len(masks):] + masks[:r % len(masks)]:
            t0 = time.perf_counter()
            trainer.step(x, y, r, 0.5, np.asarray(m, bool))
            if r >= 2:
                times[mask_key(m)].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    dense = med[mask_key([True] * net.n_layers)]
    table = {mask_key([False] * net.n_layers): 0.0}
    table.update({k: round(v / dense, 4) for k, v in med.items()})
    return table


def check_table(table: Mapping[str, float], n_layers: int) -> Dict[str, float]:
    """``table`` as floats, every mask of ``n_layers`` present; ``ValueError`` naming what is wrong."""
    out = {}
    for m in all_masks(n_layers):
        k = mask_key(m)
        if k not in table:
            raise ValueError(f"cost_table: mask {k!r} missing (need all {2 ** n_layers} masks "
                             f"of {n_layers} layers)")
        v = float(table[k])
        if not (v >= 0.0 and np.isfinite(v)):
            raise ValueError(f"cost_table[{k!r}] = {table[k]!r}: expected a cost >= 0")
        out[k] = v
    return out


def layer_probabilities(thirds: Sequence[float], n_layers: int) -> np.ndarray:
    """Per-layer update probabilities from probabilities per third."""
    return np.asarray(thirds, np.float64)[halo_thirds(n_layers)]


def expected_cost(probs: Sequence[float], table: Mapping[str, float]) -> float:
    """Expected cost of one step (dense = 1) when layer j updates with probability ``probs[j]``."""
    p = np.asarray(probs, np.float64)
    total = 0.0
    for m in all_masks(p.size):
        pm = float(np.prod(np.where(m, p, 1.0 - p)))
        total += pm * float(table[mask_key(m)])
    return total
