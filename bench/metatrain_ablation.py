"""Objective ablations of meta-training, validated on MNIST only.

Short meta-training runs from one config that differ in one setting each (lambda_jac,
horizon), then a meta-validation of every result, and of the config's start and of a
finished run, on held-out unroll seeds (outside ES's pair-seed range) with the config's
own meta-task and objective parts: mean and final normalised probe loss, mean squared
gradient norm, expected step cost.  No evaluation task is touched.

    python bench/metatrain_ablation.py --config models/metatrain/configs/halo-v2.json \\
        --data-dir DATA --out OUT [--iterations 12] [--pairs 8] [--finished RUN_DIR]

Writes OUT/results.json (resumable: arms already there are skipped) and prints a
Markdown table.  ~2.5 min per arm on 2 cores at 12 iterations x 8 pairs.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from models.metatrain.config import load_config
from models.metatrain.objective import evaluate_center
from models.metatrain.run import build, final_point, meta_train

ARMS = {"lambda=0": {"objective": {"lambda_jac": 0.0}},
        "lambda=1e-3": {"objective": {"lambda_jac": 1e-3}},
        "lambda=1e-2": {"objective": {"lambda_jac": 1e-2}},
        "horizon=150": {"meta_task": {"horizon": 150}}}
VALIDATION_SEEDS = [2_000_000 + i for i in range(8)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--iterations", type=int, default=12)
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--finished", type=Path, help="a finished run's folder, validated too")
    args = ap.parse_args(argv)
    base = load_config(args.config)
    base["es"].update(iterations=args.iterations, pairs=args.pairs)
    base["average_last"] = 3
    space, val, _ = build(base, args.data_dir)
    val.prepare()
    args.out.mkdir(parents=True, exist_ok=True)
    res_path = args.out / "results.json"
    out = json.loads(res_path.read_text()) if res_path.exists() else {}

    def arm_point(name: str):
        """Meta-train the arm (or resume its run) and return its final point."""
        cfg = copy.deepcopy(base)
        for section, values in ARMS[name].items():
            cfg[section].update(values)
        cfg["name"] = "ablation-" + name.replace("=", "-")
        d = args.out / cfg["name"]
        meta_train(cfg, args.data_dir, d, evaluate=False, log=lambda m: print(m, file=sys.stderr))
        return final_point(space, json.loads((d / "state.json").read_text())["history"], 3)

    start = f"start ({base['start']})"
    names = [start, *ARMS]
    if args.finished:
        hist = json.loads((args.finished / "state.json").read_text())["history"]
        finished_k = json.loads((args.finished / "config.json").read_text())["average_last"]
        finished = f"finished run ({args.finished.name}, {len(hist)} iterations)"
        names.append(finished)
    with ProcessPoolExecutor(base["es"]["workers"]) as pool:
        for name in names:
            if name in out:
                continue
            if name == start:
                x = space.zeros()
            elif name in ARMS:
                x = arm_point(name)
            else:
                x = final_point(space, hist, finished_k)
            v = evaluate_center(val, x, VALIDATION_SEEDS, pool)
            v["update_probabilities"] = list(space.weights(x).update_probabilities)
            out[name] = v
            res_path.write_text(json.dumps(out, indent=1) + "\n")
            print(name, v, file=sys.stderr, flush=True)
    print("| arm | mean loss / L0 | final loss / L0 | mean ‖g‖² | expected step cost "
          "| p (first/middle/last) |")
    print("|---|---|---|---|---|---|")
    for name, v in out.items():
        p = "/".join(f"{q:.3f}" for q in v["update_probabilities"])
        print(f"| {name} | {v['loss']:.5f} | {v['final_loss']:.5f} | {v['jacobian']:.3f} | "
              f"{v['cost']:.3f} | {p} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
