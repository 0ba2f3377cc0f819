"""The HALO optimizees (CNNs a/b/c and 3-layer MLPs) over one flat parameter buffer.

A network is a list of layers.  Its *trainable layers* (convolutions and dense
layers, numbered 0.. from the input) each own a contiguous segment of
``params.data`` (weight then bias), which is what structural sparsity masks:
:meth:`Network.loss_and_grad` computes weight gradients only for the layers in the
mask and stops back-propagation below the lowest one.

Architectures (stride-1 convolutions, 2x2 max-pool, ReLU; after HALO Fig. 2):

- ``cnn-a``: conv3x3x8 (valid), ReLU, pool, conv5x5x8 (valid), ReLU, pool, dense.
- ``cnn-b`` ("wider"): the same with 16 and 16 channels.
- ``cnn-c`` ("wider and deeper"): the conv pair twice at 16 channels:
  conv3x3x16 valid, ReLU, pool, conv5x5x16 valid, ReLU, pool, then conv3x3x16 and
  conv5x5x16 with 'same' padding (a second valid pair would not fit a 4x4 map),
  ReLU after each, dense.  On 28x28 inputs: 26, 13, 9, 4, 4, 4 -> dense 256.
- ``mlp``: dense 64, ReLU, dense 64, ReLU, dense to the classes (3 trainable
  layers, as HALO's TDP and GSAD optimizees).
- ``mlp-deep``: dense 128, ReLU, dense 64, ReLU, dense 64, ReLU, dense 32, ReLU,
  dense to the classes (5 trainable layers; a deeper net of the meta-training
  task distribution, models/metatrain/distribution.py).

MLPs flatten image inputs.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kernels import layers as K
from kernels.errors import HaloError
from kernels.flat import FlatParams

# (kind, args) per layer; "dense_out" is the classifier head sized by the task.
ARCHITECTURES: Dict[str, List[tuple]] = {
    "cnn-a": [("conv", 3, 8, "valid"), ("relu",), ("pool",),
              ("conv", 5, 8, "valid"), ("relu",), ("pool",), ("flatten",), ("dense_out",)],
    "cnn-b": [("conv", 3, 16, "valid"), ("relu",), ("pool",),
              ("conv", 5, 16, "valid"), ("relu",), ("pool",), ("flatten",), ("dense_out",)],
    "cnn-c": [("conv", 3, 16, "valid"), ("relu",), ("pool",),
              ("conv", 5, 16, "valid"), ("relu",), ("pool",),
              ("conv", 3, 16, "same"), ("relu",), ("conv", 5, 16, "same"), ("relu",),
              ("flatten",), ("dense_out",)],
    "mlp": [("dense", 64), ("relu",), ("dense", 64), ("relu",), ("dense_out",)],
    "mlp-deep": [("dense", 128), ("relu",), ("dense", 64), ("relu",), ("dense", 64), ("relu",),
                 ("dense", 32), ("relu",), ("dense_out",)],
}


EVAL_CHUNK = 64
"""Samples per evaluation chunk: the training batch size of the image tasks, so evaluation
reuses the training step's layer buffers (at 256 cnn-b's im2col buffers alone took ~100 MB)."""


class ModelError(HaloError, ValueError):
    """A model cannot be built or loaded as asked; the message names the field and value."""


def architectures() -> List[str]:
    """Names of the built-in architectures."""
    return sorted(ARCHITECTURES)


class _Conv:
    trainable = True

    def __init__(self, name: str, k: int, cin: int, cout: int, padding: str):
        self.name, self.k, self.cin, self.cout, self.padding = name, k, cin, cout, padding
        self.tensors = [(f"{name}.w", (k, k, cin, cout)), (f"{name}.b", (cout,))]

    def out_shape(self, s: Tuple[int, ...]) -> Tuple[int, ...]:
        p = K.pad_amount(self.k, self.padding)
        h, w = s[0] + 2 * p - self.k + 1, s[1] + 2 * p - self.k + 1
        if h < 1 or w < 1:
            raise ModelError(f"input {s} too small for {self.name} ({self.k}x{self.k}, {self.padding})")
        return (h, w, self.cout)

    def fan_in(self) -> int:
        return self.k * self.k * self.cin

    def bind(self, p: FlatParams) -> None:
        """Packed [w; b] views: the weight is followed by its bias in the flat buffer."""
        lo, hi = p.offsets[f"{self.name}.w"][0], p.offsets[f"{self.name}.b"][1]
        shape = (self.k * self.k * self.cin + 1, self.cout)
        self.wb, self.gwb = p.data[lo:hi].reshape(shape), p.grad[lo:hi].reshape(shape)

    def forward(self, x, p: FlatParams, ws):
        return K.conv2d_forward(x, self.wb, self.k, self.padding, ws)

    def backward(self, dout, cache, p: Optional[FlatParams], need_dx: bool):
        return K.conv2d_backward(dout, cache, self.gwb if p is not None else None, need_dx)


class _Dense:
    trainable = True

    def __init__(self, name: str, fin: int, fout: int):
        self.name, self.fin, self.fout = name, fin, fout
        self.tensors = [(f"{name}.w", (fin, fout)), (f"{name}.b", (fout,))]

    def out_shape(self, s):
        return (self.fout,)

    def fan_in(self) -> int:
        return self.fin

    def bind(self, p: FlatParams) -> None:
        pass

    def forward(self, x, p: FlatParams, ws):
        return K.dense_forward(x, p.views[f"{self.name}.w"], p.views[f"{self.name}.b"], ws)

    def backward(self, dout, cache, p: Optional[FlatParams], need_dx: bool):
        dw = p.grad_views[f"{self.name}.w"] if p is not None else None
        db = p.grad_views[f"{self.name}.b"] if p is not None else None
        return K.dense_backward(dout, cache, dw, db, need_dx)


class _ReLU:
    trainable = False
    tensors: list = []

    def out_shape(self, s):
        return s

    def forward(self, x, p, ws):
        return K.relu_forward(x, ws)

    def backward(self, dout, cache, p, need_dx):
        return K.relu_backward(dout, cache)


class _Pool:
    trainable = False
    tensors: list = []

    def out_shape(self, s):
        if s[0] < 2 or s[1] < 2:
            raise ModelError(f"input too small: a 2x2 max-pool got a {s[0]}x{s[1]} map")
        return (s[0] // 2, s[1] // 2, s[2])

    def forward(self, x, p, ws):
        return K.maxpool2_forward(x, ws)

    def backward(self, dout, cache, p, need_dx):
        return K.maxpool2_backward(dout, cache)


class _ReLUPool:
    """ReLU then 2x2 max-pool, fused (they commute; see kernels.layers)."""

    trainable = False
    tensors: list = []

    def out_shape(self, s):
        return _Pool().out_shape(s)

    def forward(self, x, p, ws):
        return K.relu_maxpool2_forward(x, ws)

    def backward(self, dout, cache, p, need_dx):
        return K.relu_maxpool2_backward(dout, cache)


class _Flatten:
    trainable = False
    tensors: list = []

    def out_shape(self, s):
        return (int(np.prod(s)),)

    def forward(self, x, p, ws):
        return x.reshape(x.shape[0], -1), x.shape

    def backward(self, dout, cache, p, need_dx):
        return dout.reshape(cache)


class Network:
    """A feed-forward classifier whose parameters live in one :class:`FlatParams`.

    ``layer_ranges[j]`` is the ``(lo, hi)`` segment of trainable layer ``j``.
    """

    def __init__(self, arch: str, input_shape: Sequence[int], num_classes: int,
                 dtype=np.float32):
        if arch not in ARCHITECTURES:
            raise ModelError(f"model: unknown architecture {arch!r}; known: {architectures()}")
        if num_classes < 2:
            raise ModelError(f"num_classes must be >= 2, got {num_classes}")
        self.arch = arch
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        shape = self.input_shape
        image = len(shape) == 3
        if arch.startswith("cnn") and not image:
            raise ModelError(f"model {arch!r} needs image input (H, W, C), got input_shape {shape}")
        if arch.startswith("mlp") and image:
            shape = (int(np.prod(shape)),)
        self.layers: list = []
        n_conv = n_dense = 0
        specs = list(ARCHITECTURES[arch])
        k = 0
        while k < len(specs):
            spec = specs[k]
            kind = spec[0]
            k += 1
            if kind == "relu" and k < len(specs) and specs[k][0] == "pool":
                k += 1
                layer = _ReLUPool()
            elif kind == "conv":
                n_conv += 1
                layer = _Conv(f"conv{n_conv}", spec[1], shape[2], spec[2], spec[3])
            elif kind in ("dense", "dense_out"):
                n_dense += 1
                fout = spec[1] if kind == "dense" else self.num_classes
                layer = _Dense(f"dense{n_dense}", shape[0], fout)
            elif kind == "relu":
                layer = _ReLU()
            elif kind == "pool":
                layer = _Pool()
            else:
                layer = _Flatten()
            shape = layer.out_shape(shape)
            self.layers.append(layer)
        self.params = FlatParams([t for layer in self.layers for t in layer.tensors], dtype=dtype)
        for layer in self.layers:
            if layer.trainable:
                layer.bind(self.params)
        self.trainable = [i for i, layer in enumerate(self.layers) if layer.trainable]
        self.layer_names = [self.layers[i].name for i in self.trainable]
        self.layer_ranges: List[Tuple[int, int]] = []
        for i in self.trainable:
            names = [n for n, _ in self.layers[i].tensors]
            self.layer_ranges.append((self.params.offsets[names[0]][0],
                                      self.params.offsets[names[-1]][1]))
        self._ws: Dict[tuple, dict] = {}
        self._caches: list = []

    @property
    def n_layers(self) -> int:
        """Number of trainable layers (the length of a sparsity mask)."""
        return len(self.trainable)

    def init(self, seed: int) -> Network:
        """He-normal weights, zero biases, from ``np.random.default_rng(seed)``."""
        rng = np.random.default_rng(seed)
        for i in self.trainable:
            layer = self.layers[i]
            wname, bname = layer.tensors[0][0], layer.tensors[1][0]
            w = self.params.views[wname]
            w[...] = rng.standard_normal(w.shape) * np.sqrt(2.0 / layer.fan_in())
            self.params.views[bname][...] = 0.0
        return self

    def _prep(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != self.params.data.dtype:
            x = x.astype(self.params.data.dtype)
        if self.arch.startswith("mlp") and x.ndim > 2:
            x = x.reshape(x.shape[0], -1)
        return x

    def forward(self, x: np.ndarray) -> np.ndarray:
        """Logits (N, num_classes) for inputs (N, *input_shape); keeps caches for backward."""
        x = self._prep(x)
        n = x.shape[0]
        self._caches = []
        for i, layer in enumerate(self.layers):
            x, cache = layer.forward(x, self.params, self._ws.setdefault((i, n), {}))
            self._caches.append(cache)
        return x

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray,
                      mask: Optional[Sequence[bool]] = None) -> float:
        """Forward, softmax cross-entropy, and a masked backward pass.

        ``mask[j]`` says whether trainable layer ``j`` is updated this step (None:
        all).  Weight gradients are written into ``params.grad`` for those layers
        only (other segments keep stale values); back-propagation stops at the
        lowest updated layer.  Returns the mean loss (nats).
        """
        logits = self.forward(x)
        loss, dout = K.softmax_cross_entropy(logits, y)
        if mask is None:
            mask = [True] * self.n_layers
        elif len(mask) != self.n_layers:
            raise ModelError(f"mask has {len(mask)} entries, model {self.arch} has {self.n_layers} layers")
        updated = [self.trainable[j] for j, m in enumerate(mask) if m]
        if not updated:
            return loss
        lowest = updated[0]
        upd = set(updated)
        for i in range(len(self.layers) - 1, lowest - 1, -1):
            layer = self.layers[i]
            dout = layer.backward(dout, self._caches[i], self.params if i in upd else None,
                                  need_dx=i > lowest)
        return loss

    def predict(self, x: np.ndarray, batch_size: int = EVAL_CHUNK) -> np.ndarray:
        """Predicted class ids (N,) for inputs (N, *input_shape), in batches."""
        out = np.empty(x.shape[0], dtype=np.int64)
        for s in range(0, x.shape[0], batch_size):
            out[s:s + batch_size] = self.forward(x[s:s + batch_size]).argmax(axis=1)
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = EVAL_CHUNK) -> Tuple[float, float]:
        """(accuracy as a fraction 0..1, mean loss in nats) over (x, y)."""
        correct = 0
        total_loss = 0.0
        for s in range(0, x.shape[0], batch_size):
            xb, yb = x[s:s + batch_size], y[s:s + batch_size]
            logits = self.forward(xb)
            loss, _ = K.softmax_cross_entropy(logits, yb)
            total_loss += loss * xb.shape[0]
            correct += int((logits.argmax(axis=1) == yb).sum())
        n = max(1, x.shape[0])
        return correct / n, total_loss / n

    def describe(self) -> Dict[str, object]:
        """The architecture as JSON-able data (what a checkpoint header stores)."""
        return {"arch": self.arch, "input_shape": list(self.input_shape),
                "num_classes": self.num_classes,
                "tensors": [[n, list(s)] for n, s in self.params.specs],
                "layers": self.layer_names, "n_params": self.params.size}


def build_network(arch: str, input_shape: Sequence[int], num_classes: int,
                  seed: Optional[int] = 0) -> Network:
    """A :class:`Network`, He-initialised from ``seed`` (None: zeros)."""
    net = Network(arch, input_shape, num_classes)
    if seed is not None:
        net.init(seed)
    return net
