"""HALO's kernels: elementwise and matmul agree, match the float64 definition, and Adam-like is Adam."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.halo_elementwise import ElementwiseKernel
from kernels.halo_fold import MirrorMLP, adam_like, fold_step, reference_step, untied
from kernels.halo_matmul import MatmulKernel
from kernels.optim_base import StepInfo
from kernels.optimizers import adam
from models.halo.weights import load_weights

B1, B2, EPS = 0.9, 0.999, 1e-8


def _random_mlp(seed: int) -> MirrorMLP:
    rng = np.random.default_rng(seed)
    return MirrorMLP(rng.standard_normal((2, 2)), rng.standard_normal(2) * 0.5,
                     rng.standard_normal(2), rng.standard_normal(2) * 0.3,
                     float(rng.standard_normal() * 0.3))


MLPS = {
    "adam-like": adam_like(),
    "halo (newest shipped)": load_weights().mlp,
    "random": _random_mlp(1),
    "random-neg-bias": _random_mlp(2)._replace(b=np.array([-0.4, -0.2])),
    "pure-axes": _random_mlp(3)._replace(w=np.array([[0.0, 1.3], [-0.8, 0.0]])),
    "direction-only": _random_mlp(4)._replace(mu=np.zeros(2)),
}


def _gradient(rng, n):
    """Gradients over 4 orders of magnitude with random signs, float32 (n,)."""
    return (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 1, n)).astype(np.float32)


def _run(kernel_cls, mlp, n, pieces, steps, chunk, seed=0):
    """Params, m, v after ``steps`` updates, and the last step alone from p = 0."""
    rng = np.random.default_rng(seed)
    k = kernel_cls(mlp, B1, B2, EPS, n, chunk)
    p = rng.standard_normal(n).astype(np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    for c in range(1, steps):
        k.update(p, _gradient(rng, n), m, v, c, pieces)
    g = _gradient(rng, n)
    m_before, v_before = m.copy(), v.copy()
    step = np.zeros(n, np.float32)
    k.update(step, g, m, v, steps, pieces)
    return p, m, v, step, g, m_before, v_before


def _max_rel(a, b, pieces):
    """Largest |a - b| per tensor piece relative to the piece's largest |b|."""
    worst = 0.0
    for lo, hi, _, _ in pieces:
        scale = np.max(np.abs(b[lo:hi]))
        if scale > 0:
            worst = max(worst, float(np.max(np.abs(a[lo:hi] - b[lo:hi])) / scale))
    return worst


PIECES = [(0, 37, 0.01, 1.0), (37, 2500, 0.003, 0.5), (2500, 3001, 0.02, 2.0)]
LAYOUTS = {  # per-tensor gains differ / are shared / one tensor: the kernel's three E plans
    "gains-differ": PIECES,
    "gains-shared": [(a, b, lr, 0.7) for a, b, lr, _ in PIECES],
    "one-tensor": [(0, 3001, 0.01, 1.3)],
}
CASES = [(m, lay) for m in MLPS for lay in LAYOUTS]


@pytest.mark.parametrize("name,layout", CASES)
def test_kernels_agree(name, layout):
    """Same state bit for bit; same step to 2e-6 of each tensor's largest step.

    Each kernel is within 1e-6 of the float64 definition (the next test); their
    float32 roundings differ in order, so against each other the bound is the sum,
    2e-6 (~17 float32 ulps of the largest step).  halo-v2's MLP put the two 1.006e-6
    apart while each stayed under 1e-6 of the definition."""
    mlp, pieces = MLPS[name], LAYOUTS[layout]
    n = pieces[-1][1]
    pe, me, ve, se, *_ = _run(ElementwiseKernel, mlp, n, pieces, 6, chunk=1000)
    pm, mm, vm, sm, *_ = _run(MatmulKernel, mlp, n, pieces, 6, chunk=700)
    assert np.array_equal(me, mm) and np.array_equal(ve, vm)
    assert _max_rel(se.astype(np.float64), sm.astype(np.float64), pieces) < 2e-6
    assert np.max(np.abs(pe - pm)) < 1e-5


