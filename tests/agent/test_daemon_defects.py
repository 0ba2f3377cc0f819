"""Defects found by trying halo-agent as a new user would (issue 14, item 5); each test
failed before its fix."""

from __future__ import annotations

import pytest
from daemon_helpers import GOOD, FakeEngine, local_client, wait_for

from agent.cli import main
from agent.engine import AdaptConfig, run_adaptation
from agent.errors import ConfigError
from models.checkpoint import save_model
from models.data import get_task
from models.data.paths import resolve_data_dir
from models.nets import build_network
from models.pretrain import cache_dir


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR", "HALO_POWER_METER", "HALO_POWER_ORDER"):
        monkeypatch.delenv(k, raising=False)


def _events(client, job_id: str, **headers: str):
    r = client.get(f"/v1/adaptations/{job_id}/events", headers=headers)
    return r, [line for line in r.text.splitlines() if line.startswith("id: ")]


def test_events_resume_after_last_event_id(make_app):
    with local_client(make_app(engine=FakeEngine(points=5))) as c:
        job_id = c.post("/v1/adaptations", json=GOOD).json()["id"]
        wait_for(lambda: c.get(f"/v1/adaptations/{job_id}").json()["status"] == "succeeded")
        r, ids = _events(c, job_id)
        assert ids == [f"id: {job_id}:{i}" for i in range(5)]
        r, ids = _events(c, job_id, **{"Last-Event-ID": f"{job_id}:2"})
        assert r.status_code == 200 and ids == [f"id: {job_id}:3", f"id: {job_id}:4"]
        assert r.text.rstrip().splitlines()[-1].startswith("data: ")  # the final status
        for bad in ("nonsense", f"{'0' * 32}:1", f"{job_id}:-1"):
            r = c.get(f"/v1/adaptations/{job_id}/events", headers={"Last-Event-ID": bad})
            assert r.status_code == 422 and r.json()["detail"].startswith("Last-Event-ID:")


@pytest.mark.parametrize("sparsity, why", [
    ("0,0,0", "(0, 1]"),                 # a layer that never trains: the engine refuses it
    ("0.5,0.5", "3 trainable layers"),   # cnn-a has three
    ("thirds:0.1,0.2", "3 probabilities"),
])
def test_sparsity_the_engine_refuses_is_a_422(make_app, sparsity, why):
    with local_client(make_app()) as c:
        r = c.post("/v1/adaptations", json=dict(GOOD, sparsity=sparsity))
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("sparsity:") and why in r.json()["detail"]
        assert c.get("/v1/adaptations").json()["total"] == 0


@pytest.mark.parametrize("task, model", [("har-a", "cnn-a"), ("tdp-female", "cnn-c")])
def test_a_cnn_on_a_tabular_task_is_a_422_naming_the_model(make_app, task, model):
    """Found by the API fuzz test on the 3.9 leg: the model check built the network
    unguarded, so a CNN asked for a tabular task was an unhandled 500."""
    with local_client(make_app()) as c:
        r = c.post("/v1/adaptations", json=dict(GOOD, task=task, model=model))
        assert r.status_code == 422, r.text
        detail = r.json()["detail"]
        assert detail.startswith("model:") and repr(model) in detail and task in detail
        assert c.get("/v1/adaptations").json()["total"] == 0


@pytest.mark.parametrize("sparsity", ["0.1,0.3,0.5", "thirds:0.1,0.3,0.5", "halo", "dense"])
def test_sparsity_the_engine_accepts_is_queued(make_app, sparsity):
    with local_client(make_app()) as c:
        assert c.post("/v1/adaptations", json=dict(GOOD, sparsity=sparsity)).status_code == 202


@pytest.mark.parametrize("body, what", [
    (b'{"task": "synthetic-a", ', "not valid JSON at character"),
    (b'{"task": "synth\xff\xfe"}', "not UTF-8"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_malformed_json_is_a_422_naming_the_body(make_app, body, what):
    with local_client(make_app()) as c:
        r = c.post("/v1/adaptations", content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("body: ") and what in r.json()["detail"]
        assert r.json()["errors"][0]["field"] == "body"


def test_adapt_with_a_file_as_data_dir_is_one_clear_line(tmp_path, capsys):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    code = main(["adapt", "--data-dir", str(a_file), "--power-source", "estimate",
                 "--idle-seconds", "0", "--steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "data_dir" in err[0] and "not a file" in err[0]
    assert a_file.read_text() == "not a folder"


def test_adapt_to_an_unwritable_output_model_fails_before_training(tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder should be")
    data = tmp_path / "data"
    code = main(["adapt", "--data-dir", str(data), "--power-source", "estimate",
                 "--idle-seconds", "0", "--steps", "1",
                 "--output-model", str(blocker / "adapted.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("halo-agent: error: output_model:")
    assert not data.exists()  # refused before pretraining or any other work
    code = main(["adapt", "--data-dir", str(data), "--output-model", str(tmp_path)])
    assert code == 2 and "not a directory" in capsys.readouterr().err


def test_checkpoint_cache_is_one_place_whichever_command_runs_first(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()  # a fresh board: no ~/.local/share yet
    monkeypatch.setenv("HOME", str(home))
    data = resolve_data_dir(None)
    before = cache_dir(data)  # adapt, before anything created the data directory
    data.mkdir(parents=True)  # serve and data fetch create it
    assert before == cache_dir(data) == home / ".local/share/halo-agent/checkpoints"


def test_a_model_made_for_another_task_is_refused(tmp_path):
    spec = get_task("synthetic-b")
    path = save_model(tmp_path / "b.npz", build_network("cnn-a", spec.input_shape,
                                                        spec.num_classes), {"task": spec.name})
    cfg = AdaptConfig(task="synthetic-a", data_dir=tmp_path, model_path=path, steps=1,
                      power_source="estimate", idle_seconds=0.0)
    with pytest.raises(ConfigError) as e:
        run_adaptation(cfg)
    assert e.value.field == "model_path"
    assert "'synthetic-a'" in str(e.value) and "'synthetic-b'" in str(e.value)
