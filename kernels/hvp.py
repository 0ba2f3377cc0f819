"""Hessian-vector products of the optimizee layers by forward-over-reverse (Pearlmutter's R-operator).

For a direction ``r`` in parameter space, ``R{f} = d/de f(params + e r) at e = 0``.
Each layer has an R-forward (``y`` and ``R{y}`` from ``x``, ``R{x}`` and the layer's
parameters and their directions) and an R-backward (``dx``, ``R{dx}`` and the
parameter gradients ``dtheta`` with ``R{dtheta}`` from ``dy`` and ``R{dy}``); the
parameter ``R{dtheta}`` of every layer is the Hessian-vector product ``H r``.  Exact:
no finite differences.  Layouts as in :mod:`kernels.layers` (NHWC, packed ``[w; b]``
convolution weights).  ``<layer>_rop_forward(...) -> (y, ry, cache)`` and
``<layer>_rop_backward(dy, rdy, cache, ...) -> ...``; nothing passed in is modified.
Works in any float dtype (tests use float64).
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

from kernels import layers as K


def dense_rop_forward(x, rx, w, b, rw, rb) -> Tuple[np.ndarray, np.ndarray, tuple]:
    """``y = x w + b`` and ``R{y} = R{x} w + x R{w} + R{b}``; x (N, F_in), w (F_in, F_out)."""
    y = x @ w + b
    ry = x @ rw + rb
    if rx is not None:
        ry += rx @ w
    return y, ry, (x, rx, w, rw)


def dense_rop_backward(dy, rdy, cache, need_dx: bool):
    """``(dw, R{dw}, db, R{db}, dx, R{dx})`` of :func:`dense_rop_forward` (dx None unless ``need_dx``)."""
    x, rx, w, rw = cache
    dw, rdw = x.T @ dy, x.T @ rdy
    if rx is not None:
        rdw += rx.T @ dy
    db, rdb = dy.sum(axis=0), rdy.sum(axis=0)
    if not need_dx:
        return dw, rdw, db, rdb, None, None
    return dw, rdw, db, rdb, dy @ w.T, rdy @ w.T + dy @ rw.T


def conv2d_rop_forward(x, rx, wb, rwb, kernel: int, padding: str):
    """Stride-1 convolution (packed ``[w; b]``, see :func:`kernels.layers.pack_conv`) and its R-forward.

    x, rx: (N, H, W, C_in) (rx None: the input does not depend on the direction);
    wb, rwb: (K*K*C_in + 1, C_out).  Returns y, R{y} (N, Ho, Wo, C_out) and a cache.
    """
    p = K.pad_amount(kernel, padding)
    y, cache = K.conv2d_forward(x, wb, kernel, padding, None)
    cols = cache[0]
    n, ho, wo, cout = y.shape
    ry = (cols @ rwb).reshape(n, ho, wo, cout)
    rcols = None
    if rx is not None:
        rxp = np.pad(rx, ((0, 0), (p, p), (p, p), (0, 0))) if p else rx
        rcols = K.im2col(rxp, kernel, kernel, None, "").copy()
        rcols[:, -1] = 0.0  # the bias column is constant
        ry += (rcols @ wb).reshape(ry.shape)
    return y, ry, (cache, rcols, rwb)


def conv2d_rop_backward(dy, rdy, cache, need_dx: bool):
    """``(dwb, R{dwb}, dx, R{dx})`` of :func:`conv2d_rop_forward` (dx None unless ``need_dx``)."""
    kcache, rcols, rwb = cache
    cols, wb = kcache[0], kcache[1]
    cout = wb.shape[1]
    d2, rd2 = dy.reshape(-1, cout), rdy.reshape(-1, cout)
    dwb = cols.T @ d2
    rdwb = cols.T @ rd2
    if rcols is not None:
        rdwb += rcols.T @ d2
    if not need_dx:
        return dwb, rdwb, None, None
    dx = K.conv2d_backward(dy, kcache, None, True).copy()
    rdx = K.conv2d_backward(rdy, kcache, None, True).copy()
    rdx += K.conv2d_backward(dy, (cols, rwb) + tuple(kcache[2:]), None, True)
    return dwb, rdwb, dx, rdx


def relu_rop_forward(x, rx):
    """``max(x, 0)`` and ``R{x} [x > 0]``."""
    on = (x > 0).astype(x.dtype)
    return x * on, (None if rx is None else rx * on), on


def relu_rop_backward(dy, rdy, on):
    """``dx = dy [x > 0]``, ``R{dx} = R{dy} [x > 0]`` (the ReLU's second derivative is zero)."""
    return dy * on, rdy * on


def maxpool2_rop_forward(x, rx):
    """2x2 max-pool (stride 2, odd edges dropped) routing to one maximum per window
    (the first in row-major order on a tie), and ``R{y}`` = ``R{x}`` at that maximum."""
    n, h, w, c = x.shape
    ho, wo = h // 2, w // 2
    win = x[:, :2 * ho, :2 * wo].reshape(n, ho, 2, wo, 2, c).transpose(0, 1, 3, 5, 2, 4)
    win = win.reshape(n, ho, wo, c, 4)
    arg = win.argmax(axis=-1)[..., None]                     # (N, Ho, Wo, C, 1)
    y = np.take_along_axis(win, arg, axis=-1)[..., 0]
    ry = None
    if rx is not None:
        rwin = rx[:, :2 * ho, :2 * wo].reshape(n, ho, 2, wo, 2, c).transpose(0, 1, 3, 5, 2, 4)
        ry = np.take_along_axis(rwin.reshape(n, ho, wo, c, 4), arg, axis=-1)[..., 0]
    return y, ry, (x.shape, arg)


def _unpool(d, shape, arg):
    n, h, w, c = shape
    ho, wo = h // 2, w // 2
    win = np.zeros((n, ho, wo, c, 4), dtype=d.dtype)
    np.put_along_axis(win, arg, d[..., None], axis=-1)
    dx = np.zeros(shape, dtype=d.dtype)
    dx[:, :2 * ho, :2 * wo] = win.reshape(n, ho, wo, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, 2 * ho, 2 * wo, c)
    return dx


def maxpool2_rop_backward(dy, rdy, cache):
    """Route ``dy`` and ``R{dy}`` to each window's maximum."""
    shape, arg = cache
    return _unpool(dy, shape, arg), _unpool(rdy, shape, arg)


def softmax_ce_rop(logits, rlogits: Optional[np.ndarray], labels):
    """Mean softmax cross-entropy: ``(loss, dL/dz, R{dL/dz})``.

    ``dL/dz = (p - onehot) / N`` and ``R{dL/dz} = p (R{z} - sum p R{z}) / N`` (the
    softmax Jacobian applied to ``R{z}``).  rlogits None: a zero direction.
    """
    loss, dz = K.softmax_cross_entropy(logits, labels)
    if rlogits is None:
        return loss, dz, np.zeros_like(dz)
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    rdz = p * (rlogits - (p * rlogits).sum(axis=1, keepdims=True)) / logits.shape[0]
    return loss, dz, rdz
