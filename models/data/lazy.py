"""Image splits kept as the dataset's uint8 pixels and standardised as they are drawn.

A task split of MNIST-sized images as float32 costs 4x its uint8 pixels, and a task
holds four of them: on a 1-4 GB board that was most of a run's memory.  A
:class:`StandardizedImages` holds only a reference to the loader's (shared,
read-only) uint8 array, the indices of the split's samples in it and a 256-entry
lookup table per channel; indexing it (a batch, an evaluation chunk) returns the
float32 ``(x/255 - mean) / std`` of just those samples, the same values as
``standardize_uint8_images`` of the whole split.

It behaves as a read-only float32 array of shape ``(N, H, W, C)`` for indexing,
``len``, ``shape``/``dtype``/``ndim``, NumPy functions and ufuncs (``np.asarray``,
``np.isfinite(x)``, ``x * s``) and any other ndarray attribute (``x.mean()``,
``x.astype``): those convert the whole split once per call, so code on the hot
path (training batches, chunked evaluation) indexes it instead.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np
from numpy.lib.mixins import NDArrayOperatorsMixin


def lookup_table(mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """float32 (256, C): the standardised value of every pixel level per channel."""
    levels = np.arange(256, dtype=np.float64)[:, None] / 255.0
    return ((levels - mean[None, :]) / std[None, :]).astype(np.float32)


class StandardizedImages(NDArrayOperatorsMixin):
    """Samples ``index`` of uint8 NHWC ``pixels``, standardised through ``lut`` on access."""

    dtype = np.dtype(np.float32)

    def __init__(self, pixels: np.ndarray, index: np.ndarray, lut: np.ndarray):
        if pixels.dtype != np.uint8 or pixels.ndim != 4:
            raise ValueError(f"pixels must be uint8 (N, H, W, C), got {pixels.dtype} {pixels.shape}")
        if lut.shape != (256, pixels.shape[-1]):
            raise ValueError(f"lut must be (256, {pixels.shape[-1]}), got {lut.shape}")
        self.pixels = pixels
        self.index = np.asarray(index, np.int64)
        self.lut = lut

    @property
    def shape(self) -> Tuple[int, ...]:
        return (int(self.index.shape[0]),) + tuple(self.pixels.shape[1:])

    @property
    def ndim(self) -> int:
        return self.pixels.ndim

    @property
    def nbytes_stored(self) -> int:
        """Bytes this split holds of its own (the index; the pixels are shared)."""
        return int(self.index.nbytes)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def _convert(self, pixels: np.ndarray) -> np.ndarray:
        if pixels.shape[-1] == 1:
            return self.lut[:, 0][pixels]
        return self.lut[pixels, np.arange(pixels.shape[-1])]

    def __getitem__(self, key: Any) -> np.ndarray:
        rest: Tuple[Any, ...] = ()
        if isinstance(key, tuple):
            key, rest = (key[0] if key else slice(None)), key[1:]
        out = self._convert(self.pixels[self.index[key]])
        if not rest:
            return out
        return out[rest] if isinstance(key, (int, np.integer)) else out[(slice(None),) + rest]

    def subset(self, rows: Any) -> StandardizedImages:
        """Rows ``rows`` of this split, still lazy (no float32 copy of the pixels)."""
        return StandardizedImages(self.pixels, self.index[rows], self.lut)

    def stored(self) -> np.ndarray:
        """The split's uint8 pixels (N, H, W, C), as stored: equal pixels, equal examples."""
        return self.pixels[self.index]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = self[:]
        return out if dtype is None else out.astype(dtype)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        inputs = tuple(np.asarray(x) if isinstance(x, StandardizedImages) else x for x in inputs)
        return getattr(ufunc, method)(*inputs, **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        def plain(a):
            if isinstance(a, StandardizedImages):
                return np.asarray(a)
            if isinstance(a, (list, tuple)):
                return type(a)(plain(x) for x in a)
            return a
        return func(*plain(args), **{k: plain(v) for k, v in kwargs.items()})

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("pixels", "index", "lut"):
            raise AttributeError(name)
        return getattr(np.asarray(self), name)

    def __repr__(self) -> str:
        return f"StandardizedImages(shape={self.shape}, float32 from uint8)"
