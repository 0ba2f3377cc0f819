"""The HALO optimizer: registry, builder options, controller, segments and sparsity, no divergence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kernels.optim_base import StepInfo, array_fields, slice_state
from kernels.sparsity import parse_sparsity, thirds_scheme
from models.halo.arch import CONTROLLER_FEATURES, HaloWeights, adam_like_weights
from models.halo.distill import controller_theta
from models.halo.optimizer import build_halo, flat_layout, make_halo, net_layout
from models.halo.weights import default_weights_path, load_weights
from models.nets import build_network
from models.registry import build_optimizer, default_sparsity, optimizer_names
from models.train import Trainer


def _mlp_net(seed=0):
    return build_network("mlp", (12,), 3, seed=seed)


def test_registered_with_halo_sparsity():
    assert "halo" in optimizer_names()
    # the default sparsity is the one the default (newest shipped) weights were trained for
    assert default_sparsity("halo") == thirds_scheme(load_weights().update_probabilities)
    assert default_sparsity("halo").startswith("thirds:")
    net = _mlp_net()
    opt = build_optimizer("halo", None, net, {"kernel": "elementwise"})
    assert opt.name == "halo"
    hp = opt.hyperparameters
    assert hp["kernel"] == "elementwise" and hp["lr"] == load_weights().base_lr
    assert hp["weights"] == str(default_weights_path())
    assert build_optimizer("halo", 0.003, net, {"kernel": "matmul"}).hyperparameters["lr"] == 0.003


def test_builder_errors(tmp_path):
    net = _mlp_net()
    with pytest.raises(ValueError, match="unknown option 'beta'"):
        build_halo(net, None, {"beta": 0.5})
    with pytest.raises(ValueError, match="kernel"):
        build_halo(net, None, {"kernel": "gpu"})
    with pytest.raises(ValueError, match="lr"):
        build_halo(net, -1.0, {})
    bad = tmp_path / "missing.npz"
    with pytest.raises(ValueError, match=str(bad)):
        build_halo(net, None, {"weights": str(bad)})


def test_layout_covers_every_tensor():
    net = build_network("cnn-b", (28, 28, 1), 5, seed=0)
    lay = net_layout(net)
    assert lay.size == net.params.size and len(lay.names) == len(net.params.specs)
    assert list(lay.starts[1:]) == [net.params.offsets[n][1] for n, _ in net.params.specs]
    # conv1 (first of 3 layers) has depth 2/3, dense (last) -2/3; weight and bias alike
    np.testing.assert_allclose(lay.depth, [2 / 3, 2 / 3, 0, 0, -2 / 3, -2 / 3])


def _theta(**row):
    return controller_theta(row)


def test_controller_sets_per_tensor_learning_rates():
    """Depth and update-rate features move each tensor's lr as the weights say."""
    net = _mlp_net()
    w = adam_like_weights(1e-2)._replace(theta=_theta(depth=np.log(2.0)))
    opt = make_halo(None, weights=w, layout=net_layout(net))
    n = net.params.size
    state = opt.init(n)
    p = np.zeros(n, np.float32)
    g = np.ones(n, np.float32)
    opt.update(p, g, state, StepInfo(0, 0.0, 1, 0, n, 1.0))
    # Adam's first step is lr * sign(g): here -lr_k per tensor, lr_k = 1e-2 * 2^depth
    for (name, _), depth in zip(net.params.specs, net_layout(net).depth):
        lo, hi = net.params.offsets[name]
        np.testing.assert_allclose(p[lo:hi], -1e-2 * 2.0 ** depth, rtol=1e-5)


def test_segments_compose_with_statistics_in_use():
    """Split updates equal one update even when the controller reads lagged statistics."""
    row = {"log_update_ratio": -0.2, "rel_log_grad": -0.3, "loss_trend": -1.0,
           "rel_log_lr": 0.5, "progress": -0.5}
    w = adam_like_weights(1e-2)._replace(theta=_theta(**row))
    opt = make_halo(None, weights=w)
    n = 101
    rng = np.random.default_rng(0)
    p = rng.standard_normal(n).astype(np.float32)
    state = opt.init(n)
    for t in range(4):
        opt.update(p, rng.standard_normal(n).astype(np.float32), state,
                   StepInfo(t, t / 10, t + 1, 0, n, 2.0 - t * 0.1))
    g = rng.standard_normal(n).astype(np.float32)
    info = StepInfo(4, 0.4, 5, 0, n, 1.5)
    full_p, full_s = p.copy(), type(state)(*(a.copy() for a in state))
    opt.update(full_p, g, full_s, info)
    seg_p, seg_s = p.copy(), type(state)(*(a.copy() for a in state))
    for lo, hi in ((0, 40), (40, n)):
        opt.update(seg_p[lo:hi], g[lo:hi], slice_state(seg_s, lo, hi), info._replace(lo=lo, hi=hi))
    assert np.array_equal(seg_p, full_p)
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(array_fields(seg_s),
                                                                array_fields(full_s)))


