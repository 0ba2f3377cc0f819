"""Hessian-vector products (forward-over-reverse) against finite differences of the gradient."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import hvp as H
from models.hypergrad.hvp import NoHVPError, check_hvp_support, loss_grad_hvp
from models.nets import Network

_U = np.finfo(np.float64).eps / 2
_SLACK = 1e3  # a BLAS reduction may be off by ~n*u*|g| (see tests/test_layers_gradcheck.py)


def _fd_hvp(net, x, y, r, eps=1e-7):
    w0 = net.params.data.copy()
    net.params.data[...] = w0 + eps * r
    _, gp, _ = loss_grad_hvp(net, x, y, r)
    net.params.data[...] = w0 - eps * r
    _, gm, _ = loss_grad_hvp(net, x, y, r)
    net.params.data[...] = w0
    noise = _SLACK * _U * max(np.abs(gp).max(), np.abs(gm).max()) / eps
    return (gp - gm) / (2 * eps), noise


@pytest.mark.parametrize("arch,shape", [("mlp", (12,)), ("cnn-a", (16, 16, 1)),
                                        ("cnn-b", (16, 16, 2)), ("cnn-c", (14, 14, 2))])
def test_network_hvp_matches_finite_differences(arch, shape):
    rng = np.random.default_rng(1)
    net = Network(arch, shape, 4, dtype=np.float64).init(0)
    x, y = rng.standard_normal((8,) + shape), rng.integers(0, 4, 8)
    r = rng.standard_normal(net.params.size)
    loss, g, hr = loss_grad_hvp(net, x, y, r)
    assert loss == pytest.approx(net.loss_and_grad(x, y), rel=1e-12)
    np.testing.assert_allclose(g, net.params.grad, rtol=1e-10, atol=1e-12)
    fd, noise = _fd_hvp(net, x, y, r)
    # truncation ~eps^2 |third derivative| plus rounding noise; eps is small so that no
    # ReLU or max-pool switches within +-eps r (a switch makes the difference meaningless)
    np.testing.assert_allclose(hr, fd, rtol=1e-5, atol=1e-6 * np.abs(fd).max() + 10 * noise)
    assert np.abs(hr).max() > 1e-3  # a non-trivial product


def test_unfused_maxpool_rop_matches_finite_differences():
    rng = np.random.default_rng(2)
    x, rx = rng.standard_normal((2, 5, 7, 3)), rng.standard_normal((2, 5, 7, 3))
    wts = rng.standard_normal((2, 2, 3, 3))
    y, ry, c = H.maxpool2_rop_forward(x, rx)
    eps = 1e-6
    yp, _, _ = H.maxpool2_rop_forward(x + eps * rx, None)
    ym, _, _ = H.maxpool2_rop_forward(x - eps * rx, None)
    np.testing.assert_allclose(ry, (yp - ym) / (2 * eps), rtol=1e-6, atol=1e-9)
    dx, rdx = H.maxpool2_rop_backward(wts, 2 * wts, c)
    assert dx.shape == x.shape and np.array_equal(rdx, 2 * dx)
    assert dx[:, 4].sum() == 0 and dx[:, :, 6].sum() == 0  # odd edges get nothing
    np.testing.assert_allclose((dx * x).sum(), (wts * y).sum(), rtol=1e-12)


def test_layer_without_hvp_is_refused_clearly():
    net = Network("mlp", (6,), 3, dtype=np.float64)

    class Dropout:
        trainable = False
        tensors: list = []

    net.layers.insert(1, Dropout())
    with pytest.raises(NoHVPError, match=r"layer 1 \(Dropout\) has no Hessian-vector product"):
        check_hvp_support(net)
