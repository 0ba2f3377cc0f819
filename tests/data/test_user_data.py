"""A user's own datasets (models/data/user*.py): readers, checks, split, normalisation,
the content-addressed store and the TaskData the engine adapts on."""

from __future__ import annotations

import io
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from upload_helpers import csv_bytes, npz_bytes, png, tabular  # noqa: E402

from models.data.user import (  # noqa: E402
    ImportOptions,
    import_dataset,
    list_datasets,
    load_user_task,
    read_upload,
)
from models.data.user_read import UserDataError, parse_size  # noqa: E402


def store(tmp_path, filename, content, **opts):
    o = ImportOptions(name="t", **opts)
    fmt, raw = read_upload(content, filename, o)
    return import_dataset(tmp_path, fmt, raw, o, filename)


def test_csv_mean_imputation_and_the_users_split(tmp_path):
    text = "a,b,label,part\n" + "\n".join(
        f"{i},{'' if i == 3 else i * 2},{'x' if i % 2 else 'y'},{'test' if i % 5 == 0 else 'train'}"
        for i in range(20))
    m, created = store(tmp_path, "d.csv", text.encode(), missing="mean", split_column="part")
    assert created and m["split"] == {"kind": "user"} and m["input_shape"] == [2]
    assert m["n_test"] == 4 and m["n_train"] == 16
    assert any("1 missing values imputed" in n for n in m["notes"])
    with np.load(tmp_path / "user-datasets" / m["id"] / "data.npz") as z:
        col_b = np.concatenate([z["x_train"][:, 1], z["x_test"][:, 1]])
    assert np.isclose(col_b, np.mean([i * 2 for i in range(20) if i != 3])).sum() == 1


def test_npz_with_the_users_split_and_class_names(tmp_path):
    x, y = tabular(n_per_class=10, classes=2)
    m, _ = store(tmp_path, "d.npz", npz_bytes(x_train=x[::2], y_train=y[::2], x_test=x[1::2],
                                              y_test=y[1::2], class_names=np.array(["ok", "bad"])))
    assert m["split"] == {"kind": "user"} and m["class_names"] == ["ok", "bad"]
    assert m["train_per_class"] == [5, 5] and m["test_per_class"] == [5, 5]


def test_stratified_split_is_seeded_and_normalised_on_the_training_part(tmp_path):
    x, y = tabular(n_per_class=20, classes=2)
    a, _ = store(tmp_path, "d.npz", npz_bytes(x=x, y=y), seed=3)
    b, created = store(tmp_path / "other", "d.npz", npz_bytes(x=x, y=y), seed=3)
    assert a["id"] == b["id"] and created  # same content, same id, in another store
    c, _ = store(tmp_path, "d.npz", npz_bytes(x=x, y=y), seed=4)
    assert c["id"] != a["id"]
    data = load_user_task(tmp_path, a["id"])
    assert data.target_train.x.dtype == np.float32
    np.testing.assert_allclose(data.target_train.x.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(data.target_train.x.std(axis=0), 1, atol=1e-4)
    assert data.spec.input_shape == (6,) and data.spec.default_model == "mlp"
    assert {d["id"] for d in list_datasets(tmp_path)} == {a["id"], c["id"]}


def test_images_with_train_and_test_folders_under_a_top_folder(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for part, n in (("train", 5), ("test", 2)):
            for cls, value in (("a", 20), ("b", 200)):
                for i in range(n):
                    z.writestr(f"cam/{part}/{cls}/{i}.png", png(value + i, size=(10, 14)))
        z.writestr("cam/README.txt", "not an image")
    m, _ = store(tmp_path, "cam.zip", buf.getvalue(), image_size="8x6", channels=1)
    assert m["split"] == {"kind": "user"} and m["input_shape"] == [8, 6, 1]
    assert m["n_train"] == 10 and m["n_test"] == 4 and m["storage"] == "images-uint8"
    data = load_user_task(tmp_path, m["id"])
    assert data.target_test.x.shape == (4, 8, 6, 1)


@pytest.mark.parametrize("content, opts, message", [
    (b"a,label\n1,x\n2,x\n", {}, "holds 1 class"),
    (b"a,label\n1,x\nfoo,y\n", {}, "line 3, column 'a': got 'foo'"),
    (b"a,label\n1,x\n2,y\n", {"missing": "maybe"}, "missing: got 'maybe'"),
    (b"a,label\ninf,x\n", {}, "expected a finite number"),
])
def test_csv_errors_name_the_line_and_column(tmp_path, content, opts, message):
    with pytest.raises(UserDataError) as e:
        store(tmp_path, "d.csv", content, **opts)
    assert message in str(e.value)
    assert not (tmp_path / "user-datasets").exists() or not any((tmp_path / "user-datasets").iterdir())


def test_image_size_and_name_are_checked():
    assert parse_size("28x32") == (28, 32) and parse_size("16") == (16, 16)
    for bad in ("0x5", "28x", "big", "1000x1000"):
        with pytest.raises(UserDataError, match="image_size"):
            parse_size(bad)
    with pytest.raises(UserDataError, match="name: got '../x'"):
        ImportOptions(name="../x").check()


def test_csv_of_the_helpers_round_trips(tmp_path):
    x, y = tabular()
    m, _ = store(tmp_path, "d.csv", csv_bytes(x, y), label_column="kind")
    assert m["num_classes"] == 3 and m["n_train"] + m["n_test"] == len(y)


def test_an_image_too_large_to_decode_on_a_board_is_refused_before_decoding(tmp_path):
    from PIL import Image

    buf = io.BytesIO()
    Image.new("L", (5000, 4000)).save(buf, format="PNG")  # 20 Mpx of zeros: a few KB
    z = io.BytesIO()
    with zipfile.ZipFile(z, "w") as f:
        for cls in ("a", "b"):
            for i in range(5):
                f.writestr(f"{cls}/{i}.png", png(i))
        f.writestr("b/huge.png", buf.getvalue())
    with pytest.raises(UserDataError, match="'b/huge.png' is 5000x4000 pixels"):
        store(tmp_path, "big.zip", z.getvalue(), image_size="8x8")


def test_reading_a_folder_reports_progress(tmp_path):
    from models.data.user_read import read_image_folder

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(300):
            (tmp_path / cls / f"{i}.png").write_bytes(png(i % 256, size=(6, 6)))
    calls = []
    raw = read_image_folder(tmp_path, (6, 6), 1, progress=lambda d, t: calls.append((d, t)))
    assert raw.x.shape == (600, 6, 6, 1)
    assert calls == [(250, 600), (500, 600), (600, 600)]
