"""Task preprocessing: class selection, stratified splits, class balancing, standardisation."""

from __future__ import annotations

import zlib
from typing import Optional, Sequence, Tuple

import numpy as np

STD_FLOOR = 1e-8


def seeded_rng(seed: int, salt: str) -> np.random.RandomState:
    """A RandomState for ``(seed, salt)``. The legacy RandomState is used on purpose: its
    streams are frozen across NumPy versions, so splits are the same on every board."""
    return np.random.RandomState([int(seed) & 0xFFFFFFFF, zlib.crc32(salt.encode("utf-8"))])


def select_classes(y: np.ndarray, classes: Sequence[int]) -> Tuple[np.ndarray, np.ndarray]:
    """Indices of samples whose label is in ``classes`` and their labels renumbered
    0..k-1 in ascending class-id order. Returns ``(idx int64 (M,), y_new int64 (M,))``."""
    ordered = np.array(sorted(int(c) for c in classes), dtype=np.int64)
    idx = np.flatnonzero(np.isin(y, ordered)).astype(np.int64)
    return idx, np.searchsorted(ordered, y[idx]).astype(np.int64)


def stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.RandomState
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """Split indices ``0..N-1`` per class: ``round_half_up(test_fraction * n_c)`` test
    samples of each class (at least 1 when the class has 2 or more). Returns sorted
    ``(train_idx, test_idx)``, int64."""
    train, test = [], []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        idx = idx[rng.permutation(len(idx))]
        n_test = int(np.floor(test_fraction * len(idx) + 0.5))
        if len(idx) >= 2:
            n_test = min(max(n_test, 1), len(idx) - 1)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    return (np.sort(np.concatenate(train)).astype(np.int64),
            np.sort(np.concatenate(test)).astype(np.int64))


def balance_by_oversampling(y: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Indices that keep every sample once and add draws with replacement from each
    minority class until every class has the majority count; shuffled. Returns int64
    ``(n_classes * max_count,)``."""
    classes, counts = np.unique(y, return_counts=True)
    target = int(counts.max())
    parts = []
    for c, n in zip(classes, counts):
        idx = np.flatnonzero(y == c)
        extra = idx[rng.randint(0, len(idx), size=target - int(n))] if n < target else idx[:0]
        parts.append(np.concatenate([idx, extra]))
    out = np.concatenate(parts)
    return out[rng.permutation(len(out))].astype(np.int64)


def image_channel_stats(x_uint8: np.ndarray, index: Optional[np.ndarray] = None
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of ``x / 255`` for uint8 NHWC images (``index``: of the
    images ``x[index]`` only, read a few at a time instead of copied whole), exact (from
    a histogram, no float copy of the images); a constant channel gets std 1. Returns
    float64 ``(C,)``, ``(C,)``."""
    c = x_uint8.shape[-1]
    per_image = int(np.prod(x_uint8.shape[1:-1], dtype=np.int64))
    levels = np.arange(256, dtype=np.float64) / 255.0
    mean = np.empty(c)
    std = np.empty(c)
    images = x_uint8.shape[0] if index is None else len(index)
    step = max(1, (1 << 20) // max(1, per_image))  # bincount casts to intp: ~1M values at a time
    hists = np.zeros((c, 256), np.float64)
    for lo in range(0, images, step):
        part = x_uint8[lo:lo + step] if index is None else x_uint8[index[lo:lo + step]]
        flat = part.reshape(-1, c)
        for ch in range(c):
            hists[ch] += np.bincount(flat[:, ch], minlength=256)
    for ch in range(c):
        hist = hists[ch]
        n = hist.sum()
        mean[ch] = (hist * levels).sum() / n
        std[ch] = np.sqrt(max((hist * (levels - mean[ch]) ** 2).sum() / n, 0.0))
    return mean, np.where(std < STD_FLOOR, 1.0, std)


def standardize_uint8_images(x_uint8: np.ndarray, mean: np.ndarray, std: np.ndarray
                             ) -> np.ndarray:
    """Map uint8 NHWC images to float32 ``(x/255 - mean) / std`` per channel, through a
    256-entry lookup table per channel. Returns float32 with the input's shape."""
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    lut = ((levels - mean[None, :]) / std[None, :]).astype(np.float32)  # (256, C)
    c = x_uint8.shape[-1]
    if c == 1:
        return lut[:, 0][x_uint8]
    return lut[x_uint8, np.arange(c)]


def float_stats(x: np.ndarray, axis: Tuple[int, ...]) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and std (float64) over ``axis``, std floored at STD_FLOOR then set to 1 where
    a feature is constant (so constant features map to 0, not to inf)."""
    mean = x.mean(axis=axis, dtype=np.float64)
    std = x.std(axis=axis, dtype=np.float64)
    std = np.where(std < STD_FLOOR, 1.0, std)
    return mean, std


def standardize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` broadcast over the last axis, as float32."""
    return ((x - mean) / std).astype(np.float32)
