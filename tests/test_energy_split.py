"""The energy split of a run: measured evaluation energy, training energy by timed part."""

from __future__ import annotations

import pytest

from agent.energysplit import energy_split
from agent.engine import AdaptConfig, run_adaptation


def test_training_joules_follow_the_measured_time_of_each_part():
    sp = energy_split({"forward_backward": 3.0, "optimizer_update": 1.0}, train_seconds=5.0,
                      train_joules=10.0, total_joules=13.5)
    assert sp["seconds"]["other_training"] == pytest.approx(1.0)
    assert sp["joules"] == pytest.approx({"forward_backward": 6.0, "optimizer_update": 2.0,
                                          "other_training": 2.0, "evaluation": 3.5})
    assert sp["share_of_training"]["optimizer_update"] == pytest.approx(0.2)
    assert "attributed" in sp["method"] and "measured" in sp["method"]


def test_parts_timed_past_the_window_never_exceed_the_training_joules():
    sp = energy_split({"forward_backward": 4.0, "optimizer_update": 2.0}, 5.0, 10.0, 10.0)
    assert sp["seconds"]["other_training"] == 0.0
    assert sum(v for k, v in sp["joules"].items() if k != "evaluation") == pytest.approx(10.0)
    assert sp["joules"]["evaluation"] == 0.0


@pytest.mark.parametrize("optimizer", ["adam", "halo"])
def test_a_run_reports_where_its_energy_went(tmp_path, monkeypatch, optimizer):
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    r = run_adaptation(AdaptConfig(task="synthetic-a", data_dir=tmp_path / "data", steps=30,
                                   eval_every=10, seed=0, optimizer=optimizer,
                                   power_source="estimate", idle_seconds=0.0))
    sp = r["energy_split"]
    training = {k: v for k, v in sp["joules"].items() if k != "evaluation"}
    assert sum(training.values()) == pytest.approx(r["joules"], rel=1e-4, abs=1e-5)
    assert sp["joules"]["evaluation"] == pytest.approx(r["joules_total"] - r["joules"], abs=1e-5)
    assert sp["seconds"]["forward_backward"] > 0 and sp["seconds"]["optimizer_update"] > 0
    assert sum(sp["share_of_training"].values()) == pytest.approx(1.0, abs=1e-5)
