"""An imported ONNX graph as an engine network: one flat float32 buffer, masked backward."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from kernels import layers as K
from kernels.flat import FlatParams
from models.nets import ModelError, Network
from models.onnx import ops as O


class OnnxNetwork(Network):
    """A classifier imported from ONNX, used wherever a :class:`models.nets.Network` is.

    Its *trainable layers* are the steps that own trainable tensors (Conv, Gemm/MatMul,
    BatchNormalization), numbered in graph order; layer ``j`` owns the contiguous segment
    ``layer_ranges[j]`` of ``params.data``.  :meth:`loss_and_grad` computes gradients for
    the layers of the mask only and back-propagates only into values that lead to one
    of them (the graph may branch: residual additions sum their gradients).
    """

    def __init__(self, steps: List[O.Step], input_name: str, output: str, input_shape: Sequence[int],
                 num_classes: int, model, source: Optional[Path], trainable_mode: str,
                 output_layout: str = "plain"):
        self.arch = "onnx"
        self.model, self.source, self.trainable_mode = model, source, trainable_mode
        self.steps, self.input_name, self.output = steps, input_name, output
        self.output_layout = output_layout
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.layers = steps
        self.params = FlatParams([t for s in steps for t in s.tensors])
        for s in steps:
            s.bind(self.params)
        self.trainable = [i for i, s in enumerate(steps) if s.trainable]
        self.layer_names = [steps[i].name for i in self.trainable]
        self.layer_ranges: List[Tuple[int, int]] = []
        for i in self.trainable:
            names = [n for n, _ in steps[i].tensors]
            self.layer_ranges.append((self.params.offsets[names[0]][0], self.params.offsets[names[-1]][1]))
        self._ws: Dict[tuple, dict] = {}
        self._caches: list = []
        self._need: Dict[tuple, List[Dict[str, bool]]] = {}

    def astype(self, dtype) -> OnnxNetwork:
        """Compute in ``dtype`` from now on (float64 for finite-difference checks)."""
        self.params = FlatParams(self.params.specs, dtype=dtype)
        for s in self.steps:
            s.bind(self.params)  # copies the current values into the new buffer
        self._ws, self._need = {}, {}
        return self

    def init(self, seed: int) -> OnnxNetwork:
        raise ModelError("an imported ONNX model keeps its own weights; it cannot be re-initialised")

    def _prep(self, x: np.ndarray) -> np.ndarray:
        if x.dtype != self.params.data.dtype:
            x = x.astype(self.params.data.dtype)
        if tuple(x.shape[1:]) != self.input_shape:
            raise ModelError(f"input batch of shape {tuple(x.shape)} does not fit the model's input "
                             f"(batch, {', '.join(map(str, self.input_shape))})")
        return x

    def forward(self, x: np.ndarray, keep: Optional[set] = None) -> np.ndarray:
        """Outputs for inputs (N, *input_shape) (NHWC images); keeps caches for backward.

        ``keep``: the steps whose weight gradients the next backward computes (None: all).
        Convolutions share one scratch workspace per shape for the temporaries of a call,
        and those outside ``keep`` also for their im2col matrices, which is what makes
        last-K and bias-only adapting use less memory."""
        x = self._prep(x)
        n = x.shape[0]
        vals = {self.input_name: x}
        self._caches = []
        for i, s in enumerate(self.steps):
            xs = [vals[v] for v in s.inputs]
            ws = self._ws.setdefault((i, n), {})
            if isinstance(s, O.Conv):
                out, cache = s.forward(xs, ws, self._ws.setdefault(s.scratch_key(xs[0]), {}),
                                       keep is None or i in keep)
            else:
                out, cache = s.forward(xs, ws)
            vals[s.output] = out
            self._caches.append(cache)
        return vals[self.output]

    def _needs(self, mask: tuple) -> List[Tuple[bool, List[bool]]]:
        """Per step: (update its tensors?, does each input need a gradient?) for ``mask``."""
        if mask not in self._need:
            upd = {self.trainable[j] for j, m in enumerate(mask) if m}
            needs: Dict[str, bool] = {}
            plan = []
            for i, s in enumerate(self.steps):
                ins = [needs.get(v, False) for v in s.inputs]
                needs[s.output] = i in upd or any(ins)
                plan.append((i in upd, ins))
            self._need[mask] = plan
        return self._need[mask]

    def loss_and_grad(self, x: np.ndarray, y: np.ndarray, mask: Optional[Sequence[bool]] = None) -> float:
        """Forward, softmax cross-entropy and a masked backward pass (see the class docstring)."""
        if mask is None:
            mask = [True] * self.n_layers
        elif len(mask) != self.n_layers:
            raise ModelError(f"mask has {len(mask)} entries, the model has {self.n_layers} trainable layers")
        plan = self._needs(tuple(bool(m) for m in mask))
        keep = {i for i, (upd, _) in enumerate(plan)
                if upd and getattr(self.steps[i], "trains_weight", True)}
        logits = self.forward(x, keep)
        loss, dout = K.softmax_cross_entropy(logits, y)
        grads = {self.output: dout}
        for i in range(len(self.steps) - 1, -1, -1):
            s = self.steps[i]
            upd, need_dx = plan[i]
            if s.output not in grads or not (upd or any(need_dx)):
                continue
            dxs = s.backward(grads.pop(s.output), self._caches[i], upd, need_dx)
            for v, nd, dx in zip(s.inputs, need_dx, dxs):
                if nd:
                    grads[v] = dx if v not in grads else grads[v] + dx
        return loss

    def describe(self) -> Dict[str, object]:
        return {"arch": self.arch, "source": None if self.source is None else str(self.source),
                "input_shape": list(self.input_shape), "num_classes": self.num_classes,
                "tensors": [[n, list(s)] for n, s in self.params.specs],
                "layers": self.layer_names, "n_params": self.params.size,
                "trainable": self.trainable_mode}
