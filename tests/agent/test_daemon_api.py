"""The REST API in process (TestClient) with a fake engine and sampler on a temporary store."""

from __future__ import annotations

import csv
import io
import json

import pytest
from daemon_helpers import GOOD, FakeEngine, FakeSample, local_client, wait_for

from agent import __version__
from agent.server.deps import get_sampler


def finished(client, job_id):
    body = client.get(f"/v1/adaptations/{job_id}").json()
    return body if body["status"] not in ("queued", "running") else None


def test_submit_follow_and_fetch(make_app):
    with local_client(make_app(FakeEngine(points=4))) as c:
        r = c.post("/v1/adaptations", json=GOOD)
        assert r.status_code == 202 and r.json()["status"] == "queued"
        job_id = r.json()["id"]
        assert r.headers["location"] == f"/v1/adaptations/{job_id}"
        with c.stream("GET", f"/v1/adaptations/{job_id}/events") as ev:
            assert ev.headers["content-type"].startswith("text/event-stream")
            lines = [line for _, line in zip(range(200), ev.iter_lines())]
        events = [ln[len("event: "):] for ln in lines if ln.startswith("event: ")]
        data = [json.loads(ln[len("data: "):]) for ln in lines if ln.startswith("data: ")]
        assert events.count("point") == 4 and events[-1] == "status"
        assert data[-1]["status"] == "succeeded"
        assert [d["step"] for d, e in zip(data, events) if e == "point"] == [0, 10, 20, 30]

        job = c.get(f"/v1/adaptations/{job_id}").json()
        assert job["status"] == "succeeded" and job["progress"] == 1.0 and job["points"] == 4
        assert job["latest_point"]["step"] == 30 and job["joules"] == 1.5
        assert job["energy_source"] == "fake" and job["estimated"] is True
        assert job["report"]["final_accuracy"] == pytest.approx(0.3)
        assert len(job["report"]["points"]) == 4 and job["model_available"]
        assert job["request"]["budget"]["steps"] == 30 and job["request"]["seed"] == 0

        curve = c.get(f"/v1/adaptations/{job_id}/curve").json()
        assert curve["energy_source"] == "fake" and len(curve["points"]) == 4
        text = c.get(f"/v1/adaptations/{job_id}/curve", params={"format": "csv"})
        assert text.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(text.text)))
        assert [int(r["step"]) for r in rows] == [0, 10, 20, 30]
        assert rows[0]["energy_source"] == "fake" and rows[0]["estimated"] == "true"
        model = c.get(f"/v1/adaptations/{job_id}/model")
        assert model.status_code == 200 and model.content == b"model"


def test_list_pagination_and_filter(make_app):
    with local_client(make_app(FakeEngine(points=1))) as c:
        ids = [c.post("/v1/adaptations", json=GOOD).json()["id"] for _ in range(3)]
        wait_for(lambda: all(finished(c, i) for i in ids))
        page = c.get("/v1/adaptations", params={"limit": 2}).json()
        assert page["total"] == 3 and [j["id"] for j in page["items"]] == ids[::-1][:2]
        assert page["next_offset"] == 2
        last = c.get("/v1/adaptations", params={"limit": 2, "offset": 2}).json()
        assert [j["id"] for j in last["items"]] == ids[:1] and last["next_offset"] is None
        assert c.get("/v1/adaptations", params={"status": "failed"}).json()["total"] == 0
        r = c.get("/v1/adaptations", params={"status": "bogus"})
        assert r.status_code == 422 and "status" in r.json()["detail"]


def test_cancel_queued_and_running(make_app):
    engine = FakeEngine(points=100_000, delay_s=0.002)
    with local_client(make_app(engine)) as c:
        first = c.post("/v1/adaptations", json=GOOD).json()["id"]
        second = c.post("/v1/adaptations", json=GOOD).json()["id"]
        r = c.post(f"/v1/adaptations/{second}/cancel")
        assert r.status_code == 200 and r.json()["status"] == "cancelled"
        wait_for(lambda: c.get(f"/v1/adaptations/{first}").json()["points"] >= 2)
        r = c.post(f"/v1/adaptations/{first}/cancel")
        assert r.status_code == 202 and r.json() == {"id": first, "status": "running",
                                                     "cancel_requested": True}
        job = wait_for(lambda: finished(c, first))
        assert job["status"] == "cancelled" and job["points"] >= 2
        r = c.post(f"/v1/adaptations/{first}/cancel")
        assert r.status_code == 409 and first in r.json()["detail"]
        r = c.get(f"/v1/adaptations/{second}/model")
        assert r.status_code == 404 and "without an adapted model" in r.json()["detail"]
        assert engine.calls == [first]


