"""Antithetic evolution strategies over a flat meta-parameter vector, resumable and parallel.

One iteration, for ``pairs`` perturbations ``eps_i ~ N(0, diag(sigma^2))``:

    f_i+ = f(theta + eps_i, seed_i),   f_i- = f(theta - eps_i, seed_i)
    g    = mean_i [(f_i+ - f_i-) / 2] * eps_i / sigma^2

Both members of a pair share ``seed_i`` (common random numbers: the same batches and
masks), so the difference measures the perturbation, not the data.  ``g`` is an
unbiased estimate of the gradient of the Gaussian-smoothed objective.  The
meta-optimizer is Adam with per-element clipping of ``g`` (learned_optimization's
``GradientClipOptimizer``; lopt.md §1.4).  A non-finite ``f`` counts as ``clip_value``
(NaN loss is the worst loss, not a crash).

The objective is a picklable callable ``objective(theta: np.ndarray, seed: int) ->
float`` (lower is better); evaluations run in a process pool.  State (theta, Adam
moments, iteration, the RNG) is checkpointed after every iteration, so a run resumes
where it stopped and reproduces the same trajectory.
"""

from __future__ import annotations

import csv
import json
import math
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np


@dataclass
class ESConfig:
    """Settings of one ES run; every field is in the run's config file."""

    iterations: int = 30
    pairs: int = 8
    sigma: Any = 0.01                 # a float, or one value per meta-parameter
    lr: Any = 0.05                    # Adam step on theta: a float, or one per meta-parameter
    beta1: float = 0.9
    beta2: float = 0.999
    clip: float = 3.0                 # per-element clip of sigma * gradient (objective units)
    clip_value: float = 10.0          # what a non-finite objective value counts as
    seed: int = 0
    workers: int = 2
    data_seeds: int = 1000            # pair seeds are drawn from range(data_seeds)
    shaping: str = "difference"       # or "relative": each pair's difference over its mean

    def sigma_vector(self, dim: int) -> np.ndarray:
        s = np.broadcast_to(np.asarray(self.sigma, dtype=np.float64), (dim,)).copy()
        if not np.all(s > 0):
            raise ValueError(f"sigma: every value must be > 0, got {self.sigma}")
        return s


@dataclass
class ESState:
    """What a checkpoint holds."""

    theta: np.ndarray
    m: np.ndarray
    v: np.ndarray
    iteration: int = 0
    rng_state: Dict[str, Any] = field(default_factory=dict)
    history: List[Dict[str, float]] = field(default_factory=list)


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_state(path: Path, st: ESState) -> None:
    """Write the ES state as JSON (theta and moments as lists), atomically."""
    doc = {"theta": st.theta.tolist(), "m": st.m.tolist(), "v": st.v.tolist(),
           "iteration": st.iteration, "rng_state": st.rng_state, "history": st.history}
    _atomic_write(Path(path), json.dumps(doc).encode())


def load_state(path: Path) -> ESState:
    """Read a state written by :func:`save_state`."""
    doc = json.loads(Path(path).read_text())
    return ESState(np.array(doc["theta"]), np.array(doc["m"]), np.array(doc["v"]),
                   int(doc["iteration"]), doc["rng_state"], list(doc["history"]))


def _finite(x: float, clip_value: float) -> float:
    return x if math.isfinite(x) else clip_value


SHAPINGS = ("difference", "relative")


def estimate_gradient(f_plus: np.ndarray, f_minus: np.ndarray, eps: np.ndarray,
                      sigma: np.ndarray, shaping: str = "difference") -> np.ndarray:
    """The antithetic ES gradient from pair values (P,), (P,) and perturbations (P, D).

    ``shaping="relative"`` divides each pair's half-difference by the pair's mean
    ``|f|``: over a pool of tasks whose meta-losses differ by 10x, each pair then moves
    theta by its task's *relative* change, so a few high-loss tasks do not outvote the
    rest (the gradient of the mean log meta-loss, to first order)."""
    diff = (f_plus - f_minus) / 2.0
    if shaping == "relative":
        diff = diff / np.maximum((np.abs(f_plus) + np.abs(f_minus)) / 2.0, 1e-12)
    elif shaping != "difference":
        raise ValueError(f"ES shaping must be one of {', '.join(SHAPINGS)}, got {shaping!r}")
    return (diff[:, None] * eps).mean(axis=0) / sigma ** 2