@pytest.mark.parametrize("kernel,chunk", [(ElementwiseKernel, 1000), (MatmulKernel, 700)],
                         ids=["elementwise", "matmul"])
@pytest.mark.parametrize("name,layout", CASES)
def test_kernel_matches_definition(name, layout, kernel, chunk):
    """Each folded, chunked kernel equals -lr d max(1 + gamma q, 0) computed in float64."""
    mlp, pieces = MLPS[name], LAYOUTS[layout]
    n = pieces[-1][1]
    count = 6
    _, m, v, step, g, m0, v0 = _run(kernel, mlp, n, pieces, count, chunk=chunk)
    m64 = B1 * m0.astype(np.float64) + g
    v64 = B2 * v0.astype(np.float64) + g.astype(np.float64) ** 2
    m_hat = m64 * (1 - B1) / (1 - B1**count)
    v_hat = v64 * (1 - B2) / (1 - B2**count)
    want = np.concatenate([reference_step(mlp, g[a:b], m_hat[a:b], v_hat[a:b], EPS, lr, gam)
                           for a, b, lr, gam in pieces])
    assert _max_rel(step.astype(np.float64), want, pieces) < 1e-6


def test_adam_like_is_adam():
    """The Adam-like weights reproduce Adam's updates (10 steps, 1e-6 relative)."""
    n = 500
    rng = np.random.default_rng(5)
    p_h = rng.standard_normal(n).astype(np.float32)
    p_a = p_h.copy()
    k = ElementwiseKernel(adam_like(), B1, B2, EPS, n)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    opt = adam(1e-2)
    st = opt.init(n)
    for t in range(10):
        g = _gradient(rng, n)
        k.update(p_h, g, m, v, t + 1, [(0, n, 1e-2, 1.0)])
        opt.update(p_a, g, st, StepInfo(t, t / 10, t + 1, 0, n, 0.0))
        np.testing.assert_allclose(p_h, p_a, rtol=1e-6, atol=1e-7)


def test_untied_form_is_the_mirror_network():
    """untied() gives an ordinary 2-4-2 ReLU MLP; d is odd and q even in the features."""
    mlp = _random_mlp(7)
    w1, b1, w2, b2 = untied(mlp)
    assert w1.shape == (2, 4) and b1.shape == (4,) and w2.shape == (4, 2) and b2.shape == (2,)
    x = np.random.default_rng(0).standard_normal((50, 2))
    out = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    neg = np.maximum(-x @ w1 + b1, 0) @ w2 + b2
    np.testing.assert_allclose(neg[:, 0], -out[:, 0], atol=1e-12)
    np.testing.assert_allclose(neg[:, 1], out[:, 1], atol=1e-12)


def test_zero_direction_moves_only_the_moments():
    mlp = adam_like()._replace(delta=np.zeros(2))
    assert fold_step(mlp, B1, B2, EPS, 3).d_scale == 0.0
    n = 64
    k = ElementwiseKernel(mlp, B1, B2, EPS, n)
    p = np.ones(n, np.float32)
    m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
    k.update(p, np.full(n, 0.5, np.float32), m, v, 1, [(0, n, 0.1, 1.0)])
    assert np.all(p == 1.0) and np.all(m == 0.5) and np.all(v == 0.25)


def test_zero_gradients_stay_finite():
    for cls in (ElementwiseKernel, MatmulKernel):
        n = 100
        k = cls(MLPS["random"], B1, B2, EPS, n)
        p = np.ones(n, np.float32)
        m, v = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for c in range(1, 20):
            k.update(p, np.zeros(n, np.float32), m, v, c, [(0, n, 0.1, 1.0)])
        assert np.all(np.isfinite(p)) and np.all(p == 1.0)
