"""The daemon as a real uvicorn process on a loopback port, with the real engine on the
built-in synthetic-a task and the labelled power estimate."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import pytest
from daemon_helpers import ServerProcess, wait_for

from agent.server.store import TERMINAL


def job(steps: int, eval_every: int = 10, **extra: Any) -> Dict[str, Any]:
    return {"task": "synthetic-a", "optimizer": "adam", "budget": {"steps": steps},
            "eval_every": eval_every, **extra}


def follow(client, job_id: str, timeout_s: float = 60.0, max_lines: int = 20_000
           ) -> List[Tuple[str, Dict[str, Any]]]:
    """Read the job's event stream to its end: [(event, data)], bounded in lines and time."""
    out, event = [], None
    deadline = time.monotonic() + timeout_s
    with client.stream("GET", f"/v1/adaptations/{job_id}/events", timeout=timeout_s) as r:
        assert r.status_code == 200
        for n, line in enumerate(r.iter_lines()):
            assert n < max_lines and time.monotonic() < deadline, "event stream did not end"
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                out.append((event, json.loads(line[len("data: "):])))
    return out


def status_of(client, job_id: str) -> Dict[str, Any]:
    return client.get(f"/v1/adaptations/{job_id}").json()


def ended(client, job_id: str):
    body = status_of(client, job_id)
    return body if body["status"] in TERMINAL else None


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def server(tmp_path_factory, source_checkpoints):
    import shutil

    data = tmp_path_factory.mktemp("live") / "data"
    shutil.copytree(source_checkpoints, data / "checkpoints")
    srv = ServerProcess(data).start()
    yield srv
    srv.stop()


