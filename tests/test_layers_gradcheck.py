"""Finite-difference checks (float64) of every layer's backward pass and of the masked backward."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from kernels import layers as K
from models.nets import Network, architectures

#: Unit roundoff of float64.
_U = np.finfo(np.float64).eps / 2
#: How many roundoffs one evaluation of f may be off by: a BLAS kernel sums the
#: hundreds of products of a reduction in its own blocking and FMA order, so two
#: machines (or two OpenBLAS kernels) agree on f only to ~n*u*|f|, not to u*|f|.
_REDUCTION_SLACK = 1e3


class FiniteDiff(NamedTuple):
    grads: dict
    noise: float


def _num_grad(f, x, eps=1e-6, n_coords=40, rng=None) -> FiniteDiff:
    """Central differences of scalar f at up to n_coords random coordinates of x.

    ``noise`` bounds the rounding error of each difference: the two evaluations of f
    are each off by up to ``_REDUCTION_SLACK * u * |f|``, and their difference is
    divided by ``2 * eps``.  The truncation error (eps**2 times the third derivative
    over 6, ~1e-12) is far below it; the layers are smooth except at ReLU/max-pool
    kinks, which random normal inputs hit within eps with negligible probability.
    At |f| ~ 74 a difference is therefore good only to ~1e-8 absolute whatever the
    backward does, so a fixed absolute tolerance of 1e-9 fails on BLAS kernels that
    sum in another order, while ``noise`` (~8e-6 there) is still five orders of
    magnitude below a wrong gradient's error, which is of the order of |g| ~ 1.
    """
    rng = rng or np.random.default_rng(0)
    idx = rng.choice(x.size, size=min(n_coords, x.size), replace=False)
    out = {}
    flat = x.reshape(-1)
    scale = abs(f())
    for i in idx:
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        out[int(i)] = (fp - fm) / (2 * eps)
        scale = max(scale, abs(fp), abs(fm))
    return FiniteDiff(out, _REDUCTION_SLACK * _U * max(scale, 1.0) / eps)


def _assert_close(analytic, numeric: FiniteDiff, rtol=1e-6):
    """Relative agreement to rtol, or agreement within the difference's rounding noise."""
    a = analytic.reshape(-1)
    for i, g in numeric.grads.items():
        diff = abs(a[i] - g)
        assert diff <= rtol * (abs(a[i]) + abs(g)) or diff <= numeric.noise, (i, a[i], g, numeric.noise)


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("cin,cout,k", [(1, 3, 3), (5, 4, 5), (3, 2, 3)])
def test_conv2d_backward(padding, cin, cout, k):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 6, cin))
    w = rng.standard_normal((k, k, cin, cout))
    b = rng.standard_normal(cout)
    wb = K.pack_conv(w, b)
    r = rng.standard_normal(K.conv2d_forward(x, wb, k, padding)[0].shape)

    def f():
        return float((K.conv2d_forward(x, wb, k, padding)[0] * r).sum())

    out, cache = K.conv2d_forward(x, wb, k, padding, ws={})
    dwb = np.zeros_like(wb)
    dx = K.conv2d_backward(r, cache, dwb, need_dx=True)
    _assert_close(dx, _num_grad(f, x))
    _assert_close(dwb, _num_grad(f, wb, n_coords=60))
    # the packed view: the weight rows then the bias row
    np.testing.assert_array_equal(wb[:-1].reshape(w.shape), w)


def test_conv2d_matches_direct_loop():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 5, 5, 2))
    w = rng.standard_normal((3, 3, 2, 3))
    b = rng.standard_normal(3)
    out, _ = K.conv2d_forward(x, K.pack_conv(w, b), 3, "valid")
    ref = np.zeros((1, 3, 3, 3))
    for i in range(3):
        for j in range(3):
            ref[0, i, j] = np.tensordot(x[0, i:i + 3, j:j + 3, :], w, axes=3) + b
    np.testing.assert_allclose(out, ref, rtol=1e-12)


