"""A built-in network (``models.nets``: cnn-a/b/c, mlp) written as an ONNX graph.

Conv (NCHW, OIHW weights), Relu, MaxPool 2x2, Flatten and Gemm, opset 13.  The engine
flattens NHWC maps in (H, W, C) order, ONNX's Flatten of NCHW in (C, H, W) order, so the
rows of the dense weight after a Flatten are permuted to (C, H, W) here; the importer
permutes them back, so an exported and re-imported network computes the same numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from models.nets import Network
from models.onnx.ops import hwc_rows

OPSET = 13


def network_to_onnx(net: Network, graph_name: str = ""):
    """The ``onnx.ModelProto`` of a built-in :class:`Network` with its current weights."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    image = len(net.input_shape) == 3
    if image:
        h, w, c = net.input_shape
        in_shape = ["N", c, h, w]
    else:
        in_shape = ["N", int(np.prod(net.input_shape))]
    cur, shape = "input", tuple(net.input_shape)
    v = net.params.views
    for k, layer in enumerate(net.layers):
        kind = type(layer).__name__
        out = f"t{k}"
        if kind == "_Conv":
            p = 0 if layer.padding == "valid" else (layer.k - 1) // 2
            w_oihw = np.ascontiguousarray(v[f"{layer.name}.w"].transpose(3, 2, 0, 1))
            inits += [numpy_helper.from_array(w_oihw, f"{layer.name}.weight"),
                      numpy_helper.from_array(v[f"{layer.name}.b"].copy(), f"{layer.name}.bias")]
            nodes.append(helper.make_node("Conv", [cur, f"{layer.name}.weight", f"{layer.name}.bias"], [out],
                                          name=layer.name, kernel_shape=[layer.k, layer.k], pads=[p] * 4))
            shape = layer.out_shape(shape)
        elif kind in ("_ReLU", "_ReLUPool"):
            nodes.append(helper.make_node("Relu", [cur], [out], name=f"relu{k}"))
            if kind == "_ReLUPool":
                cur, out = out, f"t{k}p"
                nodes.append(helper.make_node("MaxPool", [cur], [out], name=f"pool{k}",
                                              kernel_shape=[2, 2], strides=[2, 2]))
                shape = layer.out_shape(shape)
        elif kind == "_Pool":
            nodes.append(helper.make_node("MaxPool", [cur], [out], name=f"pool{k}",
                                          kernel_shape=[2, 2], strides=[2, 2]))
            shape = layer.out_shape(shape)
        elif kind == "_Flatten":
            nodes.append(helper.make_node("Flatten", [cur], [out], name=f"flatten{k}", axis=1))
            hh, ww, cc = shape
            flat_from = (hh, ww, cc)
            shape = (hh * ww * cc,)
        elif kind == "_Dense":
            wk = v[f"{layer.name}.w"]
            if nodes and nodes[-1].op_type == "Flatten":
                w_chw = np.empty_like(wk)
                w_chw[hwc_rows(*flat_from)] = wk
                wk = w_chw
            inits += [numpy_helper.from_array(np.ascontiguousarray(wk.T), f"{layer.name}.weight"),
                      numpy_helper.from_array(v[f"{layer.name}.b"].copy(), f"{layer.name}.bias")]
            nodes.append(helper.make_node("Gemm", [cur, f"{layer.name}.weight", f"{layer.name}.bias"],
                                          [out], name=layer.name, transB=1))
            shape = (layer.fout,)
        else:
            raise ValueError(f"network_to_onnx: layer kind {kind} has no ONNX form")
        cur = out
    if not image and net.layers and type(net.layers[0]).__name__ == "_Dense" and len(net.input_shape) > 1:
        raise ValueError("network_to_onnx: an MLP over image input is not supported")
    nodes[-1].output[0] = "logits"
    graph = helper.make_graph(
        nodes, graph_name or net.arch,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", net.num_classes])], inits)
    model = helper.make_model(graph, producer_name="halo-agent",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def save_network_onnx(net: Network, path) -> Path:
    """Write :func:`network_to_onnx` of ``net`` to ``path``."""
    path = Path(path)
    path.write_bytes(network_to_onnx(net).SerializeToString())
    return path
