"""The steps of an imported ONNX graph: one small class per op with forward and backward.

A step reads activations (by value name) in the engine's layout, images NHWC, and
holds its parameters in the engine's layout too (convolution weights ``(KH, KW,
C_in/groups, C_out)``, dense weights ``(F_in, F_out)``); :meth:`Step.export` turns them
back into the ONNX initializers.  Attributes are parsed and checked once, when the
graph is loaded (:mod:`models.onnx.graph`); a step only computes.

``backward(dout, cache, grads, need_dx)``: ``grads`` is True when the step's trainable
tensors get gradients this step (written into the flat gradient buffer), ``need_dx``
says per activation input whether its gradient is needed; returns one array or None
per activation input.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kernels import layers as K
from kernels import layers_general as G
from kernels.flat import FlatParams


class Step(ABC):
    """One node of the plan.  ``tensors``: trainable ``(name, shape)`` in the flat buffer."""

    trainable = False
    op_type = ""

    def __init__(self, name: str, inputs: Sequence[str], output: str):
        self.name, self.inputs, self.output = name, list(inputs), output
        self.tensors: List[Tuple[str, Tuple[int, ...]]] = []
        self.values: Dict[str, np.ndarray] = {}  # trainable tensors (before bind: initial values)
        self.grads: Dict[str, np.ndarray] = {}

    def param(self, key: str, value: np.ndarray, trainable: bool) -> np.ndarray:
        """Register a parameter; trainable ones go into the flat buffer at bind time."""
        value = np.ascontiguousarray(value, dtype=np.float32)
        if trainable:
            self.tensors.append((key, value.shape))
            self.trainable = True
        self.values[key] = value
        return value

    def bind(self, p: FlatParams) -> None:
        """Point the trainable tensors at their views of the flat buffer (values copied in)."""
        for key, _ in self.tensors:
            p.views[key][...] = self.values[key]
            self.values[key] = p.views[key]
            self.grads[key] = p.grad_views[key]

    def grad(self, key: str, on: bool) -> Optional[np.ndarray]:
        return self.grads.get(key) if on else None

    def export(self) -> Dict[str, np.ndarray]:
        """ONNX initializers (name -> array in ONNX layout) of the trainable tensors."""
        return {}

    @abstractmethod
    def forward(self, xs: List[np.ndarray], ws) -> Tuple[np.ndarray, object]:
        """``(output, cache)`` for inputs ``xs``; ``ws`` is the step's scratch dict."""

    @abstractmethod
    def backward(self, dout, cache, grads: bool, need_dx: List[bool]) -> List[Optional[np.ndarray]]:
        """Gradients of the inputs (None where ``need_dx`` is False); parameter gradients
        are written into the step's views when ``grads``."""