@pytest.mark.parametrize("shape", [(2, 6, 6, 3), (2, 7, 5, 2)])
def test_maxpool_and_relu_backward(shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(K.maxpool2_forward(x)[0].shape)

    def f():
        return float((K.maxpool2_forward(K.relu_forward(x)[0])[0] * r).sum())

    a, ca = K.relu_forward(x, ws={})
    p, cp = K.maxpool2_forward(a, ws={})
    dx = K.relu_backward(K.maxpool2_backward(r, cp), ca)
    _assert_close(dx, _num_grad(f, x, n_coords=60))
    fused, cf = K.relu_maxpool2_forward(x, ws={})
    np.testing.assert_array_equal(fused, p)
    np.testing.assert_allclose(K.relu_maxpool2_backward(r, cf), dx, rtol=1e-12)


def test_dense_and_softmax_ce_backward():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 7))
    w = rng.standard_normal((7, 4))
    b = rng.standard_normal(4)
    y = rng.integers(0, 4, size=5)

    def f():
        return K.softmax_cross_entropy(K.dense_forward(x, w, b)[0], y)[0]

    logits, cache = K.dense_forward(x, w, b, ws={})
    _, dlogits = K.softmax_cross_entropy(logits, y)
    dw, db = np.zeros_like(w), np.zeros_like(b)
    dx = K.dense_backward(dlogits, cache, dw, db, need_dx=True)
    for arr, an in ((x, dx), (w, dw), (b, db)):
        _assert_close(an, _num_grad(f, arr))


def test_im2col_writes_through_a_view_with_a_ones_column():
    ws = {}
    x = np.arange(2 * 5 * 5 * 6, dtype=np.float32).reshape(2, 5, 5, 6)
    cols = K.im2col(x, 3, 3, ws, "cols")
    assert cols.shape == (2 * 3 * 3, 3 * 3 * 6 + 1)
    assert np.all(cols[:, -1] == 1.0)
    np.testing.assert_array_equal(cols[0, :-1].reshape(3, 3, 6), x[0, :3, :3, :])


def test_softmax_ce_is_stable_for_huge_logits():
    loss, g = K.softmax_cross_entropy(np.array([[1e4, 0.0, -1e4]]), np.array([0]))
    assert np.isfinite(loss) and np.all(np.isfinite(g))


def _net64(arch):
    shape = (26,) if arch == "mlp" else (16, 16, 1)
    net = Network(arch, shape, 3, dtype=np.float64).init(5)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4,) + shape)
    y = rng.integers(0, 3, size=4)
    return net, x, y


@pytest.mark.parametrize("arch", architectures())
def test_network_gradient_matches_finite_differences(arch):
    if arch == "cnn-c":
        shape = (20, 20, 1)
        net = Network(arch, shape, 3, dtype=np.float64).init(5)
        rng = np.random.default_rng(6)
        x, y = rng.standard_normal((3,) + shape), rng.integers(0, 3, size=3)
    else:
        net, x, y = _net64(arch)
    net.loss_and_grad(x, y)
    g = net.params.grad.copy()

    def f():
        return K.softmax_cross_entropy(net.forward(x), y)[0]

    for lo, hi in net.layer_ranges:
        seg = net.params.data[lo:hi]
        _assert_close(g[lo:hi], _num_grad(f, seg, n_coords=12))


@pytest.mark.parametrize("arch", ["cnn-a", "mlp"])
@pytest.mark.parametrize("mask", [(False, True, False), (True, False, True), (False, False, True),
                                  (False, True, True)])
def test_masked_backward_matches_full_and_leaves_others(arch, mask):
    net, x, y = _net64(arch)
    net.loss_and_grad(x, y)
    full = net.params.grad.copy()
    net.params.grad[...] = 12345.0
    net.loss_and_grad(x, y, mask=list(mask))
    for j, (lo, hi) in enumerate(net.layer_ranges):
        if mask[j]:
            np.testing.assert_allclose(net.params.grad[lo:hi], full[lo:hi], rtol=1e-12)
        else:
            assert np.all(net.params.grad[lo:hi] == 12345.0), f"layer {j} gradient was touched"


def test_masked_backward_stops_below_lowest_updated_layer(monkeypatch):
    net, x, y = _net64("cnn-a")
    calls = []
    orig = K.conv2d_backward

    def spy(dout, cache, dwb, need_dx):
        calls.append((dwb is not None, need_dx))
        return orig(dout, cache, dwb, need_dx)

    monkeypatch.setattr(K, "conv2d_backward", spy)
    net.loss_and_grad(x, y, mask=[False, True, True])
    # conv2 computes dW but no dX; conv1 is never visited
    assert calls == [(True, False)]
    calls.clear()
    net.loss_and_grad(x, y, mask=[False, False, True])
    assert calls == []
