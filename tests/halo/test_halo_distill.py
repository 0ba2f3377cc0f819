"""Distillation: the hand-written gradient is right, and the fit moves towards the teachers."""

from __future__ import annotations

import numpy as np
import pytest

from kernels.halo_fold import MirrorMLP
from models.halo.distill import INIT, fit, loss_and_grad, mlp_from_vector


def _records(seed=0, r=4, n=60, j=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((r, n, 2))
    # teachers: the gradient feature, the momentum feature, and a sign-agreement mix
    teach = np.stack([-x[..., 0], -x[..., 1],
                      -x[..., 0] * (1 + np.tanh(x[..., 0]) * np.tanh(x[..., 1]))], axis=1)
    return {"x": x, "teach": teach[:, :j], "adam_n": -x[..., 1],
            "bounds": np.array([0, 20, 23, n])}


def _flat(m):
    return np.concatenate([np.ravel(a) for a in m])


def _unflat(vec, like):
    return mlp_from_vector(vec, like)


def test_gradient_matches_finite_differences():
    rng = np.random.default_rng(1)
    rec = _records()
    mlp = MirrorMLP(rng.standard_normal((2, 2)), rng.standard_normal(2) * 0.3,
                    rng.standard_normal(2), rng.standard_normal(2) * 0.3, 0.2)
    _, grad, _ = loss_and_grad(mlp, rec)
    v, gv = _flat(mlp), _flat(grad)
    for i in range(v.size):
        e = np.zeros_like(v)
        e[i] = 1e-6
        fd = (loss_and_grad(_unflat(v + e, mlp), rec)[0]
              - loss_and_grad(_unflat(v - e, mlp), rec)[0]) / 2e-6
        assert fd == pytest.approx(gv[i], rel=1e-4, abs=1e-7), i


def test_fit_reduces_the_loss():
    rec = _records()
    before = loss_and_grad(INIT, rec)[0]
    out = fit(rec, iters=60, lr=0.05, log=lambda *_: None)
    assert out["loss"] < before - 0.02
    mlp = out["mlp"]
    assert np.all(mlp.b == 0.0) and np.all(mlp.w[1] == 0.0)  # masked weights stay put
    assert mlp.delta[1] == 0.0 and mlp.mu[1] == 0.0 and mlp.mu[0] != 0.0


@pytest.mark.slow
def test_reproduces_the_shipped_weights(tmp_path):
    """The documented command rebuilds halo-v0.npz's arrays from seed 0 (needs MNIST)."""
    from models.data import resolve_data_dir
    from models.halo.distill import main
    from models.halo.weights import shipped_versions

    data_dir = resolve_data_dir(None)
    if not (data_dir / "mnist").exists():
        pytest.skip(f"no MNIST under {data_dir} (set HALO_DATA_DIR)")
    out = tmp_path / "v0.npz"
    assert main(["--out", str(out), "--data-dir", str(data_dir), "--seed", "0"]) == 0
    # halo-v0 is the distilled release (later ones are meta-trained from it)
    with np.load(out) as a, np.load(shipped_versions()["halo-v0"]) as b:
        # files written today always carry the update probabilities; the shipped v0
        # predates that field, and its absence means HALO's 10/30/50
        assert set(a.files) - set(b.files) <= {"update_probabilities"}
        np.testing.assert_allclose(a["update_probabilities"], [0.1, 0.3, 0.5])
        for k in b.files:
            np.testing.assert_allclose(a[k].astype(float) if a[k].dtype.kind == "f" else 0,
                                       b[k].astype(float) if b[k].dtype.kind == "f" else 0,
                                       rtol=1e-6, atol=1e-9, err_msg=k)
