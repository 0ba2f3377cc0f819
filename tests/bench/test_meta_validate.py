"""bench.meta_validate: weights files scored on a config's meta-validation tasks, deterministic."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import meta_validate

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data"
SMOKE = ROOT / "models" / "metatrain" / "configs" / "smoke-distribution.json"
V2 = ROOT / "models" / "weights" / "halo-v2.npz"
V1 = ROOT / "models" / "weights" / "halo-v1.npz"


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data folder not found at {SHARED}")
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_scores_each_weights_file_on_the_held_out_tasks(cache):
    out = cache / "mv.json"
    assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights",
                               str(V2), str(V1), "--workers", "1", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    rows = report["weights"]
    assert set(rows) == {"halo-v2.npz", "halo-v1.npz"}
    for row in rows.values():
        assert len(row["per_task"]) == 1  # the smoke config holds out one task
        assert 0.0 <= row["final_error"] <= 1.0 and row["meta_loss"] > 0
    assert rows["halo-v2.npz"]["meta_loss"] != rows["halo-v1.npz"]["meta_loss"]
    again = cache / "again.json"
    meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights", str(V2),
                        "--workers", "1", "--out", str(again)])
    assert json.loads(again.read_text())["weights"]["halo-v2.npz"]["meta_loss"] == \
        rows["halo-v2.npz"]["meta_loss"]


def test_missing_weights_and_single_task_configs_are_refused(cache, capsys):
    out = cache / "mv.json"
    assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights",
                               str(cache / "nope.npz"), "--out", str(out)]) == 2
    assert "nope.npz" in capsys.readouterr().err
    single = ROOT / "models" / "metatrain" / "configs" / "smoke.json"
    assert meta_validate.main(["--config", str(single), "--data-dir", str(SHARED), "--weights",
                               str(V2), "--out", str(out)]) == 2
    assert "no distribution" in capsys.readouterr().err
    assert not out.exists()


def test_level_overrides_make_variants_and_bad_ones_are_named(cache, capsys):
    from models.halo.weights import load_weights

    w = load_weights(V2)
    v = meta_validate.variant(w, {"rollback": 0.3})
    assert w.validation is None and v.validation.rollback == 0.3  # the neutral level + override
    assert meta_validate.variant(v, no_level=True).validation is None
    assert meta_validate.label(V2, {"rollback": 0.3}) == "halo-v2.npz+rollback=0.3"
    out = cache / "mv.json"
    assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights", str(V2),
                               "--level", "rollback=0.3", "--workers", "1", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())["weights"]) == {"halo-v2.npz+rollback=0.3"}
    for bad in (["--level", "rollback"], ["--level", "rollback=x"], ["--level", "patience=3"],
                ["--level", "rollback=-1"], ["--level", "rollback=1", "--no-level"]):
        assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights",
                                   str(V2), "--out", str(cache / "bad.json")] + bad) == 2
        err = capsys.readouterr().err
        assert bad[1].split("=")[0] in err or "exclude" in err
    assert not (cache / "bad.json").exists()


def test_seeds_per_task_overrides_the_config_and_is_recorded(cache, capsys):
    out = cache / "mv.json"
    assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights",
                               str(V2), "--workers", "1", "--seeds-per-task", "3",
                               "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["meta_validation"]["seeds_per_task"] == 3
    assert "x 3 seeds" in capsys.readouterr().out
    assert meta_validate.main(["--config", str(SMOKE), "--data-dir", str(SHARED), "--weights",
                               str(V2), "--seeds-per-task", "0", "--out", str(out)]) == 2
    assert "--seeds-per-task 0" in capsys.readouterr().err
