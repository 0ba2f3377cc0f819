"""The meta-parameter space: named offsets over the start weights, the probability bounds, weight noise."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models.halo.arch import CONTROLLER_FEATURES, HaloWeights
from models.halo.weights import load_weights, shipped_versions
from models.metatrain.space import P_MIN, MetaSpace, coordinate_names, noisy

START_P = (0.1, 0.3, 0.5)


@pytest.fixture(scope="module")
def start() -> HaloWeights:
    return load_weights(shipped_versions()["halo-v0"])


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _space(start, names, probs=START_P) -> MetaSpace:
    return MetaSpace(tuple(names), start, tuple(probs))


def _one(start, name, v, probs=START_P) -> HaloWeights:
    return _space(start, [name], probs).weights([v])


def test_coordinate_names_cover_every_kind():
    names = coordinate_names()
    assert len(names) == len(set(names))
    for f in CONTROLLER_FEATURES:
        assert f"lr.{f}" in names and f"gain.{f}" in names
    for n in ("mlp.w_g", "mlp.w_m", "mlp.b", "mlp.delta", "mlp.mu", "mlp.b_q", "beta1", "beta2",
              "p.first", "p.middle", "p.last"):
        assert n in names
    assert names == coordinate_names()  # stable order


def test_zeros_give_the_start_weights(start):
    space = _space(start, coordinate_names())
    assert space.dim == len(coordinate_names())
    w = space.weights(space.zeros())
    np.testing.assert_array_equal(w.theta, start.theta)
    for k in ("w", "b", "delta", "mu"):
        np.testing.assert_array_equal(getattr(w.mlp, k), getattr(start.mlp, k))
    assert w.mlp.b_q == start.mlp.b_q
    assert w.beta1 == pytest.approx(start.beta1, rel=1e-12)
    assert w.beta2 == pytest.approx(start.beta2, rel=1e-12)
    assert (w.base_lr, w.eps, w.log_clip) == (start.base_lr, start.eps, start.log_clip)
    assert w.update_probabilities == pytest.approx(START_P, rel=1e-12)
    assert w.update_probabilities == pytest.approx(space.start_probabilities, rel=1e-12)


def test_start_probabilities_are_used_at_zero(start):
    w = _space(start, ["p.last"], (0.2, 0.6, 1.0)).weights([0.0])
    assert w.update_probabilities == pytest.approx((0.2, 0.6, 1.0), rel=1e-12)


def test_weights_do_not_mutate_the_start(start):
    theta, w_mlp = start.theta.copy(), np.array(start.mlp.w).copy()
    _space(start, ["lr.bias", "mlp.w_g"]).weights([1.0, 1.0])
    np.testing.assert_array_equal(start.theta, theta)
    np.testing.assert_array_equal(start.mlp.w, w_mlp)


@pytest.mark.parametrize("feature", ["bias", "depth", "loss_trend"])
def test_lr_and_gain_coordinates_move_one_theta_entry(start, feature):
    j = CONTROLLER_FEATURES.index(feature)
    for row, name in ((0, f"lr.{feature}"), (1, f"gain.{feature}")):
        w = _one(start, name, 0.7)
        want = np.array(start.theta, np.float64)
        want[row, j] += 0.7
        np.testing.assert_allclose(w.theta, want, rtol=0, atol=1e-15)
        assert np.count_nonzero(w.theta != start.theta) == 1


def test_lr_depth_and_gain_bias_examples(start):
    d = CONTROLLER_FEATURES.index("depth")
    w = _one(start, "lr.depth", 0.25)
    assert w.theta[0, d] == pytest.approx(start.theta[0, d] + 0.25)
    w = _one(start, "gain.bias", -0.4)
    assert w.theta[1, 0] == pytest.approx(start.theta[1, 0] - 0.4)


@pytest.mark.parametrize("name,arr,idx", [
    ("mlp.w_g", "w", (0, 0)), ("mlp.w_m", "w", (0, 1)), ("mlp.b", "b", (0,)),
    ("mlp.delta", "delta", (0,)), ("mlp.mu", "mu", (0,)),
])
def test_mlp_coordinates_move_the_first_pair(start, name, arr, idx):
    w = _one(start, name, 0.3)
    got, base = np.asarray(getattr(w.mlp, arr)), np.asarray(getattr(start.mlp, arr))
    assert got[idx] == pytest.approx(base[idx] + 0.3)
    mask = np.ones(base.shape, bool)
    mask[idx] = False
    np.testing.assert_array_equal(got[mask], base[mask])  # the other entries are unchanged
    np.testing.assert_array_equal(w.theta, start.theta)
    for other in {"w", "b", "delta", "mu"} - {arr}:
        np.testing.assert_array_equal(getattr(w.mlp, other), getattr(start.mlp, other))


def test_mlp_b_q(start):
    w = _one(start, "mlp.b_q", 0.5)
    assert w.mlp.b_q == pytest.approx(start.mlp.b_q + 0.5)
    np.testing.assert_array_equal(w.mlp.w, start.mlp.w)


@pytest.mark.parametrize("name", ["beta1", "beta2"])
def test_betas_move_in_logit_space(start, name):
    base = getattr(start, name)
    w = _one(start, name, 0.5)
    assert _logit(getattr(w, name)) == pytest.approx(_logit(base) + 0.5, rel=1e-9)
    other = "beta2" if name == "beta1" else "beta1"
    assert getattr(w, other) == pytest.approx(getattr(start, other), rel=1e-12)
    assert 0 < getattr(_one(start, name, 50.0), name) <= 1
    assert 0 <= getattr(_one(start, name, -50.0), name) < base


@pytest.mark.parametrize("name,third", [("p.first", 0), ("p.middle", 1), ("p.last", 2)])
def test_probability_coordinates_move_one_third_in_logit_space(start, name, third):
    w = _one(start, name, 0.8)
    p = w.update_probabilities
    assert _logit(p[third]) == pytest.approx(_logit(START_P[third]) + 0.8, rel=1e-9)
    for k in range(3):
        if k != third:
            assert p[k] == pytest.approx(START_P[k], rel=1e-12)
    np.testing.assert_array_equal(w.theta, start.theta)


def test_probabilities_stay_in_bounds(start):
    low = _one(start, "p.first", -100.0).update_probabilities
    assert low[0] >= P_MIN and low[0] == pytest.approx(P_MIN)
    high = _one(start, "p.first", 100.0).update_probabilities
    assert high[0] <= 1.0 and high[0] == pytest.approx(1.0)
    for v in np.linspace(-20, 20, 41):
        p = _one(start, "p.middle", float(v)).update_probabilities[1]
        assert P_MIN <= p <= 1.0, v
    # a start probability of 1 stays 1 at offset 0 and can be lowered
    assert _one(start, "p.last", 0.0, (0.1, 0.3, 1.0)).update_probabilities[2] == 1.0
    assert _one(start, "p.last", -20.0, (0.1, 0.3, 1.0)).update_probabilities[2] < 0.5


def test_describe_reports_probabilities_and_betas(start):
    space = _space(start, ["p.first", "beta1"])
    d = space.describe([0.0, 0.0])
    assert d["p_first"] == pytest.approx(0.1) and d["p_middle"] == pytest.approx(0.3)
    assert d["p_last"] == pytest.approx(0.5) and d["beta1"] == pytest.approx(start.beta1)


def test_unknown_coordinate_is_named(start):
    with pytest.raises(ValueError, match="lr.nosuch"):
        _space(start, ["lr.bias", "lr.nosuch"])
    with pytest.raises(ValueError, match="'gamma'"):
        _space(start, ["gamma"])


def test_repeated_names_are_refused(start):
    with pytest.raises(ValueError, match="repeated"):
        _space(start, ["lr.bias", "p.first", "lr.bias"])


@pytest.mark.parametrize("probs", [(0.0, 0.3, 0.5), (0.1, 1.5, 0.5), (0.1, 0.3, P_MIN / 2)])
def test_bad_start_probabilities_are_refused(start, probs):
    with pytest.raises(ValueError, match="start_probabilities"):
        _space(start, ["lr.bias"], probs)


@pytest.mark.parametrize("x", [[], [0.0], [0.0, 0.0, 0.0], [[0.0, 0.0]]])
def test_wrong_vector_length_is_refused(start, x):
    space = _space(start, ["lr.bias", "p.first"])
    with pytest.raises(ValueError, match="expected 2 values"):
        space.weights(x)


def test_noisy_keeps_zeros_and_is_seeded(start):
    a = noisy(start, 0.1, np.random.default_rng(3))
    b = noisy(start, 0.1, np.random.default_rng(3))
    c = noisy(start, 0.1, np.random.default_rng(4))
    for name in ("theta",):
        base = np.asarray(getattr(start, name))
        got = np.asarray(getattr(a, name))
        np.testing.assert_array_equal(got[base == 0], 0.0)
        assert np.all(got[base != 0] != base[base != 0])
    for k in ("w", "delta", "mu"):
        base, got = np.asarray(getattr(start.mlp, k)), np.asarray(getattr(a.mlp, k))
        np.testing.assert_array_equal(got[base == 0], 0.0)
        assert np.any(got != base), k
        np.testing.assert_array_equal(got, getattr(b.mlp, k))  # same seed, same noise
    np.testing.assert_array_equal(a.theta, b.theta)
    assert not np.array_equal(a.theta, c.theta)
    # the rest is untouched
    np.testing.assert_array_equal(a.mlp.b, start.mlp.b)
    assert a.mlp.b_q == start.mlp.b_q and a.update_probabilities == start.update_probabilities
    assert (a.beta1, a.beta2, a.base_lr) == (start.beta1, start.beta2, start.base_lr)


def test_noisy_scale_is_relative_to_the_tensor(start):
    rng = np.random.default_rng(0)
    deltas = np.array([noisy(start, 0.05, rng).theta - start.theta for _ in range(400)])
    nz = np.asarray(start.theta) != 0
    rms = np.linalg.norm(start.theta) / np.sqrt(np.asarray(start.theta).size)
    assert np.std(deltas[:, nz]) == pytest.approx(0.05 * rms, rel=0.1)


def test_noisy_with_scale_zero_is_the_identity(start):
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    assert noisy(start, 0.0, rng) is start
    assert rng.bit_generator.state == state  # no draw was spent
