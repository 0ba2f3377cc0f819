"""``halo-agent meta-train --config models/metatrain/configs/smoke.json`` end to end, as a process.

The smoke config runs every stage (cost table from the config, ES with two worker
processes, weights and card, plot, evaluation against tuned Adam) in seconds; then
the same command resumes without redoing anything, a second folder reproduces the
weights exactly, and a changed config is refused for a folder made by another.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HALO_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()
SMOKE = REPO / "models" / "metatrain" / "configs" / "smoke.json"


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("HALO_DATA_DIR", "HALO_CACHE_DIR")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _meta_train(data_dir: Path, out: Path, *extra: str, config: Path = SMOKE):
    return subprocess.run([sys.executable, "-m", "agent", "meta-train", "--config", str(config),
                           "--out", str(out), "--data-dir", str(data_dir), *extra],
                          capture_output=True, text=True, timeout=300, env=_env(), cwd=str(REPO))


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    data = tmp_path_factory.mktemp("data")
    (data / "mnist").symlink_to(SHARED / "mnist")
    out = tmp_path_factory.mktemp("runs") / "smoke"
    p = _meta_train(data, out)
    assert p.returncode == 0, p.stderr
    return data, out, p


def test_every_stage_leaves_its_files(smoke):
    _, out, p = smoke
    cfg = json.loads(SMOKE.read_text())
    rows = list(csv.DictReader(open(out / "meta-loss.csv")))
    assert [int(r["iteration"]) for r in rows] == list(range(1, cfg["es"]["iterations"] + 1))
    assert all(np.isfinite(float(r["meta_loss"])) and float(r["meta_loss"]) > 0 for r in rows)
    assert {"x.lr.bias", "x.p.first", "p_first", "expected_cost"} <= set(rows[0])
    assert (out / "meta-loss.png").stat().st_size > 1000
    card = json.loads((out / "halo-smoke.json").read_text())
    assert card["config"]["cost_table"] == cfg["cost_table"]
    assert card["seed"] == 0 and card["meta_training"]["iterations"] == len(rows)
    assert len(card["meta_training"]["meta_loss_curve"]) == len(rows)
    summary = json.loads(p.stdout)
    assert summary["weights"].endswith("halo-smoke.npz")


def test_weights_load_and_carry_the_learned_probabilities(smoke):
    from models.halo.weights import load_weights

    _, out, _ = smoke
    w = load_weights(out / "halo-smoke.npz")
    card = json.loads((out / "halo-smoke.json").read_text())
    assert list(w.update_probabilities) == card["meta_training"]["update_probabilities"]
    # p.first was learned, the other two thirds kept the start values
    assert w.update_probabilities[1:] == (0.3, 0.5)
    assert w.update_probabilities[0] != 0.1


def test_evaluation_is_written_into_the_card(smoke):
    _, out, _ = smoke
    ev = json.loads((out / "halo-smoke.json").read_text())["evaluation"]
    (task,) = ev["tasks"]
    # adam dense and with the update probabilities of the weights under test
    sparse = next(k for k in task["arms"] if k.startswith("adam:thirds:"))
    assert task["task"] == "synthetic-a" and set(task["arms"]) == {"halo", "adam", sparse}
    assert task["estimated"] is True and task["energy_source"] == "estimate"
    assert task["best_baseline"] in ("adam", sparse)
    assert task["arms"][task["best_baseline"]]["lr"] in (1e-2, 1e-3)
    expected = 100 * (task["arms"]["halo"]["final_accuracy_smoothed"]
                      - task["best_baseline_smoothed_final"])
    assert task["halo_minus_best_points"] == pytest.approx(expected, abs=1e-3)
    assert task["within_1_point"] == (task["halo_minus_best_points"] >= -1.0)
    for stage in ("tune", "final"):
        assert (out / "evaluation" / "synthetic-a-cnn-a" / stage / "report.json").exists()
    # halo ran with the new weights and their own sparsity
    final = json.loads((out / "evaluation" / "synthetic-a-cnn-a" / "final" / "report.json").read_text())
    run = final["optimizers"]["halo"]["runs"][0]
    assert run["hyperparameters"]["weights"] == str(out / "halo-smoke.npz")


def test_rerun_resumes_without_redoing_work(smoke):
    data, out, _ = smoke
    before = (out / "meta-loss.csv").read_text()
    weights = (out / "halo-smoke.npz").read_bytes()
    p = _meta_train(data, out)
    assert p.returncode == 0, p.stderr
    assert "resuming from iteration" in p.stderr and "reusing" in p.stderr
    assert (out / "meta-loss.csv").read_text() == before
    assert (out / "halo-smoke.npz").read_bytes() == weights


def test_a_run_resumes_with_another_number_of_workers(smoke):
    """Workers change the speed, not the result: a run started on a 16-core machine
    resumes on a 2-core board's --workers 1 without being refused."""
    data, out, _ = smoke
    before = (out / "meta-loss.csv").read_text()
    p = _meta_train(data, out, "--workers", "1")
    assert p.returncode == 0, p.stderr
    assert "resuming from iteration" in p.stderr
    assert (out / "meta-loss.csv").read_text() == before


def test_same_config_and_seed_reproduce_the_weights(smoke, tmp_path):
    data, out, _ = smoke
    p = _meta_train(data, tmp_path / "again", "--no-eval", "--workers", "1")
    assert p.returncode == 0, p.stderr
    a = np.load(out / "halo-smoke.npz")
    b = np.load(tmp_path / "again" / "halo-smoke.npz")
    assert sorted(a.files) == sorted(b.files)
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def test_a_changed_config_is_refused_for_an_existing_run(smoke, tmp_path):
    data, out, _ = smoke
    cfg = json.loads(SMOKE.read_text())
    cfg["objective"]["lambda_jac"] = 0.0
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(cfg))
    p = _meta_train(data, out, config=changed)
    assert p.returncode == 2
    assert "objective" in p.stderr and str(out) in p.stderr


def test_a_bad_config_names_the_key(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"es": {"pairz": 3}}))
    p = _meta_train(tmp_path, tmp_path / "out", config=bad)
    assert p.returncode == 2 and "es.pairz" in p.stderr
    assert not (tmp_path / "out").exists()


SMOKE_DIST = REPO / "models" / "metatrain" / "configs" / "smoke-distribution.json"


def test_distribution_smoke_run_meta_validates_and_reproduces(tmp_path):
    """Meta-training over the task distribution, end to end: ES on the pool's meta-training
    tasks, meta-validation on its held-out tasks in the card; a second folder gives the
    same weights (same seed, same config)."""
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    from models.halo.weights import load_weights

    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(SHARED / "mnist")
    runs = []
    for name in ("a", "b"):
        p = _meta_train(data, tmp_path / name, "--no-eval", config=SMOKE_DIST)
        assert p.returncode == 0, p.stderr
        runs.append(tmp_path / name / "halo-smoke-distribution.npz")
    card = json.loads(runs[0].with_suffix(".json").read_text())
    mv = card["meta_validation"]
    assert len(mv["tasks"]) == 1 and set(mv["meta_trained"]["per_task"]) == set(mv["tasks"])
    assert np.isfinite(mv["start"]["meta_loss"]) and np.isfinite(mv["meta_trained"]["meta_loss"])
    a, b = (load_weights(r) for r in runs)
    assert a.validation is not None and a.validation == b.validation
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.mlp.w, b.mlp.w)
    assert card["config"]["cost_table"] == {}
