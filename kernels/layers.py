"""Forward and backward kernels of the optimizee layers (NHWC, any float dtype).

Conventions (after llm.c and micrograd): ``<layer>_forward(...) -> (out, cache)`` and
``<layer>_backward(dout, cache, ...) -> grads``.  Images are NHWC ``(N, H, W, C)``;
convolution weights are ``(KH, KW, C_in, C_out)``; dense weights are
``(F_in, F_out)``.  Weight gradients are written into caller-given arrays
(``dw_out``/``db_out``, usually views of a flat gradient buffer) so that no
per-step copies are made; nothing else passed in is modified.

Speed notes (``docs/references.md`` §1.3): im2col into a buffer
reused across steps, ``np.maximum(z, zeros)`` instead of a scalar operand, max-pool
as three strided ``np.maximum`` calls, and the input gradient of a convolution as
one "full" correlation of the padded output gradient with the flipped kernel.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Workspace = Dict[str, np.ndarray]


def _buffer(ws: Optional[Workspace], key: str, shape, dtype, zero: bool = False) -> np.ndarray:
    """A scratch array from the workspace, reused when shape and dtype match.

    ``zero``: a new array starts zeroed (its users keep the parts they rely on zero).
    """
    buf = None if ws is None else ws.get(key)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = np.zeros(shape, dtype=dtype) if zero else np.empty(shape, dtype=dtype)
        if ws is not None:
            ws[key] = buf
    return buf


def _zeros(ws: Optional[Workspace], key: str, shape, dtype) -> np.ndarray:
    """A zero array from the workspace (kept zero by its users), reused across calls."""
    return _buffer(ws, key, shape, dtype, zero=True)


def pad_amount(kernel: int, padding: str) -> int:
    """Zero padding on each side for stride-1 ``valid`` or ``same`` (odd kernels)."""
    if padding == "valid":
        return 0
    if padding == "same":
        if kernel % 2 != 1:
            raise ValueError(f"padding 'same' needs an odd kernel size, got {kernel}")
        return (kernel - 1) // 2
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def _pad_hw(x: np.ndarray, p: int, ws: Optional[Workspace], key: str) -> np.ndarray:
    """``x`` (N,H,W,C) zero-padded by ``p`` on H and W, in a reused buffer."""
    if p == 0:
        return x
    n, h, w, c = x.shape
    xp = _zeros(ws, key, (n, h + 2 * p, w + 2 * p, c), x.dtype)
    xp[:, p : p + h, p : p + w, :] = x  # the border stays zero
    return xp


def im2col(xp: np.ndarray, kh: int, kw: int, ws: Optional[Workspace], key: str) -> np.ndarray:
    """Patches of ``xp`` (N,Hp,Wp,C) for a stride-1 valid correlation, plus a ones column.

    Returns ``(N*Ho*Wo, KH*KW*C + 1)``: columns ordered (kh, kw, c), matching
    ``w.reshape(KH*KW*C, C_out)``, and a last column of ones that multiplies the
    bias row of a packed ``[w; b]`` matrix (the bias is folded into the GEMM and
    its gradient comes out of the same GEMM).
    """
    n, hp, wp, c = xp.shape
    ho, wo = hp - kh + 1, wp - kw + 1
    m, kkc = n * ho * wo, kh * kw * c
    cols = ws.get(key) if ws is not None else None
    if cols is None or cols.shape != (m, kkc + 1) or cols.dtype != xp.dtype:
        cols = np.empty((m, kkc + 1), dtype=xp.dtype)
        cols[:, kkc] = 1.0  # written once, never overwritten
        if ws is not None:
            ws[key] = cols
    patches = cols[:, :kkc].reshape(n, ho, wo, kh, kw, c)  # a view (checked in tests)
    if c <= 4:
        # few channels: one strided copy per tap is cheapest
        for i in range(kh):
            for j in range(kw):
                patches[:, :, :, i, j, :] = xp[:, i : i + ho, j : j + wo, :]
    else:
        win = sliding_window_view(xp, (kh, kw), axis=(1, 2))  # (N,Ho,Wo,C,KH,KW)
        np.copyto(patches, win.transpose(0, 1, 2, 4, 5, 3))
    return cols


def pack_conv(w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[w.reshape(KH*KW*C_in, C_out); b]``: the packed layout the conv kernels use.

    In a model's flat buffer the weight is followed by its bias, so the packed
    matrix is a free view of the layer's segment; this helper is for tests.
    """
    kh, kw, cin, cout = w.shape
    return np.concatenate([w.reshape(kh * kw * cin, cout), b.reshape(1, cout)], axis=0)


