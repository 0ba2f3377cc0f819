"""The meta-training task distribution: determinism, MNIST-train only, disjoint splits, caching,
shapes, split_pool, spec errors, and the variety of the default spec."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from models.data import mnist
from models.data.mnist import load_idx_train
from models.metatrain import task_images, task_tabular
from models.metatrain.distribution import (
    DEFAULT_SPEC,
    MetaTask,
    SpecError,
    resolve_spec,
    split_pool,
    task_pool,
)

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

TINY = {
    "seed": 3,
    "mnist": {"tasks": 3, "archs": ["cnn-a", "mlp", "mlp-deep"], "shots": [10, 200],
              "source_per_class": 300, "val_per_class": 40, "source_steps": 120},
    "tabular": {"tasks": 3, "source_size": 600, "train_size": [24, 400], "val_size": 120,
                "source_steps": 400},
}


@pytest.fixture(scope="module")
def train_only_dir(tmp_path_factory) -> Path:
    """A data folder holding MNIST's two training files and nothing else."""
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    root = tmp_path_factory.mktemp("data")
    (root / "mnist").mkdir()
    for f in (SHARED / "mnist").iterdir():
        if f.name.startswith("train-"):
            os.symlink(f.resolve(), root / "mnist" / f.name)
    return root


@pytest.fixture(scope="module")
def built(train_only_dir, tmp_path_factory):
    """The tiny pool built once (pretraining its sources), with the files the loader read."""
    cache = tmp_path_factory.mktemp("cache")
    read = []
    real = mnist.read_idx
    mp = pytest.MonkeyPatch()
    mp.setattr(mnist, "read_idx", lambda path, magic: read.append(Path(path).name) or real(path, magic))
    mnist.clear_cache()
    logs, ticks = [], []
    try:
        tasks = task_pool(TINY, train_only_dir, cache, progress=lambda *a: ticks.append(a),
                          log=logs.append)
    finally:
        mp.undo()
        mnist.clear_cache()
    return {"tasks": tasks, "cache": cache, "read": read, "logs": logs, "ticks": ticks,
            "data": train_only_dir}


def _rows(x: np.ndarray) -> set:
    return {r.tobytes() for r in x.reshape(x.shape[0], -1)}


def test_only_mnist_training_files_are_read(built):
    assert sorted(set(built["read"])) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    # the folder has no t10k file and no other dataset: nothing else could have been read
    assert sorted(p.name for p in (built["data"]).iterdir()) == ["mnist"]


def test_pool_has_both_families_names_and_progress(built):
    tasks = built["tasks"]
    assert [t.family for t in tasks] == ["mnist-image"] * 3 + ["tabular"] * 3
    assert len({t.name for t in tasks}) == 6
    assert [a[:2] for a in built["ticks"]] == [(i, 6) for i in range(1, 7)]
    assert len(built["logs"]) == 6  # each source pretrained once
    assert all(isinstance(t, MetaTask) for t in tasks)


def test_shapes_fit_the_architecture_and_labels_are_in_range(built):
    for t in built["tasks"]:
        net = t.network()
        assert net.params.size == t.source_params.size and t.source_params.dtype == np.float32
        assert np.array_equal(net.params.data, t.source_params)
        assert net.forward(t.x_train[:3]).shape == (3, t.num_classes)
        assert t.x_train.shape[1:] == t.input_shape == t.x_val.shape[1:]
        assert t.x_train.dtype == np.float32 and t.y_train.dtype == np.int64
        for y in (t.y_train, t.y_val):
            assert set(np.unique(y)) == set(range(t.num_classes)), t.name
        assert 1 <= t.batch_size and t.horizon >= 1
        assert not t.x_train.flags.writeable and not t.source_params.flags.writeable
        back = pickle.loads(pickle.dumps(t))  # tasks travel to worker processes
        assert back.name == t.name and np.array_equal(back.x_val, t.x_val)
        if t.family == "mnist-image":
            assert t.input_shape == (28, 28, 1)
            assert t.horizon <= 300 or t.arch.startswith("mlp")


def test_held_out_rows_never_appear_in_training(built):
    for t in built["tasks"]:
        assert not (_rows(t.x_train) & _rows(t.x_val)), t.name


