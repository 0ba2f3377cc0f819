"""``halo-agent adapt --optimizer halo`` end to end on the built-in synthetic task."""

from __future__ import annotations

import json

import pytest

from agent.engine import AdaptConfig, run_adaptation
from kernels.sparsity import halo_thirds
from models.halo.weights import load_weights, save_weights
from models.nets import build_network


def _cnn_a_layers() -> int:
    return build_network("cnn-a", (28, 28, 1), 5, seed=None).n_layers


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data directory for the module: the synthetic source model is trained once."""
    return tmp_path_factory.mktemp("halo-data")


def test_adapt_with_halo_defaults(data_dir):
    tmp_path = data_dir
    cfg = AdaptConfig(task="synthetic-a", data_dir=tmp_path, optimizer="halo", steps=60,
                      eval_every=30, idle_seconds=0.0, power_source="estimate")
    r = run_adaptation(cfg)
    assert r["status"] == "succeeded" and r["optimizer"] == "halo"
    hp = r["hyperparameters"]
    # the default structural sparsity: the default weights' probabilities by thirds of cnn-a's 3 layers
    n = _cnn_a_layers()
    want = [load_weights().update_probabilities[k] for k in halo_thirds(n)]
    assert len(hp["sparsity"]) == n
    assert hp["sparsity"] == pytest.approx(want, rel=5e-4)  # via the 4-significant-digit "thirds:" text
    assert hp["kernel"] in ("elementwise", "matmul")
    assert hp["kernel_choice"].startswith("auto: ")
    assert r["final_accuracy"] > r["initial_accuracy"]
    cache = json.loads((tmp_path / "kernel-choice.json").read_text())
    assert cache["version"] == 1 and cache["choices"]
    again = run_adaptation(AdaptConfig(task="synthetic-a", data_dir=tmp_path, optimizer="halo",
                                       steps=5, idle_seconds=0.0, power_source="estimate",
                                       hyperparameters={"kernel": "auto"}))
    assert again["hyperparameters"]["kernel_choice"].startswith("auto (cached): ")


def test_adapt_with_explicit_kernel_and_weights(data_dir):
    from models.halo.weights import default_weights_path

    tmp_path = data_dir
    cfg = AdaptConfig(task="synthetic-a", data_dir=tmp_path, optimizer="halo", steps=5,
                      idle_seconds=0.0, power_source="estimate", sparsity="dense",
                      hyperparameters={"kernel": "matmul",
                                       "weights": str(default_weights_path())})
    r = run_adaptation(cfg)
    assert r["hyperparameters"]["kernel"] == "matmul"
    assert "kernel_choice" not in r["hyperparameters"]
    assert r["hyperparameters"]["sparsity"] == [1.0, 1.0, 1.0]


def test_adapt_sparsity_follows_the_weights_file(data_dir, tmp_path):
    path = save_weights(tmp_path / "mine.npz",
                        load_weights()._replace(update_probabilities=(0.25, 0.6, 0.9)))
    r = run_adaptation(AdaptConfig(task="synthetic-a", data_dir=data_dir, optimizer="halo", steps=3,
                                   idle_seconds=0.0, power_source="estimate",
                                   hyperparameters={"kernel": "elementwise", "weights": str(path)}))
    assert r["status"] == "succeeded"
    assert r["hyperparameters"]["weights"] == str(path)
    assert r["hyperparameters"]["sparsity"] == [[0.25, 0.6, 0.9][k] for k in halo_thirds(_cnn_a_layers())]
