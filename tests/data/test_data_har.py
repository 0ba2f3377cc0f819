"""UCI HAR (HALO's SP task): loader and fetch on files in UCI's own format, made here."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest

from models.data import ChecksumMismatch, DatasetCorrupt, DatasetMissing, load_task
from models.data.catalogue import CATALOGUE, Download
from models.data.fetch import fetch_dataset
from models.data.har import N_FEATURES, load_har


def uci_float(v: float) -> str:
    """A value as UCI wrote X_*.txt: 7-digit mantissa, 3-digit exponent (2.8858451e-001)."""
    mant, exp = f"{v:.7e}".split("e")
    return f"{mant}e{exp[0]}{int(exp[1:]):03d}"


def har_files(n: int, seed: int) -> dict:
    """X, y and subject texts of one split: every activity, features in [-1, 1] whose mean
    depends on the activity (so the task is learnable)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 6 + 1
    centres = rng.uniform(-0.5, 0.5, size=(6, N_FEATURES))
    x = np.clip(centres[y - 1] + 0.1 * rng.standard_normal((n, N_FEATURES)), -1, 1)
    x_text = "".join(" " + " ".join(uci_float(v) for v in row) + "\n" for row in x)
    return {"X": x_text, "y": "".join(f"{v}\n" for v in y),
            "subject": "".join(f"{1 + i % 5}\n" for i in range(n))}


def write_har(root: Path, n_train: int = 60, n_test: int = 30) -> Path:
    for part, n, seed in (("train", n_train, 0), ("test", n_test, 0)):
        folder = root / "har" / part
        folder.mkdir(parents=True, exist_ok=True)
        for what, text in har_files(n, seed).items():
            (folder / f"{what}_{part}.txt").write_text(text)
    return root


def test_uci_number_format():
    assert uci_float(0.28858451) == "2.8858451e-001" and uci_float(-1.0) == "-1.0000000e+000"


def test_har_tasks_use_the_official_split_and_halo_classes(tmp_path):
    root = write_har(tmp_path)
    raw = load_har(root)
    assert raw["train"].x.shape == (60, N_FEATURES) and raw["test"].x.shape == (30, N_FEATURES)
    assert set(raw["train"].y.tolist()) == set(range(6)) and raw["train"].subject.max() == 5
    data = load_task("har-a", root)
    # HALO Table 1: A = {walking upstairs, sitting, laying}, B = {walking, downstairs, standing}
    assert data.spec.target_class_names == ("walking_upstairs", "sitting", "laying")
    assert data.spec.source_class_names == ("walking", "walking_downstairs", "standing")
    assert data.target_train.x.shape == (30, N_FEATURES) and data.target_test.x.shape == (15, N_FEATURES)
    assert set(np.unique(data.target_train.y).tolist()) == {0, 1, 2}
    # standardised with the source training rows' statistics
    assert abs(float(np.mean(data.source_train.x))) < 1e-6


def test_a_short_row_names_file_and_line(tmp_path):
    root = write_har(tmp_path)
    path = root / "har/test/X_test.txt"
    lines = path.read_text().splitlines(True)
    lines[2] = " ".join(lines[2].split()[:-1]) + "\n"
    path.write_text("".join(lines))
    with pytest.raises(DatasetCorrupt, match=r"X_test.txt:3: 560 values, expected 561"):
        load_har(root)


def test_missing_features_say_how_to_fetch(tmp_path):
    root = write_har(tmp_path)
    (root / "har/train/X_train.txt").unlink()
    with pytest.raises(DatasetMissing, match="halo-agent data fetch har"):
        load_task("har-a", root)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _uci_archive() -> tuple:
    """UCI's layout: an outer zip holding ``UCI HAR Dataset.zip`` (with macOS junk)."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        for part, n in (("train", 24), ("test", 12)):
            for what, text in har_files(n, 1).items():
                z.writestr(f"UCI HAR Dataset/{part}/{what}_{part}.txt", text)
                z.writestr(f"__MACOSX/UCI HAR Dataset/{part}/._{what}_{part}.txt", b"junk")
        z.writestr("UCI HAR Dataset/train/Inertial Signals/body_acc_x_train.txt", "0.1\n")
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w") as z:
        z.writestr("UCI HAR Dataset.names", "names")
        z.writestr("UCI HAR Dataset.zip", inner.getvalue())
    return outer.getvalue(), inner.getvalue()


def _info(url: str, outer_digest: str, inner_digest: str):
    real = CATALOGUE["har"]
    (dl,) = real.downloads
    # the label files here are not UCI's, so their members carry no digest
    extract = tuple((b, s, None) for b, s, _ in dl.extract)
    return dataclasses.replace(real, downloads=(
        Download(url, outer_digest, inner=("UCI HAR Dataset.zip", inner_digest), extract=extract),))


def test_fetch_takes_the_files_out_of_the_nested_uci_zip(mirror_root, mirror, tmp_path):
    outer, inner = _uci_archive()
    (mirror_root / "har.zip").write_bytes(outer)
    info = _info(mirror + "har.zip", _sha(outer), _sha(inner))
    report = fetch_dataset("har", tmp_path / "data", catalogue={"har": info}, auto_progress=False)
    assert sorted(report.installed) == sorted(s for _, s, _ in info.downloads[0].extract)
    raw = load_har(tmp_path / "data")
    assert raw["train"].x.shape == (24, N_FEATURES) and raw["test"].y.shape == (12,)
    left = [p.name for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert not [n for n in left if n.endswith((".zip", ".part"))], left


def test_fetch_refuses_an_inner_zip_with_the_wrong_digest(mirror_root, mirror, tmp_path):
    outer, _ = _uci_archive()
    (mirror_root / "har.zip").write_bytes(outer)
    info = _info(mirror + "har.zip", _sha(outer), "sha256:" + "0" * 64)
    with pytest.raises(ChecksumMismatch, match="UCI HAR Dataset.zip"):
        fetch_dataset("har", tmp_path / "data", catalogue={"har": info}, auto_progress=False)
    assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]


def test_the_real_catalogue_entry_pins_both_archives():
    (dl,) = CATALOGUE["har"].downloads
    assert dl.url.startswith("https://archive.ics.uci.edu/static/public/240/")
    assert dl.digest.startswith("sha256:") and dl.inner[1].startswith("sha256:")
    stored = {s for _, s, _ in dl.extract}
    assert {"train/X_train.txt", "test/X_test.txt", "train/y_train.txt"} <= stored