class Conv(Step):
    """ONNX Conv (2-D).  The stride-1, square, valid-or-centred-padding convolution with a
    trainable bias runs on the built-in packed kernel, exactly as ``models.nets``."""

    op_type = "Conv"

    def __init__(self, name, inputs, output, w_name: str, w: np.ndarray, b_name: Optional[str],
                 b: Optional[np.ndarray], geom: G.ConvGeometry, train_w: bool, train_b: bool):
        super().__init__(name, inputs, output)
        self.w_name, self.b_name, self.geom = w_name, b_name, geom
        self.bias_shape = None if b is None else b.shape
        self.w = self.param(w_name, w.transpose(2, 3, 1, 0), train_w)   # OIHW -> HWIO
        self.b = None if b is None else self.param(b_name, b.reshape(-1), train_b)
        k, (t, l, bo, r) = geom.kh, geom.pads
        same = len({t, l, bo, r}) == 1 and t in (0, (k - 1) // 2) and (t == 0 or k % 2 == 1)
        self.packed = (geom.groups == 1 and geom.strides == (1, 1) and geom.dilations == (1, 1)
                       and geom.kh == geom.kw and same and train_w and train_b and b is not None)
        self.padding = "valid" if t == 0 else "same"

    def bind(self, p):
        super().bind(p)
        self.w, self.b = self.values[self.w_name], self.values.get(self.b_name)
        if self.packed:  # [w; b] contiguous: weight then bias in the flat buffer
            lo, hi = p.offsets[self.w_name][0], p.offsets[self.b_name][1]
            shape = (self.w.shape[0] * self.w.shape[1] * self.w.shape[2] + 1, self.w.shape[3])
            self.wb, self.gwb = p.data[lo:hi].reshape(shape), p.grad[lo:hi].reshape(shape)

    def forward(self, xs, ws, scratch=None, keep=True):
        if self.packed and hasattr(self, "wb"):
            return K.conv2d_forward(xs[0], self.wb, self.geom.kh, self.padding, ws)
        return G.conv_forward(xs[0], self.w, self.b, self.geom, ws, scratch, keep)

    @property
    def trains_weight(self) -> bool:
        return self.w_name in self.grads

    def scratch_key(self, x: np.ndarray) -> tuple:
        """Convolutions with equal keys can share one scratch workspace."""
        g = self.geom
        return ("conv", x.shape, self.w.shape, g.strides, g.dilations, g.pads, g.groups)

    def backward(self, dout, cache, grads, need_dx):
        if self.packed and hasattr(self, "wb"):
            return [K.conv2d_backward(dout, cache, self.gwb if grads else None, need_dx[0])]
        return [G.conv_backward(dout, cache, self.grad(self.w_name, grads),
                                self.grad(self.b_name, grads), need_dx[0])]

    def export(self):
        out = {}
        if self.w_name in self.grads:
            out[self.w_name] = self.w.transpose(3, 2, 0, 1)
        if self.b_name in self.grads:
            out[self.b_name] = self.b.reshape(self.bias_shape)
        return out


class BatchNorm(Step):
    """ONNX BatchNormalization in inference mode: frozen running statistics, trainable
    scale and bias (see docs/onnx.md for why)."""

    op_type = "BatchNormalization"

    def __init__(self, name, inputs, output, names: Sequence[str], scale, bias, mean, var,
                 eps: float, train_scale: bool):
        super().__init__(name, inputs, output)
        self.s_name, self.b_name = names[0], names[1]
        self.scale = self.param(self.s_name, scale, train_scale)
        self.bias = self.param(self.b_name, bias, True)
        self.mean, self.var, self.eps = mean.astype(np.float32), var.astype(np.float32), float(eps)

    def bind(self, p):
        super().bind(p)
        self.scale, self.bias = self.values[self.s_name], self.values[self.b_name]

    def forward(self, xs, ws):
        return G.batchnorm_frozen_forward(xs[0], self.scale, self.bias, self.mean, self.var,
                                          self.eps, ws)

    def backward(self, dout, cache, grads, need_dx):
        return [G.batchnorm_frozen_backward(dout, cache, self.grad(self.s_name, grads),
                                            self.grad(self.b_name, grads), need_dx[0])]

    def export(self):
        return {k: self.values[k].copy() for k in self.grads}


def hwc_rows(h: int, w: int, c: int) -> np.ndarray:
    """For each row of a dense weight over an (H, W, C)-flattened map, its row in ONNX's
    (C, H, W) order: ``w_engine = w_onnx[hwc_rows(...)]`` (and ``w_onnx[perm] = w_engine``)."""
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


class Dense(Step):
    """ONNX Gemm (``alpha * A @ B' + beta * C``) or MatMul with a constant right operand.

    ``perm``: the row order of the weight when its input is an NHWC map flattened in the
    engine's (H, W, C) order while the ONNX graph flattens (C, H, W).  ``train_w``: whether
    the weight is trained (the bias always is)."""

    def __init__(self, name, inputs, output, op_type: str, w_name: str, w: np.ndarray,
                 trans_b: bool, c_name: Optional[str], c: Optional[np.ndarray],
                 alpha: float, beta: float, perm: Optional[np.ndarray], train_w: bool = True):
        super().__init__(name, inputs, output)
        self.op_type, self.w_name, self.c_name = op_type, w_name, c_name
        self.trans_b, self.alpha, self.beta, self.perm = trans_b, float(alpha), float(beta), perm
        wk = w.T if trans_b else w
        if perm is not None:
            wk = wk[perm]
        self.w = self.param(w_name, wk, train_w)
        self.c_shape = None if c is None else c.shape
        self.c = None if c is None else self.param(c_name, c, True)
        self.plain = (alpha == 1.0 and beta == 1.0 and c is not None
                      and c.shape == (self.w.shape[1],))

    def bind(self, p):
        super().bind(p)
        self.w, self.c = self.values[self.w_name], self.values.get(self.c_name)

    def forward(self, xs, ws):
        x = xs[0]
        if self.plain and x.ndim == 2:
            return K.dense_forward(x, self.w, self.c, ws)
        out = np.matmul(x, self.w)
        if self.alpha != 1.0:
            out *= np.float32(self.alpha)
        if self.c is not None:
            out = out + (self.c if self.beta == 1.0 else np.float32(self.beta) * self.c)
        return out, (x, self.w, ws)

    def backward(self, dout, cache, grads, need_dx):
        if self.plain and dout.ndim == 2:
            return [K.dense_backward(dout, cache, self.grad(self.w_name, grads),
                                     self.grad(self.c_name, grads), need_dx[0])]
        x, w, _ = cache
        d2 = dout.reshape(-1, dout.shape[-1])
        dw = self.grad(self.w_name, grads)
        if dw is not None:
            np.matmul(x.reshape(-1, x.shape[-1]).T, d2, out=dw)
            if self.alpha != 1.0:
                dw *= np.float32(self.alpha)
        if grads:
            if self.c is not None:
                self.grads[self.c_name][...] = G.unbroadcast(dout, self.c_shape) * np.float32(self.beta)
        if not need_dx[0]:
            return [None]
        dx = np.matmul(dout, w.T)
        if self.alpha != 1.0:
            dx *= np.float32(self.alpha)
        return [dx]

    def export(self):
        w = self.w
        if self.perm is not None:
            w2 = np.empty_like(w)
            w2[self.perm] = w
            w = w2
        out = {self.w_name: np.ascontiguousarray(w.T if self.trans_b else w)}
        if self.c is not None:
            out[self.c_name] = self.c.copy()
        return out


class Unary(Step):
    """An op of one input and no parameters: ``fwd(x, ws) -> (out, cache)``,
    ``bwd(dout, cache) -> dx`` (the kernels' own signatures)."""

    def __init__(self, name, inputs, output, op_type: str, fwd, bwd):
        super().__init__(name, inputs, output)
        self.op_type, self.fwd, self.bwd = op_type, fwd, bwd

    def forward(self, xs, ws):
        return self.fwd(xs[0], ws)

    def backward(self, dout, cache, grads, need_dx):
        return [self.bwd(dout, cache)]


def relu(name, inputs, output) -> Unary:
    return Unary(name, inputs, output, "Relu", K.relu_forward, K.relu_backward)


def relu_maxpool2(name, inputs, output) -> Unary:
    """Relu followed by a 2x2 stride-2 MaxPool, fused as in ``models.nets`` (they commute)."""
    return Unary(name, inputs, output, "Relu+MaxPool", K.relu_maxpool2_forward, K.relu_maxpool2_backward)


def clip(name, inputs, output, lo: float, hi: float) -> Unary:
    return Unary(name, inputs, output, "Clip", lambda x, ws: G.clip_forward(x, lo, hi, ws), G.clip_backward)


def max_pool(name, inputs, output, geom: G.ConvGeometry) -> Unary:
    return Unary(name, inputs, output, "MaxPool", lambda x, ws: G.maxpool_forward(x, geom, ws),
                 G.maxpool_backward)


def average_pool(name, inputs, output, geom: G.ConvGeometry, count_include_pad: bool) -> Unary:
    return Unary(name, inputs, output, "AveragePool",
                 lambda x, ws: G.avgpool_forward(x, geom, count_include_pad, ws), G.avgpool_backward)


def global_average_pool(name, inputs, output) -> Unary:
    return Unary(name, inputs, output, "GlobalAveragePool", lambda x, ws: G.global_avgpool_forward(x),
                 G.global_avgpool_backward)


def identity(name, inputs, output) -> Unary:
    """Identity, and Dropout at inference (what an exported graph holds)."""
    return Unary(name, inputs, output, "Identity", lambda x, ws: (x, None), lambda dout, cache: dout)


class Add(Step):
    """Elementwise sum with NumPy broadcasting; ``const`` is a fixed operand (engine layout)."""

    op_type = "Add"

    def __init__(self, name, inputs, output, const: Optional[np.ndarray] = None):
        super().__init__(name, inputs, output)
        self.const = const

    def forward(self, xs, ws):
        if self.const is not None:
            return xs[0] + self.const, (xs[0].shape,)
        return xs[0] + xs[1], (xs[0].shape, xs[1].shape)

    def backward(self, dout, cache, grads, need_dx):
        return [G.unbroadcast(dout, s) if nd else None for s, nd in zip(cache, need_dx)]


class Reshape(Step):
    """Reshape to a fixed target (ONNX 0 = copy the dimension, -1 = inferred); also
    ONNX Flatten on a plain (not NHWC) input, and the engine-order flatten of an NHWC map
    feeding a dense layer whose weight rows were permuted to match."""

    op_type = "Reshape"

    def __init__(self, name, inputs, output, target: Optional[Sequence[int]], allowzero: bool,
                 flatten_axis: Optional[int] = None):
        super().__init__(name, inputs, output)
        self.target, self.allowzero, self.flatten_axis = target, allowzero, flatten_axis

    def out_shape(self, shape: Tuple[int, ...]) -> Tuple[int, ...]:
        if self.flatten_axis is not None:
            a = self.flatten_axis
            return (int(np.prod(shape[:a])), int(np.prod(shape[a:])))
        out = [shape[k] if (d == 0 and not self.allowzero) else int(d)
               for k, d in enumerate(self.target)]
        return tuple(out)

    def forward(self, xs, ws):
        return xs[0].reshape(self.out_shape(xs[0].shape)), xs[0].shape

    def backward(self, dout, cache, grads, need_dx):
        return [dout.reshape(cache)]


class Transpose(Step):
    """A layout change inserted by the importer: NHWC <-> NCHW (not an op of the graph)."""

    op_type = "Transpose"

    def __init__(self, name, inputs, output, to_nchw: bool):
        super().__init__(name, inputs, output)
        self.axes = (0, 3, 1, 2) if to_nchw else (0, 2, 3, 1)
        self.back = (0, 2, 3, 1) if to_nchw else (0, 3, 1, 2)

    def forward(self, xs, ws):
        return np.ascontiguousarray(xs[0].transpose(self.axes)), None

    def backward(self, dout, cache, grads, need_dx):
        return [np.ascontiguousarray(dout.transpose(self.back))]
