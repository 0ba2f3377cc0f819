"""HALO weights files: round trip, the shipped versions and their cards, update probabilities, errors
that name the path, the default sparsity the weights give."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from kernels.halo_fold import MirrorMLP
from kernels.sparsity import thirds_scheme
from models.halo.arch import CONTROLLER_FEATURES, FORMAT, HaloWeights, adam_like_weights, check_weights
from models.halo.weights import (
    card_path,
    default_weights_path,
    load_weights,
    save_weights,
    shipped_versions,
    weights_dir,
)
from models.registry import default_sparsity


def _weights() -> HaloWeights:
    rng = np.random.default_rng(0)
    mlp = MirrorMLP(rng.standard_normal((2, 2)), rng.standard_normal(2),
                    rng.standard_normal(2), rng.standard_normal(2), 0.25)
    return HaloWeights(mlp, rng.standard_normal((2, len(CONTROLLER_FEATURES))), 3e-3,
                       beta1=0.8, beta2=0.99, eps=1e-7, log_clip=2.0)


def test_round_trip(tmp_path):
    w = _weights()
    path = save_weights(tmp_path / "w.npz", w, {"name": "w"})
    back = load_weights(path)
    for a, b in zip(w.mlp, back.mlp):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(w.theta, back.theta)
    assert (back.base_lr, back.beta1, back.beta2, back.eps, back.log_clip) == (
        3e-3, 0.8, 0.99, 1e-7, 2.0)
    assert json.loads(card_path(path).read_text()) == {"name": "w"}


def test_shipped_halo_v0():
    path = shipped_versions()["halo-v0"]
    assert path.name == "halo-v0.npz" and path.exists()
    assert path.stat().st_size < 8192
    w = load_weights(path)
    assert w.base_lr > 0 and np.all(np.isfinite(w.theta))
    assert w.update_probabilities == (0.1, 0.3, 0.5)  # HALO's 10/30/50 (no array in the file)
    card = json.loads(card_path(path).read_text())
    for key in ("name", "format", "architecture", "provenance", "distillation", "evaluation"):
        assert key in card, key
    assert card["format"] == FORMAT
    assert "python -m models.halo.distill" in card["provenance"]["command"]
    assert card["architecture"]["controller_features"] == list(CONTROLLER_FEATURES)


def test_shipped_versions_and_the_default_is_the_newest():
    versions = shipped_versions()
    assert "halo-v0" in versions
    listed = {int(m.group(1)): p for p in weights_dir().iterdir()
              if (m := re.fullmatch(r"halo-v(\d+)\.npz", p.name))}
    assert sorted(versions) == sorted(f"halo-v{n}" for n in listed)
    assert [int(k[len("halo-v"):]) for k in versions] == sorted(listed)  # oldest first
    newest = listed[max(listed)]
    assert default_weights_path() == newest
    for name, path in versions.items():
        assert path.name == f"{name}.npz" and path.exists()
        w = load_weights(path)
        assert len(w.update_probabilities) == 3 and all(0 < p <= 1 for p in w.update_probabilities)
        assert card_path(path).exists(), name
    # load_weights() with no path reads the newest
    np.testing.assert_array_equal(load_weights().theta, load_weights(newest).theta)
    assert load_weights().update_probabilities == load_weights(newest).update_probabilities


def test_update_probabilities_round_trip(tmp_path):
    w = _weights()._replace(update_probabilities=(0.3, 0.8, 0.95))
    path = save_weights(tmp_path / "p.npz", w)
    back = load_weights(path)
    assert back.update_probabilities == (0.3, 0.8, 0.95)
    assert all(isinstance(p, float) for p in back.update_probabilities)
    np.testing.assert_array_equal(back.theta, w.theta)
    with np.load(path) as z:
        np.testing.assert_array_equal(z["update_probabilities"], [0.3, 0.8, 0.95])


def test_file_without_update_probabilities_means_halo_thirds(tmp_path):
    good = save_weights(tmp_path / "good.npz", _weights()._replace(update_probabilities=(0.3, 0.8, 0.95)))
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files if k != "update_probabilities"}
    assert set(arrays) == {"format", "mlp_w", "mlp_b", "mlp_delta", "mlp_mu", "mlp_b_q", "theta",
                           "base_lr", "beta1", "beta2", "eps", "log_clip"}
    old = tmp_path / "old.npz"
    np.savez(old, **arrays)
    w = load_weights(old)
    assert w.update_probabilities == (0.1, 0.3, 0.5)
    np.testing.assert_array_equal(w.theta, _weights().theta)
    assert default_sparsity("halo", {"weights": str(old)}) == "thirds:0.1,0.3,0.5"


@pytest.mark.parametrize("probs", [(0.1, 0.3), (0.0, 0.5, 1.0), (0.1, 0.3, 1.5), (0.1, 0.3, 0.5, 0.5),
                                   (0.1, float("nan"), 0.5)])
def test_check_weights_refuses_bad_update_probabilities(probs):
    with pytest.raises(ValueError, match="update_probabilities") as info:
        check_weights(_weights()._replace(update_probabilities=probs), "here")
    assert str(info.value).startswith("here: ")


def test_bad_update_probabilities_in_a_file_name_the_path(tmp_path):
    good = save_weights(tmp_path / "good.npz", adam_like_weights())
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["update_probabilities"] = np.array([0.1, 0.0, 0.5])
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=str(bad)) as info:
        load_weights(bad)
    assert "update_probabilities" in str(info.value)
    with pytest.raises(ValueError, match="update_probabilities"):
        save_weights(tmp_path / "never.npz", adam_like_weights()._replace(update_probabilities=(1, 2, 3)))
    assert not (tmp_path / "never.npz").exists()


def test_default_sparsity_follows_the_weights(tmp_path):
    want = thirds_scheme(load_weights(default_weights_path()).update_probabilities)
    assert want.startswith("thirds:")
    assert default_sparsity("halo") == want
    assert default_sparsity("halo", {}) == want and default_sparsity("halo", {"weights": None}) == want
    path = save_weights(tmp_path / "mine.npz", _weights()._replace(update_probabilities=(0.3, 0.8, 0.95)))
    assert default_sparsity("halo", {"weights": str(path)}) == "thirds:0.3,0.8,0.95"
    assert default_sparsity("halo", {"weights": path, "kernel": "matmul"}) == "thirds:0.3,0.8,0.95"
    assert default_sparsity("adam") is None
    assert default_sparsity("sgd", {"weights": str(path)}) is None
    with pytest.raises(ValueError, match="nope.npz"):
        default_sparsity("halo", {"weights": str(tmp_path / "nope.npz")})


def test_missing_file_names_the_path(tmp_path):
    bad = tmp_path / "nope.npz"
    with pytest.raises(ValueError, match=str(bad)):
        load_weights(bad)


def test_corrupt_file_names_the_path(tmp_path):
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"not a zip file at all")
    with pytest.raises(ValueError, match=str(bad)):
        load_weights(bad)


@pytest.mark.parametrize("change,match", [
    ({"format": np.array("something-else")}, "format"),
    ({"mlp_w": np.zeros((3, 2))}, "mlp_w"),
    ({"theta": np.full((2, len(CONTROLLER_FEATURES)), np.nan)}, "non-finite"),
    ({"base_lr": np.array(-1.0)}, "base_lr"),
])
def test_bad_contents_name_the_path(tmp_path, change, match):
    good = save_weights(tmp_path / "good.npz", adam_like_weights())
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files}
    arrays.update(change)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match=str(bad)) as info:
        load_weights(bad)
    assert match in str(info.value)


def test_missing_array_names_the_path(tmp_path):
    good = save_weights(tmp_path / "good.npz", adam_like_weights())
    with np.load(good) as z:
        arrays = {k: z[k] for k in z.files if k != "mlp_mu"}
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="mlp_mu"):
        load_weights(bad)


def test_truncated_npz_names_the_path(tmp_path):
    good = save_weights(tmp_path / "good.npz", adam_like_weights())
    bad = tmp_path / "truncated.npz"
    bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match=str(bad)):
        load_weights(bad)


def test_directory_names_the_path(tmp_path):
    with pytest.raises(ValueError, match=str(tmp_path)):
        load_weights(tmp_path)
