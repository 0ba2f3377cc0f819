"""A quick side-by-side of HALO weights files on evaluation tasks, untuned, many seeds in parallel.

This is a screening tool for candidate weights during meta-training work, not the
evaluation of record: it runs no baselines (compare with a stored evaluation's
tuned baselines, or run ``halo-agent bench compare``), and its joules are whatever
the power source gives (estimated on a machine without a meter, per process).

    python -m bench.weights_check --weights A.npz B.npz --data-dir DATA \
        --task mnist-a:cnn-b:300 --task tdp-female:mlp:1000 --seeds 8 --workers 16 \
        --out report.json

Every (task, weights, seed) run is one ``halo-agent adapt`` job (``run_adaptation``)
in a worker process with one BLAS thread; the report gives per-seed final accuracy
(mean of the last 3 evaluations) and training joules, and their means.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Dict, List, Tuple


def _one(job: Tuple[str, str, int, str, int, str]) -> Dict[str, Any]:
    from agent.engine import AdaptConfig, run_adaptation

    task, model, steps, weights, seed, data_dir = job
    r = run_adaptation(AdaptConfig(
        task=task, model=model, data_dir=Path(data_dir), optimizer="halo", steps=steps,
        eval_every=25, seed=seed, power_source="estimate", idle_seconds=0.0, threads=1,
        hyperparameters={"weights": weights, "kernel": "elementwise"}))
    last = [p["accuracy"] for p in r["points"][-3:]]
    return {"task": task, "model": model, "steps": steps, "weights": weights, "seed": seed,
            "final_accuracy_smoothed": 100.0 * sum(last) / len(last),
            "initial_accuracy": 100.0 * r["initial_accuracy"], "joules": r["joules"],
            "estimated": r["estimated"], "energy_source": r["energy_source"],
            "validation": r.get("validation")}


def _task(text: str) -> Tuple[str, str, int]:
    parts = text.split(":")
    if len(parts) != 3 or not parts[2].isdigit():
        raise argparse.ArgumentTypeError(f"--task {text!r}: expected TASK:MODEL:STEPS")
    return parts[0], parts[1], int(parts[2])


def main(argv: List[str] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.weights_check", description=__doc__.split("\n")[0])
    ap.add_argument("--weights", nargs="+", required=True, help="HALO weights files (.npz)")
    ap.add_argument("--task", type=_task, action="append", required=True, help="TASK:MODEL:STEPS")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="report.json to write")
    a = ap.parse_args(argv)
    t0 = time.time()
    # make every source checkpoint once, before the runs race for it
    with ProcessPoolExecutor(a.workers) as pool:
        list(pool.map(_one, [(t, m, 1, str(a.weights[0]), 0, str(a.data_dir)) for t, m, _ in a.task]))
        jobs = [(t, m, s, str(w), seed, str(a.data_dir)) for t, m, s in a.task for w in a.weights
                for seed in range(a.seeds)]
        rows = list(pool.map(_one, jobs))
    summary = []
    for t, m, s in a.task:
        for w in a.weights:
            rs = [r for r in rows if (r["task"], r["model"], r["weights"]) == (t, m, str(w))]
            acc = [r["final_accuracy_smoothed"] for r in rs]
            summary.append({"task": t, "model": m, "steps": s, "weights": Path(w).name,
                            "final_accuracy_smoothed_mean": statistics.mean(acc),
                            "final_accuracy_smoothed_std": statistics.pstdev(acc),
                            "joules_mean": statistics.mean(r["joules"] for r in rs),
                            "seeds": len(rs)})
    report = {"command": "python -m bench.weights_check " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": f"{platform.platform()}, {platform.machine()}, Python {platform.python_version()}",
              "wall_seconds": round(time.time() - t0, 1),
              "note": "untuned HALO only; joules estimated from this process's CPU time unless a "
                      "meter is present (see each run's energy_source/estimated)",
              "summary": summary, "runs": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    for row in summary:
        print(f"{row['task']:>12} {row['model']:>6} {row['weights']:>14}: "
              f"{row['final_accuracy_smoothed_mean']:6.2f} +- {row['final_accuracy_smoothed_std']:.2f} %"
              f"  {row['joules_mean']:.2f} J ({row['seeds']} seeds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
