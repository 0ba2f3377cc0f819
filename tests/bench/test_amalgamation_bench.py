"""``python -m bench.amalgamation``: every mechanism x perturbation scored on held-out tasks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.amalgamation import VARIANTS, markdown, run

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"

SPEC = {"seed": 5,
        "mnist": {"tasks": 2, "archs": ["mlp"], "shots": [30], "source_per_class": 200,
                  "val_per_class": 30, "source_steps": 80, "mlp_horizons": [60]},
        "tabular": {"tasks": 1, "source_size": 400, "train_size": [24, 200], "val_size": 100,
                    "source_steps": 200, "horizons": [60]}}


def test_every_variant_is_scored_on_held_out_tasks_only(tmp_path, monkeypatch):
    if not (SHARED / "mnist").is_dir():
        pytest.skip(f"shared data not found at {SHARED}")
    monkeypatch.setenv("HALO_CACHE_DIR", str(tmp_path / "cache"))
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist").symlink_to(SHARED.resolve() / "mnist")
    r = run(data, SPEC, n_validation=1, seeds_per_task=1, steps=30, iters=5, seed=0, workers=1,
            log=lambda *_: None)
    assert len(r["rows"]) == len(VARIANTS) + 1
    names = {t for row in r["rows"] for t in row["per_task"]}
    assert len(names) == 1 and r["trajectory_task"] not in names  # trajectory from a training task
    assert all(np.isfinite(row["meta_validation_loss"]) for row in r["rows"])
    fitted = [row for row in r["rows"] if row["fit_loss"] is not None]
    assert len({tuple(np.ravel(row["mlp"]["w"])) for row in fitted}) > 1  # mechanisms differ
    md = markdown(r, "python -m bench.amalgamation ...")
    assert md.count("\n| ") == len(VARIANTS) + 2 and "**" in md