def test_source_and_target_images_are_disjoint_and_never_halos_ab_pair(built):
    _, y_all = load_idx_train("mnist", built["data"])
    for t in built["tasks"][:3]:
        parts = task_images.indices(t.details, y_all)
        sets = {k: set(v[0].tolist()) for k, v in parts.items()}
        source = sets["source_train"] | sets["source_test"]
        assert not source & (sets["target_train"] | sets["target_val"])
        assert not sets["source_train"] & sets["source_test"]
        assert not sets["target_train"] & sets["target_val"]
    odd, even = set(range(1, 10, 2)), set(range(0, 10, 2))
    for seed in range(40):
        for p in task_images.plan_tasks(DEFAULT_SPEC["mnist"], seed):
            assert {frozenset(p["source"]["digits"]), frozenset(p["target_digits"])} != \
                {frozenset(odd), frozenset(even)}


def test_source_models_reach_a_sensible_source_accuracy(built):
    for t in built["tasks"]:
        acc = t.details["source_accuracy"]
        if t.family == "mnist-image":
            assert acc >= 0.9, (t.name, acc)
        else:  # noisy, imbalanced tabular tasks: clearly above chance
            assert acc >= 1.0 / t.num_classes + 0.1, (t.name, acc)


def test_second_call_reuses_the_cache_and_gives_identical_tasks(built):
    files = sorted(built["cache"].glob("*.npz"))
    assert len(files) == 6
    mtimes = [f.stat().st_mtime_ns for f in files]
    logs = []
    again = task_pool(TINY, built["data"], built["cache"], log=logs.append)
    assert logs == [] and [f.stat().st_mtime_ns for f in files] == mtimes
    assert all(t.details["cached"] for t in again)
    for a, b in zip(built["tasks"], again):
        assert a.name == b.name and a.horizon == b.horizon and a.batch_size == b.batch_size
        for f in ("source_params", "x_train", "y_train", "x_val", "y_val"):
            assert np.array_equal(getattr(a, f), getattr(b, f)), (a.name, f)


def test_target_only_changes_keep_the_sources_and_a_new_seed_changes_everything(built):
    spec = {**TINY, "tabular": {**TINY["tabular"], "horizons": [50]}}
    logs = []
    same_src = task_pool(spec, built["data"], built["cache"], log=logs.append)
    assert logs == [] and all(t.horizon == 50 for t in same_src[3:])
    keys = {t.details["key"] for t in built["tasks"]}
    other = task_pool({**TINY, "seed": 4, "mnist": {**TINY["mnist"], "tasks": 1},
                       "tabular": {**TINY["tabular"], "tasks": 1}},
                      built["data"], built["cache"])
    assert not keys & {t.details["key"] for t in other}
    assert not {t.name for t in built["tasks"]} & {t.name for t in other}
    for a, b in zip([built["tasks"][0], built["tasks"][3]], other):
        assert a.x_train.shape != b.x_train.shape or not np.array_equal(a.x_train, b.x_train)


def test_split_pool_holds_out_whole_tasks_of_both_families(built):
    tasks = built["tasks"]
    train, val = split_pool(tasks, 2, seed=0)
    assert len(train) == 4 and len(val) == 2
    assert {t.family for t in val} == {"mnist-image", "tabular"}
    assert {t.name for t in train} | {t.name for t in val} == {t.name for t in tasks}
    assert not {t.name for t in train} & {t.name for t in val}
    again = split_pool(tasks, 2, seed=0)
    assert [t.name for t in again[1]] == [t.name for t in val]
    with pytest.raises(SpecError, match="n_validation"):
        split_pool(tasks, 6, seed=0)


def test_spec_errors_name_the_field_and_the_value():
    with pytest.raises(SpecError, match=r"task spec mnist\.shotz: got \[1\]"):
        resolve_spec({"mnist": {"shotz": [1]}})
    with pytest.raises(SpecError, match=r"tabular\.archs: got \['cnn-a'\]"):
        resolve_spec({"tabular": {"archs": ["cnn-a"]}})
    with pytest.raises(SpecError, match=r"seed: got -1"):
        resolve_spec({"seed": -1})
    with pytest.raises(SpecError, match=r"mnist\.classes: got \[4, 2\]"):
        resolve_spec({"mnist": {"classes": [4, 2]}})
    with pytest.raises(SpecError, match=r"mnist\.shots: got \[10, 2390\]"):
        resolve_spec({"mnist": {"shots": [10, 2390]}})  # more than the rarest digit has
    with pytest.raises(SpecError, match=r"tabular: got 3; expected an object"):
        resolve_spec({"tabular": 3})
    assert resolve_spec({"_comment": "ignored"}) == DEFAULT_SPEC


