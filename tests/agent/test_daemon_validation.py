"""Bad input gets a 4xx whose message names the field and the value; the API keeps serving."""

from __future__ import annotations

import pytest
from daemon_helpers import GOOD, local_client


def body(**changes):
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in GOOD.items()}
    budget = changes.pop("budget_changes", None)
    out.update(changes)
    if budget is not None:
        out["budget"] = dict(out["budget"], **budget)
    return out


BAD = [
    ("task", body(task="no-such-task"), "'no-such-task'"),
    ("task", body(task="../../etc/passwd"), "not a path"),
    ("task", body(task="/etc/passwd"), "not a path"),
    ("task", body(task=5), "5"),
    ("task", body(task="x" * 5000), "at most 64"),
    ("optimizer", body(optimizer="nope"), "'nope'"),
    ("optimizer", body(optimizer="..\\..\\win"), "not a path"),
    ("model", body(model="resnet-9000"), "'resnet-9000'"),
    ("model", body(model="~/models/x.npz"), "not a path"),
    ("sparsity", body(sparsity="../../etc/passwd"), "not a path"),
    ("sparsity", body(sparsity="0.1,abc"), "'0.1,abc'"),
    ("sparsity", body(sparsity="0.1,1.5"), "(0, 1]"),
    ("lr", body(lr=0), "0"),
    ("lr", body(lr=-1.0), "-1.0"),
    ("lr", body(lr=11), "11"),
    ("lr", body(lr="fast"), "'fast'"),
    ("budget.steps", body(budget_changes={"steps": -5}), "-5"),
    ("budget.steps", body(budget_changes={"steps": 0}), "0"),
    ("budget.steps", body(budget_changes={"steps": 10**12}), "1000000000000"),
    ("budget.steps", body(budget_changes={"steps": "10"}), "'10'"),
    ("budget.steps", body(budget_changes={"steps": 1.5}), "1.5"),
    ("budget.steps", body(budget_changes={"steps": True}), "True"),
    ("budget.joules", body(budget_changes={"joules": -1}), "-1"),
    ("budget.joules", body(budget_changes={"joules": 1e300}), "1e+300"),
    ("budget.seconds", body(budget_changes={"seconds": 0}), "0"),
    ("budget.seconds", body(budget_changes={"seconds": 1e12}), "1000000000000"),
    ("budget.target_accuracy", body(budget_changes={"target_accuracy": 1.5}), "1.5"),
    ("budget", body(budget={}), "at least one of steps, seconds, joules"),
    ("budget", body(budget=[1, 2]), "[1, 2]"),
    ("budget.path", body(budget_changes={"path": "/etc/passwd"}), "'/etc/passwd'"),
    ("eval_every", body(eval_every=0), "0"),
    ("seed", body(seed=-1), "-1"),
    ("seed", body(seed=2**31), "2147483648"),
    ("model_path", body(model_path="/etc/passwd"), "Extra inputs are not permitted"),
    ("task", {k: v for k, v in GOOD.items() if k != "task"}, "required"),
    ("budget", {k: v for k, v in GOOD.items() if k != "budget"}, "required"),
]


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    from daemon_helpers import fake_config, fake_sampler_factory

    from agent.server.app import create_app
    from agent.server.settings import Settings

    settings = Settings(data_dir=tmp_path_factory.mktemp("validation"), idle_seconds=0.0)
    app = create_app(settings, sampler_factory=fake_sampler_factory, config_factory=fake_config,
                     start_runner=False)
    with local_client(app) as c:
        yield c


@pytest.mark.parametrize("field, payload, value", BAD, ids=[f"{f}-{i}" for i, (f, _, _) in
                                                            enumerate(BAD)])
def test_bad_body_names_field_and_value(client, field, payload, value):
    r = client.post("/v1/adaptations", json=payload)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and f"{field}:" in detail and value in detail, detail
    assert "Traceback" not in r.text
    assert any(e["field"] == field for e in r.json()["errors"])
    assert client.get("/v1/health").status_code == 200


@pytest.mark.parametrize("content, ctype, status, words", [
    (b"{not json", "application/json", 422, "not valid JSON"),
    (b'{"task": NaN}', "application/json", 422, "task"),
    (b"[1, 2, 3]", "application/json", 422, "body"),
    (b"", "application/json", 422, "body"),
    (b"task=synthetic-a", "application/x-www-form-urlencoded", 422,
     "Content-Type: application/json"),
    (b'{"task": "synthetic-a"}', "text/plain", 422, "Content-Type: application/json"),
])
def test_malformed_bodies(client, content, ctype, status, words):
    r = client.post("/v1/adaptations", content=content, headers={"Content-Type": ctype})
    assert r.status_code == status and words in r.json()["detail"], r.text


def test_nan_budget_is_rejected(client):
    raw = b'{"task": "synthetic-a", "optimizer": "adam", "budget": {"joules": NaN}}'
    r = client.post("/v1/adaptations", content=raw, headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and "budget.joules" in r.json()["detail"]


def test_oversized_body_is_413_before_parsing(client):
    big = b'{"task": "' + b"a" * (70 * 1024) + b'"}'
    r = client.post("/v1/adaptations", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "request body" in r.json()["detail"]

    def chunks():
        for _ in range(20):
            yield b" " * 8192

    r = client.post("/v1/adaptations", content=chunks(),
                    headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/v1/adaptations", content=b"{}",
                    headers={"Content-Type": "application/json", "Content-Length": "abc"})
    assert r.status_code in (400, 422)
    assert client.get("/v1/health").status_code == 200


@pytest.mark.parametrize("params, field", [
    ({"limit": 0}, "limit"), ({"limit": 10_000}, "limit"), ({"offset": -1}, "offset"),
    ({"limit": "ten"}, "limit"), ({"status": "../x"}, "status"),
])
def test_bad_query_parameters(client, params, field):
    r = client.get("/v1/adaptations", params=params)
    assert r.status_code == 422 and r.json()["detail"].startswith(f"{field}:")


def test_bad_ids_and_formats(client):
    r = client.get("/v1/adaptations/not-an-id")
    assert r.status_code == 422 and "job_id: got 'not-an-id'" in r.json()["detail"]
    r = client.get(f"/v1/adaptations/{'a' * 32}/curve", params={"format": "xml"})
    assert r.status_code == 422 and "format" in r.json()["detail"]
