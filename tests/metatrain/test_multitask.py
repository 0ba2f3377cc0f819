"""The distribution meta-objective: held-out loss on tasks of the pool, seeded, picklable."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from models.halo.weights import load_weights
from models.metatrain.multitask import TaskUnroll, evaluate_tasks
from models.metatrain.space import MetaSpace

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

SPEC = {
    "seed": 5,
    "mnist": {"tasks": 2, "archs": ["mlp"], "shots": [10], "source_per_class": 200,
              "val_per_class": 30, "source_steps": 80, "mlp_horizons": [100]},
    "tabular": {"tasks": 2, "source_size": 400, "train_size": [24, 200], "val_size": 100,
                "source_steps": 200, "horizons": [100]},
}


@pytest.fixture(scope="module")
def objective(tmp_path_factory):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    w = load_weights()
    space = MetaSpace(("lr.bias", "val.start", "val.down"), w, w.update_probabilities)
    return TaskUnroll(space, SPEC, SHARED, tmp_path_factory.mktemp("cache"),
                      n_validation_tasks=1, probes=4)


def test_same_seed_same_task_same_loss_and_pickles(objective):
    x = objective.space.zeros()
    a = objective.details(x, 3)
    b = pickle.loads(pickle.dumps(objective)).details(x, 3)
    assert a == b
    assert np.isfinite(a["meta_loss"]) and a["meta_loss"] > 0
    n = len(objective.tasks())
    assert n == 3  # 4 tasks, one held out for meta-validation
    assert objective.details(x, 3 + n)["task"] == a["task"]


def test_validation_tasks_are_the_held_out_ones(objective):
    from dataclasses import replace

    val = replace(objective, validation_tasks=True)
    names = {t.name for t in val.tasks()}
    assert len(names) == 1 and not names & {t.name for t in objective.tasks()}


def test_meta_loss_is_its_parts(objective):
    x = objective.space.zeros()
    for seed in range(3):
        r = objective.details(x, seed)
        assert r["meta_loss"] == pytest.approx(r["loss"] + objective.final_weight * r["final_loss"]
                                               + objective.energy_weight * r["cost"])
        assert 0.0 < r["final_loss"] <= objective.loss_clip


def test_the_validation_level_moves_the_loss(objective):
    x = objective.space.zeros()
    slow = x.copy()
    slow[1] = -8.0  # start the level's offset at e^-8: hardly any step
    r = evaluate_tasks(objective, slow)
    assert r["final_loss"] > 0.9  # held-out loss stays near L_0
    fast = x.copy()
    fast[1] = 1.0  # e^1 times the start's steps: the held-out loss moves
    moved = evaluate_tasks(objective, fast)
    assert abs(moved["final_loss"] - r["final_loss"]) > 1e-2
    assert set(r["per_task"]) == {t.name for t in objective.tasks()}
