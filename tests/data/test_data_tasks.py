"""The task registry and each task's four splits: classes, renumbering, shapes, normalisation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from models.data import (
    DataError,
    Split,
    TaskData,
    TaskSpec,
    UnknownTask,
    get_task,
    list_tasks,
    load_task,
)
from models.data.mnist import load_idx_dataset
from models.data.thyroid import load_thyroid

ALL = {"mnist-a", "mnist-b", "fashion-a", "fashion-b", "cifar10-a", "cifar10-b",
       "tdp-female", "tdp-male", "gsad-a", "gsad-b", "har-a", "har-b", "synthetic-a", "synthetic-b"}
EVEN, ODD = (0, 2, 4, 6, 8), (1, 3, 5, 7, 9)


def test_registry() -> None:
    specs = list_tasks()
    assert {s.name for s in specs} == ALL
    assert [s.name for s in specs] == sorted(s.name for s in specs)
    for s in specs:
        assert isinstance(s, TaskSpec) and s.batch_size == 64
        assert s.num_classes == len(s.target_classes) == len(s.source_classes)
        assert s.description and s.needs_files == (s.dataset != "synthetic")
        assert len(s.target_class_names) == s.num_classes
        assert s.as_dict()["name"] == s.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        specs[0].name = "x"  # type: ignore[misc]


@pytest.mark.parametrize("name,src,tgt,model,shape,k", [
    ("mnist-a", EVEN, ODD, "cnn-a", (28, 28, 1), 5),
    ("mnist-b", ODD, EVEN, "cnn-a", (28, 28, 1), 5),
    ("fashion-a", EVEN, ODD, "cnn-a", (28, 28, 1), 5),
    ("cifar10-a", ODD, EVEN, "cnn-a", (32, 32, 3), 5),
    ("cifar10-b", EVEN, ODD, "cnn-a", (32, 32, 3), 5),
    ("gsad-a", (1, 2, 3), (4, 5, 6), "mlp", (128,), 3),
    ("gsad-b", (4, 5, 6), (1, 2, 3), "mlp", (128,), 3),
    ("tdp-female", (0, 1, 2, 3), (0, 1, 2, 3), "mlp", (26,), 4),
    ("synthetic-a", EVEN, ODD, "cnn-a", (28, 28, 1), 5),
])
def test_specs(name: str, src: tuple, tgt: tuple, model: str, shape: tuple, k: int) -> None:
    s = get_task(name)
    assert (s.source_classes, s.target_classes) == (src, tgt)
    assert (s.default_model, s.input_shape, s.num_classes) == (model, shape, k)


def test_tdp_domains() -> None:
    assert (get_task("tdp-female").source_domain, get_task("tdp-female").target_domain) == \
        ("male", "female")
    assert get_task("tdp-male").source_domain == "female"
    assert get_task("cifar10-a").target_class_names == ("airplane", "bird", "deer", "frog",
                                                        "ship")


def test_unknown_task() -> None:
    with pytest.raises(UnknownTask) as exc:
        get_task("mnist-c")
    assert isinstance(exc.value, DataError)
    assert "mnist-c" in str(exc.value) and "synthetic-a" in str(exc.value)
    with pytest.raises(DataError, match="known tasks"):
        load_task("nope", "/nonexistent")


def check_splits(d: TaskData) -> None:
    shape = d.spec.input_shape
    for split in (d.source_train, d.source_test, d.target_train, d.target_test):
        assert isinstance(split, Split)
        assert split.x.dtype == np.float32 and split.y.dtype == np.int64
        assert split.x.shape == (len(split),) + shape and split.x.flags.c_contiguous
        assert set(np.unique(split.y)) == set(range(d.spec.num_classes))
        assert np.isfinite(split.x).all()


def test_mnist_a(shared_data: Path) -> None:
    d = load_task("mnist-a", shared_data)
    check_splits(d)
    assert d.sizes() == {"source_train": 29492, "source_test": 4926,
                         "target_train": 30508, "target_test": 5074}
    raw = load_idx_dataset("mnist", shared_data)
    # renumbering: target label k is digit 2k+1, in the official file order
    odd = np.isin(raw.test_y, ODD)
    np.testing.assert_array_equal(d.target_test.y, (raw.test_y[odd] - 1) // 2)
    # normalisation with source-train stats, applied unchanged to the target
    src = d.source_train.x.astype(np.float64)
    assert abs(src.mean()) < 1e-4 and abs(src.std() - 1) < 1e-4
    even_raw = raw.train_x[np.isin(raw.train_y, EVEN)] / 255.0
    assert d.norm_mean.shape == (1,) and d.norm_mean[0] == pytest.approx(even_raw.mean())
    back = d.target_test.x * d.norm_std[0] + d.norm_mean[0]
    np.testing.assert_allclose(back, raw.test_x[odd] / 255.0, atol=1e-5)
    assert abs(d.target_train.x.astype(np.float64).mean()) > 1e-3  # target not re-centred


def test_mnist_b_is_the_reverse(shared_data: Path) -> None:
    a, b = load_task("mnist-a", shared_data), load_task("mnist-b", shared_data)
    np.testing.assert_array_equal(a.target_train.y, b.source_train.y)
    assert b.norm_mean[0] != a.norm_mean[0]


def test_fashion_a(shared_data: Path) -> None:
    d = load_task("fashion-a", shared_data)
    assert d.sizes() == {"source_train": 30000, "source_test": 5000,
                         "target_train": 30000, "target_test": 5000}
    assert np.bincount(d.target_test.y).tolist() == [1000] * 5


def test_cifar10_a(shared_data: Path) -> None:
    d = load_task("cifar10-a", shared_data)
    check_splits(d)
    assert d.sizes() == {"source_train": 25000, "source_test": 489,
                         "target_train": 25000, "target_test": 511}
    assert any("partial" in n for n in d.notes)
    assert d.norm_mean.shape == (3,) and d.norm_std.shape == (3,)
    np.testing.assert_allclose(d.source_train.x.mean(axis=(0, 1, 2), dtype=np.float64), 0,
                               atol=1e-4)


def test_tdp_female(shared_data: Path) -> None:
    d = load_task("tdp-female", shared_data)
    check_splits(d)
    assert d.sizes() == {"source_train": 2572, "source_test": 860,
                         "target_train": 5684, "target_test": 1896}
    # train and test splits balanced by oversampling (HALO supplement E; the stratified
    # test parts had [215, 13, 17, 2] male and [474, 42, 26, 17] female cases)
    assert np.bincount(d.source_train.y).tolist() == [643] * 4
    assert np.bincount(d.target_train.y).tolist() == [1421] * 4
    assert np.bincount(d.source_test.y).tolist() == [215] * 4
    assert np.bincount(d.target_test.y).tolist() == [474] * 4
    # sex is constant in the male source: std guarded to 1, female target maps to -1
    assert d.norm_std[1] == 1.0
    assert set(np.unique(d.source_train.x[:, 1])) == {0.0}
    assert set(np.unique(d.target_test.x[:, 1])) == {-1.0}
    # test rows are real female rows, un-standardised with the male statistics
    raw_female = {tuple(r) for r in load_thyroid(shared_data)["female"][0].round(4)}
    back = (d.target_test.x.astype(np.float64) * d.norm_std + d.norm_mean).round(4)
    assert all(tuple(r) in raw_female for r in back)
    assert any("oversampled" in n for n in d.notes)


def test_tdp_split_shared_between_directions(shared_data: Path) -> None:
    f, m = load_task("tdp-female", shared_data), load_task("tdp-male", shared_data)
    np.testing.assert_array_equal(f.target_test.y, m.source_test.y)
    np.testing.assert_array_equal(f.target_train.y, m.source_train.y)


def test_gsad_a(shared_data: Path) -> None:
    d = load_task("gsad-a", shared_data)
    check_splits(d)
    assert d.sizes() == {"source_train": 2746, "source_test": 915,
                         "target_train": 2277, "target_test": 759}
    assert "batches used: 1, 2, 3, 4, 5, 6, 8, 9; missing: 7, 10" in d.notes[0]
    assert d.norm_mean.shape == (128,)
    # per-class test share is 25% (stratified): gases 4, 5, 6 have 592, 1779, 665 samples
    assert np.bincount(d.target_test.y).tolist() == [148, 445, 166]
    b = load_task("gsad-b", shared_data)
    np.testing.assert_array_equal(b.source_test.y, d.target_test.y)


def test_determinism_and_seed(shared_data: Path) -> None:
    a1, a2 = load_task("tdp-male", shared_data), load_task("tdp-male", shared_data, seed=0)
    for k in ("source_train", "source_test", "target_train", "target_test"):
        np.testing.assert_array_equal(getattr(a1, k).x, getattr(a2, k).x)
        np.testing.assert_array_equal(getattr(a1, k).y, getattr(a2, k).y)
    b = load_task("tdp-male", shared_data, seed=1)
    assert b.seed == 1 and not np.array_equal(b.target_test.x, a1.target_test.x)


def test_data_dir_from_env(shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HALO_DATA_DIR", str(shared_data))
    d = load_task("gsad-b")
    assert d.data_dir == shared_data.resolve() and d.summary()["task"] == "gsad-b"