def test_default_spec_covers_the_regimes_the_issue_asks_for():
    spec = resolve_spec(None)
    images = task_images.plan_tasks(spec["mnist"], spec["seed"])
    tabular = task_tabular.plan_tasks(spec["tabular"], spec["seed"])
    assert 16 <= len(images) + len(tabular) <= 24
    assert {p["arch"] for p in images} == {"cnn-a", "cnn-b", "cnn-c", "mlp", "mlp-deep"}
    assert {p["kind"] for p in images} == set(task_images.KINDS)
    assert min(p["shots"] for p in images) <= 30 and max(p["shots"] for p in images) >= 1000
    assert all(100 <= p["horizon"] <= 300 for p in images if p["arch"].startswith("cnn"))
    horizons = [p["horizon"] for p in images + tabular]
    assert min(horizons) == 100 and max(horizons) == 1000
    stds, ratios, sizes, raw = [], [], [], 0
    for p in tabular:
        _, (x, y, _, _) = task_tabular.build_task(p)
        sizes.append(p["train_size"])
        counts = np.bincount(y, minlength=p["num_classes"])
        ratios.append(counts.max() / counts.min())
        if not p["source"]["standardize"]:
            raw += 1
            stds.extend(x.std(axis=0).tolist())
    assert raw >= 3
    assert np.log10(max(stds) / min(stds)) >= 3.0          # feature scales over >= 3 decades
    assert max(ratios) >= 8.0 and min(ratios) == 1.0       # imbalanced and (oversampled) balanced
    assert min(sizes) <= 60 and max(sizes) >= 1000         # a few dozen to thousands
    assert any(p["oversampled"] for p in tabular) and any(p["source"]["label_noise"] > 0.1
                                                          for p in tabular)


def test_mixed_feature_kinds_are_flags_and_heavy_tails_and_off_by_default():
    """flag_fraction / heavy_fraction make 0/1 flags and log-normal readings; the default
    [0, 0] leaves plans (names, source recipes) as they were before the keys existed."""
    base = resolve_spec(None)["tabular"]
    for p in task_tabular.plan_tasks(base, 0):
        assert "flags" not in p["source"] and "-f" not in p["name"].split("-imb")[1]
    sec = resolve_spec({"tabular": {"tasks": 6, "flag_fraction": [0.3, 0.6],
                                    "heavy_fraction": [0.2, 0.4]}})["tabular"]
    plans = task_tabular.plan_tasks(sec, 5)
    assert [p["train_size"] for p in plans] == [p["train_size"]
                                                for p in task_tabular.plan_tasks(
                                                    dict(sec, flag_fraction=[0.0, 0.0],
                                                         heavy_fraction=[0.0, 0.0]), 5)]
    for p in plans:
        s = p["source"]
        d, n_flag, n_heavy = s["dims"], s["flags"], s["heavy"]
        assert round(0.3 * d) <= n_flag <= round(0.6 * d) and n_flag + n_heavy <= d
        assert f"-f{n_flag}h{n_heavy}-" in p["name"]
        (xs, _, _, _), (xt, _, _, _) = task_tabular.build_task(p)
        flag, heavy, _, _ = task_tabular._feature_kinds(s)
        raw = not s["standardize"]
        for j in flag:  # two values per flag column (standardised: an affine map of 0/1)
            assert len(np.unique(xs[:, j])) <= 2
            if raw:
                assert set(np.unique(xs[:, j])) <= {0.0, 1.0}
        gauss = np.setdiff1d(np.arange(d), np.concatenate([flag, heavy]))
        if len(heavy) and len(gauss):
            def kurt(a):
                z = (a - a.mean(0)) / a.std(0)
                return (z ** 4).mean(0)
            assert np.median(kurt(xs[:, heavy])) > np.median(kurt(xs[:, gauss])) + 1.0
        if raw and len(heavy):
            assert (xs[:, heavy] > 0).all()
    with pytest.raises(SpecError, match=r"tabular\.flag_fraction: got \[0\.5, 0\.2\]"):
        resolve_spec({"tabular": {"flag_fraction": [0.5, 0.2]}})
    with pytest.raises(SpecError, match=r"tabular\.heavy_fraction: got \[0, 2\]"):
        resolve_spec({"tabular": {"heavy_fraction": [0, 2]}})
