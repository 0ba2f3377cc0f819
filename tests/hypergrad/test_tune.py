"""``halo-agent tune --method hypergrad``, the momentum-schedule optimizer and the bench arm."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from agent import tune as T
from agent.cli import main
from agent.errors import ConfigError
from agent.server import tune_job
from bench.arms import BenchConfigError
from bench.hypergrad_arm import parse_options
from kernels.optim_base import StepInfo
from models.hypergrad.schedule import ScheduleError, build, load_schedule
from models.hypergrad.unroll import Schedule, hypergradient
from models.nets import Network
from models.train import Trainer

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HALO_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
needs_tdp = pytest.mark.skipif(not (SHARED / "thyroid").exists(),
                               reason="needs ../shared/data/thyroid")


@pytest.fixture(scope="module")
def _cache(tmp_path_factory):
    """One checkpoint cache for the module: the tdp-female source MLP is pretrained once
    (about a second) instead of being looked for in the shared data folder."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch, _cache):
    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR", "HALO_POWER_METER", "HALO_POWER_ORDER"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("HALO_CACHE_DIR", str(_cache))


@needs_tdp
def test_tune_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["tune", "--method", "hypergrad", "--optimizer", "momentum", "--task", "tdp-female",
               "--steps", "30", "--meta-steps", "3", "--blocks", "2", "--eval-every", "10",
               "--data-dir", str(SHARED), "--power-source", "estimate", "--idle-seconds", "0",
               "--out", str(out), "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    t = r["tuning"]
    assert r["optimizer"] == "momentum-schedule" and r["steps"] == 30 and r["status"] == "succeeded"
    assert t["meta_steps"] == 3 and len(t["history"]) == 3
    assert t["validation"]["from"] == "target training split"
    assert t["validation"]["examples"] + t["validation"]["train_examples"] > t["validation"]["examples"]
    assert all(h["restored_exactly"] for h in t["history"] if "val_loss" in h)
    # tuning joules are measured and reported apart from the adaptation's training joules
    assert t["joules"] > 0 and r["tuning_joules"] == t["joules"] and r["joules"] > 0
    assert t["estimated"] is True and t["energy_source"] == "estimate"
    assert t["buffer_bits"] > 0
    # the saved schedule is the reported one, loads, and is what the run used
    saved = json.loads((out / "schedule.json").read_text())
    assert saved == r["schedule"] == load_schedule(out / "schedule.json")
    assert np.asarray(saved["lr"]).shape == (3, 2) and len(saved["momentum"]) == 2
    assert saved["val_loss"] == min(h["val_loss"] for h in t["history"] if "val_loss" in h)
    assert json.loads((out / "report.json").read_text())["schedule"] == saved
    pytest.importorskip("matplotlib")
    assert (out / "schedule.png").stat().st_size > 1000


@pytest.mark.parametrize("argv,flag", [
    (["--steps", "0"], "--steps"), (["--steps", str(T.MAX_STEPS + 1)], "--steps"),
    (["--meta-steps", "0"], "--meta-steps"), (["--meta-steps", "x"], "--meta-steps"),
    (["--method", "grid"], "--method"), (["--optimizer", "adam"], "--optimizer")])
def test_tune_cli_refuses_out_of_range_settings(argv, flag, capsys):
    with pytest.raises(SystemExit) as e:
        main(["tune", "--task", "synthetic-a"] + argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and argv[1] in err


@pytest.mark.parametrize("field,value", [("steps", 0), ("meta_steps", 10**6), ("blocks", 0),
                                         ("lr", 5.0), ("momentum", 1.0), ("validation_fraction", 0.9),
                                         ("optimizer", "adam"), ("method", "grid")])
def test_tune_config_errors_name_field_and_value(field, value, tmp_path):
    cfg = T.TuneConfig(task="synthetic-a", data_dir=tmp_path, **{field: value})
    with pytest.raises(ConfigError, match=f"^{field}: got {value!r}"):
        cfg.validate()


def test_task_too_small_to_split_is_a_clear_error():
    tr, va = T.split_validation(1000, 0.2, 512, 64, 0, "x")
    assert len(set(tr) & set(va)) == 0 and len(tr) + len(va) == 1000 and len(va) == 200
    with pytest.raises(ConfigError, match=r"^task: got 'tiny'; expected a target training split "
                                          r"large enough.*it has 90 examples"):
        T.split_validation(90, 0.2, 512, 64, 0, "tiny")
    with pytest.raises(ConfigError, match="at least 32 needed"):
        T.split_validation(100, 0.2, 512, 64, 0, "tiny")


def test_schedule_optimizer_follows_the_tuned_unroll():
    """The momentum-schedule optimizer, run by the engine's Trainer in float32, follows
    the same trajectory as the reversible fixed-point unroll the schedule was tuned on."""
    rng = np.random.default_rng(0)
    net = Network("mlp", (10,), 3).init(0)
    steps, w0 = 24, net.params.data.astype(np.float64)
    xs, ys = rng.standard_normal((steps, 8, 10)).astype(np.float32), rng.integers(0, 3, (steps, 8))
    probs = np.array([0.5, 0.7, 1.0])
    trainer_masks = np.random.default_rng([0, 1])
    masks = np.stack([trainer_masks.random(3) < probs for _ in range(steps)])
    sched = Schedule(np.log(0.05) + 0.5 * rng.standard_normal((3, 3)), np.array([0.9, 0.8, 0.7]))
    hypergradient(net, w0, sched, [(xs[t], ys[t]) for t in range(steps)], masks,
                  (xs[0], ys[0]))
    w_unroll = net.params.data.astype(np.float64).copy()
    net.params.data[...] = w0
    opt = build(net, None, {"schedule": sched.to_json(net.layer_names, steps)})
    tr = Trainer(net, opt, probs, seed=0)
    for t in range(steps):
        tr.step(xs[t], ys[t], t, t / steps)
    np.testing.assert_allclose(net.params.data, w_unroll, rtol=0, atol=1e-5)
    assert np.abs(w_unroll - w0).max() > 1e-2


def test_schedule_errors_are_clear(tmp_path):
    net = Network("mlp", (4,), 2)
    with pytest.raises(ScheduleError, match="needs a schedule"):
        build(net, None, {})
    bad = tmp_path / "s.json"
    bad.write_text("{not json")
    with pytest.raises(ScheduleError, match="cannot read"):
        build(net, None, {"weights": str(bad)})
    good = {"steps": 10, "lr": [[0.1], [0.1], [0.1]], "momentum": [0.9]}
    for field, value in (("steps", 0), ("lr", [[0.1, -1.0]] * 3), ("momentum", [1.5])):
        with pytest.raises(ScheduleError, match=f"field '{field}'"):
            build(net, None, {"schedule": dict(good, **{field: value})})
    with pytest.raises(ScheduleError, match="2 layers; the model has 3"):
        build(net, None, {"schedule": dict(good, lr=[[0.1], [0.1]])})
    opt = build(net, 2.0, {"schedule": good})  # lr scales the schedule
    st = opt.init(net.params.size)
    p, g = np.zeros(net.params.size, np.float32), np.ones(net.params.size, np.float32)
    opt.update(p, g, st, StepInfo(0, 0.0, 1, 0, net.params.size, 1.0))
    np.testing.assert_allclose(p, -0.2, rtol=1e-6)


def test_bench_hypergrad_options():
    assert parse_options(["meta_steps=3", "lr=1e-3", "meta-lr=0.5"]) == {
        "meta_steps": 3, "lr": 1e-3, "meta_lr": 0.5}
    with pytest.raises(BenchConfigError, match="hypergrad"):
        parse_options(["steps=3"])
    with pytest.raises(BenchConfigError, match="meta_steps=int"):
        parse_options(["meta_steps=many"])


def test_daemon_limits_match_the_tuner():
    assert tune_job.MAX_TUNE_STEPS == T.MAX_STEPS
    assert tune_job.MAX_META_STEPS == T.MAX_META_STEPS


@needs_tdp
def test_bench_compare_hypergrad_arm_and_summary(tmp_path):
    from bench.compare import CompareConfig, run_compare
    from bench.hypergrad_results import main as summarize
    from bench.report import write_outputs

    cfg = CompareConfig(task="tdp-female", data_dir=SHARED, optimizers=["momentum", "hypergrad"],
                        seeds=1, steps=20, eval_every=10, tune_lr=[1e-2, 1e-3], warmup_steps=2,
                        power_source="estimate", idle_seconds=0.0,
                        options={"hypergrad": {"meta_steps": 2, "blocks": 2}})
    r = run_compare(cfg)
    hg, mom = r["optimizers"]["hypergrad"], r["optimizers"]["momentum"]
    run = hg["runs"][0]
    assert run["optimizer"] == "momentum-schedule" and run["tuning"]["meta_steps"] == 2
    assert hg["tuning_joules"] == pytest.approx(run["tuning"]["joules"]) and hg["tuning_joules"] > 0
    assert hg["tuned"] is False and hg["hand_designed"] is False
    assert mom["tuned"] and mom["tuning_runs"] == 2 and mom["tuning_joules"] > 0
    write_outputs(r, tmp_path / "tdp-female-mlp" / "seed0", plots=False)
    assert summarize([str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())["tdp-female-mlp"]
    assert summary["arms"]["hypergrad"]["tuning_joules"] == [hg["tuning_joules"]]
    assert summary["arms"]["momentum"]["final_accuracy"] == [mom["runs"][0]["final_accuracy"]]
    assert "| tdp-female / mlp | hypergrad | 1 |" in (tmp_path / "summary.md").read_text()


@needs_tdp
def test_cancel_during_tuning_stops_within_a_step():
    calls = []

    def should_stop():
        calls.append(1)
        return len(calls) > 5

    cfg = T.TuneConfig(task="tdp-female", data_dir=SHARED, steps=50, meta_steps=3,
                       power_source="estimate", idle_seconds=0.0)
    r = T.run_tune(cfg, should_stop=should_stop)
    assert r["status"] == "cancelled" and r["points"] == []
    assert len(calls) == 6
