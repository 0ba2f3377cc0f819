"""Exactly reversible SGD with momentum: the reversal restores weights and velocity bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.reversible import (
    InfoBuffer,
    ReversibleMomentum,
    ReversibleOverflow,
    bits_lost_per_step,
    rational_decay,
)
from models.nets import Network
from models.train import batch_indices


def test_ratio_multiplication_is_exactly_invertible():
    rng = np.random.default_rng(0)
    c = rng.integers(-2**50, 2**50, size=1000)
    orig = c.copy()
    buf = InfoBuffer(c.size)
    for _ in range(50):
        buf.mul_ratio(c, 0, c.size, 58982, 65536)
    # the value is the product to within the numerator's rounding, per step
    assert np.all(np.abs(c - orig * (58982 / 65536) ** 50) < 50 * 65536)
    for _ in range(50):
        buf.div_ratio(c, 0, c.size, 58982, 65536)
    assert np.array_equal(c, orig)
    assert all(v == 0 for v in buf.store)


def test_rational_decay_rejects_out_of_range():
    assert rational_decay(0.9) == (58982, 65536)
    for bad in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="momentum decay"):
            rational_decay(bad)


def test_overflow_is_a_clear_error():
    rm = ReversibleMomentum(np.zeros(4))
    with pytest.raises(ReversibleOverflow, match="gradient: value"):
        rm.forward(np.array([0.0, 1e30, 0.0, 0.0]), [(0, 4)], [0.1], [(1, 2)])


def _unroll_cnn_a(steps: int, sparse: bool):
    """cnn-a on 28x28 random images (MNIST's shape), per-layer lrs, a mask stream."""
    rng = np.random.default_rng(3)
    net = Network("cnn-a", (28, 28, 1), 10).init(0)  # float32, as the engine runs it
    x = rng.standard_normal((128, 28, 28, 1)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    it = batch_indices(128, 8, 0)
    batches = [next(it) for _ in range(steps)]
    masks = rng.random((steps, net.n_layers)) < (0.5 if sparse else 1.1)
    lrs = [0.02, 0.01, 0.005]
    decay = rational_decay(0.9)
    rm = ReversibleMomentum(net.params.data)
    w0, v0 = rm.w.copy(), rm.v.copy()

    def plan(t):
        js = [j for j in range(net.n_layers) if masks[t, j]]
        return [net.layer_ranges[j] for j in js], [lrs[j] for j in js], [decay] * len(js)

    def grad(t, w):
        net.params.data[...] = w
        net.loss_and_grad(x[batches[t]], y[batches[t]], masks[t])
        return net.params.grad.astype(np.float64)

    for t in range(steps):
        segs, lr, dec = plan(t)
        rm.forward(grad(t, rm.weights), segs, lr, dec)
    moved = float(np.abs(rm.w - w0).max()) / 2.0**44
    bits = rm.buffer_bits()
    updates = int(sum(net.layer_ranges[j][1] - net.layer_ranges[j][0]
                      for t in range(steps) for j in range(net.n_layers) if masks[t, j]))
    for t in range(steps - 1, -1, -1):
        segs, lr, dec = plan(t)
        rm.reverse(lambda w, t=t: grad(t, w), segs, lr, dec)
    return rm, w0, v0, bits, updates, moved


@pytest.mark.parametrize("steps,sparse", [
    (500, False), (100, True), pytest.param(500, True, marks=pytest.mark.slow)],
    ids=["dense-500", "sparse-100", "sparse-500"])
def test_cnn_a_reverses_bit_for_bit(steps, sparse):
    rm, w0, v0, bits, updates, moved = _unroll_cnn_a(steps, sparse)
    assert moved > 1e-3                      # training did move the weights
    assert np.array_equal(rm.w, w0) and np.array_equal(rm.v, v0)
    assert all(v == 0 for v in rm.info.store)  # every stored digit was given back
    # the buffer holds ~log2(1/gamma) = 0.152 bits per element update, not 64 bits
    per_update = bits / updates
    assert 0.5 * bits_lost_per_step(0.9) < per_update < 2 * bits_lost_per_step(0.9) + 0.05
    print(f"cnn-a {steps} steps ({'sparse' if sparse else 'dense'}): information buffer "
          f"{bits} bits = {bits / 8192:.1f} KiB for {updates} element updates "
          f"({per_update:.3f} bits each; float64 weights of every step would be "
          f"{64 * updates} bits)")
