"""Load an ONNX graph into a plan of :mod:`models.onnx.ops` steps (walked once, at load).

Layout: ONNX images are NCHW, the engine's are NHWC.  A rank-4 graph input is taken as
NCHW and the network is fed NHWC (the engine's data layout), so every 4-D activation
inside the plan is NHWC and no per-step transpose is needed: convolution weights are
stored as (KH, KW, C_in/groups, C_out), per-channel constants act on the last axis, and
a Flatten of an NHWC map that feeds a dense layer keeps the engine's (H, W, C) order
while that layer's weight rows are permuted from ONNX's (C, H, W) order at load (and
back at export).  Any other op that needs ONNX's own order (Reshape, a Flatten feeding
something else) gets an explicit NHWC -> NCHW transpose step in front of it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np

from kernels import layers_general as G
from models.nets import ModelError
from models.onnx import ops as O

SUPPORTED_OPS = ("Add", "AveragePool", "BatchNormalization", "Clip", "Constant", "Conv",
                 "Dropout", "Flatten", "Gemm", "GlobalAveragePool", "Identity", "MatMul",
                 "MaxPool", "Relu", "Reshape")
MIN_OPSET = 13
TRAINABLE_MODES = ("all", "bias")


class OnnxModelError(ModelError):
    """An ONNX file cannot be imported; the message names the file, node, op or shape at fault."""


def read_model(path):
    """The ``onnx.ModelProto`` of ``path``, checked by ``onnx.checker``; a clear error for a
    missing, truncated or non-ONNX file."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"model file not found: {path}")
    data = path.read_bytes()
    if not data:
        raise OnnxModelError(f"model file {path} is empty")
    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as e:
        raise OnnxModelError(f"model file {path} is not an ONNX model (truncated or another "
                             f"format): protobuf says {e}") from None
    if not model.graph.node or not model.opset_import:
        raise OnnxModelError(f"model file {path} is not an ONNX model (truncated or another "
                             "format): it has no graph nodes or no opset")
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx.checker.ValidationError and friends
        raise OnnxModelError(f"model file {path} is not a valid ONNX model (truncated or "
                             f"corrupt): {str(e).splitlines()[0]}") from None
    return model


def opset_of(model) -> int:
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            return int(o.version)
    return 0


def unsupported_nodes(model) -> List[Tuple[str, str]]:
    """``(node name, op type)`` of every node this importer cannot run."""
    return [(n.name or f"#{k}", n.op_type) for k, n in enumerate(model.graph.node)
            if n.domain not in ("", "ai.onnx") or n.op_type not in SUPPORTED_OPS]


