"""Exactly reversible SGD with momentum: the reversal restores weights and velocity bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from bench.reversal import reversal_check
from kernels.reversible import (
    InfoBuffer,
    ReversibleMomentum,
    ReversibleOverflow,
    bits_lost_per_step,
    rational_decay,
)


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
    assert buf.is_empty() and buf.store.dtype == np.int64  # 7.6 bits each: stayed small


def test_buffer_grows_past_int64_exactly():
    """A decay of 1/65536 loses 16 bits a step: after 8 steps the buffer needs Python
    integers (128 bits an element), and the reversal is still exact."""
    rng = np.random.default_rng(1)
    c = rng.integers(-2**60, 2**60, size=100)
    orig = c.copy()
    buf = InfoBuffer(c.size)
    for _ in range(8):
        buf.mul_ratio(c, 0, 60, 1, 65536)
        buf.mul_ratio(c, 60, 100, 3, 4)
    assert buf.store.dtype == object and buf.bits() > 60 * 100
    for _ in range(8):
        buf.div_ratio(c, 60, 100, 3, 4)
        buf.div_ratio(c, 0, 60, 1, 65536)
    assert np.array_equal(c, orig) and buf.is_empty()


def test_rational_decay_rejects_out_of_range():
    assert rational_decay(0.9) == (58982, 65536)
    for bad in (0.0, 1.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="momentum decay"):
            rational_decay(bad)


def test_overflow_is_a_clear_error():
    rm = ReversibleMomentum(np.zeros(4))
    with pytest.raises(ReversibleOverflow, match="gradient: value"):
        rm.forward(np.array([0.0, 1e30, 0.0, 0.0]), [(0, 4)], [0.1], [(1, 2)])


@pytest.mark.parametrize("steps,update_p", [(500, 1.0), (500, 0.5)], ids=["dense", "sparse"])
def test_cnn_a_reverses_bit_for_bit(steps, update_p):
    r = reversal_check("cnn-a", steps, update_p)
    assert r["max_weight_change"] > 1e-3                      # training did move the weights
    assert r["weights_restored_bit_for_bit"] and r["velocity_restored_bit_for_bit"]
    assert r["buffer_empty_after_reversal"]                   # every stored digit was given back
    # the buffer holds ~log2(1/gamma) = 0.152 bits per element update, not 64 bits
    lost = bits_lost_per_step(0.9)
    assert 0.5 * lost < r["buffer_bits_per_element_update"] < 2 * lost + 0.05
    print(f"cnn-a {steps} steps (update p {update_p}): information buffer {r['buffer_bits']} bits "
          f"= {r['buffer_kib']} KiB for {r['element_updates']} element updates")
