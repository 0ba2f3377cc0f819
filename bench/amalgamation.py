"""Amalgamation warm starts for halo-v3, compared by meta-validation only.

Distils the teacher pool of ``models.halo.distill`` (Adam, RMSProp, SGD-momentum,
AddSign, PowerSign) into HALO's per-parameter MLP by each mechanism (mean, min-max,
optimal choice) and weight perturbation (fixed 1e-3 as in halo-v0, random and
adversarial relative to each tensor's norm), on a trajectory of one *meta-training*
task of the distribution (MNIST training images, never HALO's A/B split), then scores
every candidate, with the same controller (halo-v0's) and validation level
(``space.VAL_START``), on the distribution's held-out meta-validation tasks. No
evaluation task is read.

    python -m bench.amalgamation --data-dir DATA --out docs/results/metatrain-v3

writes ``amalgamation.json`` and ``amalgamation.md`` (the lower the held-out
meta-loss, the better the warm start).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from models.halo.arch import HaloWeights
from models.halo.distill import (
    BASE_LR_V0,
    INIT,
    MECHANISMS,
    collect_on,
    controller_theta,
    fit,
    loss_and_grad,
)
from models.metatrain.distribution import split_pool, task_pool
from models.metatrain.multitask import TaskUnroll, evaluate_tasks
from models.metatrain.space import VAL_START, MetaSpace
from models.pretrain import cache_dir

VARIANTS = [(m, p, s) for m in MECHANISMS
            for p, s in (("fixed", 1e-3), ("random", 0.05), ("adversarial", 0.05))]


def _weights(mlp) -> HaloWeights:
    return HaloWeights(mlp, controller_theta(), BASE_LR_V0, validation=VAL_START)


def run(data_dir: Path, spec: Dict[str, Any], n_validation: int, seeds_per_task: int,
        steps: int, iters: int, seed: int, workers: int, log=print) -> Dict[str, Any]:
    t0 = time.time()
    cache = cache_dir(data_dir) / "metatasks"
    tasks = task_pool(spec, data_dir, cache)
    train, _ = split_pool(tasks, n_validation, int(spec.get("seed", 0)))
    # the largest image training set of the meta-training tasks (its own architecture
    # aside: the trajectory is cnn-a's, as halo-v0's was)
    source = max((t for t in train if t.family == "mnist-image"), key=lambda t: t.x_train.shape[0])
    log(f"trajectory task: {source.name} ({source.x_train.shape[0]} examples, cnn-a)")
    with threadpool_limits(1):
        rec = collect_on(source.x_train, source.y_train, source.input_shape, source.num_classes,
                         steps=steps, seed=seed, arch="cnn-a", log=log, lookahead=True,
                         where=source.name)
        candidates = {"adam-like (no distillation)": (INIT, None)}
        for mech, pert, scale in VARIANTS:
            out = fit(rec, iters=iters, seed=seed, log=lambda *_: None, mechanism=mech,
                      perturbation=pert, scale=scale)
            candidates[f"{mech} / {pert} {scale:g}"] = (out["mlp"], out)
    from concurrent.futures import ProcessPoolExecutor

    rows: List[Dict[str, Any]] = []
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for name, (mlp, out) in candidates.items():
            w = _weights(mlp)
            space = MetaSpace(("lr.bias",), w, w.update_probabilities)
            unroll = TaskUnroll(space, spec, data_dir, cache, n_validation_tasks=n_validation,
                                validation_tasks=True)
            ev = evaluate_tasks(unroll, space.zeros(), seeds_per_task, pool)
            cos = loss_and_grad(mlp, rec)[2]
            rows.append({"candidate": name, "meta_validation_loss": ev["meta_loss"],
                         "per_task": ev["per_task"],
                         "fit_loss": None if out is None else out["loss"],
                         "mean_cosine_to_teachers": float(np.mean(cos)),
                         "mlp": {k: np.asarray(v).tolist() for k, v in mlp._asdict().items()}})
            log(f"{name:>32}: held-out meta-loss {ev['meta_loss']:.4f}")
    finally:
        if pool is not None:
            pool.shutdown()
    return {"trajectory_task": source.name, "trajectory_steps": steps, "fit_iters": iters,
            "seed": seed, "spec": spec, "meta_validation_tasks": n_validation,
            "seeds_per_task": seeds_per_task, "controller": "halo-v0's (fixed)",
            "validation_level": VAL_START._asdict(), "rows": rows,
            "wall_seconds": round(time.time() - t0, 1),
            "machine": f"{platform.platform()}, Python {platform.python_version()}, "
                       f"NumPy {np.__version__}"}


def markdown(report: Dict[str, Any], command: str) -> str:
    lines = ["# Amalgamation warm starts, by meta-validation", "",
             f"Trajectory: `{report['trajectory_task']}` (a meta-training task), "
             f"{report['trajectory_steps']} Adam steps of cnn-a; fit {report['fit_iters']} "
             f"iterations; every candidate with halo-v0's controller and the neutral "
             f"validation level, scored on {report['meta_validation_tasks']} held-out tasks x "
             f"{report['seeds_per_task']} seeds (held-out meta-loss, lower is better). "
             f"{report['machine']}; {report['wall_seconds']} s.", "",
             f"Command: `{command}`", "",
             "| candidate | held-out meta-loss | fit loss | mean cosine to the teachers |",
             "|---|---|---|---|"]
    best = min(r["meta_validation_loss"] for r in report["rows"])
    for r in report["rows"]:
        mark = "**" if r["meta_validation_loss"] == best else ""
        fit_loss = "" if r["fit_loss"] is None else f"{r['fit_loss']:.4f}"
        lines.append(f"| {r['candidate']} | {mark}{r['meta_validation_loss']:.4f}{mark} | "
                     f"{fit_loss} | {r['mean_cosine_to_teachers']:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.amalgamation",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for amalgamation.json/.md")
    ap.add_argument("--spec-seed", type=int, default=0, help="seed of the default distribution")
    ap.add_argument("--validation-tasks", type=int, default=4)
    ap.add_argument("--seeds-per-task", type=int, default=2)
    ap.add_argument("--steps", type=int, default=300, help="trajectory steps")
    ap.add_argument("--iters", type=int, default=300, help="fit iterations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args(argv)
    report = run(a.data_dir, {"seed": a.spec_seed}, a.validation_tasks, a.seeds_per_task,
                 a.steps, a.iters, a.seed, a.workers,
                 log=lambda m: print(m, file=sys.stderr, flush=True))
    args = list(sys.argv[1:] if argv is None else argv)
    args = ["DATA" if i > 0 and args[i - 1] == "--data-dir" else x for i, x in enumerate(args)]
    command = "python -m bench.amalgamation " + " ".join(args)
    report["command"] = command
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "amalgamation.json").write_text(json.dumps(report, indent=1) + "\n")
    (a.out / "amalgamation.md").write_text(markdown(report, command))
    print(markdown(report, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())
