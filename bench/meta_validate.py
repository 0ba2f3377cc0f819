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

Every weights file runs as stored (its own validation level, or none) unless
``--level FIELD=VALUE`` (repeatable) overrides fields of its validation level (a file
with none gets the neutral ``models.metatrain.space.VAL_START`` first) or ``--no-level``
drops it: the ablations and settings grids of docs/results/metatrain-v3 are such
runs.  The update probabilities are the file's own.  Lower meta-loss is better.
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


def variant(w, level: Optional[Dict[str, float]] = None, no_level: bool = False):
    """``w`` with its validation level dropped (``no_level``) or fields overridden."""
    from models.halo.schedule import level_from_mapping
    from models.metatrain.space import VAL_START

    if no_level:
        return w._replace(validation=None)
    if not level:
        return w
    base = (w.validation or VAL_START)._asdict()
    base.update(level)
    return w._replace(validation=level_from_mapping(base, "--level"))


def validation_objective(unroll, weights_path: Path, level: Optional[Dict[str, float]] = None,
                         no_level: bool = False):
    """``unroll`` (a config's objective, ``models.metatrain.run.build``) on its
    meta-validation tasks with ``weights_path`` at ``x = 0`` (as stored, or its
    :func:`variant`)."""
    from models.halo.weights import load_weights
    from models.metatrain.space import MetaSpace

    w = variant(load_weights(weights_path), level, no_level)
    probs = tuple(float(p) for p in w.update_probabilities)
    # one coordinate every weights file has; x = 0 leaves the file's weights as they are
    space = MetaSpace(("lr.bias",), w, probs)
    return replace(unroll, space=space, validation_tasks=True)


def label(path: Path, level: Optional[Dict[str, float]] = None, no_level: bool = False) -> str:
    """The report's name of a weights file and its variant: ``halo-v2.npz+rollback=0.3``."""
    if no_level:
        return f"{Path(path).name}-level"
    return Path(path).name + "".join(f"+{k}={v:g}" for k, v in (level or {}).items())


def score(cfg: Dict[str, Any], weights: List[Path], data_dir: Path, workers: int,
          log=print, level: Optional[Dict[str, float]] = None,
          no_level: bool = False) -> Dict[str, Any]:
    """``{label: evaluate_tasks(...) row}`` on the config's meta-validation tasks."""
    from models.metatrain.multitask import evaluate_tasks
    from models.metatrain.run import build

    seeds = int(cfg["meta_validation"]["seeds_per_task"])
    out: Dict[str, Any] = {}
    _, unroll, _ = build(cfg, data_dir)
    objectives = [validation_objective(unroll, w, level, no_level) for w in weights]
    objectives[0].prepare()  # build (or read) the pool once, before the workers fork
    pool: Optional[ProcessPoolExecutor] = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for w, obj in zip(weights, objectives):
            t0 = time.time()
            row = evaluate_tasks(obj, obj.space.zeros(), seeds, pool)
            row["seconds"] = round(time.time() - t0, 1)
            name = label(w, level, no_level)
            out[name] = row
            log(f"{name}: meta-loss {row['meta_loss']:.4f}, final held-out loss ratio "
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
    ap.add_argument("--level", action="append", default=[], metavar="FIELD=VALUE",
                    help="override a field of each file's validation level (repeatable)")
    ap.add_argument("--no-level", action="store_true", help="drop each file's validation level")
    ap.add_argument("--seeds-per-task", type=int, default=None, metavar="N",
                    help="seeds per task instead of the config's meta_validation.seeds_per_task "
                         "(the configs' 2 cannot tell apart candidates within ~0.03)")
    a = ap.parse_args(argv)
    if a.seeds_per_task is not None and a.seeds_per_task < 1:
        print(f"error: --seeds-per-task {a.seeds_per_task}: must be at least 1", file=sys.stderr)
        return 2
    level: Dict[str, float] = {}
    for item in a.level:
        key, eq, value = item.partition("=")
        try:
            level[key.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not key.strip():
            print(f"error: --level {item!r}: expected FIELD=NUMBER", file=sys.stderr)
            return 2
    if level and a.no_level:
        print("error: --level and --no-level exclude each other", file=sys.stderr)
        return 2
    try:
        cfg = load_config(a.config)
        if a.seeds_per_task is not None:
            cfg["meta_validation"] = dict(cfg["meta_validation"], seeds_per_task=a.seeds_per_task)
        if cfg["distribution"] is None:
            print(f"error: {a.config} has no distribution: nothing to meta-validate on",
                  file=sys.stderr)
            return 2
        for w in a.weights:
            if not w.is_file():
                print(f"error: --weights {w}: no such file", file=sys.stderr)
                return 2
        t0 = time.time()
        rows = score(cfg, list(a.weights), a.data_dir, max(1, a.workers), level=level,
                     no_level=a.no_level)
    except (HaloError, ValueError) as e:  # ValueError: a --level field or value out of range
        print(f"error: {e}", file=sys.stderr)
        return 2
    report = {
        "command": "python -m bench.meta_validate " + " ".join(sys.argv[1:] if argv is None else argv),
        "config": str(a.config), "meta_validation": cfg["meta_validation"],
        "objective": cfg["objective"], "level_overrides": level, "no_level": a.no_level,
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
