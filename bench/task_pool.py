"""Build the meta-training task pool and characterise it: sizes, source accuracy, tuned step sizes.

    python -m bench.task_pool --data-dir DATA --cache-dir DIR --out OUT [--spec SPEC.json]
        [--sweep adam,momentum] [--no-sweep]

Builds ``task_pool(spec)`` (the default spec unless ``--spec``), timing the build (a
fresh ``--cache-dir`` times pretraining every source from scratch), then per task and
per optimizer trains the source model on the target training set for the task's
horizon at each learning rate of ``LR_GRID`` (batch order seed 0, one thread) and
records the held-out loss and accuracy every tenth of the horizon.  The best rate is
the one with the highest final held-out accuracy (ties: the lower final loss), as the
evaluation tunes baselines; ``loss_rise`` is a run's final held-out loss over the
lowest along the run (``OVERFIT_RISE`` or more: training for the whole horizon
overfits) and ``best_step_fraction`` where along the horizon that lowest loss was.  The
summary gives each family's best rates and overfitting tasks, to show whether the pool
covers tasks whose best step is ~100x smaller than on MNIST and tasks where training
longer hurts.

Writes OUT/report.json (spec, machine, build time, per-task details and sweep) and
OUT/tasks.md (the table docs/metatrain.md shows).  Nothing here reads an evaluation
dataset: only MNIST's training files.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from bench.compare import machine_info
from kernels.optimizers import make_optimizer
from models.metatrain.distribution import MetaTask, resolve_spec, task_pool
from models.train import Trainer, batch_indices

LR_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1)
EVALS = 10
OVERFIT_RISE = 1.1


def _finite(v: float):
    """``v``, or None for a diverged run (JSON has no infinity)."""
    return v if math.isfinite(v) else None


def sweep_task(task: MetaTask, optimizer: str, lrs: Sequence[float]) -> Dict[str, Any]:
    """Train ``task``'s source model at each rate; held-out curves and the best rate."""
    runs = []
    every = max(1, task.horizon // EVALS)
    for lr in lrs:
        net = task.network()
        trainer = Trainer(net, make_optimizer(optimizer, lr=lr), seed=0)
        it = batch_indices(task.x_train.shape[0], task.batch_size, 0)
        curve = [net.evaluate(task.x_val, task.y_val)[::-1]]
        for t in range(task.horizon):
            idx = next(it)
            trainer.step(task.x_train[idx], task.y_train[idx], t, t / task.horizon)
            if (t + 1) % every == 0 or t + 1 == task.horizon:
                curve.append(net.evaluate(task.x_val, task.y_val)[::-1])
        losses = [c[0] if math.isfinite(c[0]) else math.inf for c in curve]
        runs.append({"lr": lr, "final_loss": _finite(losses[-1]), "final_accuracy": curve[-1][1],
                     "best_step_fraction": int(np.argmin(losses)) / (len(losses) - 1),
                     "loss_rise": _finite(round(losses[-1] / max(min(losses), 1e-12), 4)),
                     "loss_curve": [_finite(round(v, 5)) for v in losses],
                     "accuracy_curve": [round(c[1], 4) for c in curve]})
    best = max(runs, key=lambda r: (r["final_accuracy"],
                                    -math.inf if r["final_loss"] is None else -r["final_loss"]))
    return {"best_lr": best["lr"], "best_final_loss": best["final_loss"],
            "best_final_accuracy": best["final_accuracy"],
            "best_step_fraction": best["best_step_fraction"], "best_loss_rise": best["loss_rise"],
            "runs": runs}


def _row(task: MetaTask, sweep: Dict[str, Any]) -> str:
    d = task.details
    counts = np.bincount(task.y_train, minlength=task.num_classes)
    acc0 = sweep.get("initial_accuracy")
    cells = [f"`{task.name}`", task.arch, d["description"].replace("|", "/"),
             f"{len(task.y_train)} ({counts.max() / max(counts.min(), 1):.0f}:1)",
             str(len(task.y_val)), str(task.horizon), str(task.batch_size),
             f"{d['source_accuracy']:.3f}", "" if acc0 is None else f"{acc0:.3f}"]
    for opt in ("adam", "momentum"):
        s = sweep.get(opt)
        rise = "diverged" if s is None or s["best_loss_rise"] is None else f"{s['best_loss_rise']:.2f}"
        cells.append("" if s is None else f"{s['best_lr']:g} ({s['best_final_accuracy']:.3f}, {rise})")
    return "| " + " | ".join(cells) + " |"


def write_table(tasks: List[MetaTask], sweeps: Dict[str, Dict[str, Any]], path: Path) -> None:
    """The pool as a Markdown table."""
    head = ("| task | model | what | train rows (max:min class) | held-out rows | horizon | batch "
            "| source acc. | target acc. before | Adam: best lr (held-out acc., loss rise) "
            "| SGD-momentum: best lr (held-out acc., loss rise) |")
    lines = [head, "|" + "---|" * 11]
    lines += [_row(t, sweeps.get(t.name, {})) for t in tasks]
    path.write_text("\n".join(lines) + "\n")


def summary(tasks: List[MetaTask], sweeps: Dict[str, Dict[str, Any]], opts: Sequence[str]
            ) -> Dict[str, Any]:
    """Per family and optimizer: the best rates, and the tasks whose best rate overfits
    (final held-out loss >= ``OVERFIT_RISE`` x its lowest along the run)."""
    out: Dict[str, Any] = {}
    for fam in sorted({t.family for t in tasks}):
        names = [t.name for t in tasks if t.family == fam]
        for opt in opts:
            best = [sweeps[n][opt] for n in names]
            lrs = sorted(b["best_lr"] for b in best)
            overfit = [n for n, b in zip(names, best)
                       if b["best_loss_rise"] is None or b["best_loss_rise"] >= OVERFIT_RISE]
            out[f"{fam}/{opt}"] = {"best_lrs": lrs, "median_best_lr": lrs[len(lrs) // 2],
                                   "tasks_best_lr_at_most_1e-4": sum(lr <= 1e-4 for lr in lrs),
                                   "overfit_tasks": overfit, "tasks": len(best)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--cache-dir", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--spec", type=Path, help="a JSON spec (default: DEFAULT_SPEC)")
    ap.add_argument("--sweep", default="adam,momentum", help="optimizers of the lr sweep")
    ap.add_argument("--no-sweep", action="store_true")
    args = ap.parse_args(argv)
    spec = resolve_spec(json.loads(args.spec.read_text()) if args.spec else None)
    args.out.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    with threadpool_limits(limits=1):
        t0 = time.perf_counter()
        tasks = task_pool(spec, args.data_dir, args.cache_dir, log=log,
                          progress=lambda i, n, name: log(f"[{i}/{n}] {name}"))
        build_s = time.perf_counter() - t0
        log(f"pool of {len(tasks)} tasks built in {build_s:.1f} s")
        sweeps: Dict[str, Dict[str, Any]] = {}
        opts = [] if args.no_sweep else [o for o in args.sweep.split(",") if o]
        for i, task in enumerate(tasks, 1):
            acc0, loss0 = task.network().evaluate(task.x_val, task.y_val)
            sweeps[task.name] = {"initial_accuracy": acc0, "initial_loss": loss0}
            for opt in opts:
                t1 = time.perf_counter()
                with np.errstate(over="ignore", invalid="ignore"):
                    sweeps[task.name][opt] = sweep_task(task, opt, LR_GRID)
                s = sweeps[task.name][opt]
                log(f"[{i}/{len(tasks)}] {task.name} {opt}: best lr {s['best_lr']:g} "
                    f"(held-out accuracy {s['best_final_accuracy']:.3f}) "
                    f"in {time.perf_counter() - t1:.1f} s")
    pretrained = [t.details for t in tasks if not t.details["cached"]]
    report = {
        "command": "python -m bench.task_pool " + " ".join(argv if argv is not None else sys.argv[1:]),
        "spec": spec, "machine": machine_info(), "threads": 1, "lr_grid": list(LR_GRID),
        "build_seconds": round(build_s, 2),
        "sources_pretrained": len(pretrained),
        "pretrain_seconds_total": round(sum(d["pretrain_seconds"] for d in pretrained), 2),
        "tasks": [{"name": t.name, "family": t.family, "arch": t.arch,
                   "input_shape": list(t.input_shape), "num_classes": t.num_classes,
                   "n_train": len(t.y_train), "n_val": len(t.y_val), "horizon": t.horizon,
                   "batch_size": t.batch_size,
                   "train_class_counts": np.bincount(t.y_train, minlength=t.num_classes).tolist(),
                   "details": t.details, "sweep": sweeps[t.name]} for t in tasks],
    }
    report["summary"] = summary(tasks, sweeps, opts)
    (args.out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    write_table(tasks, sweeps, args.out / "tasks.md")
    log(json.dumps(report["summary"]))
    log(f"wrote {args.out / 'report.json'} and {args.out / 'tasks.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