def conv2d_forward(
    x: np.ndarray, wb: np.ndarray, kernel: int, padding: str = "valid",
    ws: Optional[Workspace] = None,
) -> Tuple[np.ndarray, tuple]:
    """Stride-1 2-D convolution (cross-correlation) with bias.

    x: (N, H, W, C_in); wb: packed ``(K*K*C_in + 1, C_out)`` weight with the bias
    as its last row (see :func:`pack_conv`); kernel: K (square kernels).
    Returns out (N, Ho, Wo, C_out) and the cache for the backward pass.
    """
    cin = x.shape[3]
    if wb.shape[0] != kernel * kernel * cin + 1:
        raise ValueError(f"conv2d: packed weight has {wb.shape[0]} rows, expected "
                         f"{kernel}*{kernel}*{cin}+1 for {cin} input channels")
    cout = wb.shape[1]
    p = pad_amount(kernel, padding)
    xp = _pad_hw(x, p, ws, "xpad")
    n, hp, wp, _ = xp.shape
    ho, wo = hp - kernel + 1, wp - kernel + 1
    cols = im2col(xp, kernel, kernel, ws, "cols")  # (N*Ho*Wo, K*K*Cin + 1)
    out = _buffer(ws, "out", (n * ho * wo, cout), x.dtype)
    np.matmul(cols, wb, out=out)
    return out.reshape(n, ho, wo, cout), (cols, wb, kernel, p, x.shape, ws)


def conv2d_backward(
    dout: np.ndarray, cache: tuple, dwb_out: Optional[np.ndarray], need_dx: bool,
) -> Optional[np.ndarray]:
    """Gradients of :func:`conv2d_forward`.

    dout: (N, Ho, Wo, C_out).  Writes dL/d[w; b] into ``dwb_out`` (the packed
    layout) when given; returns dL/dx (N, H, W, C_in) when ``need_dx``, else None
    (back-propagation stops here).
    """
    cols, wb, k, p, xshape, ws = cache
    cout = wb.shape[1]
    n, h, w, cin = xshape
    d2 = dout.reshape(-1, cout)  # (M, Cout)
    if dwb_out is not None:
        np.matmul(cols.T, d2, out=dwb_out)  # weight and bias rows in one GEMM
    if not need_dx:
        return None
    # Per-tap GEMMs, one batched call per kernel row (K taps), then K strided adds each
    # (col2im): measured faster here than one "full" correlation GEMM with an 8-wide
    # output.  A row at a time, the taps' buffer is 1/K of all K*K taps (cnn-b's second
    # conv: 1.6 instead of 7.9 MiB); each tap's GEMM and the order of the adds are the same.
    ho, wo = dout.shape[1], dout.shape[2]
    wt = _buffer(ws, "wt", (k * k, cout, cin), wb.dtype)
    np.copyto(wt, wb[:-1].reshape(k * k, cin, cout).transpose(0, 2, 1))
    taps = _buffer(ws, "taps", (k, d2.shape[0], cin), wb.dtype)
    tv = taps.reshape(k, n, ho, wo, cin)
    dxp = _buffer(ws, "dxp", (n, h + 2 * p, w + 2 * p, cin), wb.dtype)
    dxp[...] = 0.0
    for i in range(k):
        np.matmul(d2[None], wt[i * k : (i + 1) * k], out=taps)
        for j in range(k):
            dxp[:, i : i + ho, j : j + wo, :] += tv[j]
    return dxp[:, p : p + h, p : p + w, :] if p else dxp