class _Builder:
    """Walks the graph once, in its (topological) node order, into a list of steps."""

    def __init__(self, model, where: str, trainable: str):
        from onnx import numpy_helper

        self.model, self.where, self.mode = model, where, trainable
        self.nh = numpy_helper
        g = model.graph
        self.consts: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.layout: Dict[str, str] = {}     # activation value -> "nhwc" or "plain"
        self.sample: Dict[str, np.ndarray] = {}  # a batch-2 activation of every value (shapes)
        self.steps: List[O.Step] = []
        self.consumers = Counter(i for n in g.node for i in n.input if i)
        for o in g.output:
            self.consumers[o.name] += 1
        self.flatten_perm: Dict[str, np.ndarray] = {}
        self.used_inits: Dict[str, str] = {}
        dense = [n for n in g.node if n.op_type in ("Gemm", "MatMul")]
        self.classifier = dense[-1].output[0] if dense else None
        """Output of the last Gemm/MatMul: the classifier, whose weight ``bias`` mode trains."""

    # -- errors and attributes -------------------------------------------------------
    def err(self, node, msg: str) -> OnnxModelError:
        return OnnxModelError(f"{self.where}: node {node.name or '(unnamed)'!r} ({node.op_type}): {msg}")

    def attrs(self, node) -> Dict[str, object]:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, name: str, what: str) -> np.ndarray:
        if name not in self.consts:
            raise self.err(node, f"{what} {name!r} must be an initializer or a Constant, not "
                                 "computed from the input")
        return self.consts[name]

    def trainable_init(self, node, name: str, trainable: bool) -> bool:
        if trainable:
            if name in self.used_inits:
                raise self.err(node, f"initializer {name!r} is shared with node "
                                     f"{self.used_inits[name]!r}; shared trainable weights are not supported")
            self.used_inits[name] = node.name
            if self.consts[name].dtype != np.float32:
                raise self.err(node, f"initializer {name!r} is {self.consts[name].dtype}, expected float32")
        return trainable

    # -- layouts -----------------------------------------------------------------------
    def act(self, node, name: str, layout: Optional[str]) -> str:
        """Activation ``name`` in ``layout`` (None: as it is), adding a transpose step if needed."""
        if name not in self.layout:
            raise self.err(node, f"input {name!r} is neither an activation nor supported here "
                                 "as a constant")
        have = self.layout[name]
        if layout is None or have == layout or self.sample[name].ndim != 4:
            return name
        new = f"{name}::{layout}"
        if new not in self.layout:
            self.add(O.Transpose(f"{node.name}/to_{layout}", [name], new, to_nchw=layout == "plain"),
                     layout, node)
        return new

    def add(self, step: O.Step, layout: str, node) -> None:
        try:
            out, _ = step.forward([self.sample[v] for v in step.inputs], None)
        except (ValueError, IndexError) as e:
            raise self.err(node, f"does not fit its input shapes "
                                 f"{[self._onnx_shape(v) for v in step.inputs]}: {e}") from None
        self.sample[step.output] = np.array(out, dtype=np.float32, copy=True)
        self.layout[step.output] = layout
        self.steps.append(step)

    def _onnx_shape(self, v: str) -> Tuple[int, ...]:
        s = self.sample[v].shape
        return (s[0], s[3], s[1], s[2]) if self.layout[v] == "nhwc" and len(s) == 4 else s

    # -- geometry ----------------------------------------------------------------------
    def geometry(self, node, a: dict, kernel, h: int, w: int, groups: int = 1,
                 ceil_mode: bool = False) -> G.ConvGeometry:
        kernel = [int(k) for k in kernel]
        if len(kernel) != 2:
            raise self.err(node, f"{len(kernel)}-D window {kernel}: only 2-D images are supported")
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        auto = a.get("auto_pad", b"NOTSET")
        auto = auto.decode() if isinstance(auto, bytes) else str(auto)
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = G.auto_pads(auto, (h, w), kernel, strides, dil)
        elif auto in ("NOTSET", "VALID"):
            p = [int(v) for v in a.get("pads", [0, 0, 0, 0])] if auto == "NOTSET" else [0] * 4
            pads = (p[0], p[1], p[2], p[3])
        else:
            raise self.err(node, f"auto_pad {auto!r} is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER")
        return G.ConvGeometry(kernel, strides, dil, pads, groups, ceil_mode)

    # -- ops ---------------------------------------------------------------------------
    def build(self, node) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx") or op not in SUPPORTED_OPS:
            raise self.err(node, f"op {node.domain + '.' if node.domain else ''}{op} is not "
                                 f"supported; supported ops: {', '.join(SUPPORTED_OPS)}")
        getattr(self, "op_" + op)(node, self.attrs(node))

    def op_Constant(self, node, a):
        if "value" not in a:
            raise self.err(node, f"only the 'value' form is supported, got {sorted(a)}")
        self.consts[node.output[0]] = self.nh.to_array(a["value"])

    def op_Conv(self, node, a):
        x = self.act(node, node.input[0], "nhwc")
        if self.sample[x].ndim != 4:
            raise self.err(node, f"input of rank {self.sample[x].ndim}: only 2-D convolution "
                                 "(rank-4 NCHW input) is supported")
        w = self.const(node, node.input[1], "weight")
        bname = node.input[2] if len(node.input) > 2 and node.input[2] else None
        b = None if bname is None else self.const(node, bname, "bias")
        _, h, wd, _ = self.sample[x].shape
        g = self.geometry(node, a, a.get("kernel_shape", w.shape[2:]), h, wd, int(a.get("group", 1)))
        train_w = self.trainable_init(node, node.input[1], self.mode == "all")
        train_b = bname is not None and self.trainable_init(node, bname, True)
        self.add(O.Conv(node.name, [x], node.output[0], node.input[1], w, bname, b, g, train_w,
                        train_b), "nhwc", node)

    def op_BatchNormalization(self, node, a):
        if int(a.get("training_mode", 0)) != 0 or len([o for o in node.output if o]) > 1:
            raise self.err(node, "training_mode=1 (batch statistics) is not supported: imported "
                                 "BatchNormalization keeps its running statistics (docs/onnx.md)")
        x = self.act(node, node.input[0], "nhwc")
        arrs = [self.const(node, n, w) for n, w in zip(node.input[1:5], ("scale", "bias", "mean", "var"))]
        if self.sample[x].ndim < 2 or any(v.shape != (self.sample[x].shape[-1],) for v in arrs):
            raise self.err(node, f"per-channel parameters {[v.shape for v in arrs]} do not fit input "
                                 f"{self._onnx_shape(x)}")
        if self.sample[x].ndim not in (2, 4):
            raise self.err(node, f"input of rank {self.sample[x].ndim}: only rank 2 or 4 is supported")
        train_s = self.trainable_init(node, node.input[1], self.mode == "all")
        self.trainable_init(node, node.input[2], True)
        self.add(O.BatchNorm(node.name, [x], node.output[0], node.input[1:3], *arrs,
                             eps=float(a.get("epsilon", 1e-5)), train_scale=train_s), "nhwc", node)

    def op_Relu(self, node, a):
        x = self.act(node, node.input[0], None)
        self.add(O.relu(node.name, [x], node.output[0]), self.layout[x], node)

    def op_Clip(self, node, a):
        x = self.act(node, node.input[0], None)
        lims = []
        for k, default in ((1, -np.inf), (2, np.inf)):
            if len(node.input) > k and node.input[k]:
                v = self.const(node, node.input[k], "min" if k == 1 else "max")
                if v.size != 1:
                    raise self.err(node, f"bound {node.input[k]!r} must be a scalar, got shape {v.shape}")
                lims.append(float(v.reshape(-1)[0]))
            else:
                lims.append(default)
        self.add(O.clip(node.name, [x], node.output[0], lims[0], lims[1]), self.layout[x], node)

    def _pool_input(self, node) -> str:
        x = self.act(node, node.input[0], "nhwc")
        if self.sample[x].ndim != 4:
            raise self.err(node, f"input of rank {self.sample[x].ndim}: only 2-D pooling "
                                 "(rank-4 NCHW input) is supported")
        return x

    def op_MaxPool(self, node, a):
        if len([o for o in node.output if o]) > 1:
            raise self.err(node, "the Indices output is not supported")
        if int(a.get("storage_order", 0)) != 0:
            raise self.err(node, "storage_order=1 is not supported")
        x = self._pool_input(node)
        _, h, w, _ = self.sample[x].shape
        g = self.geometry(node, a, a["kernel_shape"], h, w, ceil_mode=bool(a.get("ceil_mode", 0)))
        prev = self.steps[-1] if self.steps else None
        if (prev is not None and prev.op_type == "Relu" and prev.output == x and self.consumers[x] == 1
                and (g.kh, g.kw, g.strides, g.dilations, g.pads, g.ceil_mode)
                == (2, 2, (2, 2), (1, 1), (0, 0, 0, 0), False)):
            self.steps.pop()  # fuse Relu + 2x2 MaxPool as the built-in networks do
            self.add(O.relu_maxpool2(f"{prev.name}+{node.name}", prev.inputs, node.output[0]),
                     "nhwc", node)
            return
        self.add(O.max_pool(node.name, [x], node.output[0], g), "nhwc", node)

    def op_AveragePool(self, node, a):
        x = self._pool_input(node)
        _, h, w, _ = self.sample[x].shape
        g = self.geometry(node, a, a["kernel_shape"], h, w, ceil_mode=bool(a.get("ceil_mode", 0)))
        self.add(O.average_pool(node.name, [x], node.output[0], g,
                               bool(a.get("count_include_pad", 0))), "nhwc", node)

    def op_GlobalAveragePool(self, node, a):
        x = self._pool_input(node)
        self.add(O.global_average_pool(node.name, [x], node.output[0]), "nhwc", node)

    def op_Add(self, node, a):
        names = list(node.input[:2])
        acts = [n for n in names if n in self.layout]
        if not acts:
            self.consts[node.output[0]] = self.const(node, names[0], "A") + self.const(node, names[1], "B")
            return
        if len(acts) == 1:
            x = self.act(node, acts[0], None)
            c = self.const(node, names[1] if names[0] == acts[0] else names[0], "operand")
            if self.layout[x] == "nhwc":
                if c.ndim > 4:
                    raise self.err(node, f"constant of rank {c.ndim} does not broadcast to a 4-D map")
                c = c.reshape((1,) * (4 - c.ndim) + c.shape).transpose(0, 2, 3, 1)
            self.add(O.Add(node.name, [x], node.output[0], np.ascontiguousarray(c, np.float32)),
                     self.layout[x], node)
            return
        want = "nhwc" if all(self.sample[n].ndim == 4 for n in names) else "plain"
        xs = [self.act(node, n, want) for n in names]
        self.add(O.Add(node.name, xs, node.output[0]), want if self.sample[xs[0]].ndim == 4 else "plain",
                 node)

    def op_Identity(self, node, a):
        if node.input[0] in self.consts:  # a copy of a constant (exporters dedupe equal initializers)
            self.consts[node.output[0]] = self.consts[node.input[0]]
            return
        x = self.act(node, node.input[0], None)
        self.add(O.identity(node.name, [x], node.output[0]), self.layout[x], node)

    def op_Dropout(self, node, a):
        if len(node.input) > 2 and node.input[2]:
            mode = self.const(node, node.input[2], "training_mode")
            if bool(mode.reshape(-1)[0]):
                raise self.err(node, "training_mode=True (random dropout) is not supported")
        if len([o for o in node.output if o]) > 1:
            raise self.err(node, "the mask output is not supported")
        self.op_Identity(node, a)

    def op_Flatten(self, node, a):
        x0 = node.input[0]
        if x0 not in self.layout:
            raise self.err(node, "flattening a constant is not supported")
        axis = int(a.get("axis", 1))
        rank = self.sample[x0].ndim
        axis = axis + rank if axis < 0 else axis
        if not 0 <= axis <= rank:
            raise self.err(node, f"axis {a.get('axis')} out of range for rank {rank}")
        out = node.output[0]
        consumer = [n for n in self.model.graph.node if out in n.input]
        if (self.layout[x0] == "nhwc" and axis == 1 and len(consumer) == 1 and self.consumers[out] == 1
                and consumer[0].op_type in ("Gemm", "MatMul") and consumer[0].input[0] == out):
            _, h, w, c = self.sample[x0].shape
            self.flatten_perm[out] = O.hwc_rows(h, w, c)
            self.add(O.Reshape(node.name, [x0], out, None, False, flatten_axis=1), "plain", node)
            return
        x = self.act(node, x0, "plain")
        self.add(O.Reshape(node.name, [x], out, None, False, flatten_axis=axis), "plain", node)

    def op_Reshape(self, node, a):
        x = self.act(node, node.input[0], "plain")
        target = [int(v) for v in self.const(node, node.input[1], "shape").reshape(-1)]
        self.add(O.Reshape(node.name, [x], node.output[0], target, bool(a.get("allowzero", 0))),
                 "plain", node)

    def _dense(self, node, w_name, trans_b, c_name, alpha, beta):
        x = self.act(node, node.input[0], "plain")
        w = self.const(node, w_name, "weight B")
        if w.ndim != 2:
            raise self.err(node, f"weight {w_name!r} has rank {w.ndim}; only a 2-D weight is supported")
        c = None if c_name is None else self.const(node, c_name, "bias C")
        # "bias" mode (TinyTL): every bias, and the classifier's weight only
        train_w = self.trainable_init(node, w_name, self.mode == "all"
                                      or node.output[0] == self.classifier)
        if c_name is not None:
            self.trainable_init(node, c_name, True)
        self.add(O.Dense(node.name, [x], node.output[0], node.op_type, w_name, w, trans_b, c_name, c,
                         alpha, beta, self.flatten_perm.get(node.input[0]), train_w), "plain", node)

    def op_Gemm(self, node, a):
        if int(a.get("transA", 0)):
            raise self.err(node, "transA=1 is not supported (the batch must be the rows of A)")
        c_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
        self._dense(node, node.input[1], bool(a.get("transB", 0)), c_name,
                    float(a.get("alpha", 1.0)), float(a.get("beta", 1.0)))

    def op_MatMul(self, node, a):
        self._dense(node, node.input[1], False, None, 1.0, 1.0)


