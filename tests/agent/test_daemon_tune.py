"""The daemon's tuning job kind: ``POST /v1/adaptations`` with ``tune`` runs hypergradient
tuning then adaptation with the real engine; bad settings are a 422 naming the field."""

from __future__ import annotations

import pytest
from daemon_helpers import local_client, wait_for

from agent.server.app import create_app
from agent.server.settings import Settings
from agent.server.store import TERMINAL

TUNE = {"task": "synthetic-a", "optimizer": "momentum", "budget": {"steps": 20},
        "eval_every": 10, "tune": {"meta_steps": 2, "blocks": 2}}


@pytest.fixture
def real_app(server_data):
    return create_app(Settings(data_dir=server_data, idle_seconds=0.0, power_source="estimate"))


def test_tuning_job_runs_end_to_end(real_app):
    with local_client(real_app) as c:
        r = c.post("/v1/adaptations", json=TUNE)
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        job = wait_for(lambda: (j := c.get(f"/v1/adaptations/{job_id}").json())["status"] in TERMINAL
                       and j, timeout_s=180)
        assert job["status"] == "succeeded", job
        rep = job["report"]
        assert rep["optimizer"] == "momentum-schedule" and rep["steps"] == 20
        assert rep["tuning"]["meta_steps"] == 2 and len(rep["tuning"]["history"]) == 2
        assert rep["tuning"]["joules"] > 0 and rep["tuning_joules"] == rep["tuning"]["joules"]
        assert rep["schedule"]["steps"] == 20 and len(rep["schedule"]["momentum"]) == 2
        assert job["request"]["tune"]["meta_steps"] == 2
        curve = c.get(f"/v1/adaptations/{job_id}/curve").json()["points"]
        assert [p["step"] for p in curve] == [0, 10, 20]
        assert c.get(f"/v1/adaptations/{job_id}/model").status_code == 200


@pytest.mark.parametrize("change,field,words", [
    ({"optimizer": "adam"}, "tune", "expected optimizer 'momentum'"),
    ({"budget": {"seconds": 30}}, "tune", "expected budget.steps in 1..5000"),
    ({"budget": {"steps": 6000}}, "tune", "expected budget.steps in 1..5000"),
    ({"tune": {"meta_steps": 0}}, "tune.meta_steps", "greater than or equal to 1"),
    ({"tune": {"meta_steps": 501}}, "tune.meta_steps", "less than or equal to 500"),
    ({"tune": {"meta_steps": 2, "method": "grid"}}, "tune.method", "hypergrad"),
    ({"tune": {"steps": 2}}, "tune.steps", ""),
    ({"optimizer": "momentum-schedule", "tune": None}, "tune", "expected a tuning job"),
])
def test_bad_tuning_settings_are_refused_and_nothing_is_stored(real_app, change, field, words):
    body = dict(TUNE, **change)
    if body.get("tune") is None:
        body.pop("tune")
    with local_client(real_app) as c:
        r = c.post("/v1/adaptations", json=body)
        assert r.status_code == 422, r.text
        errors = r.json()["errors"]
        assert any(e["field"] == field and words in e["message"] for e in errors), errors
        assert c.get("/v1/adaptations").json()["total"] == 0
        assert c.get("/v1/health").json()["status"] == "ok"
