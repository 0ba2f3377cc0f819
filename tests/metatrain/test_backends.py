"""Where ES unrolls run: the process pool and Ray give the same meta-parameters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from models.metatrain.backends import close_pool, make_pool

REPO = Path(__file__).resolve().parents[2]


def _quadratic(theta: np.ndarray, seed: int) -> float:
    """A seeded noisy quadratic: the noise depends on the seed only (common random numbers)."""
    noise = np.random.default_rng(seed).standard_normal(theta.shape) * 0.01
    return float(np.sum((theta - 1.0 + noise) ** 2))


def test_make_pool_checks_its_arguments():
    with pytest.raises(ValueError, match="backend must be one of"):
        make_pool("threads", 2)
    with pytest.raises(ValueError, match="needs --backend ray"):
        make_pool("process", 2, address="auto")
    assert make_pool("process", 1) is None  # one worker: in this process
    pool = make_pool("process", 2)
    try:
        assert list(pool.map(_quadratic, [np.zeros(2)] * 2, [1, 2])) == [
            _quadratic(np.zeros(2), 1), _quadratic(np.zeros(2), 2)]
    finally:
        close_pool(pool)


def test_ray_missing_is_named(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what Python does for a package not installed
    with pytest.raises(RuntimeError, match=r"halo-agent\[ray\]"):
        make_pool("ray", 2)


@pytest.mark.slow
def test_meta_train_backend_ray_end_to_end(tmp_path):
    """``halo-agent meta-train --backend ray`` on a local Ray instance reproduces the
    process-pool run of the same config and seed, weights bit for bit."""
    pytest.importorskip("ray", reason="pip install 'halo-agent[ray]'")
    shared = (REPO / ".." / "shared" / "data").resolve()
    if not (shared / "mnist").is_dir():
        pytest.skip(f"shared data not found at {shared}")
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(shared / "mnist")
    config = REPO / "models" / "metatrain" / "configs" / "smoke-distribution.json"
    env = {k: v for k, v in os.environ.items() if k not in ("HALO_DATA_DIR", "HALO_CACHE_DIR")}
    env["PYTHONPATH"] = str(REPO)
    outs = {}
    for backend in ("process", "ray"):
        out = tmp_path / backend
        p = subprocess.run([sys.executable, "-m", "agent", "meta-train", "--config", str(config),
                            "--data-dir", str(data), "--out", str(out), "--no-eval",
                            "--workers", "2", "--backend", backend],
                           capture_output=True, text=True, timeout=600, env=env, cwd=str(REPO))
        assert p.returncode == 0, p.stderr[-3000:]
        outs[backend] = out
    a = np.load(outs["process"] / "halo-smoke-distribution.npz")
    b = np.load(outs["ray"] / "halo-smoke-distribution.npz")
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    card = json.loads((outs["ray"] / "halo-smoke-distribution.json").read_text())
    assert card["meta_training"]["backend"] == "ray"


def test_address_without_ray_backend_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    config = REPO / "models" / "metatrain" / "configs" / "smoke-distribution.json"
    p = subprocess.run([sys.executable, "-m", "agent", "meta-train", "--config", str(config),
                        "--data-dir", str(tmp_path), "--out", str(tmp_path / "o"),
                        "--address", "auto"], capture_output=True, text=True, timeout=120,
                       env=env, cwd=str(REPO))
    assert p.returncode == 2 and "address" in p.stderr
    assert not (tmp_path / "o").exists()
