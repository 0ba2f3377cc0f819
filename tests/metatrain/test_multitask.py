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


def test_balanced_error_weighs_every_class_alike():
    from models.metatrain.multitask import balanced_error

    # class 0: 3 of 4 right; class 1: 0 of 1 right; class 2 absent (not averaged)
    logits = np.array([[2, 0, 0], [2, 0, 0], [2, 0, 0], [0, 2, 0], [2, 0, 0]], np.float32)
    y = np.array([0, 0, 0, 0, 1])
    assert balanced_error(logits, y, 3) == pytest.approx((1 / 4 + 1.0) / 2)
    assert balanced_error(logits[:3], y[:3], 3) == 0.0


def test_error_term_is_the_held_out_balanced_error(objective):
    from dataclasses import replace

    x = objective.space.zeros()
    weighted = replace(objective, error_weight=2.0)
    for seed in range(2):
        plain, r = objective.details(x, seed), weighted.details(x, seed)
        assert 0.0 <= r["final_error"] <= 1.0 and 0.0 <= r["start_error"] <= 1.0
        assert r["loss"] == plain["loss"] and r["final_error"] == plain["final_error"]
        # the mean error over the probes is at least a probe's share of the final one
        extra = r["meta_loss"] - plain["meta_loss"]
        assert extra >= 2.0 * objective.final_weight * r["final_error"] - 1e-12
        assert extra <= 2.0 * (1.0 + objective.final_weight) + 1e-12


def test_a_validation_spec_draws_a_second_unseen_pool(objective):
    from dataclasses import replace

    fresh = dict(SPEC, seed=6, mnist=dict(SPEC["mnist"], tasks=1), tabular=dict(SPEC["tabular"], tasks=1))
    train = replace(objective, validation_spec=fresh)
    val = replace(train, validation_tasks=True)
    assert len(train.tasks()) == 4  # the whole first pool is meta-trained on
    assert len(val.tasks()) == 2
    assert not {t.name for t in val.tasks()} & {t.name for t in train.tasks()}
    assert {t.family for t in val.tasks()} == {"mnist-image", "tabular"}


def test_held_out_probe_agrees_with_evaluate_over_many_chunks(objective):
    from models.metatrain.multitask import held_out_probe
    from models.nets import EVAL_CHUNK

    for task in objective.tasks():
        net = task.network()
        # several full chunks: a logits buffer that the next forward reuses would show
        x = np.concatenate([task.x_val] * (2 * EVAL_CHUNK // task.x_val.shape[0] + 2))
        y = np.concatenate([task.y_val] * (2 * EVAL_CHUNK // task.x_val.shape[0] + 2))
        acc, loss = net.evaluate(x, y)
        err, loss2 = held_out_probe(net, x, y)
        assert loss2 == loss
        wrong = net.predict(x) != y
        per_class = [wrong[y == c].mean() for c in np.unique(y)]
        assert err == pytest.approx(float(np.mean(per_class)))
        counts = np.bincount(task.y_val)
        if (counts == counts[0]).all():  # balanced held-out split: balanced error = 1 - accuracy
            assert err == pytest.approx(1.0 - acc)
