"""The user's own datasets and models over HTTP (issue 14 items 1-2): each format is
stored, adapted by a job with the real engine, and every malformed upload is a 4xx
naming the problem that stores nothing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from daemon_helpers import FakeEngine, local_client, wait_for
from upload_helpers import (
    csv_bytes,
    evil_zip,
    image_zip,
    model_bytes,
    npz_bytes,
    tabular,
)

from agent.server.app import create_app
from agent.server.settings import Settings
from agent.server.store import TERMINAL


def stored(data_dir: Path):
    """Every file under the two upload stores (temporary ones included)."""
    return sorted(p.relative_to(data_dir).as_posix() for d in ("user-datasets", "user-models")
                  for p in (data_dir / d).rglob("*") if p.is_file()) \
        if data_dir.exists() else []


def upload_dataset(c, name: str, filename: str, content: bytes, **form):
    return c.post("/v1/datasets", files={"file": (filename, content)},
                  data={"name": name, **{k: str(v) for k, v in form.items()}})


def upload_model(c, filename: str, content: bytes):
    return c.post("/v1/models", files={"file": (filename, content)}, data={"name": "mine"})


@pytest.fixture
def real_app(tmp_path: Path):
    """The daemon with the real engine and the labelled power estimate."""
    s = Settings(data_dir=tmp_path / "data", idle_seconds=0.0, power_source="estimate",
                 max_upload_bytes=4 * 1024 * 1024, max_unpacked_bytes=1024 * 1024)
    return create_app(s)


def run_job(c, body):
    r = c.post("/v1/adaptations", json=body)
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    return wait_for(lambda: (j := c.get(f"/v1/adaptations/{job_id}").json())["status"] in TERMINAL
                    and j, timeout_s=120)


def check_curve_and_model(c, job, classes: int) -> None:
    assert job["status"] == "succeeded", job
    curve = c.get(f"/v1/adaptations/{job['id']}/curve").json()["points"]
    assert [p["step"] for p in curve] == [0, 10, 20, 30]
    assert all(0 <= p["accuracy"] <= 1 and p["joules"] >= 0 for p in curve)
    r = c.get(f"/v1/adaptations/{job['id']}/model")
    assert r.status_code == 200
    with np.load(io.BytesIO(r.content), allow_pickle=False) as z:
        assert "__header__" in z.files
    assert job["report"]["estimated"] is True and job["report"]["energy_source"] == "estimate"
    assert job["report"]["final_accuracy"] >= 1.0 / classes  # separable data: at least chance


def test_each_format_and_an_uploaded_model_are_adapted(real_app, tmp_path):
    x, y = tabular()
    with local_client(real_app) as c:
        tab = upload_dataset(c, "blobs", "blobs.npz", npz_bytes(x=x, y=y))
        assert tab.status_code == 201, tab.text
        t = tab.json()
        assert t["input_shape"] == [6] and t["num_classes"] == 3 and t["format"] == "npz"
        assert t["split"] == {"kind": "stratified", "seed": 0, "test_fraction": 0.25}
        assert t["train_per_class"] == [22, 22, 22] and t["test_per_class"] == [8, 8, 8]
        assert len(t["normalisation"]["mean"]) == 6
        again = upload_dataset(c, "blobs", "blobs.npz", npz_bytes(x=x, y=y))
        assert again.status_code == 200 and again.json()["id"] == t["id"]  # content-addressed

        csv = upload_dataset(c, "blobs-csv", "blobs.csv", csv_bytes(x, y), label_column="kind")
        assert csv.status_code == 201, csv.text
        assert csv.json()["class_names"] == ["high", "low", "mid"]
        imgs = upload_dataset(c, "stripes", "stripes.zip", image_zip(), image_size="28x28",
                              channels=1)
        assert imgs.status_code == 201, imgs.text
        assert imgs.json()["input_shape"] == [28, 28, 1] and imgs.json()["n_test"] == 4

        mlp = upload_model(c, "mlp.npz", model_bytes(tmp_path, "mlp", (6,), 3))
        assert mlp.status_code == 201, mlp.text
        assert mlp.json()["n_layers"] == 3 and mlp.json()["input_shape"] == [6]
        listed = c.get("/v1/models").json()["items"]
        assert [m["id"] for m in listed] == [mlp.json()["id"]]
        file = c.get(f"/v1/models/{mlp.json()['id']}/file")
        assert file.status_code == 200 and file.content == model_bytes(tmp_path, "mlp", (6,), 3)

        budget = {"optimizer": "adam", "budget": {"steps": 30}, "eval_every": 10}
        for ds in (tab.json(), csv.json()):
            job = run_job(c, dict(budget, dataset_id=ds["id"], model_id=mlp.json()["id"]))
            check_curve_and_model(c, job, 3)
            assert job["dataset_id"] == ds["id"] and job["task"] is None
        # images: the built-in synthetic-a source model (28x28x1) adapted on the upload
        cnn = upload_model(c, "cnn.npz", model_bytes(tmp_path, "cnn-a", (28, 28, 1), 2))
        job = run_job(c, dict(budget, dataset_id=imgs.json()["id"], model_id=cnn.json()["id"],
                              sparsity="0.5,1,1"))
        check_curve_and_model(c, job, 2)

        ids = {d["id"] for d in c.get("/v1/datasets").json()["items"]}
        assert ids == {tab.json()["id"], csv.json()["id"], imgs.json()["id"]}
        assert c.delete(f"/v1/datasets/{tab.json()['id']}").status_code == 204
        assert c.get(f"/v1/datasets/{tab.json()['id']}").status_code == 404


def test_a_model_or_dataset_that_does_not_fit_is_a_422_naming_both(make_app, tmp_path):
    x, y = tabular()
    with local_client(make_app()) as c:
        ds = upload_dataset(c, "blobs", "b.npz", npz_bytes(x=x, y=y)).json()
        m = upload_model(c, "m.npz", model_bytes(tmp_path, "mlp", (7,), 3)).json()
        r = c.post("/v1/adaptations", json={"dataset_id": ds["id"], "model_id": m["id"],
                                            "optimizer": "adam", "budget": {"steps": 5}})
        assert r.status_code == 422 and r.json()["detail"].startswith("model_id:")
        assert "(7,)" in r.json()["detail"] and "(6,)" in r.json()["detail"]
        r = c.post("/v1/adaptations", json={"dataset_id": ds["id"], "task": "synthetic-a",
                                            "optimizer": "adam", "budget": {"steps": 5}})
        assert r.status_code == 422 and r.json()["detail"].startswith("dataset_id:")
        assert "(28, 28, 1)" in r.json()["detail"] and "(6,)" in r.json()["detail"]
        r = c.post("/v1/adaptations", json={"dataset_id": "0" * 64, "model_id": m["id"],
                                            "optimizer": "adam", "budget": {"steps": 5}})
        assert r.status_code == 422 and "no dataset has this id" in r.json()["detail"]
        assert c.get("/v1/adaptations").json()["total"] == 0


def test_a_dataset_in_use_is_not_deleted(make_app, tmp_path):
    x, y = tabular()
    with local_client(make_app(engine=FakeEngine(), start_runner=False)) as c:
        ds = upload_dataset(c, "blobs", "b.npz", npz_bytes(x=x, y=y)).json()
        m = upload_model(c, "m.npz", model_bytes(tmp_path, "mlp", (6,), 3)).json()
        job = c.post("/v1/adaptations", json={"dataset_id": ds["id"], "model_id": m["id"],
                                              "optimizer": "adam", "budget": {"steps": 5}})
        r = c.delete(f"/v1/datasets/{ds['id']}")
        assert r.status_code == 409 and job.json()["id"] in r.json()["detail"]
        assert c.get(f"/v1/datasets/{ds['id']}").status_code == 200
        c.post(f"/v1/adaptations/{job.json()['id']}/cancel")
        assert c.delete(f"/v1/datasets/{ds['id']}").status_code == 204


def _bad_uploads():
    x, y = tabular()
    nan = x.copy()
    nan[4, 1] = np.nan
    return [
        ("wrong shapes", "/v1/datasets", "a.npz", npz_bytes(x=x, y=y[:-1]), {},
         422, "y: shape (89,)"),
        ("NaN", "/v1/datasets", "a.npz", npz_bytes(x=nan, y=y), {}, 422, "x: holds nan"),
        ("one class", "/v1/datasets", "a.npz", npz_bytes(x=x, y=np.zeros_like(y)), {},
         422, "y: holds 1 class"),
        ("too few", "/v1/datasets", "a.npz", npz_bytes(x=x[:33], y=y[:33]), {},
         422, "has 3 examples"),
        ("negative label", "/v1/datasets", "a.npz", npz_bytes(x=x, y=y - 1), {},
         422, "y: holds -1"),
        ("pickle", "/v1/datasets", "a.npz",
         npz_bytes(x=np.array([{"a": 1}] * 10, dtype=object), y=np.zeros(10)), {},
         422, "without pickles"),
        ("CSV gap", "/v1/datasets", "a.csv", b"f,label\n1,a\n,b\n", {}, 422,
         "line 3, column 'f': missing value"),
        ("CSV label", "/v1/datasets", "a.csv", b"f,label\n1,a\n", {"label_column": "cls"},
         422, "label_column: got 'cls'"),
        ("zip ../x", "/v1/datasets", "a.zip", evil_zip("dotdot"), {"image_size": "8x8"},
         422, "climbs out with '..'"),
        ("zip absolute", "/v1/datasets", "a.zip", evil_zip("absolute"), {"image_size": "8x8"},
         422, "absolute path"),
        ("zip symlink", "/v1/datasets", "a.zip", evil_zip("symlink"), {"image_size": "8x8"},
         422, "symbolic link"),
        ("zip bomb", "/v1/datasets", "a.zip", evil_zip("bomb"), {"image_size": "8x8"},
         422, "unpacks to more than 1048576 bytes"),
        ("oversized", "/v1/datasets", "a.npz", b"\0" * (4 * 1024 * 1024 + 1), {},
         413, "expected at most 4194304 bytes"),
        ("not a format", "/v1/datasets", "a.exe", b"MZ", {}, 422, "expected a .npz, .csv"),
        ("non-ONNX", "/v1/models", "m.onnx", b"\x08\x07garbage", {}, 422,
         "'m.onnx' does not load as a model"),
        ("non-npz model", "/v1/models", "m.npz", b"PK\x03\x04 nope", {}, 422,
         "'m.npz' does not load as a model"),
        ("other file", "/v1/models", "m.pt", b"\x80\x02", {}, 422, "expected an .onnx file"),
    ]


@pytest.mark.parametrize("what, path, filename, content, form, status, message",
                         _bad_uploads(), ids=[b[0] for b in _bad_uploads()])
def test_a_bad_upload_is_refused_naming_the_problem_and_stores_nothing(
        make_app, settings, what, path, filename, content, form, status, message):
    app = make_app(max_upload_bytes=4 * 1024 * 1024, max_unpacked_bytes=1024 * 1024)
    with local_client(app) as c:
        r = c.post(path, files={"file": (filename, content)},
                   data={"name": "bad", **form})
        assert r.status_code == status, r.text
        assert message in r.json()["detail"], r.json()["detail"]
        assert c.get("/v1/health").json()["status"] == "ok"
    assert stored(settings.data_dir) == []


def test_data_import_command_stores_a_folder_of_images(tmp_path, capsys):
    from PIL import Image

    from agent.cli import main

    for cls, value in (("dark", 30), ("light", 220)):
        (tmp_path / "pics" / cls).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (40, 30), (value, value - i, 0)).save(tmp_path / "pics" / cls / f"{i}.jpg")
    data = tmp_path / "data"
    args = ["data", "import", str(tmp_path / "pics"), "--name", "board-cam", "--image-size",
            "16x16", "--data-dir", str(data)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "stored: 'board-cam' (images), input (16, 16, 3), 2 classes (dark, light)" in out
    assert main(args) == 0 and "already stored" in capsys.readouterr().out
    assert len(list((data / "user-datasets").iterdir())) == 1
    assert main(["data", "import", str(tmp_path / "pics"), "--name", "x", "--data-dir",
                 str(data)]) == 2
    assert "image_size: required" in capsys.readouterr().err


def test_an_uploaded_onnx_model_is_adapted_and_written_back_as_onnx(real_app, tmp_path):
    pytest.importorskip("onnx")
    from models.nets import build_network
    from models.onnx.builtin import save_network_onnx

    x, y = tabular()
    onnx_file = save_network_onnx(build_network("mlp", (6,), 3, seed=1), tmp_path / "mlp.onnx")
    with local_client(real_app) as c:
        ds = upload_dataset(c, "blobs", "blobs.npz", npz_bytes(x=x, y=y)).json()
        m = upload_model(c, "mlp.onnx", Path(onnx_file).read_bytes())
        assert m.status_code == 201, m.text
        assert m.json()["format"] == "onnx" and m.json()["input_shape"] == [6]
        job = run_job(c, {"dataset_id": ds["id"], "model_id": m.json()["id"],
                          "optimizer": "adam", "budget": {"steps": 30}, "eval_every": 10})
        assert job["status"] == "succeeded", job
        r = c.get(f"/v1/adaptations/{job['id']}/model")
        assert r.status_code == 200
        assert r.headers["content-disposition"].endswith(f'adapted-{job["id"]}.onnx"')
        import onnx

        onnx.checker.check_model(onnx.load_from_string(r.content))
