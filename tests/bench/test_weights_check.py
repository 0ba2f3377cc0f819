"""``python -m bench.weights_check``: untuned HALO weights side by side, per-seed report."""

from __future__ import annotations

import json

import pytest

from bench.weights_check import main
from models.halo.schedule import ValidationLevel
from models.halo.weights import load_weights, save_weights


def test_two_weights_on_a_built_in_task(tmp_path, monkeypatch, capsys):
    for k in ("HALO_DATA_DIR", "HALO_CACHE_DIR", "HALO_POWER_METER", "HALO_POWER_ORDER"):
        monkeypatch.delenv(k, raising=False)
    w = load_weights()
    a = save_weights(tmp_path / "a.npz", w)
    b = save_weights(tmp_path / "b.npz", w._replace(validation=ValidationLevel(every=10)))
    out = tmp_path / "report.json"
    assert main(["--weights", str(a), str(b), "--task", "synthetic-a:cnn-a:20", "--seeds", "2",
                 "--workers", "1", "--data-dir", str(tmp_path / "data"), "--out", str(out)]) == 0
    r = json.loads(out.read_text())
    assert len(r["runs"]) == 4 and len(r["summary"]) == 2
    first = [x for x in r["runs"] if x["weights"] == str(a)]
    s = next(x for x in r["summary"] if x["weights"] == "a.npz")
    assert s["final_accuracy_smoothed_mean"] == pytest.approx(
        sum(x["final_accuracy_smoothed"] for x in first) / 2)
    assert all(x["estimated"] for x in r["runs"])
    with_level = [x for x in r["runs"] if x["weights"] == str(b)]
    assert all(x["validation"]["probes"] == 2 for x in with_level)
    assert "a.npz" in capsys.readouterr().out


def test_a_bad_task_spelling_is_named(tmp_path):
    with pytest.raises(SystemExit):
        main(["--weights", "x.npz", "--task", "mnist-a:cnn-b", "--data-dir", str(tmp_path),
              "--out", str(tmp_path / "r.json")])