def run_es(objective: Callable[[np.ndarray, int], float], theta0: Sequence[float],
           cfg: ESConfig, checkpoint: Optional[Path] = None, log_csv: Optional[Path] = None,
           on_iteration: Optional[Callable[[Dict[str, float]], None]] = None,
           pool: Optional[Any] = None,
           describe: Optional[Callable[[np.ndarray], Dict[str, float]]] = None) -> ESState:
    """Run (or resume from ``checkpoint``) ``cfg.iterations`` ES iterations.

    ``log_csv`` gets one row per iteration: iteration, mean of the pair values
    (the meta-loss at theta, smoothed), min and max, gradient norm, seconds, and
    ``describe(theta after the step)``'s columns.  Returns the final state;
    ``history`` holds the same rows.
    """
    theta0 = np.asarray(theta0, dtype=np.float64)
    dim = theta0.size
    sigma = cfg.sigma_vector(dim)
    if checkpoint is not None and Path(checkpoint).exists():
        st = load_state(Path(checkpoint))
        if st.theta.shape != theta0.shape:
            raise ValueError(f"checkpoint {checkpoint}: theta has {st.theta.size} values, "
                             f"this run has {dim}")
    else:
        st = ESState(theta0.copy(), np.zeros(dim), np.zeros(dim), 0,
                     np.random.default_rng(cfg.seed).bit_generator.state, [])
    rng = np.random.default_rng()
    rng.bit_generator.state = st.rng_state
    lr = np.broadcast_to(np.asarray(cfg.lr, dtype=np.float64), (dim,))
    own_pool = pool is None and cfg.workers > 1
    executor = ProcessPoolExecutor(max_workers=cfg.workers) if own_pool else pool
    try:
        while st.iteration < cfg.iterations:
            t0 = time.monotonic()
            eps = rng.standard_normal((cfg.pairs, dim)) * sigma
            seeds = rng.integers(0, cfg.data_seeds, size=cfg.pairs)
            thetas = [st.theta + e for e in eps] + [st.theta - e for e in eps]
            pair_seeds = [int(s) for s in seeds] * 2
            if executor is not None:
                values = list(executor.map(objective, thetas, pair_seeds))
            else:
                values = [objective(t, s) for t, s in zip(thetas, pair_seeds)]
            vals = np.array([_finite(float(x), cfg.clip_value) for x in values])
            fp, fm = vals[:cfg.pairs], vals[cfg.pairs:]
            g = np.clip(estimate_gradient(fp, fm, eps, sigma, cfg.shaping),
                        -cfg.clip / sigma, cfg.clip / sigma)
            st.iteration += 1
            t = st.iteration
            st.m = cfg.beta1 * st.m + (1 - cfg.beta1) * g
            st.v = cfg.beta2 * st.v + (1 - cfg.beta2) * g * g
            mhat = st.m / (1 - cfg.beta1 ** t)
            vhat = st.v / (1 - cfg.beta2 ** t)
            st.theta = st.theta - lr * mhat / (np.sqrt(vhat) + 1e-12)
            st.rng_state = rng.bit_generator.state
            row = {"iteration": t, "meta_loss": float(vals.mean()), "min": float(vals.min()),
                   "max": float(vals.max()), "grad_norm": float(np.linalg.norm(g * sigma)),
                   "seconds": round(time.monotonic() - t0, 3)}
            if describe is not None:
                row.update(describe(st.theta))
            st.history.append(row)
            if checkpoint is not None:
                save_state(Path(checkpoint), st)
            if log_csv is not None:
                _append_csv(Path(log_csv), row)
            if on_iteration is not None:
                on_iteration(row)
    finally:
        if own_pool:
            executor.shutdown()
    return st


def _append_csv(path: Path, row: Dict[str, float]) -> None:
    new = not path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        if new:
            w.writeheader()
        w.writerow(row)