def test_skipped_layers_keep_their_state():
    """With 10/30/50 masks, a layer's m and v change only on steps that update it."""
    net = _mlp_net()
    opt = make_halo(None, layout=net_layout(net))
    probs = parse_sparsity("halo", net.n_layers)
    tr = Trainer(net, opt, probs, seed=3)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 12)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    for t in range(30):
        mask = tr.next_mask()
        before = [a.copy() for a in tr.state]
        p_before = net.params.data.copy()
        tr.step(x, y, t, t / 30, mask=mask)
        for j, (lo, hi) in enumerate(net.layer_ranges):
            changed = not np.array_equal(tr.state.m[lo:hi], before[0][lo:hi])
            assert changed == bool(mask[j]), (t, j)
            if not mask[j]:
                assert np.array_equal(tr.state.v[lo:hi], before[1][lo:hi])
                assert np.array_equal(net.params.data[lo:hi], p_before[lo:hi])


def test_kernels_give_the_same_training_run():
    net_a, net_b = _mlp_net(), _mlp_net()
    rng = np.random.default_rng(1)
    x = rng.standard_normal((32, 12)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    runs = []
    for net, kernel in ((net_a, "elementwise"), (net_b, "matmul")):
        tr = Trainer(net, make_halo(None, layout=net_layout(net), kernel=kernel),
                     parse_sparsity("halo", 3), seed=0)
        runs.append([tr.step(x, y, t, t / 20) for t in range(20)])
    np.testing.assert_allclose(net_a.params.data, net_b.params.data, rtol=1e-5, atol=1e-6)


def test_never_diverges_on_synthetic_a(tmp_path):
    """halo-v0, no tuning, 10/30/50 sparsity, training from a random init: finite, loss
    falls, accuracy rises (fast).  (halo-v1, meta-trained for fine-tuning pretrained
    models, stalls at chance from this random init; its card says so.)"""
    from models.data import load_task
    from models.halo.weights import shipped_versions
    from models.train import batch_indices

    data = load_task("synthetic-a", tmp_path)
    net = build_network("cnn-a", data.spec.input_shape, data.spec.num_classes, seed=0)
    v0 = {"kernel": "elementwise", "weights": str(shipped_versions()["halo-v0"])}
    tr = Trainer(net, build_halo(net, None, v0),
                 parse_sparsity("halo", net.n_layers), seed=0)
    xt, yt = data.target_train.x, data.target_train.y
    acc0 = net.evaluate(data.target_test.x, data.target_test.y)[0]
    it = batch_indices(xt.shape[0], 64, 0)
    losses = []
    steps = 150
    for t in range(steps):
        idx = next(it)
        loss = tr.step(xt[idx], yt[idx], t, t / steps)
        if loss is not None:
            assert math.isfinite(loss)
            losses.append(loss)
    assert np.all(np.isfinite(net.params.data))
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    assert net.evaluate(data.target_test.x, data.target_test.y)[0] > acc0 + 0.3


def test_flat_layout_and_hyperparameters():
    opt = make_halo(1e-3, kernel="matmul")
    state = opt.init(10)
    assert state._fields == ("m", "v", "tensors") and state.m.shape == (10,)
    assert flat_layout(10).size == 10
    assert opt.hyperparameters["kernel"] == "matmul"


def test_gain_row_scales_the_learned_magnitude():
    """With the gain at 0 the magnitude output is ignored: the step is lr * d."""
    w = load_weights()._replace(validation=None)  # no level: its start offset would scale w1 only
    theta = w.theta.copy()
    theta[1, CONTROLLER_FEATURES.index("bias")] = -w.log_clip  # gain = exp(-C), tiny
    w0 = HaloWeights(w.mlp._replace(mu=np.zeros(2), b_q=0.0), theta, 1e-2)
    w1 = w._replace(theta=theta, base_lr=1e-2)
    n = 50
    rng = np.random.default_rng(2)
    g = rng.standard_normal(n).astype(np.float32)
    steps = []
    for ww in (w0, w1):
        opt = make_halo(None, weights=ww)
        p = np.zeros(n, np.float32)
        opt.update(p, g, opt.init(n), StepInfo(0, 0.0, 1, 0, n, 1.0))
        steps.append(p)
    gain = math.exp(-w.log_clip)
    np.testing.assert_allclose(steps[1], steps[0], rtol=gain * 5, atol=1e-9)


def test_controller_fast_path_matches_its_definition():
    """scalars() equals exp(clip(features @ theta.T)) with every feature in use."""
    from models.halo.controller import Controller

    rng = np.random.default_rng(4)
    theta = rng.standard_normal((2, len(CONTROLLER_FEATURES))) * 0.3
    sizes = [50, 7, 3000, 20]
    ctrl = Controller(theta, 3.0, sizes, [0.5, 0.5, -0.5, -0.5])
    ids = np.arange(4)
    for step in range(6):
        ctrl.begin_step(step, 2.0 / (step + 1))
        phi = ctrl.features(ids, step + 1, step / 6)
        want = np.exp(np.clip(phi @ theta.T, -3.0, 3.0))
        mult, gain = ctrl.scalars(ids, step + 1, step / 6)
        np.testing.assert_allclose(mult, want[:, 0], rtol=1e-12)
        np.testing.assert_allclose(gain, want[:, 1], rtol=1e-12)
        for k, size in enumerate(sizes):
            sl = ctrl.sample_slice(k, 0, 0, size)
            x = rng.standard_normal(size)
            ctrl.gather(k, x[sl], x[sl], x[sl] * 0.99)
    assert np.all(ctrl.have)  # the statistics were gathered and used


def test_one_optimizer_drives_two_runs_from_their_own_states():
    """The controller's per-tensor numbers live in the state (as optax keeps them): two
    runs of one optimizer, interleaved step by step, equal two optimizers' runs."""
    from models.halo.weights import load_weights

    w = load_weights()  # the newest shipped: per-tensor statistics and the loss trend are used
    n = 64
    rng = np.random.default_rng(3)
    grads = [rng.standard_normal(n).astype(np.float32) for _ in range(6)]

    def info(t, loss):
        return StepInfo(t, t / 6, t + 1, 0, n, loss)

    shared = make_halo(weights=w, kernel="elementwise")
    pa, pb = np.zeros(n, np.float32), np.ones(n, np.float32)
    sa, sb = shared.init(n), shared.init(n)
    for t, g in enumerate(grads):
        shared.update(pa, g, sa, info(t, 2.0 - 0.1 * t))
        shared.update(pb, -g, sb, info(t, 1.0 + 0.2 * t))
    for p0, sign, loss in ((0.0, 1.0, lambda t: 2.0 - 0.1 * t), (1.0, -1.0, lambda t: 1.0 + 0.2 * t)):
        own = make_halo(weights=w, kernel="elementwise")
        p, s = np.full(n, p0, np.float32), own.init(n)
        for t, g in enumerate(grads):
            own.update(p, sign * g, s, info(t, loss(t)))
        np.testing.assert_array_equal(p, pa if p0 == 0.0 else pb)


def test_a_copied_state_runs_on_as_the_original():
    """``HaloState.tensors.copy()`` (a deep copy) keeps working for many steps: the
    controller's cached views are remade for the copy, not left pointing at the original."""
    w = load_weights(default_weights_path())
    n = 300
    lay = flat_layout(n)._replace(starts=np.array([0, 100, 250, 300]), depth=np.array([1.0, 0.0, -1.0]),
                                  names=("a", "b", "c"))
    opt = make_halo(None, weights=w, layout=lay)
    rng = np.random.default_rng(5)
    gs = rng.standard_normal((12, n)).astype(np.float32)
    p = rng.standard_normal(n).astype(np.float32)
    state = opt.init(n)
    for t in range(4):
        opt.update(p, gs[t], state, StepInfo(t, t / 12, t + 1, 0, n, 1.0))
    p2, state2 = p.copy(), type(state)(*(a.copy() for a in state))
    for t in range(4, 12):
        opt.update(p, gs[t], state, StepInfo(t, t / 12, t + 1, 0, n, 1.0))
    for t in range(4, 12):
        opt.update(p2, gs[t], state2, StepInfo(t, t / 12, t + 1, 0, n, 1.0))
    assert np.array_equal(p, p2) and np.array_equal(state.m, state2.m)
