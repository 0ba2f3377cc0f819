"""Hypergradients (reverse through exactly reversible momentum) against central differences
of the whole unroll in float64: within 1%, on an MLP and a CNN, dense and with sparsity masks."""

from __future__ import annotations

import numpy as np
import pytest

from models.hypergrad.unroll import Schedule, hypergradient, unroll_loss
from models.nets import Network

STEPS = 24
BLOCKS = 3
CASES = [("mlp", (10,), 0.05), ("cnn-a", (16, 16, 1), 0.05)]


def _problem(arch, shape, sparse):
    rng = np.random.default_rng(7)
    net = Network(arch, shape, 3, dtype=np.float64).init(1)
    batches = [(rng.standard_normal((8,) + shape), rng.integers(0, 3, 8)) for _ in range(STEPS)]
    masks = rng.random((STEPS, net.n_layers)) < (0.5 if sparse else 1.1)
    val = (rng.standard_normal((40,) + shape), rng.integers(0, 3, 40))
    return net, net.params.data.copy(), batches, masks, val


def _assert_within_1pct(hg, fd, what):
    hg, fd = np.atleast_1d(hg), np.atleast_1d(fd)
    floor = 1e-3 * np.abs(fd).max()  # components ~0 (a layer a block never updated) compare absolutely
    bad = np.abs(hg - fd) > 0.01 * np.abs(fd) + floor
    assert not bad.any(), f"{what}: hypergradient {hg[bad]} vs finite differences {fd[bad]}"


@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "masked"])
@pytest.mark.parametrize("arch,shape,lr", CASES, ids=[c[0] for c in CASES])
def test_hypergradient_matches_central_differences(arch, shape, lr, sparse):
    net, w0, batches, masks, val = _problem(arch, shape, sparse)
    rng = np.random.default_rng(0)
    sched = Schedule(np.log(lr) + 0.3 * rng.standard_normal((net.n_layers, BLOCKS)),
                     np.array([0.9, 0.8, 0.7]), 1.0)
    hg = hypergradient(net, w0, sched, batches, masks, val)
    assert hg.restored_exactly

    def f(log_lr=sched.log_lr, decay=sched.decay, scale=1.0):
        return unroll_loss(net, w0, Schedule(log_lr, decay, scale), batches, masks, val)

    assert hg.val_loss == pytest.approx(f(), rel=1e-6)
    eps = 1e-5
    fd = np.zeros_like(sched.log_lr)
    for idx in np.ndindex(*fd.shape):
        e = np.zeros_like(fd)
        e[idx] = eps
        fd[idx] = (f(log_lr=sched.log_lr + e) - f(log_lr=sched.log_lr - e)) / (2 * eps)
    _assert_within_1pct(hg.d_log_lr, fd, "d/d log lr")
    assert np.abs(fd).max() > 1e-3
    # decays are exact ratios n / 2**16: step by one quantum (larger steps let ReLUs
    # switch inside +-h over the tens of steps, and a switch spoils the difference)
    h = 1.0 / 2**16
    gam = np.array([sched.effective_decay(b) for b in range(BLOCKS)])
    fdd = np.array([(f(decay=gam + h * np.eye(BLOCKS)[b]) - f(decay=gam - h * np.eye(BLOCKS)[b]))
                    / (2 * h) for b in range(BLOCKS)])
    _assert_within_1pct(hg.d_decay, fdd, "d/d momentum decay")
    fds = (f(scale=1 + eps) - f(scale=1 - eps)) / (2 * eps)
    _assert_within_1pct(hg.d_init_scale, fds, "d/d init scale")
    if sparse:  # a layer outside every mask of a block gets no lr gradient there
        for j in range(net.n_layers):
            for b in range(BLOCKS):
                steps = [t for t in range(STEPS) if sched.block(t, STEPS) == b]
                if not masks[steps, j].any():
                    assert hg.d_log_lr[j, b] == 0.0
