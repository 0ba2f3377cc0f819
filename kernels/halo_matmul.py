"""HALO's per-parameter update with the MLP as two small BLAS matrix products.

Features are laid out feature-major, ``X = [g/s; m/s; 1]`` (3, C) per chunk, and the
biases are folded in through the ones rows::

    H = max(W1aug (4, 3) @ X, 0),   [d; q] = W2aug (2, 5) @ [H; 1]
    E = max(lr * (1 + gamma q), 0)  (per tensor),   p -= d * E

``W1aug`` carries this step's bias corrections: unit (k, +/-) is
``[+/- w_kg / a_v, +/- w_km a_m / a_v, b_k]``.  The state passes are the same as the
elementwise kernel's; only the MLP differs.  Same results as
``kernels.halo_elementwise`` to float32 rounding (tested to 1e-6 relative).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kernels.halo_fold import KernelBase, MirrorMLP, Pieces, moment_scales, untied

CHUNK = 16384
"""Elements per chunk (docs/references.md §1.2: 16k-256k are equally good for the blocked matmul)."""

_mul = np.multiply
_add = np.add
_sub = np.subtract
_div = np.divide
_sqrt = np.sqrt
_sq = np.square
_max = np.maximum


class MatmulKernel(KernelBase):
    """The matmul HALO update for segments of at most ``n_max`` elements.

    Same constructor and :meth:`update` as ``ElementwiseKernel``; scratch: an
    (3, C) feature block, a (5, C) hidden block, a (2, C) output block and three
    vectors, C = ``min(n_max, CHUNK)``, allocated here once.
    """

    name = "matmul"

    def __init__(self, mlp: MirrorMLP, beta1: float, beta2: float, eps: float, n_max: int,
                 chunk: int = CHUNK):
        super().__init__(mlp, beta1, beta2, eps, n_max, chunk)
        c = self.chunk
        self._x = np.empty(3 * c, np.float32)
        self._h = np.empty(5 * c, np.float32)
        self._o = np.empty(2 * c, np.float32)
        self._zeros = np.zeros(4 * c, np.float32)
        self._ones_width = -1
        w1, b1, w2, b2 = untied(mlp)
        self._w1, self._b1, self._w2, self._b2 = w1, b1, w2, b2
        self._w2aug = np.concatenate([w2.T, b2[:, None]], axis=1).astype(np.float32)  # (2, 5)
        self._d1, self._d2 = np.float32(beta1), np.float32(beta2)
        self._count = -1
        self._w1aug = np.empty((4, 3), np.float32)
        self._eps_s = np.float32(0.0)

    def _views(self, c: int):
        x = self._x[:3 * c].reshape(3, c)
        h = self._h[:5 * c].reshape(5, c)
        if self._ones_width != c:  # the ones rows sit at offsets that depend on c
            x[2].fill(1.0)
            h[4].fill(1.0)
            self._ones_width = c
        return x, h, self._o[:2 * c].reshape(2, c), self._zeros[:4 * c].reshape(4, c)

    def _fold(self, count: int) -> None:
        if count == self._count:
            return
        a_m, a_v = moment_scales(self.beta1, self.beta2, count)
        w = self._w1.T  # (4, F)
        self._w1aug[:, 0] = w[:, 0] / a_v
        self._w1aug[:, 1] = w[:, 1] * a_m / a_v
        self._w1aug[:, 2] = self._b1
        self._eps_s = np.float32(self.eps / a_v)
        self._count = count

    def update(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, count: int,
               pieces: Sequence) -> None:
        """Update ``p``, ``m``, ``v`` (float32 (n,)) in place; see ``ElementwiseKernel.update``."""
        self._fold(count)
        pieces = Pieces.of(pieces)
        if pieces.uniform():  # one (lr, gamma): float32 scalars
            lr, gam = float(pieces.lr[0]), float(pieces.gamma[0])
            coefs = (np.float32(lr * gam), np.float32(lr))
        else:  # per-element vectors of lr * gamma and lr, one pass each per call
            coefs = (pieces.spread(pieces.lr * pieces.gamma), pieces.spread(pieces.lr))
        n = p.shape[0]
        for lo in range(0, n, self.chunk):
            hi = min(n, lo + self.chunk)
            self._chunk(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], lo, hi, coefs)

    def _chunk(self, p, g, m, v, lo, hi, coefs) -> None:
        c = hi - lo
        x, h, o, zeros = self._views(c)
        s, t, e = self._s[:c], self._t[:c], self._e[:c]
        _mul(m, self._d1, out=m)
        _add(m, g, out=m)  # m = b1 m + g
        _sq(g, out=t)
        _mul(v, self._d2, out=v)
        _add(v, t, out=v)  # v = b2 v + g^2
        _sqrt(v, out=s)
        _add(s, self._eps_s, out=s)
        _div(g, s, out=x[0])
        _div(m, s, out=x[1])
        z = h[:4]
        np.matmul(self._w1aug, x, out=z)  # (4, 3) @ (3, c)
        _max(z, zeros, out=z)
        np.matmul(self._w2aug, h, out=o)  # (2, 5) @ (5, c): rows d, q
        d, q = o[0], o[1]
        lg, lr = (x if x.ndim == 0 else x[lo:hi] for x in coefs)
        _mul(q, lg, out=e)
        _add(e, lr, out=e)
        _max(e, zeros[0], out=e)  # E = max(lr (1 + gamma q), 0)
        _mul(d, e, out=e)
        _sub(p, e, out=p)