def test_model_of_unfinished_job_is_409_and_unknown_job_404(make_app):
    with local_client(make_app(start_runner=False)) as c:
        job_id = c.post("/v1/adaptations", json=GOOD).json()["id"]
        r = c.get(f"/v1/adaptations/{job_id}/model")
        assert r.status_code == 409 and "queued" in r.json()["detail"]
        missing = "0" * 32
        for path in ("", "/curve", "/model", "/events"):
            r = c.get(f"/v1/adaptations/{missing}{path}")
            assert r.status_code == 404 and missing in r.json()["detail"], path
        r = c.post(f"/v1/adaptations/{missing}/cancel")
        assert r.status_code == 404
        r = c.get("/v1/adaptations/..%2F..%2Fetc%2Fpasswd")
        assert r.status_code in (404, 422) and "detail" in r.json()


def test_queue_limit_and_step_limit(make_app):
    with local_client(make_app(start_runner=False, max_queued=2, max_steps=100)) as c:
        assert c.post("/v1/adaptations", json=GOOD).status_code == 202
        r = c.post("/v1/adaptations", json=dict(GOOD, budget={"steps": 101}))
        assert r.status_code == 422 and "budget.steps" in r.json()["detail"]
        assert "101" in r.json()["detail"]
        assert c.post("/v1/adaptations", json=GOOD).status_code == 202
        r = c.post("/v1/adaptations", json=GOOD)
        assert r.status_code == 429 and "queue" in r.json()["detail"]


def test_health_power_metrics_and_registries(make_app):
    with local_client(make_app(FakeEngine(points=2))) as c:
        h = c.get("/v1/health").json()
        assert h["status"] == "ok" and h["version"] == __version__
        assert h["power_source"] == "fake" and h["estimated"] is True and h["uptime_s"] >= 0
        p = c.get("/v1/power").json()
        assert p["source"] == "fake" and p["estimated"] is True and p["total_w"] == 2.5
        assert p["rails_w"] == {"cpu": 1.5, "soc": 1.0} and p["age_s"] < 5
        opts = {o["name"]: o["default_lr"] for o in c.get("/v1/optimizers").json()["optimizers"]}
        assert opts["adam"] == pytest.approx(1e-3)
        tasks = c.get("/v1/tasks").json()
        assert "synthetic-a" in [t["name"] for t in tasks["tasks"]] and "cnn-a" in tasks["models"]
        job_id = c.post("/v1/adaptations", json=GOOD).json()["id"]
        wait_for(lambda: finished(c, job_id))
        m = c.get("/metrics")
        assert m.headers["content-type"].startswith("text/plain")
        assert 'halo_agent_jobs{status="succeeded"} 1' in m.text
        assert 'halo_agent_training_joules_total{source="fake",estimated="true"} 0.5' in m.text
        assert 'halo_agent_power_watts{source="fake",estimated="true"} 2.5' in m.text
        assert c.get("/docs").status_code == 200
        assert c.get("/openapi.json").json()["info"]["title"] == "halo-agent"


def test_power_without_a_reading_is_503_via_dependency_override(make_app):
    class NoReading:
        meter = None

        def latest(self):
            return None

    class NaNReading:
        meter = None

        def latest(self):
            return FakeSample(0.0, float("nan"), {"x": float("inf")}, "ina3221", False)

    app = make_app()
    with local_client(app) as c:
        app.dependency_overrides[get_sampler] = NoReading
        r = c.get("/v1/power")
        assert r.status_code == 503 and "no reading" in r.json()["detail"]
        app.dependency_overrides[get_sampler] = NaNReading
        body = c.get("/v1/power").json()
        assert body["total_w"] is None and body["rails_w"] == {"x": None}
        assert body["source"] == "ina3221" and body["estimated"] is False
        app.dependency_overrides.clear()


def test_unknown_route_and_method_are_json(make_app):
    with local_client(make_app()) as c:
        r = c.get("/v2/nothing")
        assert r.status_code == 404 and "/v2/nothing" in r.json()["detail"]
        r = c.delete("/v1/health")
        assert r.status_code == 405 and "DELETE" in r.json()["detail"]
        assert r.headers["allow"] == "GET"
        r = c.put("/v1/adaptations")
        assert r.status_code == 405 and r.headers["allow"] == "GET, POST"


def test_unexpected_error_is_500_json_without_trace(make_app):
    app = make_app()

    def broken():
        raise RuntimeError("secret internals")

    with local_client(app, raise_server_exceptions=False) as c:
        app.dependency_overrides[get_sampler] = broken
        r = c.get("/v1/power")
        assert r.status_code == 500
        assert r.json() == {"detail": "internal error (RuntimeError); see the daemon log"}
