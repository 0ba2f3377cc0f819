"""The importer's ops: the ONNX backend node test cases, and every op's backward against
finite differences (float64) inside a small imported graph."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from bench.onnx_node_suite import run_suite
from models.onnx import load_onnx_model
from models.onnx.graph import SUPPORTED_OPS
from tests.test_layers_gradcheck import _assert_close, _num_grad

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def test_node_suite_passes_every_claimed_op():
    rows = run_suite()
    failed = [(r["case"], r["reason"]) for r in rows if r["status"] == "failed"]
    assert not failed, failed
    passed = Counter(r["op"] for r in rows if r["status"] == "passed")
    # every claimed op but Constant (folded at load, nothing to run) passes cases of its own
    assert set(SUPPORTED_OPS) - set(passed) == {"Constant"}, passed
    assert all(r["reason"] for r in rows if r["status"] == "skipped")
    assert sum(passed.values()) >= 79


def _graph(tmp_path, middle, c_mid=4, hw=8, extra_inits=(), name="g"):
    """input (N,3,hw,hw) -> Conv 3x3 (3->4, pad 1, bias) -> ``middle`` nodes (reading
    'h0', writing 'h1') -> Flatten -> Gemm (-> 3 classes), saved to a file."""
    rng = np.random.default_rng(7)
    inits = [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.5, "w0"),
        numpy_helper.from_array(rng.standard_normal(4).astype(np.float32) * 0.1, "b0"),
    ]
    inits += [numpy_helper.from_array(np.asarray(a, dtype=a.dtype), n) for n, a in extra_inits]
    nodes = [
        helper.make_node(
            "Conv", ["x", "w0", "b0"], ["h0"], name="conv0", kernel_shape=[3, 3], pads=[1, 1, 1, 1]
        )
    ]
    nodes += middle
    nodes.append(helper.make_node("Flatten", ["h1"], ["f"], name="flat", axis=1))
    g = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, hw, hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        inits,
    )
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    # shape of the flattened features, then the classifier
    import onnx.shape_inference as si

    inferred = si.infer_shapes(model)
    feat = [v for v in inferred.graph.value_info if v.name == "f"][0].type.tensor_type.shape.dim[1].dim_value
    g = model.graph
    g.initializer.extend(
        [
            numpy_helper.from_array(rng.standard_normal((3, feat)).astype(np.float32) * 0.3, "wc"),
            numpy_helper.from_array(np.zeros(3, np.float32), "bc"),
        ]
    )
    g.node.append(helper.make_node("Gemm", ["f", "wc", "bc"], ["logits"], name="fc", transB=1))
    path = tmp_path / f"{name}.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def _n(op, ins, outs, **kw):
    return helper.make_node(op, ins, outs, name=f"{op.lower()}_{outs[0]}", **kw)


def _f32(a):
    return np.asarray(a, dtype=np.float32)


_RNG = np.random.default_rng(3)
CASES = {
    "conv_strided_asym_nobias": (
        [_n("Conv", ["h0", "w1"], ["h1"], kernel_shape=[3, 3], strides=[2, 2], pads=[0, 1, 1, 0])],
        [("w1", _f32(_RNG.standard_normal((4, 4, 3, 3)) * 0.3))],
    ),
    "conv_depthwise": (
        [_n("Conv", ["h0", "w1", "b1"], ["h1"], kernel_shape=[3, 3], group=4, pads=[1, 1, 1, 1])],
        [("w1", _f32(_RNG.standard_normal((4, 1, 3, 3)))), ("b1", _f32(_RNG.standard_normal(4)))],
    ),
    "conv_grouped_dilated": (
        [
            _n(
                "Conv",
                ["h0", "w1"],
                ["h1"],
                kernel_shape=[3, 3],
                group=2,
                dilations=[2, 2],
                auto_pad="SAME_UPPER",
            )
        ],
        [("w1", _f32(_RNG.standard_normal((6, 2, 3, 3)) * 0.3))],
    ),
    "batchnorm": (
        [_n("BatchNormalization", ["h0", "s", "b", "m", "v"], ["h1"], epsilon=1e-3)],
        [
            ("s", _f32(_RNG.uniform(0.5, 2, 4))),
            ("b", _f32(_RNG.standard_normal(4))),
            ("m", _f32(_RNG.standard_normal(4))),
            ("v", _f32(_RNG.uniform(0.5, 2, 4))),
        ],
    ),
    "clip_relu6": ([_n("Clip", ["h0", "lo", "hi"], ["h1"])], [("lo", _f32(0.0)), ("hi", _f32(0.5))]),
    "relu_maxpool2_fused": (
        [_n("Relu", ["h0"], ["r"]), _n("MaxPool", ["r"], ["h1"], kernel_shape=[2, 2], strides=[2, 2])],
        [],
    ),
    "maxpool_3x3_s2_p1": (
        [_n("MaxPool", ["h0"], ["h1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        [],
    ),
    "maxpool_ceil_dilated": (
        [_n("MaxPool", ["h0"], ["h1"], kernel_shape=[2, 2], strides=[3, 3], dilations=[2, 1], ceil_mode=1)],
        [],
    ),
    "avgpool_pad_excluded": (
        [_n("AveragePool", ["h0"], ["h1"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],
        [],
    ),
    "avgpool_pad_included_ceil": (
        [
            _n(
                "AveragePool",
                ["h0"],
                ["h1"],
                kernel_shape=[3, 3],
                strides=[2, 2],
                pads=[0, 0, 1, 1],
                count_include_pad=1,
                ceil_mode=1,
            )
        ],
        [],
    ),
    "global_avgpool": ([_n("GlobalAveragePool", ["h0"], ["h1"])], []),
    "residual_add": ([_n("Relu", ["h0"], ["r"]), _n("Add", ["h0", "r"], ["h1"])], []),
    "add_channel_const": ([_n("Add", ["h0", "k"], ["h1"])], [("k", _f32(_RNG.standard_normal((4, 1, 1))))]),
    "identity_dropout": ([_n("Identity", ["h0"], ["i"]), _n("Dropout", ["i"], ["h1"])], []),
    "reshape_then_relu": (
        [_n("Reshape", ["h0", "shp"], ["q"]), _n("Relu", ["q"], ["h1"])],
        [("shp", np.array([0, -1], dtype=np.int64))],
    ),
    "flatten_then_matmul_add": (
        [_n("Flatten", ["h0"], ["q"]), _n("MatMul", ["q", "wm"], ["mm"]), _n("Add", ["mm", "bm"], ["h1"])],
        [("wm", _f32(_RNG.standard_normal((256, 6)) * 0.1)), ("bm", _f32(_RNG.standard_normal(6)))],
    ),
    "gemm_alpha_beta": (
        [
            _n("Flatten", ["h0"], ["q"]),
            _n("Relu", ["q"], ["q2"]),
            _n("Gemm", ["q2", "wg", "cg"], ["h1"], alpha=0.5, beta=2.0),
        ],
        [("wg", _f32(_RNG.standard_normal((256, 6)) * 0.1)), ("cg", _f32(_RNG.standard_normal((1, 6))))],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_backward_matches_finite_differences(tmp_path, case):
    middle, inits = CASES[case]
    net = load_onnx_model(_graph(tmp_path, middle, extra_inits=inits, name=case)).astype(np.float64)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 8, 8, 3))
    y = np.array([0, 2])
    p = net.params.data

    def f():
        return net.loss_and_grad(x, y, mask=[False] * net.n_layers)

    net.loss_and_grad(x, y)
    analytic = net.params.grad.copy()
    _assert_close(analytic, _num_grad(f, p, n_coords=80))
    # every trainable layer gets a gradient at some sampled coordinate
    for lo, hi in net.layer_ranges:
        assert np.any(analytic[lo:hi] != 0)


def test_masked_backward_touches_only_the_masked_layers(tmp_path):
    middle, inits = CASES["batchnorm"]
    net = load_onnx_model(_graph(tmp_path, middle, extra_inits=inits)).astype(np.float64)
    x = np.random.default_rng(0).standard_normal((4, 8, 8, 3))
    y = np.array([0, 1, 2, 0])
    net.loss_and_grad(x, y)
    full = net.params.grad.copy()
    for j in range(net.n_layers):
        net.params.grad[...] = np.nan
        mask = [k == j for k in range(net.n_layers)]
        net.loss_and_grad(x, y, mask)
        for k, (lo, hi) in enumerate(net.layer_ranges):
            if k == j:
                np.testing.assert_allclose(net.params.grad[lo:hi], full[lo:hi], rtol=1e-12, atol=1e-14)
            else:
                assert np.all(np.isnan(net.params.grad[lo:hi]))
