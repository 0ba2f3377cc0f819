"""Imported ONNX models: parity with onnxruntime, bit-identical training of a re-imported
built-in net, export, board-side budgets, the CLI, and one clear error per bad input."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from agent.cli import main
from kernels.optimizers import make_optimizer
from kernels.sparsity import parse_sparsity
from models.nets import build_network
from models.onnx import OnnxModelError, inspect_onnx, load_onnx_model, save_onnx_model
from models.onnx.builtin import save_network_onnx
from models.onnx.ort import OrtEvaluator, session, to_onnx_layout
from models.registry import build_optimizer
from models.train import Trainer, train_steps

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

FIXTURES = Path(__file__).resolve().parent / "fixtures"
MODELS = ["small-resnet", "mobilenetv2-small"]
REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HALO_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR", "HALO_POWER_METER", "HALO_POWER_ORDER"):
        monkeypatch.delenv(k, raising=False)


def _images(n=16, seed=0, shape=(32, 32, 3)):
    return np.random.default_rng(seed).random((n,) + shape, dtype=np.float32)


def _ort_logits(path_or_bytes, x):
    data = Path(path_or_bytes).read_bytes() if isinstance(path_or_bytes, (str, Path)) else path_or_bytes
    s = session(data)
    return s.run(None, {s.get_inputs()[0].name: to_onnx_layout(x)})[0]


@pytest.mark.parametrize("name", MODELS)
def test_fixture_matches_onnxruntime(name):
    path = FIXTURES / f"{name}.onnx"
    assert path.stat().st_size < 1_000_000
    net = load_onnx_model(path, num_classes=5, input_shape=(32, 32, 3))
    x = _images()
    ours, ref = net.forward(x), _ort_logits(path, x)
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref))
    # bias-only import computes the same function with a far smaller flat buffer
    bias = load_onnx_model(path, trainable="bias")
    np.testing.assert_array_equal(bias.forward(x), ours)
    assert bias.params.size < net.params.size / 10


@pytest.mark.parametrize("opt", ["adam", "halo"])
def test_cnn_b_exported_and_reimported_trains_bit_identically(tmp_path, opt):
    rng = np.random.default_rng(0)
    x = rng.random((256, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 5, 256)
    nets = [build_network("cnn-b", (28, 28, 1), 5, seed=0)]
    nets.append(load_onnx_model(save_network_onnx(nets[0], tmp_path / "cnn-b.onnx")))
    np.testing.assert_array_equal(nets[1].params.data, nets[0].params.data)
    losses = []
    for net in nets:
        o = build_optimizer(
            opt, None, net, {"kernel": "elementwise"} if opt == "halo" else {}, data_dir=tmp_path
        )
        probs = parse_sparsity("halo", net.n_layers)
        losses.append(train_steps(Trainer(net, o, probs, seed=3), x, y, steps=30, batch_size=64, seed=3))
    assert losses[0] == losses[1]
    np.testing.assert_array_equal(nets[0].params.data, nets[1].params.data)


@pytest.mark.parametrize("name", MODELS)
def test_adapted_model_written_as_onnx_matches_the_engine(tmp_path, name):
    src = tmp_path / f"{name}.onnx"
    src.write_bytes((FIXTURES / f"{name}.onnx").read_bytes())
    before = src.read_bytes()
    net = load_onnx_model(src)
    x, y = _images(64, 1), np.random.default_rng(2).integers(0, 5, 64)
    train_steps(Trainer(net, make_optimizer("adam", lr=1e-2)), x, y, steps=3, batch_size=32, seed=0)
    with pytest.raises(OnnxModelError, match="source model"):
        save_onnx_model(src, net)
    out = save_onnx_model(tmp_path / "adapted.onnx", net, {"task": "test"})
    assert src.read_bytes() == before
    ours, ref = net.forward(x), _ort_logits(out, x)
    assert np.max(np.abs(ours - ref)) <= 1e-4 * np.max(np.abs(ref))
    assert OrtEvaluator(net).evaluate(x, y)[0] == net.evaluate(x, y)[0]
    # BatchNormalization statistics are kept; its scale and bias moved
    a, b = onnx.load(str(src)).graph, onnx.load(str(out)).graph
    inits = {t.name: numpy_helper.to_array(t) for t in a.initializer}
    new = {t.name: numpy_helper.to_array(t) for t in b.initializer}
    bn = [n for n in a.node if n.op_type == "BatchNormalization"][0]
    for k in bn.input[3:5]:
        np.testing.assert_array_equal(new[k], inits[k])
    reloaded = load_onnx_model(out)
    np.testing.assert_array_equal(reloaded.params.data, net.params.data)


def test_bias_only_and_last_k_update_only_what_they_say(tmp_path):
    path = FIXTURES / "small-resnet.onnx"
    x, y = _images(64, 3), np.random.default_rng(4).integers(0, 5, 64)
    net = load_onnx_model(path, trainable="bias")
    frozen = {
        n: v.copy()
        for s in net.steps
        for n, v in vars(s).items()
        if n == "w" and isinstance(v, np.ndarray) and s.op_type == "Conv"
    }
    start = net.params.data.copy()
    train_steps(Trainer(net, make_optimizer("adam", lr=1e-2)), x, y, steps=3, batch_size=32, seed=0)
    assert np.all(net.params.data != start)  # every bias-only tensor moved
    out = save_onnx_model(tmp_path / "bias.onnx", net)
    src = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(path)).graph.initializer}
    new = {t.name: numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer}
    convs = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"]
    assert frozen  # conv weights were constants
    for c in convs:
        np.testing.assert_array_equal(new[c.input[1]], src[c.input[1]])
    full = load_onnx_model(path)
    probs = parse_sparsity("last:2", full.n_layers)
    start = full.params.data.copy()
    train_steps(Trainer(full, make_optimizer("adam", lr=1e-2), probs), x, y, steps=3, batch_size=32, seed=0)
    lo = full.layer_ranges[-2][0]
    np.testing.assert_array_equal(full.params.data[:lo], start[:lo])
    assert np.all(full.params.data[lo:] != start[lo:])


# -- errors: one clear message each, nothing written ------------------------------------


def _graph_file(path, nodes, in_dims, out_classes=5, inits=()):
    g = helper.make_graph(
        nodes,
        "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_dims)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", out_classes])],
        list(inits),
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path.write_bytes(m.SerializeToString())
    return path


def _bad_files(tmp_path):
    fixture = (FIXTURES / "small-resnet.onnx").read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(fixture[: len(fixture) // 2])
    (tmp_path / "text.onnx").write_text("this is a README, not a model\n")
    np.savez(tmp_path / "weights.npz", a=np.zeros(3))
    (tmp_path / "npz.onnx").write_bytes((tmp_path / "weights.npz").read_bytes())
    w = numpy_helper.from_array(np.ones((5, 3 * 32 * 32), np.float32), "w")
    _graph_file(
        tmp_path / "unsupported.onnx",
        [
            helper.make_node("Flatten", ["x"], ["f"], name="flat"),
            helper.make_node("Gemm", ["f", "w"], ["z"], name="fc", transB=1),
            helper.make_node("Softmax", ["z"], ["y"], name="probs"),
        ],
        ["N", 3, 32, 32],
        inits=[w],
    )
    _graph_file(
        tmp_path / "dynamic.onnx",
        [
            helper.make_node("GlobalAveragePool", ["x"], ["p"], name="gap"),
            helper.make_node("Flatten", ["p"], ["y"], name="flat"),
        ],
        ["N", 5, "H", "W"],
    )
    return {
        "truncated": "truncated",
        "text": "not an ONNX model",
        "npz": "not an ONNX model",
        "unsupported": "node 'probs' has op type 'Softmax', which is not supported.*supported ops: Add, ",
        "dynamic": r"dynamic dimensions 2 \('H'\), 3 \('W'\)",
    }


def test_bad_files_get_one_clear_error(tmp_path):
    for name, pattern in _bad_files(tmp_path).items():
        with pytest.raises(OnnxModelError, match=pattern):
            load_onnx_model(tmp_path / f"{name}.onnx")
        assert issubclass(OnnxModelError, ValueError)


def test_shape_and_class_mismatch_name_both(tmp_path):
    with pytest.raises(OnnxModelError, match=r"input shape \('N', 3, 32, 32\).*\('N', 1, 28, 28\)"):
        load_onnx_model(FIXTURES / "small-resnet.onnx", input_shape=(28, 28, 1))
    with pytest.raises(OnnxModelError, match="outputs 5 classes; the task has 10"):
        load_onnx_model(FIXTURES / "small-resnet.onnx", num_classes=10)


def _adapt(model, task, data_dir, out, *extra):
    """``halo-agent adapt`` arguments: estimated energy, no idle wait, ``--output-model out``."""
    return ["adapt", "--model", str(model), "--task", task, "--data-dir", str(data_dir),
            "--power-source", "estimate", "--idle-seconds", "0", "--output-model", str(out), *extra]


def test_cli_refuses_bad_models_and_writes_nothing(tmp_path, capsys):
    cases = _bad_files(tmp_path)
    three = save_network_onnx(build_network("cnn-a", (28, 28, 1), 3, seed=0), tmp_path / "three.onnx")
    runs = [(tmp_path / f"{n}.onnx", "synthetic-a", p) for n, p in cases.items()]
    runs += [
        (
            FIXTURES / "small-resnet.onnx",
            "synthetic-a",
            r"input \(28, 28, 1\).*this one has input \(32, 32, 3\)",
        ),
        (three, "synthetic-a", "5 classes for synthetic-a; this one has input .* and 3 classes"),
    ]
    for model, task, pattern in runs:
        out = tmp_path / "out.onnx"
        code = main(_adapt(model, task, tmp_path / "data", out, "--steps", "2"))
        err = capsys.readouterr().err
        assert code == 2, (model, err)
        assert err.count("\n") == 1 and err.startswith("halo-agent: error: ")
        assert re.search(pattern, err), (pattern, err)
        assert not out.exists()


def test_model_inspect(capsys, tmp_path):
    assert main(["model", "inspect", str(FIXTURES / "mobilenetv2-small.onnx"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["supported"] and info["num_classes"] == 5 and info["input_shape_nhwc"] == [32, 32, 3]
    assert info["ops"]["Conv"] == 16 and info["ops"]["Clip"] == 11
    assert info["n_params"] == load_onnx_model(FIXTURES / "mobilenetv2-small.onnx").params.size
    assert len(info["trainable_layers"]) == 33
    _bad_files(tmp_path)
    assert main(["model", "inspect", str(tmp_path / "unsupported.onnx")]) == 1
    text = capsys.readouterr().out
    assert "unsupported: node 'probs' op Softmax" in text
    assert inspect_onnx(tmp_path / "unsupported.onnx")["unsupported"] == [
        {"node": "probs", "op_type": "Softmax"}
    ]


def test_adapt_cli_writes_onnx_that_onnxruntime_scores_as_reported(tmp_path, capsys):
    from models.data import get_task, load_task

    spec = get_task("synthetic-a")
    src = save_network_onnx(
        build_network("cnn-a", spec.input_shape, spec.num_classes, seed=0), tmp_path / "mine.onnx"
    )
    out = tmp_path / "adapted.onnx"
    reports = {}
    for backend in ("numpy", "ort"):
        code = main(_adapt(src, "synthetic-a", tmp_path / "data", out, "--optimizer", "adam", "--steps", "20",
                           "--eval-every", "10", "--eval-backend", backend, "--json"))
        assert code == 0
        reports[backend] = json.loads(capsys.readouterr().out)
    assert [p["accuracy"] for p in reports["ort"]["points"]] == [
        p["accuracy"] for p in reports["numpy"]["points"]
    ]
    data = load_task("synthetic-a", tmp_path / "data")
    logits = _ort_logits(out, data.target_test.x)
    acc = float((logits.argmax(1) == data.target_test.y).mean())
    assert acc == reports["ort"]["final_accuracy"]
    assert reports["ort"]["model_path"] == str(out)


@pytest.mark.slow
def test_adapt_small_resnet_on_cifar10_a_with_halo(tmp_path, capsys):
    if not (SHARED / "cifar10").is_dir():
        pytest.skip(f"CIFAR-10 not in {SHARED}")
    out = tmp_path / "out.onnx"
    code = main(_adapt(FIXTURES / "small-resnet.onnx", "cifar10-a", SHARED, out, "--optimizer", "halo",
                       "--steps", "50", "--eval-every", "25", "--json"))
    assert code == 0
    r = json.loads(capsys.readouterr().out)
    from models.data import load_task

    data = load_task("cifar10-a", SHARED)
    logits = _ort_logits(out, data.target_test.x)
    assert float((logits.argmax(1) == data.target_test.y).mean()) == r["final_accuracy"]


def test_bench_compare_takes_an_onnx_model(tmp_path, capsys):
    from models.data import get_task

    spec = get_task("synthetic-a")
    src = save_network_onnx(build_network("cnn-a", spec.input_shape, spec.num_classes, seed=0),
                            tmp_path / "mine.onnx")
    code = main(["bench", "compare", "--task", "synthetic-a", "--model", str(src), "--optimizers", "adam",
                 "--seeds", "1", "--steps", "4", "--eval-every", "2", "--data-dir", str(tmp_path / "data"),
                 "--power-source", "estimate", "--out", str(tmp_path / "cmp")])
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "cmp" / "report.json").read_text())
    assert report["model"] == str(src)
    assert all(run["source_model"] == str(src) for o in report["optimizers"].values() for run in o["runs"])


def test_bias_mode_trains_the_classifier_weight_and_biases_only(tmp_path):
    """TinyTL on a net with several Gemm layers: every bias, but of the weights only the
    classifier's (the last Gemm/MatMul), are trainable; the others stay as imported."""
    from models.nets import build_network

    net = build_network("mlp", (12,), 3, seed=0)  # dense 64, dense 64, classifier
    path = save_network_onnx(net, tmp_path / "mlp.onnx")
    full = load_onnx_model(path)
    bias = load_onnx_model(path, trainable="bias")
    sizes = {name: int(np.prod(shape)) for name, shape in full.params.specs}
    weights = [n for n, s in full.params.specs if len(s) == 2]
    biases = [n for n, s in full.params.specs if len(s) == 1]
    assert len(weights) == 3
    assert bias.params.size == sizes[weights[-1]] + sum(sizes[b] for b in biases)
    x = np.random.default_rng(0).standard_normal((5, 12)).astype(np.float32)
    np.testing.assert_array_equal(bias.forward(x), full.forward(x))
    y = np.array([0, 1, 2, 0, 1])
    bias.loss_and_grad(x, y)  # frozen hidden weights: their backward still runs
    assert np.all(np.isfinite(bias.params.grad)) and np.any(bias.params.grad != 0)
