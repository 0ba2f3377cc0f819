"""Meta-validation of HALO weights files side by side: the measure that chooses between runs.

A meta-training config names a task distribution and its meta-validation tasks (held
out of the pool, or a second pool drawn with ``meta_validation.spec``); this scores
any weights files on those tasks with the config's meta-loss (held-out loss ratios,
plus the class-balanced error when ``objective.error_weight`` is set), ``seeds_per_task``
seeds each, one unroll per worker process.  Only tasks of the distribution are read
(MNIST training images and procedural tabular data), never an evaluation task, so
choosing weights by this score is not tuning on the test set.

    python -m bench.meta_validate --config models/metatrain/configs/halo-v3.json \
        --data-dir DATA --weights A.npz B.npz --workers 16 --out meta-validation.json

Every weights file runs as stored (its own validation level, or none); the update
probabilities are the file's own.  Lower meta-loss is better.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np


def validation_objective(cfg: Dict[str, Any], weights_path: Path, data_dir: Path):
    """The config's meta-validation objective with ``weights_path`` at ``x = 0`` (as stored)."""
    from models.halo.weights import load_weights
    from models.metatrain.run import build
    from models.metatrain.space import MetaSpace

    _, unroll, _ = build(cfg, data_dir)
    w = load_weights(weights_path)
    probs = tuple(float(p) for p in w.update_probabilities)
    # one coordinate every weights file has; x = 0 leaves the file's weights as they are
    space = MetaSpace(("lr.bias",), w, probs)
    return replace(unroll, space=space, validation_tasks=True)


def score(cfg: Dict[str, Any], weights: List[Path], data_dir: Path, workers: int,
          log=print) -> Dict[str, Any]:
    """``{weights name: evaluate_tasks(...) row}`` on the config's meta-validation tasks."""
    from models.metatrain.multitask import evaluate_tasks

    seeds = int(cfg["meta_validation"]["seeds_per_task"])
    out: Dict[str, Any] = {}
    objectives = [validation_objective(cfg, w, data_dir) for w in weights]
    objectives[0].prepare()  # build (or read) the pool once, before the workers fork
    pool: Optional[ProcessPoolExecutor] = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for w, obj in zip(weights, objectives):
            t0 = time.time()
            row = evaluate_tasks(obj, obj.space.zeros(), seeds, pool)
            row["seconds"] = round(time.time() - t0, 1)
            out[Path(w).name] = row
            log(f"{Path(w).name}: meta-loss {row['meta_loss']:.4f}, final held-out loss ratio "
                f"{row['final_loss']:.4f}, final balanced error {100 * row['final_error']:.2f} % "
                f"({len(row['per_task'])} tasks x {seeds} seeds, {row['seconds']} s)")
    finally:
        if pool is not None:
            pool.shutdown()
    return out


def main(argv: Optional[List[str]] = None) -> int:
    from kernels.errors import HaloError
    from models.metatrain.config import load_config

    ap = argparse.ArgumentParser(prog="python -m bench.meta_validate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--config", type=Path, required=True, help="meta-training config (JSON)")
    ap.add_argument("--weights", type=Path, nargs="+", required=True, help="HALO weights (.npz)")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, required=True, help="report .json to write")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        if cfg["distribution"] is None:
            print(f"error: {a.config} has no distribution: nothing to meta-validate on",
                  file=sys.stderr)
            return 2
        for w in a.weights:
            if not w.is_file():
                print(f"error: --weights {w}: no such file", file=sys.stderr)
                return 2
        t0 = time.time()
        rows = score(cfg, list(a.weights), a.data_dir, max(1, a.workers))
    except HaloError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {
        "command": "python -m bench.meta_validate " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": str(a.config), "meta_validation": cfg["meta_validation"],
        "objective": cfg["objective"],
        "machine": f"{platform.platform()}, {platform.machine()}, Python {platform.python_version()}, "
                   f"NumPy {np.__version__}",
        "wall_seconds": round(time.time() - t0, 1),
        "definitions": {
            "meta_loss": "the config's meta-loss on the meta-validation tasks (lower is better)",
            "final_loss": "held-out loss at the end of the unroll / at the start, clipped",
            "final_error": "class-balanced error on the held-out examples at the end (0..1)",
        },
        "weights": rows,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