def test_job_end_to_end(server):
    source = server.data_dir / "checkpoints" / "synthetic-a--cnn-a--source.npz"
    before = sha256(source)
    with server.client() as c:
        r = c.post("/v1/adaptations", json=job(60))
        assert r.status_code == 202
        job_id = r.json()["id"]
        events = follow(c, job_id)
        points = [d for e, d in events if e == "point"]
        statuses = [d["status"] for e, d in events if e == "status"]
        assert [p["step"] for p in points] == [0, 10, 20, 30, 40, 50, 60]
        assert statuses[-1] == "succeeded" and set(statuses) <= {"queued", "running", "succeeded"}

        body = status_of(c, job_id)
        assert body["status"] == "succeeded" and body["progress"] == 1.0
        assert body["energy_source"] == "estimate" and body["estimated"] is True
        report = body["report"]
        for key in ("task", "model", "optimizer", "hyperparameters", "seed", "initial_accuracy",
                    "final_accuracy", "steps", "seconds", "joules", "energy_source",
                    "estimated", "points", "source_model", "model_path"):
            assert key in report, key
        assert report["steps"] == 60 and report["estimated"] is True
        assert len(report["points"]) == 7 and report["points"][-1] == body["latest_point"]

        curve = c.get(f"/v1/adaptations/{job_id}/curve").json()
        assert [p["step"] for p in curve["points"]] == [p["step"] for p in points]
        assert curve["energy_source"] == "estimate" and curve["estimated"] is True
        text = c.get(f"/v1/adaptations/{job_id}/curve", params={"format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(text)))
        assert [float(r["joules"]) for r in rows] == [p["joules"] for p in curve["points"]]
        assert {r["energy_source"] for r in rows} == {"estimate"}

        model = c.get(f"/v1/adaptations/{job_id}/model")
        assert model.status_code == 200
        path = Path(report["model_path"])
        assert path.parent == server.data_dir / "models" and path.read_bytes() == model.content
        with np.load(io.BytesIO(model.content), allow_pickle=False) as z:
            assert "__header__" in z.files
        assert Path(report["source_model"]) == source and sha256(source) == before


def test_cancel_running_job(server):
    with server.client() as c:
        job_id = c.post("/v1/adaptations", json=job(1_000_000)).json()["id"]
        wait_for(lambda: status_of(c, job_id)["points"] >= 2, timeout_s=60)
        t0 = time.monotonic()
        r = c.post(f"/v1/adaptations/{job_id}/cancel")
        assert r.status_code == 202 and r.json()["status"] == "running"
        body = wait_for(lambda: ended(c, job_id), timeout_s=30)
        assert time.monotonic() - t0 < 10
        assert body["status"] == "cancelled" and body["report"]["stop_reason"] == "cancelled"
        assert body["points"] >= 2 and body["report"]["steps"] < 1_000_000
        assert c.get(f"/v1/adaptations/{job_id}/model").status_code == 200
        assert c.post(f"/v1/adaptations/{job_id}/cancel").status_code == 409


def test_queued_jobs_run_in_order(server):
    with server.client() as c:
        ids = [c.post("/v1/adaptations", json=job(n)).json()["id"] for n in (80, 30, 40)]
        jobs = [wait_for(lambda i=i: ended(c, i), timeout_s=60) for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert [j["report"]["steps"] for j in jobs] == [80, 30, 40]
    assert jobs[0]["finished_at"] <= jobs[1]["started_at"]
    assert jobs[1]["finished_at"] <= jobs[2]["started_at"]


def test_bad_input_keeps_the_server_serving(server):
    bad = [
        (job(30, task="../../etc/passwd"), "task"),
        (job(30, optimizer="nope"), "optimizer"),
        (job(-3), "budget.steps"),
        (job(10**9), "budget.steps"),
        ({**job(30), "budget": {"joules": -1.0}}, "budget.joules"),
        ({**job(30), "budget": {"seconds": "long"}}, "budget.seconds"),
        (job(30, eval_every="often"), "eval_every"),
        (job(30, model="../../../etc/shadow"), "model"),
    ]
    with server.client() as c:
        for payload, field in bad:
            r = c.post("/v1/adaptations", json=payload)
            assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:"), r.text
        r = c.post("/v1/adaptations", content=b"{" * 100_000,
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 413
        r = c.post("/v1/adaptations", content=b"{broken",
                   headers={"Content-Type": "application/json"})
        assert r.status_code == 422 and "JSON" in r.json()["detail"]
        assert c.get("/v1/health").json()["status"] == "ok"
        p = c.get("/v1/power").json()
        # the default estimate counts the daemon's own process tree: idle, about 0 W
        assert p["source"] == "estimate" and p["estimated"] is True and p["total_w"] >= 0
        assert p["attribution"] == "process" and p["covers"]
        assert "halo_agent_jobs" in c.get("/metrics").text


def test_kill9_during_a_job_then_restart(server_data):
    source = server_data / "checkpoints" / "synthetic-a--cnn-a--source.npz"
    before = sha256(source)
    srv = ServerProcess(server_data).start()
    try:
        with srv.client() as c:
            job_id = c.post("/v1/adaptations", json=job(1_000_000)).json()["id"]
            wait_for(lambda: status_of(c, job_id)["points"] >= 3, timeout_s=60)
            seen = c.get(f"/v1/adaptations/{job_id}/curve").json()["points"]
        srv.kill9()
        db = sqlite3.connect(str(server_data / "jobs.sqlite3"))
        on_disk = db.execute("SELECT COUNT(*) FROM points WHERE job_id = ?",
                             (job_id,)).fetchone()[0]
        db.close()
        assert on_disk >= len(seen) >= 3
        srv.start()
        with srv.client() as c:
            body = status_of(c, job_id)
            assert body["status"] == "interrupted" and body["points"] == on_disk
            assert "stopped" in body["error"]["message"]
            after = c.get(f"/v1/adaptations/{job_id}/curve").json()["points"]
            assert after[: len(seen)] == seen
            # the daemon goes on serving new jobs after the crash
            new = c.post("/v1/adaptations", json=job(20)).json()["id"]
            assert wait_for(lambda: ended(c, new), timeout_s=60)["status"] == "succeeded"
    finally:
        srv.stop()
    db = sqlite3.connect(str(server_data / "jobs.sqlite3"))
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    assert sha256(source) == before
    assert not list((server_data / "models").glob(".*.tmp"))


def test_token_and_systemd_ready(server_data, tmp_path):
    import os
    import socket
    import tempfile

    token = "t0ken-" + "z" * 30
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    d = tempfile.mkdtemp(prefix="sdn")
    sock_path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(30.0)
    srv = ServerProcess(server_data, "--token-file", str(token_file), token=token,
                        env={"NOTIFY_SOCKET": sock_path})
    try:
        srv.start()
        ready = sock.recv(4096).decode()
        assert ready.startswith("READY=1")
        with srv.client() as c:
            assert c.get("/v1/health").status_code == 200
            c.headers.pop("Authorization")
            r = c.get("/v1/health")
            assert r.status_code == 401 and "Authorization" in r.json()["detail"]
            r = c.post("/v1/adaptations", json=job(10),
                       headers={"Authorization": "Bearer not-the-token-xxxxxxxx"})
            assert r.status_code == 401
        with srv.client() as c:
            job_id = c.post("/v1/adaptations", json=job(1_000_000)).json()["id"]
            wait_for(lambda: status_of(c, job_id)["points"] >= 2, timeout_s=60)
            streamed: List[Tuple[str, Dict[str, Any]]] = []
            reader = threading.Thread(target=lambda: streamed.extend(follow(c, job_id, 30)))
            reader.start()
            time.sleep(0.3)
            t0 = time.monotonic()
            # a graceful stop (SIGTERM): uvicorn re-raises the signal after shutting down
            assert srv.stop() in (0, -signal.SIGTERM)
            assert time.monotonic() - t0 < 12
            reader.join(15)
            assert not reader.is_alive() and [e for e, _ in streamed].count("point") >= 2
            assert streamed[-1][0] == "shutdown"
        assert sock.recv(4096).decode().startswith("STOPPING=1")
        db = sqlite3.connect(str(server_data / "jobs.sqlite3"))
        status, error = db.execute("SELECT status, error FROM jobs WHERE id = ?",
                                   (job_id,)).fetchone()
        db.close()
        assert status == "interrupted" and "daemon stopped" in error
    finally:
        srv.stop()
        sock.close()
        os.unlink(sock_path)
        os.rmdir(d)
