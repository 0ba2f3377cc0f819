"""Loaders on the real shared data: counts and facts from shared/data/README.md."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from models.data.cifar import load_cifar10
from models.data.gsad import load_gsad
from models.data.mnist import load_idx_dataset
from models.data.preprocess import image_channel_stats
from models.data.safe_npy import read_npy
from models.data.thyroid import load_thyroid, tdd_csv_text, tdd_from_object_array

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
GSAD_BATCH_COUNTS = {1: 445, 2: 1244, 3: 1586, 4: 161, 5: 197, 6: 2300, 8: 294, 9: 470}


def test_mnist_counts(shared_data: Path) -> None:
    ds = load_idx_dataset("mnist", shared_data)
    assert ds.train_x.shape == (60000, 28, 28, 1) and ds.test_x.shape == (10000, 28, 28, 1)
    assert ds.train_x.dtype == np.uint8 and ds.train_y.dtype == np.uint8
    assert np.bincount(ds.train_y).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(ds.test_y, minlength=10).sum() == 10000
    assert int(ds.train_x.max()) == 255 and int(ds.train_x.min()) == 0


def test_mnist_is_cached(shared_data: Path) -> None:
    first = load_idx_dataset("mnist", shared_data)
    t0 = time.perf_counter()
    again = load_idx_dataset("mnist", shared_data)
    assert time.perf_counter() - t0 < 0.1
    assert again.train_x is first.train_x
    with pytest.raises(ValueError):
        again.train_x[0, 0, 0, 0] = 1  # cached arrays are read-only


def test_fashion_counts(shared_data: Path) -> None:
    ds = load_idx_dataset("fashion-mnist", shared_data)
    assert np.bincount(ds.train_y).tolist() == [6000] * 10
    assert np.bincount(ds.test_y).tolist() == [1000] * 10
    assert ds.class_names[9] == "Ankle boot"


def test_thyroid_counts(shared_data: Path) -> None:
    th = load_thyroid(shared_data)
    (xf, yf), (xm, ym) = th["female"], th["male"]
    assert xf.shape == (2235, 26) and xm.shape == (986, 26)
    assert xf.dtype == np.float64 and yf.dtype == np.int64
    # negative, hypothyroid, sick, hyperthyroid
    assert np.bincount(yf).tolist() == [1895, 167, 104, 69]
    assert np.bincount(ym).tolist() == [858, 53, 67, 8]
    assert set(np.unique(xf[:, 1])) == {0.0} and set(np.unique(xm[:, 1])) == {1.0}  # sex


def test_thyroid_npy_safe_read_equals_csv(shared_data: Path) -> None:
    folder = shared_data / "thyroid" / "halo-tdd"
    csv = load_thyroid(shared_data)
    for sex in ("Female", "Male"):
        arr = read_npy(folder / f"TDD-{sex}.npy")
        x, y = tdd_from_object_array(arr)
        np.testing.assert_array_equal(x, csv[sex.lower()][0])
        np.testing.assert_array_equal(y, csv[sex.lower()][1])
        # the conversion used by `data fetch thyroid` reproduces the shared CSV exactly
        expected = gzip.decompress((folder / f"TDD-{sex}.csv.gz").read_bytes()).decode()
        assert tdd_csv_text(arr) == expected


def test_thyroid_reads_npy_when_no_csv(shared_data: Path, tmp_path: Path,
                                       clear_caches: None) -> None:
    dst = tmp_path / "thyroid" / "halo-tdd"
    dst.mkdir(parents=True)
    shutil.copy(shared_data / "thyroid/halo-tdd/TDD-Female.npy", dst)
    (dst / "TDD-Male.csv").write_bytes(
        gzip.decompress((shared_data / "thyroid/halo-tdd/TDD-Male.csv.gz").read_bytes()))
    th = load_thyroid(tmp_path)
    assert th["female"][0].shape == (2235, 26) and th["male"][0].shape == (986, 26)


def test_gsad_counts(shared_data: Path) -> None:
    g = load_gsad(shared_data)
    assert g.batches_used == (1, 2, 3, 4, 5, 6, 8, 9) and g.batches_missing == (7, 10)
    assert g.x.shape == (6697, 128) and g.x.dtype == np.float64
    assert {b: int((g.batch == b).sum()) for b in g.batches_used} == GSAD_BATCH_COUNTS
    assert np.bincount(g.gas[g.batch == 1]).tolist() == [0, 90, 98, 83, 30, 70, 74]
    assert g.concentration_ppmv[0] == 10.0 and g.x[0, 0] == pytest.approx(15596.1621)


def test_gsad_plain_files(shared_data: Path, tmp_path: Path, clear_caches: None) -> None:
    dst = tmp_path / "gsad" / "uci270_at_different_concentrations"
    dst.mkdir(parents=True)
    src = shared_data / "gsad" / "uci270_at_different_concentrations" / "batch4.dat.gz"
    (dst / "batch4.dat").write_bytes(gzip.decompress(src.read_bytes()))
    g = load_gsad(tmp_path)
    assert g.batches_used == (4,) and len(g.gas) == 161
    assert g.batches_missing == (1, 2, 3, 5, 6, 7, 8, 9, 10)


def test_cifar10(shared_data: Path) -> None:
    ds = load_cifar10(shared_data)
    assert ds.train_x.shape == (50000, 32, 32, 3) and ds.train_x.dtype == np.uint8
    assert np.bincount(ds.train_y).tolist() == [5000] * 10
    assert ds.train_y[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert ds.test_x.shape == (1000, 32, 32, 3)
    assert ds.test_y[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert np.bincount(ds.test_y).tolist() == [103, 89, 100, 103, 90, 86, 112, 102, 106, 109]
    assert len(ds.notes) == 1 and "partial" in ds.notes[0]
    mean, std = image_channel_stats(ds.train_x)
    np.testing.assert_allclose(mean, [0.49139968, 0.48215841, 0.44653091], atol=1e-7)
    np.testing.assert_allclose(std, [0.24703223, 0.24348513, 0.26158784], atol=1e-7)


def test_image_channel_stats_of_an_index_equal_those_of_the_copy():
    """``image_channel_stats(x, index)`` reads the indexed images a few at a time instead
    of copying them (the loader's source-train statistics): the same exact histogram."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, size=(700, 32, 32, 3), dtype=np.uint8)  # 256 images a read
    x[:, :, :, 2] = 17  # a constant channel: std 1
    index = rng.permutation(700)[:411]
    got = image_channel_stats(x, index)
    want = image_channel_stats(x[index])
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    assert got[1][2] == 1.0
    # whole-array form, against the float64 definition
    want_mean = (x[..., :2] / 255.0).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(image_channel_stats(x)[0][:2], want_mean, rtol=1e-12)
