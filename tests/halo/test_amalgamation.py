"""Amalgamation mechanisms and perturbations of the distillation fit (models.halo.distill)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.halo_fold import MirrorMLP
from models.halo.distill import (
    INIT,
    MASK,
    _weighted_loss_and_grad,
    fit,
    loss_and_grad,
    mlp_from_vector,
    teacher_weights,
)


def _rec(seed=0, r=6, n=12, j=3):
    """Records of the real shapes: features, Adam's step, teachers' steps, two tensors."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((r, n, 2))
    teach = rng.standard_normal((r, j, n))
    return {"x": x, "adam_n": -x[..., 1], "teach": teach, "bounds": np.array([0, 5, n]),
            "teach_loss": rng.random((r, j))}


def _mlp(seed=1):
    rng = np.random.default_rng(seed)
    return MirrorMLP(rng.standard_normal((2, 2)), rng.standard_normal(2) * 0.1,
                     rng.standard_normal(2), rng.standard_normal(2) * 0.3, 0.2)


def _flat(m):
    return np.concatenate([np.ravel(a) for a in m])


def test_weighted_path_with_equal_weights_is_the_mean_fit():
    rec, m = _rec(), _mlp()
    a = loss_and_grad(m, rec)
    b = _weighted_loss_and_grad(m, rec, 0.1, "mean")
    assert b[0] == pytest.approx(a[0], rel=1e-12)
    np.testing.assert_allclose(_flat(b[1]), _flat(a[1]), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("mechanism", ["mean", "choice", "minmax"])
def test_gradient_matches_finite_differences(mechanism):
    rec, m = _rec(), _mlp()
    loss, grad, _ = _weighted_loss_and_grad(m, rec, 0.1, mechanism)
    flat, g = _flat(m), _flat(grad)

    def unflat(v):
        return mlp_from_vector(v, m)

    h = 1e-6
    for i in range(flat.size):
        e = np.zeros_like(flat)
        e[i] = h
        fd = (_weighted_loss_and_grad(unflat(flat + e), rec, 0.1, mechanism)[0]
              - _weighted_loss_and_grad(unflat(flat - e), rec, 0.1, mechanism)[0]) / (2 * h)
        assert fd == pytest.approx(g[i], rel=1e-4, abs=1e-7), i


def test_teacher_weights_pick_the_worst_or_the_best_step():
    rec = _rec()
    per = np.array([[0.1, 0.5, 0.2], [0.3, 0.1, 0.2]])
    np.testing.assert_array_equal(teacher_weights("minmax", per, rec), [[0, 1, 0], [1, 0, 0]])
    choice = teacher_weights("choice", per, {"teach_loss": np.array([[3, 1, 2], [0, 5, 9]])})
    np.testing.assert_array_equal(choice, [[0, 1, 0], [1, 0, 0]])
    np.testing.assert_allclose(teacher_weights("mean", per, rec), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="lookahead"):
        teacher_weights("choice", per, {})
    with pytest.raises(ValueError, match="mechanism"):
        teacher_weights("vote", per, rec)


@pytest.mark.parametrize("perturbation", ["fixed", "random", "adversarial"])
@pytest.mark.parametrize("mechanism", ["mean", "minmax", "choice"])
def test_every_fit_lowers_its_loss_and_keeps_the_mask(mechanism, perturbation):
    rec = _rec(r=8, n=20)
    start = _weighted_loss_and_grad(INIT, rec, 0.1, mechanism)[0]
    out = fit(rec, iters=60, lr=0.02, seed=0, log=lambda *_: None, mechanism=mechanism,
              perturbation=perturbation, scale=0.01)
    assert out["loss"] < start
    masked = _flat(MASK) == 0.0
    np.testing.assert_array_equal(_flat(out["mlp"])[masked], _flat(INIT)[masked])


def test_a_bad_perturbation_is_named():
    with pytest.raises(ValueError, match="perturbation"):
        fit(_rec(), iters=1, perturbation="gaussian")
