"""``GET /metrics`` follows Prometheus' conventions: it parses with the reference
parser, units are in the names, counters end in ``_total``, rails are labels."""

from __future__ import annotations

import time

from daemon_helpers import GOOD, FakeEngine, local_client, wait_for
from prometheus_client.parser import text_string_to_metric_families

from agent import __version__


def _families(text: str):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_names_units_and_labels(make_app):
    with local_client(make_app(FakeEngine(points=2))) as c:
        job_id = c.post("/v1/adaptations", json=GOOD).json()["id"]
        wait_for(lambda: c.get(f"/v1/adaptations/{job_id}").json()["status"] == "succeeded")
        text = c.get("/metrics").text
    fam = _families(text)
    # the parser strips `_total` from a counter's family name
    assert fam["halo_agent_training_joules"].type == "counter"
    [train] = fam["halo_agent_training_joules"].samples
    assert train.name == "halo_agent_training_joules_total" and train.value == 0.5
    assert train.labels == {"source": "fake", "estimated": "true"}
    assert fam["halo_agent_power_watts"].type == "gauge"
    assert fam["halo_agent_power_watts"].samples[0].value == 2.5
    rails = {s.labels["rail"]: s.value for s in fam["halo_agent_rail_power_watts"].samples}
    assert rails == {"cpu": 1.5, "soc": 1.0}
    assert all(s.labels["estimated"] == "true" for s in fam["halo_agent_rail_power_watts"].samples)
    jobs = {s.labels["status"]: s.value for s in fam["halo_agent_jobs"].samples}
    assert jobs["succeeded"] == 1
    [start] = fam["halo_agent_start_time_seconds"].samples
    assert time.time() - 600 < start.value <= time.time()
    assert fam["halo_agent_build_info"].samples[0].labels == {"version": __version__}
    for name, f in fam.items():
        assert f.type != "counter" or f.samples[0].name.endswith("_total"), name
        assert f.documentation, name
    assert "uptime" not in text  # a start time, not an uptime (Prometheus' guideline)


def test_board_energy_counter_grows_with_a_real_sampler(tmp_path):
    """With the real sampler and the labelled estimate, the board's joules since start
    are a counter that grows between two scrapes."""
    from agent.server.app import create_app
    from agent.server.settings import Settings

    s = Settings(data_dir=tmp_path / "data", idle_seconds=0.0, power_source="estimate")
    with local_client(create_app(s, start_runner=False)) as c:
        def energy():
            fam = _families(c.get("/metrics").text).get("halo_agent_energy_joules")
            return fam.samples[0] if fam else None

        first = wait_for(energy, timeout_s=10)
        assert first.labels["source"] == "estimate" and first.labels["estimated"] == "true"
        second = wait_for(lambda: (e := energy()) and e.value > first.value and e, timeout_s=10)
        assert second.name == "halo_agent_energy_joules_total"
