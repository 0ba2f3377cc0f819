"""Evaluate an imported network with onnxruntime (``--eval-backend ort``): the fast path
on a board, and the independent check that the adapted ONNX file computes what the
engine computed."""

from __future__ import annotations

from typing import Tuple

import numpy as np

from kernels.layers import softmax_cross_entropy
from models.onnx.network import OnnxNetwork


def session(model_bytes: bytes, threads: int = 1):
    """An onnxruntime CPU session of a serialized model, with ``threads`` intra-op threads."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(model_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def to_onnx_layout(x: np.ndarray) -> np.ndarray:
    """Engine input (N, H, W, C) as ONNX's (N, C, H, W); other ranks unchanged."""
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if x.ndim == 4 else x


class OrtEvaluator:
    """``evaluate(x, y)`` with the network's *current* weights run by onnxruntime.

    The session is rebuilt when the weights changed since the last call (one
    serialization of the adapted graph per evaluation point)."""

    def __init__(self, net: OnnxNetwork, threads: int = 1):
        self.net, self.threads = net, threads
        self._sess, self._seen = None, None

    def logits(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        from models.onnx import adapted_model

        if self._sess is None or not np.array_equal(self._seen, self.net.params.data):
            self._sess = session(adapted_model(self.net).SerializeToString(), self.threads)
            self._seen = self.net.params.data.copy()
        name = self._sess.get_inputs()[0].name
        outs = [self._sess.run(None, {name: to_onnx_layout(x[s:s + batch_size].astype(np.float32))})[0]
                for s in range(0, x.shape[0], batch_size)]
        return np.concatenate(outs) if outs else np.zeros((0, self.net.num_classes), np.float32)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> Tuple[float, float]:
        """(accuracy 0..1, mean loss in nats) over (x, y), as ``Network.evaluate``."""
        if x.shape[0] == 0:
            return 0.0, 0.0
        logits = self.logits(x, batch_size)
        loss, _ = softmax_cross_entropy(logits, y)
        return float((logits.argmax(axis=1) == y).mean()), float(loss)