def relu_forward(x: np.ndarray, ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """max(x, 0) elementwise; x any shape."""
    out = _buffer(ws, "out", x.shape, x.dtype)
    np.maximum(x, _zeros(ws, "zeros", x.shape, x.dtype), out=out)  # 4x faster than a scalar 0
    return out, (out, ws)


def relu_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx = dout where the output was positive, else 0."""
    out, ws = cache
    dx = _buffer(ws, "dx", dout.shape, dout.dtype)
    mask = _buffer(ws, "mask", out.shape, dout.dtype)  # a float mask: no casts in multiply
    np.greater(out, 0, out=mask)
    np.multiply(dout, mask, out=dx)
    return dx


def maxpool2_forward(x: np.ndarray, ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """2x2 max-pool, stride 2, on (N, H, W, C); an odd last row/column is dropped."""
    n, h, w, c = x.shape
    ho, wo = h // 2, w // 2
    a = x[:, 0 : 2 * ho : 2, 0 : 2 * wo : 2]
    b = x[:, 0 : 2 * ho : 2, 1 : 2 * wo : 2]
    cc = x[:, 1 : 2 * ho : 2, 0 : 2 * wo : 2]
    d = x[:, 1 : 2 * ho : 2, 1 : 2 * wo : 2]
    out = _buffer(ws, "out", (n, ho, wo, c), x.dtype)
    tmp = _buffer(ws, "tmp", (n, ho, wo, c), x.dtype)
    np.maximum(a, b, out=out)
    np.maximum(cc, d, out=tmp)
    np.maximum(out, tmp, out=out)
    return out, (x, out, ws)


def maxpool2_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """Route dout to the maximum of each 2x2 window (to every element on an exact tie)."""
    x, out, ws = cache
    n, h, w, c = x.shape
    ho, wo = out.shape[1], out.shape[2]
    dx = _zeros(ws, "dx", x.shape, x.dtype)
    mask = _buffer(ws, "mask", out.shape, x.dtype)  # a float mask: no casts in multiply
    for di in (0, 1):
        for dj in (0, 1):
            sub = x[:, di : 2 * ho : 2, dj : 2 * wo : 2]
            np.equal(sub, out, out=mask)
            np.multiply(dout, mask, out=dx[:, di : 2 * ho : 2, dj : 2 * wo : 2])
    # rows/columns dropped by an odd size never receive gradient and stay zero
    return dx


def relu_maxpool2_forward(z: np.ndarray, ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """max-pool(ReLU(z)) computed as ReLU(max-pool(z)): they commute, and the ReLU
    then runs on a 4x smaller map.  z: (N, H, W, C) -> (N, H//2, W//2, C)."""
    pooled, pcache = maxpool2_forward(z, ws)
    out = _buffer(ws, "relu_out", pooled.shape, z.dtype)
    np.maximum(pooled, _zeros(ws, "relu_zeros", pooled.shape, z.dtype), out=out)
    return out, (pcache, ws)


def relu_maxpool2_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dz of :func:`relu_maxpool2_forward`: dout goes to each window's maximum
    where that maximum is positive."""
    pcache, ws = cache
    z, pooled, _ = pcache
    mask = _buffer(ws, "relu_mask", pooled.shape, dout.dtype)
    np.greater(pooled, 0, out=mask)
    g = _buffer(ws, "relu_g", pooled.shape, dout.dtype)
    np.multiply(dout, mask, out=g)
    return maxpool2_backward(g, pcache)


def dense_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                  ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """x (N, F_in) @ w (F_in, F_out) + b (F_out,) -> (N, F_out)."""
    out = _buffer(ws, "out", (x.shape[0], w.shape[1]), x.dtype)
    np.matmul(x, w, out=out)
    out += b
    return out, (x, w, ws)


def dense_backward(dout: np.ndarray, cache: tuple, dw_out: Optional[np.ndarray],
                   db_out: Optional[np.ndarray], need_dx: bool) -> Optional[np.ndarray]:
    """Gradients of :func:`dense_forward`; see :func:`conv2d_backward` for the outputs."""
    x, w, ws = cache
    if dw_out is not None:
        np.matmul(x.T, dout, out=dw_out)
    if db_out is not None:
        np.sum(dout, axis=0, out=db_out)
    if not need_dx:
        return None
    dx = _buffer(ws, "dx", x.shape, x.dtype)
    np.matmul(dout, w.T, out=dx)
    return dx


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> Tuple[float, np.ndarray]:
    """Mean softmax cross-entropy over the batch and its gradient.

    logits: (N, K); labels: (N,) integer class ids in [0, K).
    Returns (loss in nats, dL/dlogits (N, K)).
    """
    n = logits.shape[0]
    z = logits - logits.max(axis=1, keepdims=True)
    ez = np.exp(z)
    s = ez.sum(axis=1, keepdims=True)
    logp_true = z[np.arange(n), labels] - np.log(s[:, 0])
    loss = float(-logp_true.mean())
    grad = ez / s
    grad[np.arange(n), labels] -= 1.0
    grad /= n
    return loss, grad


def cross_entropy_per_example(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Softmax cross-entropy of each example (N,), float64, in nats (no gradient)."""
    z = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(z.shape[0]), labels]
