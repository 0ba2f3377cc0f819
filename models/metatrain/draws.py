"""Seeded, stratified draws for the meta-training task distribution (frozen RandomState streams).

A pool of ``n`` tasks should cover a setting's whole range even when ``n`` is small,
so values are drawn *stratified*: a categorical setting cycles through its choices in
a shuffled order (every choice appears once ``n >= len(choices)``) and a numeric one
takes one value from each of ``n`` equal slices of its range, in shuffled order (a
Latin hypercube per setting).  Every setting has its own stream, seeded by
``(seed, salt)``, so changing the range of one setting leaves the others' draws alone
(and a source model that does not depend on it keeps its cache key).
"""

from __future__ import annotations

import math
from typing import List, Sequence, TypeVar

import numpy as np

from models.data.preprocess import seeded_rng

T = TypeVar("T")


def stream(seed: int, salt: str) -> np.random.RandomState:
    """The frozen stream of ``(seed, salt)`` (see :func:`models.data.preprocess.seeded_rng`)."""
    return seeded_rng(seed, salt)


def cycle(choices: Sequence[T], n: int, seed: int, salt: str) -> List[T]:
    """``n`` values from ``choices``: shuffled rounds through all of them."""
    rng = stream(seed, salt)
    out: List[T] = []
    while len(out) < n:
        out.extend(choices[i] for i in rng.permutation(len(choices)))
    return out[:n]


def uniform(lo: float, hi: float, n: int, seed: int, salt: str) -> np.ndarray:
    """``n`` stratified draws from U(lo, hi): one per slice ``[lo + i w, lo + (i+1) w)``."""
    rng = stream(seed, salt)
    u = (rng.permutation(n) + rng.uniform(size=n)) / n
    return lo + (hi - lo) * u


def log_uniform(lo: float, hi: float, n: int, seed: int, salt: str) -> np.ndarray:
    """``n`` stratified draws whose logarithm is uniform on ``[log lo, log hi]`` (lo > 0)."""
    return np.exp(uniform(math.log(lo), math.log(hi), n, seed, salt))
