"""Bring your own model: ONNX in, an engine network to adapt, adapted ONNX out.

- :func:`load_onnx_model` — an ONNX classifier as an :class:`OnnxNetwork` (flat float32
  buffer, masked backward, structural sparsity), or :class:`OnnxModelError` (a
  ``ValueError``) naming the problem;
- :func:`inspect_onnx` — what a file holds and whether every op is supported;
- :func:`save_onnx_model` — the source graph with the adapted initializers, beside the
  source and never over it.

``onnx`` is imported inside these functions, never at package import.  Layout, op set and
BatchNormalization: docs/onnx.md.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from models.checkpoint import write_atomically
from models.onnx.graph import (
    MIN_OPSET,
    SUPPORTED_OPS,
    TRAINABLE_MODES,
    OnnxModelError,
    build_plan,
    opset_of,
    read_model,
    unsupported_nodes,
)
from models.onnx.network import OnnxNetwork

__all__ = ["OnnxModelError", "OnnxNetwork", "SUPPORTED_OPS", "TRAINABLE_MODES", "adapted_model",
           "check_output_path", "inspect_onnx", "is_onnx_path", "load_onnx_model", "restrict_trainable",
           "save_onnx_model"]


def is_onnx_path(path) -> bool:
    """Whether a model argument names an ONNX file (by its ``.onnx`` suffix)."""
    return str(path).lower().endswith(".onnx")


def _check_opset(model, where: str) -> int:
    opset = opset_of(model)
    if opset < MIN_OPSET:
        raise OnnxModelError(f"{where}: opset {opset} is older than {MIN_OPSET}; re-export with "
                             f"opset_version >= {MIN_OPSET}")
    return opset


def load_onnx_model(path, trainable: str = "all", num_classes: Optional[int] = None,
                    input_shape=None) -> OnnxNetwork:
    """The ONNX classifier at ``path`` as an :class:`OnnxNetwork`.

    ``trainable``: ``"all"`` (every weight, bias and BatchNormalization scale/bias) or
    ``"bias"`` (TinyTL: only biases, BatchNormalization biases and the last Gemm/MatMul,
    the classifier, are trained; other weights become constants outside the flat buffer,
    so the optimizer state is that much smaller).  ``num_classes`` / ``input_shape``
    (engine layout, NHWC ``(H, W, C)`` or ``(F,)``): when given, the model must match,
    and the error names both shapes.
    """
    path = Path(path)
    where = f"model file {path}"
    model = read_model(path)
    _check_opset(model, where)
    net = _network(model, path, trainable)
    if input_shape is not None and tuple(input_shape) != net.input_shape:
        raise OnnxModelError(f"{where}: input shape {_nchw(net.input_shape)} (NCHW) does not fit the "
                             f"task's input {_nchw(tuple(input_shape))} (NCHW)")
    if num_classes is not None and int(num_classes) != net.num_classes:
        raise OnnxModelError(f"{where}: the model outputs {net.num_classes} classes; the task has "
                             f"{num_classes}")
    return net


def _network(model, path: Optional[Path], trainable: str) -> OnnxNetwork:
    """The :class:`OnnxNetwork` of a read ``model`` (from file ``path``) with ``trainable``."""
    where = f"model file {path}"
    steps, shape, out, layout, out_shape = build_plan(model, where, trainable)
    if len(out_shape) != 2:
        raise OnnxModelError(f"{where}: output {out!r} has shape {tuple(out_shape)} (at batch 2); "
                             "expected (batch, classes) logits")
    inits = {t.name for t in model.graph.initializer}
    inp = [i.name for i in model.graph.input if i.name not in inits][0]
    return OnnxNetwork(steps, inp, out, shape, out_shape[1], model, path, trainable, layout)


def _nchw(shape) -> tuple:
    """An engine input shape as ONNX writes it: (batch, C, H, W) or (batch, F)."""
    s = tuple(int(d) for d in shape)
    return ("N", s[2], s[0], s[1]) if len(s) == 3 else ("N",) + s


def inspect_onnx(path) -> Dict[str, Any]:
    """What ``path`` holds: opset, producer, input/output shapes, op counts, unsupported
    nodes, and (when it loads) trainable layers and parameter counts.

    Raises :class:`OnnxModelError` only when the file is not a readable ONNX model; an
    unsupported or otherwise unimportable graph is reported in ``supported``/``error``.
    """
    path = Path(path)
    model = read_model(path)

    def shape(v):
        t = v.type.tensor_type
        return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim]

    inits = {t.name for t in model.graph.initializer}
    bad = unsupported_nodes(model)
    info: Dict[str, Any] = {
        "path": str(path), "bytes": path.stat().st_size, "ir_version": int(model.ir_version),
        "opset": opset_of(model), "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "inputs": [{"name": i.name, "shape": shape(i)} for i in model.graph.input if i.name not in inits],
        "outputs": [{"name": o.name, "shape": shape(o)} for o in model.graph.output],
        "ops": dict(sorted(Counter(n.op_type for n in model.graph.node).items())),
        "nodes": len(model.graph.node),
        "unsupported": [{"node": n, "op_type": o} for n, o in bad],
        "supported_ops": list(SUPPORTED_OPS),
        "initializer_params": int(sum(int(np.prod(t.dims)) for t in model.graph.initializer)),
    }
    try:
        _check_opset(model, f"model file {path}")
        net = _network(model, path, "all")
    except OnnxModelError as e:
        info.update(supported=False, error=str(e))
        return info
    bias = _network(model, path, "bias")
    info.update(
        supported=True, error=None, input_shape_nhwc=list(net.input_shape), num_classes=net.num_classes,
        trainable_layers=[{"name": net.layer_names[j], "op_type": net.steps[i].op_type,
                           "params": net.layer_ranges[j][1] - net.layer_ranges[j][0]}
                          for j, i in enumerate(net.trainable)],
        n_params=net.params.size, n_params_bias_only=bias.params.size)
    return info


def restrict_trainable(net, scheme: Optional[str]):
    """The network to adapt under sparsity ``scheme``: for ``"bias"`` (TinyTL), ``net``
    reloaded with only biases and the classifier trainable; otherwise ``net`` itself."""
    if scheme is None or scheme.strip().lower() != "bias" or getattr(net, "trainable_mode", "") == "bias":
        return net
    if not isinstance(net, OnnxNetwork):
        raise OnnxModelError(f"sparsity 'bias': bias-only updates need an imported ONNX model "
                             f"(--model FILE.onnx), not the built-in {getattr(net, 'arch', net)!r}")
    return _network(adapted_model(net), net.source, "bias")  # the current values, frozen ones included


def check_output_path(net, path) -> None:
    """Raise :class:`OnnxModelError` now if an adapted ``net`` could not be written to ``path``."""
    path = Path(path)
    if net.source is not None and path.resolve() == Path(net.source).resolve():
        raise OnnxModelError(f"output model {path} is the source model; the source is never overwritten")
    if not is_onnx_path(path):
        raise OnnxModelError(f"output model {path}: an imported ONNX model is written as ONNX; "
                             "give a path ending in .onnx")


def adapted_model(net: OnnxNetwork, meta: Optional[Dict[str, Any]] = None):
    """The source ``ModelProto`` with ``net``'s current trainable initializers (BatchNormalization
    statistics unchanged) and ``meta`` as ``metadata_props``."""
    import onnx
    from onnx import numpy_helper

    model = onnx.ModelProto()
    model.CopyFrom(net.model)
    new: Dict[str, np.ndarray] = {}
    for s in net.steps:
        new.update(s.export())
    for t in model.graph.initializer:
        if t.name in new:
            t.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(new.pop(t.name), dtype=np.float32),
                                               t.name))
    # the rest were Identity/Constant copies of a constant: each becomes its own initializer
    for node in [n for n in model.graph.node if n.output and n.output[0] in new]:
        model.graph.node.remove(node)
        model.graph.initializer.append(numpy_helper.from_array(
            np.ascontiguousarray(new.pop(node.output[0]), dtype=np.float32), node.output[0]))
    if new:
        raise OnnxModelError(f"adapted model: no initializer or node for tensors {sorted(new)}")
    for k, v in (meta or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"halo-agent.{k}", str(v)
    return model


def save_onnx_model(path, net: OnnxNetwork, meta: Optional[Dict[str, Any]] = None) -> Path:
    """Write ``net`` as ONNX to ``path`` (:func:`adapted_model`), atomically; never over the
    source file.  ``meta``: task, optimizer, accuracy... as ``metadata_props``.  Same
    arguments as ``models.checkpoint.save_model``."""
    path = Path(path)
    check_output_path(net, path)
    data = adapted_model(net, meta).SerializeToString()
    return write_atomically(path, lambda f: f.write(data))
