"""halo-agent bench kernels / bench memory: they run, write their reports, reject bad input."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.cli import main

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("HALO_SHARED_DATA", REPO / ".." / "shared" / "data")).resolve()


def test_bench_kernels_writes_ratios(tmp_path, capsys):
    out = tmp_path / "k"
    rc = main(["bench", "kernels", "--sizes", "2000", "--rounds", "1", "--block", "1",
               "--cases", "tdp-female:mlp", "--sparse-steps", "1", "--weights",
               str(REPO / "models" / "weights" / "halo-v0.npz"), "--out", str(out)])
    assert rc == 0
    r = json.loads((out / "report.json").read_text())
    control, u = r["updates"]  # the Adam-vs-Adam null reading first, then the weights
    assert control["n"] == 2000 and control["weights"] == "control: Adam" and control["ratio"] > 0
    assert u["n"] == 2000 and u["weights"] == "halo-v0" and u["ratio"] > 0
    assert [(s["task"], s["sparsity"] is None) for s in r["steps"]] == [
        ("tdp-female", True), ("tdp-female", False)]  # dense, then at HALO's sparsity
    assert all(s["ratio"] > 0 and s["params"] > 0 for s in r["steps"])
    assert r["command"].startswith("halo-agent bench kernels")
    md = (out / "report.md").read_text()
    assert "| 2e+03 | halo-v0 |" in md and "tdp-female/mlp" in md
    from kernels import fused

    assert r["implementation"] == fused.describe() and fused.describe() in md  # which code ran


def test_interleaved_alternates_strictly_and_compares_neighbours(monkeypatch):
    """Every timed call follows a call of the other function (so each finds the caches as
    the other left them), and round i's ratio is other_i over the mean of the refs either
    side of it."""
    from bench import halo_kernels

    calls = []
    clock = iter(range(1000))
    monkeypatch.setattr(halo_kernels.time, "perf_counter", lambda: float(next(clock)) ** 2)
    r = halo_kernels.interleaved(lambda: calls.append("a"), lambda: calls.append("b"), rounds=3)
    assert "".join(calls) == "abab" + "a" + "ba" * 3  # warm-up, then a (b a) x rounds
    # call k is timed from t = (2k)^2 to (2k + 1)^2: it lasts 4k + 1 (k = 0 the first timed ref)
    refs, others = [1, 9, 17, 25], [5, 13, 21]
    want = sorted(o / ((a + b) / 2) for o, a, b in zip(others, refs, refs[1:]))
    assert r["ratio"] == pytest.approx(want[1]) and r["s"] == 13 and r["reference_s"] == 13


def test_bench_kernels_rejects_bad_sizes(capsys):
    assert main(["bench", "kernels", "--sizes", "1e4,lots"]) != 0
    assert "sizes" in capsys.readouterr().err


def test_bench_memory_measures_a_fresh_process(tmp_path):
    if not (SHARED / "thyroid").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "thyroid").symlink_to(SHARED / "thyroid")
    out = tmp_path / "m"
    rc = main(["bench", "memory", "--cases", "tdp-female:mlp,mnist-a", "--steps", "5",
               "--daemon-task", "none", "--data-dir", str(data), "--out", str(out)])
    assert rc == 0
    r = json.loads((out / "report.json").read_text())
    ok, missing = r["runs"]
    assert ok["task"] == "tdp-female" and ok["steps"] == 5 and 20 < ok["peak_rss_mb"] < 2000
    assert missing["task"] == "mnist-a" and "mnist" in missing["skipped"]  # no files: said so
    assert "| tdp-female | mlp |" in (out / "report.md").read_text()
