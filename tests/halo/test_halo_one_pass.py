"""HALO's update costs the same NumPy calls whatever the number of tensors (issue 17 item 2)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from kernels.optim_base import StepInfo
from kernels.sparsity import parse_sparsity
from models.halo.controller import Controller
from models.halo.optimizer import Layout, Segment, default_sparsity, make_halo, net_layout
from models.halo.weights import load_weights, shipped_versions
from models.nets import build_network
from models.train import Trainer

V3C = Path(__file__).resolve().parents[2] / "docs/results/metatrain-v3/halo-v3c-rb0.3.npz"
WEIGHTS = [str(p) for p in shipped_versions().values()] + ([str(V3C)] if V3C.exists() else [])


def _layout(n: int, tensors: int) -> Layout:
    starts = np.linspace(0, n, tensors + 1).astype(np.int64)
    depth = np.linspace(1.0, -1.0, tensors)
    return Layout(starts, depth, tuple(f"t{k}" for k in range(tensors)))


def _calls(tensors: int, kernel: str, n: int = 6000):
    """C-function calls (NumPy's and the builtins') and Python calls of one update."""
    opt = make_halo(None, weights=load_weights(), kernel=kernel, layout=_layout(n, tensors))
    state = opt.init(n)
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(np.float32)
    for t in range(3):  # first steps take one-off paths (caches, statistics not yet there)
        opt.update(p, rng.standard_normal(n).astype(np.float32), state,
                   StepInfo(t, t / 10, t + 1, 0, n, 2.0))
    g = rng.standard_normal(n).astype(np.float32)
    counts = {"c_call": 0, "call": 0}

    def prof(frame, event, arg):
        if event in counts:
            counts[event] += 1

    sys.setprofile(prof)
    try:
        opt.update(p, g, state, StepInfo(3, 0.3, 4, 0, n, 1.5))
    finally:
        sys.setprofile(None)
    return counts


@pytest.mark.parametrize("kernel", ["elementwise", "matmul"])
def test_calls_per_step_do_not_grow_with_tensors(kernel):
    """The shipped weights read per-tensor statistics: 6 and 60 tensors, same calls."""
    few, many = _calls(6, kernel), _calls(60, kernel)
    assert few["c_call"] > 20  # the profile saw the update's NumPy calls
    assert many == few


def test_statistics_are_the_strided_samples_in_float64():
    """A segment's sums are those of each tensor's strided sample, gathered at once, also
    for a segment that starts and ends inside tensors."""
    n, tensors, lo, hi = 5000, 4, 700, 4100
    lay = _layout(n, tensors)
    w = load_weights()
    ctrl = Controller(w.theta, w.log_clip, np.diff(lay.starts), lay.depth)
    ctrl.begin_step(0, 1.0)
    seg = Segment.of(lay.starts, lo, hi, ctrl)
    rng = np.random.default_rng(1)
    g, before = rng.standard_normal((2, hi - lo)).astype(np.float32)
    after = (before + 1e-3 * g).astype(np.float32)
    ctrl.gather_segment(seg, g, before[seg.sample], after)
    for k in range(tensors):
        a, b = int(lay.starts[k]), int(lay.starts[k + 1])
        s = int(ctrl.stride[k])
        idx = np.array([i - lo for i in range(a, b, s) if lo <= i < hi], np.int64)
        u = after[idx].astype(np.float64) - before[idx]
        want = [np.sum(g[idx].astype(np.float64) ** 2), np.sum(after[idx].astype(np.float64) ** 2),
                np.sum(u ** 2), idx.size]
        np.testing.assert_allclose(ctrl.acc[:, k], want, rtol=1e-12)


def _train(weights: str, kernel: str, sparse: bool, runs: bool, arch: str = "mlp"):
    """A short Trainer run; ``runs``: the optimizer takes adjacent layers at different
    update counts in one call (False: one call per segment, as before)."""
    shape = (12,) if arch == "mlp" else (16, 16, 1)
    net = build_network(arch, shape, 3, seed=0)
    opt = make_halo(None, weights=weights, kernel=kernel, layout=net_layout(net))
    assert opt.runs
    if not runs:
        opt = opt._replace(runs=False)
    probs = parse_sparsity(default_sparsity({"weights": weights}), net.n_layers) if sparse else None
    calls = []
    update = opt.update

    def counted(p, g, s, info):
        calls.append(len(info.runs))
        update(p, g, s, info)

    tr = Trainer(net, opt._replace(update=counted), probs, seed=2)
    rng = np.random.default_rng(0)
    for t in range(60):
        x = rng.standard_normal((16, *shape)).astype(np.float32)
        tr.step(x, rng.integers(0, 3, 16), t, t / 60)
    return net.params.data, tr.state.m, tr.state.v, calls


@pytest.mark.parametrize("weights", WEIGHTS, ids=[Path(w).stem for w in WEIGHTS])
@pytest.mark.parametrize("kernel", ["elementwise", "matmul"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_adjacent_runs_in_one_call_equal_one_call_per_segment(weights, kernel, sparse):
    """Adjacent layers at different update counts in one call (StepInfo.runs) give the
    per-segment calls' parameters and moments bit for bit."""
    p1, m1, v1, calls1 = _train(weights, kernel, sparse, runs=True)
    p0, m0, v0, calls0 = _train(weights, kernel, sparse, runs=False)
    assert np.array_equal(p1, p0) and np.array_equal(m1, m0) and np.array_equal(v1, v0)
    assert not any(calls0)
    if sparse:  # the runs were used, and saved calls
        assert any(calls1) and len(calls1) < len(calls0)
    else:
        assert not any(calls1) and len(calls1) == len(calls0)


def test_runs_in_one_call_on_a_cnn():
    p1, m1, v1, calls1 = _train(WEIGHTS[-1], "elementwise", True, runs=True, arch="cnn-b")
    p0, m0, v0, _ = _train(WEIGHTS[-1], "elementwise", True, runs=False, arch="cnn-b")
    assert any(calls1)
    assert np.array_equal(p1, p0) and np.array_equal(m1, m0) and np.array_equal(v1, v0)


def test_a_run_must_cover_whole_tensors():
    lay = _layout(100, 4)
    opt = make_halo(None, weights=load_weights(), layout=lay)
    state = opt.init(100)
    p, g = np.zeros(100, np.float32), np.ones(100, np.float32)
    with pytest.raises(ValueError, match="does not start and end at tensors"):
        opt.update(p, g, state, StepInfo(0, 0.0, 1, 0, 100, 1.0, runs=((0, 30, 1), (30, 100, 2))))
    for runs in (((0, 50, 1), (75, 100, 2)), ((0, 50, 1), (50, 75, 2)), ((25, 50, 1), (50, 100, 2))):
        with pytest.raises(ValueError, match="do not cover"):
            opt.update(p, g, state, StepInfo(0, 0.0, 1, 0, 100, 1.0, runs=runs))