def build_plan(model, where: str, trainable: str = "all", node_test: bool = False):
    """Steps, input shape (engine layout, no batch), output value, its layout and its batch-2
    shape of ``model``.

    The graph is checked while it is walked: shapes with a dry run at batch 2."""
    if trainable not in TRAINABLE_MODES:
        raise OnnxModelError(f"trainable: got {trainable!r}; expected one of {TRAINABLE_MODES}")
    b = _Builder(model, where, trainable)
    g = model.graph
    inputs = [i for i in g.input if i.name not in b.consts]
    if len(inputs) != 1:
        raise OnnxModelError(f"{where}: the graph has {len(inputs)} inputs "
                             f"{[i.name for i in inputs]}; exactly one (the image or feature batch) "
                             "is supported")
    inp = inputs[0]
    tt = inp.type.tensor_type
    if tt.elem_type != 1:
        raise OnnxModelError(f"{where}: input {inp.name!r} has element type "
                             f"{_elem_name(tt.elem_type)}; only float32 is supported")
    dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    if not tt.HasField("shape") or len(dims) < (1 if node_test else 2):
        raise OnnxModelError(f"{where}: input {inp.name!r} has no static shape (got {dims}); "
                             "expected (batch, C, H, W) or (batch, features)")
    dynamic = [(k, d) for k, d in enumerate(dims[1:], start=1) if not isinstance(d, int) or d < 1]
    if dynamic:
        raise OnnxModelError(f"{where}: input {inp.name!r} has dynamic dimensions "
                             f"{', '.join(f'{k} ({d!r})' for k, d in dynamic)} in shape {dims}; only the "
                             "batch dimension may be dynamic (re-export with a fixed input size)")
    onnx_shape = tuple(int(d) for d in dims[1:])
    batch = dims[0] if node_test and isinstance(dims[0], int) else 2
    if len(onnx_shape) == 3:
        c, h, w = onnx_shape
        input_shape = (h, w, c)
        b.layout[inp.name] = "nhwc"
    else:
        input_shape = onnx_shape
        b.layout[inp.name] = "plain"
    rng = np.random.default_rng(0)
    b.sample[inp.name] = rng.standard_normal((batch,) + input_shape).astype(np.float32)
    bad = unsupported_nodes(model)
    if bad:
        name, op = bad[0]
        others = sorted({o for _, o in bad[1:]})
        more = f" (and {len(bad) - 1} more unsupported nodes: {others})" if len(bad) > 1 else ""
        raise OnnxModelError(f"{where}: node {name!r} has op type {op!r}, which is not supported{more}; "
                             f"supported ops: {', '.join(SUPPORTED_OPS)}")
    for node in g.node:
        b.build(node)
    if len(g.output) != 1:
        raise OnnxModelError(f"{where}: the graph has {len(g.output)} outputs; exactly one (the logits) "
                             "is supported")
    out = g.output[0].name
    if out not in b.layout:
        raise OnnxModelError(f"{where}: output {out!r} is a constant, not computed from the input")
    return b.steps, input_shape, out, b.layout[out], b.sample[out].shape


def _elem_name(t: int) -> str:
    try:
        import onnx

        return onnx.TensorProto.DataType.Name(t)
    except Exception:
        return str(t)
