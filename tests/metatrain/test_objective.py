"""The meta-objective (one seeded HALO unroll on synthetic-a): determinism, its parts, the clip on
divergence, pickling for worker processes, the energy term."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pytest

from models.halo.weights import load_weights, shipped_versions
from models.metatrain import objective as objective_mod
from models.metatrain.costs import expected_cost, layer_probabilities
from models.metatrain.objective import Unroll, evaluate_center
from models.metatrain.space import MetaSpace

TABLE = {"000": 0.0, "001": 0.4, "010": 0.45, "011": 0.45, "100": 0.9, "101": 0.92, "110": 0.98,
         "111": 1.0}
NAMES = ("lr.bias", "mlp.delta", "p.first")
START_P = (0.1, 0.3, 0.5)
KEYS = {"meta_loss", "loss", "jacobian", "cost", "final_loss", "diverged"}


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture(scope="module")
def unroll(tmp_path_factory) -> Unroll:
    """synthetic-a's source model is pretrained once into this module's data dir (first call)."""
    data_dir = tmp_path_factory.mktemp("metatrain-data")
    space = MetaSpace(NAMES, load_weights(shipped_versions()["halo-v0"]), START_P)
    u = Unroll(space, dict(TABLE), data_dir, task="synthetic-a", model="cnn-a", horizon=20,
               batch_size=64, probe_size=64, probe_every=10, lambda_jac=1e-3, energy_weight=0.05,
               loss_clip=2.0)
    u.details(space.zeros(), 0)  # pretrain here, outside the timed tests
    return u


def test_same_point_and_seed_give_the_same_meta_loss(unroll):
    x = np.array([0.1, 0.05, -0.2])
    a = unroll.details(x, 3)
    b = unroll.details(x, 3)
    assert a == b
    assert unroll(x, 3) == a["meta_loss"]
    assert math.isfinite(a["meta_loss"]) and a["diverged"] == 0.0


def test_the_seed_and_the_point_matter(unroll):
    zero = unroll.space.zeros()
    base = unroll(zero, 0)
    assert unroll(zero, 1) != base  # another batch order and masks
    assert unroll(np.array([0.5, 0.0, 0.0]), 0) != base


def test_details_parts_add_up(unroll):
    d = unroll.details(unroll.space.zeros(), 0)
    assert set(d) == KEYS
    assert d["meta_loss"] == pytest.approx(
        d["loss"] + unroll.lambda_jac * d["jacobian"] + unroll.energy_weight * d["cost"], rel=1e-12)
    assert 0 < d["loss"] <= unroll.loss_clip and 0 < d["final_loss"] <= unroll.loss_clip
    assert d["jacobian"] >= 0
    assert d["loss"] < 1.0  # training from the source model lowers the probe loss


def test_cost_is_the_expected_cost_of_the_start_probabilities(unroll):
    d = unroll.details(unroll.space.zeros(), 0)
    probs = layer_probabilities(START_P, 3)  # cnn-a: 3 layers
    assert d["cost"] == pytest.approx(expected_cost(probs, TABLE), rel=1e-12)
    # raising the first third's probability raises the expected cost accordingly
    up = unroll.details(np.array([0.0, 0.0, 2.0]), 0)
    p_first = unroll.space.weights([0.0, 0.0, 2.0]).update_probabilities[0]
    assert up["cost"] == pytest.approx(
        expected_cost(layer_probabilities((p_first, 0.3, 0.5), 3), TABLE), rel=1e-12)
    assert up["cost"] > d["cost"]


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_blow_up_is_clipped_and_finite(unroll):
    d = unroll.details(np.array([0.0, 1e12, 0.0]), 0)  # every update is astronomically large
    assert math.isfinite(d["meta_loss"])
    assert d["loss"] == unroll.loss_clip and d["final_loss"] == unroll.loss_clip
    assert d["diverged"] == 1.0
    assert d["meta_loss"] == pytest.approx(
        d["loss"] + unroll.lambda_jac * d["jacobian"] + unroll.energy_weight * d["cost"], rel=1e-12)
    # a large but finite blow-up: the loss term sits at the clip
    big = unroll.details(np.array([0.0, 1e6, 0.0]), 0)
    assert big["loss"] == unroll.loss_clip and math.isfinite(big["meta_loss"])
    assert big["meta_loss"] > unroll.details(unroll.space.zeros(), 0)["meta_loss"]


def test_energy_weight_changes_the_meta_loss_by_the_cost(unroll):
    x = np.array([0.0, 0.0, 0.5])
    off = dataclasses.replace(unroll, energy_weight=0.0).details(x, 2)
    on = dataclasses.replace(unroll, energy_weight=1.0).details(x, 2)
    assert on["meta_loss"] - off["meta_loss"] == pytest.approx(on["cost"], rel=1e-9, abs=1e-12)
    assert {k: v for k, v in on.items() if k != "meta_loss"} == \
        {k: v for k, v in off.items() if k != "meta_loss"}


def test_final_weight_adds_the_final_normalised_loss(unroll):
    x = np.array([0.0, 0.0, 0.5])
    off = unroll.details(x, 2)
    on = dataclasses.replace(unroll, final_weight=2.0).details(x, 2)
    assert on["meta_loss"] - off["meta_loss"] == pytest.approx(2.0 * on["final_loss"], rel=1e-9)
    assert 0 < on["final_loss"] < 1.0
    assert {k: v for k, v in on.items() if k != "meta_loss"} == \
        {k: v for k, v in off.items() if k != "meta_loss"}


def test_survives_pickling_for_worker_processes(unroll, monkeypatch):
    x = np.array([0.05, 0.0, 0.3])
    want = unroll.details(x, 5)
    back = pickle.loads(pickle.dumps(unroll))
    assert back.space.names == unroll.space.names and back.cost_table == unroll.cost_table
    np.testing.assert_array_equal(back.space.start.theta, unroll.space.start.theta)
    assert (back.task, back.horizon, back.data_dir) == (unroll.task, unroll.horizon, unroll.data_dir)
    # a fresh worker has an empty cache: data and the source model come from the data dir
    monkeypatch.setattr(objective_mod, "_CACHE", {})
    assert back.details(x, 5) == want


def test_weight_noise_is_seeded(unroll):
    x = unroll.space.zeros()
    noisy = dataclasses.replace(unroll, weight_noise=0.2)
    a, b = noisy.details(x, 4), noisy.details(x, 4)
    assert a == b
    assert a["meta_loss"] != unroll.details(x, 4)["meta_loss"]


def test_evaluate_center_averages_over_seeds(unroll):
    x = unroll.space.zeros()
    rows = [unroll.details(x, s) for s in (0, 1)]
    mean = evaluate_center(unroll, x, [0, 1])
    assert set(mean) == KEYS
    for k in KEYS:
        assert mean[k] == pytest.approx((rows[0][k] + rows[1][k]) / 2, rel=1e-12)
