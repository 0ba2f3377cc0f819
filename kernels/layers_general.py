"""General 2-D layers for imported graphs (NHWC, any float dtype): convolution with
strides, dilations, asymmetric padding and groups (depthwise included), max and average
pooling with the same geometry, frozen-statistics batch normalisation, clip, global
average pooling and broadcasting add.

Conventions as in :mod:`kernels.layers`: ``<layer>_forward(...) -> (out, cache)``,
``<layer>_backward(dout, cache, ...)``; weight gradients are written into caller-given
arrays; scratch arrays come from a workspace dict reused across steps.  Convolution
weights are ``(KH, KW, C_in / groups, C_out)``.  Padding is ``(top, left, bottom,
right)``.

Every window is read as ``KH * KW`` strided views ("taps") of the padded input: tap
``(i, j)`` of output position ``(y, x)`` is input ``(y*sh + i*dh - top, x*sw + j*dw -
left)``.  A convolution copies the taps into one im2col matrix and does one GEMM (or,
depthwise, multiply-adds per tap); its input gradient adds the taps back (col2im).
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from kernels.layers import Workspace, _buffer, _zeros

Pads = Tuple[int, int, int, int]


def out_size(size: int, k: int, stride: int, dilation: int, pad_lo: int, pad_hi: int,
             ceil_mode: bool = False) -> int:
    """Output length along one axis (ONNX/PyTorch rule; with ``ceil_mode`` the last
    window must start inside the input or its leading padding)."""
    span = size + pad_lo + pad_hi - dilation * (k - 1) - 1
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    n = -(-span // stride) + 1
    if (n - 1) * stride >= size + pad_lo:
        n -= 1
    return n


def auto_pads(auto_pad: str, size: Sequence[int], k: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int]) -> Pads:
    """``(top, left, bottom, right)`` of ONNX ``auto_pad`` SAME_UPPER / SAME_LOWER
    (output = ceil(input / stride)); VALID and NOTSET give zeros."""
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
        return (0, 0, 0, 0)
    lo, hi = [], []
    for s, kk, st, d in zip(size, k, strides, dilations):
        out = -(-s // st)
        total = max(0, (out - 1) * st + d * (kk - 1) + 1 - s)
        small, big = total // 2, total - total // 2
        lo.append(big if auto_pad == "SAME_LOWER" else small)
        hi.append(small if auto_pad == "SAME_LOWER" else big)
    return (lo[0], lo[1], hi[0], hi[1])


def _padded(x: np.ndarray, pads: Pads, extra: Tuple[int, int], fill: float,
            ws: Optional[Workspace], key: str) -> np.ndarray:
    """``x`` (N,H,W,C) padded by ``pads`` plus ``extra`` rows/columns at the end, with ``fill``."""
    t, l, b, r = pads
    if not any(pads) and not any(extra):
        return x
    n, h, w, c = x.shape
    shape = (n, h + t + b + extra[0], w + l + r + extra[1], c)
    if fill == 0.0:
        xp = _zeros(ws, key, shape, x.dtype)  # the border is never written: stays zero
    else:
        xp = _buffer(ws, key, shape, x.dtype)
        xp[...] = fill
    xp[:, t : t + h, l : l + w, :] = x
    return xp


def _tap(xp: np.ndarray, i: int, j: int, ho: int, wo: int, strides, dilations) -> np.ndarray:
    """The strided view of ``xp`` read by kernel tap (i, j): (N, Ho, Wo, C)."""
    sh, sw = strides
    y0, x0 = i * dilations[0], j * dilations[1]
    return xp[:, y0 : y0 + sh * (ho - 1) + 1 : sh, x0 : x0 + sw * (wo - 1) + 1 : sw, :]


def _im2col(xp: np.ndarray, g: ConvGeometry, ho: int, wo: int, patches: np.ndarray) -> None:
    """Copy the windows of ``xp`` (N,Hp,Wp,C) into ``patches`` (N,Ho,Wo,KH,KW,C)."""
    if xp.shape[3] <= 4:  # few channels: one strided copy per tap is cheapest
        for i, j in g.taps():
            patches[:, :, :, i, j, :] = _tap(xp, i, j, ho, wo, g.strides, g.dilations)
        return
    span = (g.dilations[0] * (g.kh - 1) + 1, g.dilations[1] * (g.kw - 1) + 1)
    win = sliding_window_view(xp, span, axis=(1, 2))  # (N, Hs, Ws, C, span_h, span_w)
    win = win[:, : g.strides[0] * (ho - 1) + 1 : g.strides[0], : g.strides[1] * (wo - 1) + 1 : g.strides[1],
              :, :: g.dilations[0], :: g.dilations[1]]
    np.copyto(patches, win.transpose(0, 1, 2, 4, 5, 3))


class ConvGeometry:
    """Kernel size, strides, dilations, pads and groups of one convolution or pooling."""

    def __init__(self, kernel: Sequence[int], strides: Sequence[int] = (1, 1),
                 dilations: Sequence[int] = (1, 1), pads: Pads = (0, 0, 0, 0), groups: int = 1,
                 ceil_mode: bool = False):
        self.kh, self.kw = (int(k) for k in kernel)
        self.strides = tuple(int(s) for s in strides)
        self.dilations = tuple(int(d) for d in dilations)
        self.pads = tuple(int(p) for p in pads)
        self.groups = int(groups)
        self.ceil_mode = bool(ceil_mode)

    def out_hw(self, h: int, w: int) -> Tuple[int, int]:
        t, l, b, r = self.pads
        return (out_size(h, self.kh, self.strides[0], self.dilations[0], t, b, self.ceil_mode),
                out_size(w, self.kw, self.strides[1], self.dilations[1], l, r, self.ceil_mode))

    def extra(self, h: int, w: int, ho: int, wo: int) -> Tuple[int, int]:
        """Rows/columns past the bottom/right padding that ceil-mode windows reach."""
        t, l, b, r = self.pads
        need_h = (ho - 1) * self.strides[0] + self.dilations[0] * (self.kh - 1) + 1
        need_w = (wo - 1) * self.strides[1] + self.dilations[1] * (self.kw - 1) + 1
        return max(0, need_h - (h + t + b)), max(0, need_w - (w + l + r))

    def taps(self):
        return [(i, j) for i in range(self.kh) for j in range(self.kw)]


def conv_forward(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], g: ConvGeometry,
                 ws: Optional[Workspace] = None, scratch: Optional[Workspace] = None,
                 keep: bool = True) -> Tuple[np.ndarray, tuple]:
    """2-D cross-correlation.  x (N,H,W,C_in), w (KH,KW,C_in/groups,C_out), b (C_out,) or None.

    Depthwise (groups == C_in == C_out) runs as per-tap multiply-adds; other groups
    as one GEMM per group over an im2col matrix.  ``scratch``: a workspace other layers
    share, for the temporaries of one call; with ``keep=False`` also for the padded input
    and the im2col matrix, which only a weight gradient needs (so other layers may
    overwrite them before this layer's backward pass when it computes none).
    """
    tws = ws if scratch is None else scratch
    sws = ws if keep else tws
    n, h, wd, cin = x.shape
    cout = w.shape[3]
    if w.shape[:2] != (g.kh, g.kw) or w.shape[2] * g.groups != cin or cout % g.groups:
        raise ValueError(f"conv: weight {w.shape} does not fit input channels {cin} "
                         f"with groups {g.groups} and kernel {g.kh}x{g.kw}")
    ho, wo = g.out_hw(h, wd)
    if ho < 1 or wo < 1:
        raise ValueError(f"conv: input {h}x{wd} is smaller than the {g.kh}x{g.kw} window")
    xp = _padded(x, g.pads, (0, 0), 0.0, sws, "xpad")
    out = _buffer(ws, "out", (n, ho, wo, cout), x.dtype)
    depthwise = g.groups == cin and cout == cin and g.groups > 1
    if depthwise:
        tmp = _buffer(tws, "tmp", out.shape, x.dtype)
        for k, (i, j) in enumerate(g.taps()):
            tap = _tap(xp, i, j, ho, wo, g.strides, g.dilations)
            if k == 0:
                np.multiply(tap, w[i, j, 0], out=out)
            else:
                np.multiply(tap, w[i, j, 0], out=tmp)
                out += tmp
        cols = None
    else:
        cg, og = cin // g.groups, cout // g.groups
        kk = g.kh * g.kw * cg
        cols = _buffer(sws, "cols", (g.groups, n * ho * wo, kk), x.dtype)
        o2 = out.reshape(n * ho * wo, cout)
        for q in range(g.groups):
            _im2col(xp[..., q * cg : (q + 1) * cg] if g.groups > 1 else xp, g, ho, wo,
                    cols[q].reshape(n, ho, wo, g.kh, g.kw, cg))
            wq = w[..., q * og : (q + 1) * og].reshape(kk, og)
            if g.groups == 1:
                np.matmul(cols[0], wq, out=o2)
            else:
                o2[:, q * og : (q + 1) * og] = cols[q] @ wq
    if b is not None:
        out += b
    return out, (x.shape, xp, cols, w, g, depthwise, ws, tws)


def conv_backward(dout: np.ndarray, cache: tuple, dw_out: Optional[np.ndarray],
                  db_out: Optional[np.ndarray], need_dx: bool) -> Optional[np.ndarray]:
    """Gradients of :func:`conv_forward`: writes dL/dw into ``dw_out`` and dL/db into
    ``db_out`` when given; returns dL/dx when ``need_dx``."""
    xshape, xp, cols, w, g, depthwise, ws, tws = cache
    n, h, wd, cin = xshape
    ho, wo, cout = dout.shape[1], dout.shape[2], dout.shape[3]
    if db_out is not None:
        np.sum(dout.reshape(-1, cout), axis=0, out=db_out)
    if depthwise:
        if dw_out is not None:
            tmp = _buffer(tws, "dtmp", dout.shape, dout.dtype)
            for i, j in g.taps():
                np.multiply(_tap(xp, i, j, ho, wo, g.strides, g.dilations), dout, out=tmp)
                np.sum(tmp.reshape(-1, cout), axis=0, out=dw_out[i, j, 0])
        if not need_dx:
            return None
        dxp = _buffer(ws, "dxp", xp.shape, dout.dtype)
        dxp[...] = 0.0
        tmp = _buffer(tws, "dtmp", dout.shape, dout.dtype)
        for i, j in g.taps():
            np.multiply(dout, w[i, j, 0], out=tmp)
            _tap(dxp, i, j, ho, wo, g.strides, g.dilations)[...] += tmp
    else:
        cg, og = cin // g.groups, cout // g.groups
        d2 = dout.reshape(-1, cout)
        if dw_out is not None:
            for q in range(g.groups):
                dwq = cols[q].T @ d2[:, q * og : (q + 1) * og]
                dw_out[..., q * og : (q + 1) * og] = dwq.reshape(g.kh, g.kw, cg, og)
        if not need_dx:
            return None
        dxp = _buffer(ws, "dxp", xp.shape, dout.dtype)
        dxp[...] = 0.0
        # per-tap GEMMs in one batched call, then strided adds of contiguous blocks (col2im)
        ntap = g.kh * g.kw
        wt = _buffer(tws, "wt", (ntap, og, cg), dout.dtype)
        taps = _buffer(tws, "taps", (ntap, d2.shape[0], cg), dout.dtype)
        for q in range(g.groups):
            np.copyto(wt, w[..., q * og : (q + 1) * og].reshape(ntap, cg, og).transpose(0, 2, 1))
            dq = d2 if g.groups == 1 else np.ascontiguousarray(d2[:, q * og : (q + 1) * og])
            np.matmul(dq[None], wt, out=taps)
            tv = taps.reshape(ntap, n, ho, wo, cg)
            for t, (i, j) in enumerate(g.taps()):
                _tap(dxp, i, j, ho, wo, g.strides, g.dilations)[..., q * cg : (q + 1) * cg] += tv[t]
    t, l = g.pads[0], g.pads[1]
    return dxp[:, t : t + h, l : l + wd, :]


def maxpool_forward(x: np.ndarray, g: ConvGeometry, ws: Optional[Workspace] = None
                    ) -> Tuple[np.ndarray, tuple]:
    """Max over each window (padding never wins: it is -inf).  x (N,H,W,C)."""
    n, h, wd, c = x.shape
    ho, wo = g.out_hw(h, wd)
    if ho < 1 or wo < 1:
        raise ValueError(f"max-pool: input {h}x{wd} is smaller than the {g.kh}x{g.kw} window")
    xp = _padded(x, g.pads, g.extra(h, wd, ho, wo), -np.inf, ws, "xpad")
    out = _buffer(ws, "out", (n, ho, wo, c), x.dtype)
    for k, (i, j) in enumerate(g.taps()):
        tap = _tap(xp, i, j, ho, wo, g.strides, g.dilations)
        if k == 0:
            out[...] = tap
        else:
            np.maximum(out, tap, out=out)
    return out, (x.shape, xp, out, g, ws)


def maxpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx of :func:`maxpool_forward`: each window's gradient goes to its first maximum."""
    xshape, xp, out, g, ws = cache
    ho, wo = out.shape[1], out.shape[2]
    dxp = _buffer(ws, "dxp", xp.shape, dout.dtype)
    dxp[...] = 0.0
    free = _buffer(ws, "free", out.shape, np.bool_)  # windows whose maximum is not yet routed
    free[...] = True
    hit = _buffer(ws, "hit", out.shape, np.bool_)
    for i, j in g.taps():
        np.equal(_tap(xp, i, j, ho, wo, g.strides, g.dilations), out, out=hit)
        hit &= free
        free &= ~hit
        _tap(dxp, i, j, ho, wo, g.strides, g.dilations)[...] += dout * hit
    t, l = g.pads[0], g.pads[1]
    return dxp[:, t : t + xshape[1], l : l + xshape[2], :]


def avgpool_forward(x: np.ndarray, g: ConvGeometry, count_include_pad: bool,
                    ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """Mean over each window.  The divisor counts the input cells of the window, plus
    its padding cells when ``count_include_pad`` (never the cells past the padding that
    ceil-mode windows reach)."""
    n, h, wd, c = x.shape
    ho, wo = g.out_hw(h, wd)
    if ho < 1 or wo < 1:
        raise ValueError(f"average pool: input {h}x{wd} is smaller than the {g.kh}x{g.kw} window")
    extra = g.extra(h, wd, ho, wo)
    xp = _padded(x, g.pads, extra, 0.0, ws, "xpad")
    t, l, b, r = g.pads
    ones = np.zeros((1,) + xp.shape[1:3] + (1,), dtype=x.dtype)
    if count_include_pad:
        ones[:, : h + t + b, : wd + l + r] = 1.0
    else:
        ones[:, t : t + h, l : l + wd] = 1.0
    count = np.zeros((1, ho, wo, 1), dtype=x.dtype)
    out = _buffer(ws, "out", (n, ho, wo, c), x.dtype)
    out[...] = 0.0
    for i, j in g.taps():
        count += _tap(ones, i, j, ho, wo, g.strides, g.dilations)
        out += _tap(xp, i, j, ho, wo, g.strides, g.dilations)
    inv = 1.0 / np.maximum(count, 1.0)
    out *= inv
    return out, (x.shape, xp.shape, inv, g, ws)


def avgpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx of :func:`avgpool_forward`."""
    xshape, xpshape, inv, g, ws = cache
    ho, wo = dout.shape[1], dout.shape[2]
    scaled = dout * inv
    dxp = _buffer(ws, "dxp", xpshape, dout.dtype)
    dxp[...] = 0.0
    for i, j in g.taps():
        _tap(dxp, i, j, ho, wo, g.strides, g.dilations)[...] += scaled
    t, l = g.pads[0], g.pads[1]
    return dxp[:, t : t + xshape[1], l : l + xshape[2], :]


def global_avgpool_forward(x: np.ndarray) -> Tuple[np.ndarray, tuple]:
    """Mean over H and W: (N,H,W,C) -> (N,1,1,C)."""
    return x.mean(axis=(1, 2), keepdims=True, dtype=x.dtype), x.shape


def global_avgpool_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    shape = cache
    return np.broadcast_to(dout / np.asarray(shape[1] * shape[2], dtype=dout.dtype), shape).copy()


def batchnorm_frozen_forward(x: np.ndarray, scale: np.ndarray, bias: np.ndarray,
                             mean: np.ndarray, var: np.ndarray, eps: float,
                             ws: Optional[Workspace] = None) -> Tuple[np.ndarray, tuple]:
    """Inference-mode batch normalisation over the last axis (channels):
    ``y = (x - mean) / sqrt(var + eps) * scale + bias`` with fixed ``mean``/``var``."""
    inv_std = (1.0 / np.sqrt(var.astype(np.float64) + eps)).astype(x.dtype)
    a = scale * inv_std
    out = _buffer(ws, "out", x.shape, x.dtype)
    np.multiply(x, a, out=out)
    out += bias - mean * a
    return out, (x, a, inv_std, mean, ws)


def batchnorm_frozen_backward(dout: np.ndarray, cache: tuple, dscale_out: Optional[np.ndarray],
                              dbias_out: Optional[np.ndarray], need_dx: bool) -> Optional[np.ndarray]:
    x, a, inv_std, mean, ws = cache
    c = dout.shape[-1]
    if dbias_out is not None:
        np.sum(dout.reshape(-1, c), axis=0, out=dbias_out)
    if dscale_out is not None:
        xhat = _buffer(ws, "xhat", x.shape, x.dtype)
        np.subtract(x, mean, out=xhat)
        xhat *= inv_std
        xhat *= dout
        np.sum(xhat.reshape(-1, c), axis=0, out=dscale_out)
    if not need_dx:
        return None
    dx = _buffer(ws, "dx", dout.shape, dout.dtype)
    np.multiply(dout, a, out=dx)
    return dx


def clip_forward(x: np.ndarray, lo: float, hi: float, ws: Optional[Workspace] = None
                 ) -> Tuple[np.ndarray, tuple]:
    """min(max(x, lo), hi) elementwise (lo = -inf / hi = +inf for a one-sided clip)."""
    out = _buffer(ws, "out", x.shape, x.dtype)
    np.clip(x, lo, hi, out=out)
    return out, (x, lo, hi, ws)


def clip_backward(dout: np.ndarray, cache: tuple) -> np.ndarray:
    """dL/dx: dout where lo < x < hi, else 0."""
    x, lo, hi, ws = cache
    mask = _buffer(ws, "mask", x.shape, dout.dtype)
    np.greater(x, lo, out=mask)
    mask *= x < hi
    dx = _buffer(ws, "dx", dout.shape, dout.dtype)
    np.multiply(dout, mask, out=dx)
    return dx


def unbroadcast(grad: np.ndarray, shape: Tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` over the axes along which an operand of ``shape`` was broadcast."""
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(lead + k for k, s in enumerate(shape)
                                      if s == 1 and grad.shape[lead + k] != 1)
    return grad.sum(axis=axes, keepdims=True).reshape(shape) if axes else grad.reshape(shape)
