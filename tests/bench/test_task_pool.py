"""bench.task_pool: the pool report (build time, per-task sweep, table, summary) on a tiny tabular spec."""

from __future__ import annotations

import json

from bench.task_pool import LR_GRID, main


def test_report_holds_every_task_its_sweep_and_the_table(tmp_path):
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"seed": 2, "mnist": {"tasks": 0},
                                "tabular": {"tasks": 2, "horizons": [20], "source_steps": 50,
                                            "source_size": 200, "val_size": 50,
                                            "train_size": [24, 100]}}))
    out = tmp_path / "out"
    # no MNIST task: an empty data folder is enough (nothing else may be read)
    assert main(["--data-dir", str(tmp_path / "empty"), "--cache-dir", str(tmp_path / "cache"),
                 "--out", str(out), "--spec", str(spec), "--sweep", "adam"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["sources_pretrained"] == 2 and report["build_seconds"] > 0
    assert [t["family"] for t in report["tasks"]] == ["tabular", "tabular"]
    for t in report["tasks"]:
        sweep = t["sweep"]["adam"]
        assert [r["lr"] for r in sweep["runs"]] == list(LR_GRID)
        best = max(r["final_accuracy"] for r in sweep["runs"])
        assert sweep["best_final_accuracy"] == best
        assert all(len(r["accuracy_curve"]) == 11 for r in sweep["runs"])  # step 0 + 10 evaluations
        assert 0.0 <= sweep["best_step_fraction"] <= 1.0
    assert report["summary"]["tabular/adam"]["tasks"] == 2
    rows = (out / "tasks.md").read_text().splitlines()
    assert len(rows) == 4 and all(t["name"] in "".join(rows) for t in report["tasks"])
