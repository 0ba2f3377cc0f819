"""HALO's update costs the same NumPy calls whatever the number of tensors (issue 17 item 2)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from kernels.optim_base import StepInfo
from models.halo.controller import Controller
from models.halo.optimizer import Layout, Segment, make_halo
from models.halo.weights import load_weights


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
