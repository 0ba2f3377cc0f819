"""``halo-agent tune``: tune a momentum schedule by hypergradients, then adapt with it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.argtypes import add_run_arguments, number_in, positive_int


def add_command(sub) -> None:
    """Register ``tune`` on the ``halo-agent`` sub-parsers."""
    from agent.tune import MAX_META_STEPS, MAX_STEPS, METHODS, OPTIMIZERS

    p = sub.add_parser(
        "tune", help="tune a learning-rate/momentum schedule by hypergradients, then adapt",
        description="Split a validation set off the task's target training data, run K "
                    "hypergradient steps (reversible learning) on a per-layer, per-block "
                    "schedule of SGD with momentum over T steps, then adapt for T steps with "
                    "the tuned schedule.  The tuning joules are reported apart from the "
                    "training joules; the schedule is saved (JSON) and plotted.")
    p.add_argument("--method", choices=METHODS, default="hypergrad",
                   help="tuning method (default: hypergrad)")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default="momentum",
                   help="optimizer whose schedule is tuned (default: momentum)")
    p.add_argument("--task", default="synthetic-a", help="adaptation task (default: synthetic-a)")
    p.add_argument("--model", default=None, help="architecture (default: the task's)")
    p.add_argument("--steps", type=number_in(int, 1, MAX_STEPS, "an integer"), default=100,
                   help=f"T: training steps unrolled and then adapted for (1..{MAX_STEPS}; default 100)")
    p.add_argument("--meta-steps", type=number_in(int, 1, MAX_META_STEPS, "an integer"), default=10,
                   help=f"K: hypergradient steps (1..{MAX_META_STEPS}; default 10)")
    p.add_argument("--blocks", type=positive_int, default=4,
                   help="time blocks of the schedule, each with its own rates (default 4)")
    p.add_argument("--lr", type=float, default=0.01,
                   help="start learning rate of every layer and block (default 0.01)")
    p.add_argument("--momentum", type=float, default=0.9,
                   help="start momentum decay of every block (default 0.9)")
    p.add_argument("--meta-lr", type=float, default=0.3,
                   help="Adam step on the log learning rates (default 0.3)")
    p.add_argument("--fixed-momentum", action="store_true",
                   help="tune the learning rates only, keep the momentum at its start")
    p.add_argument("--validation-fraction", type=float, default=0.2,
                   help="fraction of the target training split held out (default 0.2)")
    p.add_argument("--max-validation", type=positive_int, default=512,
                   help="at most this many validation examples (default 512)")
    p.add_argument("--seed", type=int, default=0, help="seed of split, batches and masks")
    p.add_argument("--sparsity", default=None,
                   help="structural sparsity while tuning and adapting (default: dense)")
    p.add_argument("--eval-every", type=positive_int, default=25,
                   help="evaluate the adaptation every N steps (default 25)")
    add_run_arguments(p)
    p.add_argument("--out", type=Path, default=None,
                   help="write schedule.json, schedule.png and report.json here")
    p.add_argument("--output-model", type=Path, default=None,
                   help="write the adapted model here (never over the source model)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_tune)


def cmd_tune(args) -> int:
    from agent.tune import TuneConfig, run_tune
    from models.data.paths import resolve_data_dir

    cfg = TuneConfig(
        task=args.task, data_dir=resolve_data_dir(args.data_dir), model=args.model,
        method=args.method, optimizer=args.optimizer, steps=args.steps,
        meta_steps=args.meta_steps, blocks=args.blocks, lr=args.lr, momentum=args.momentum,
        meta_lr=args.meta_lr, tune_momentum=not args.fixed_momentum,
        validation_fraction=args.validation_fraction, max_validation=args.max_validation,
        seed=args.seed, sparsity=args.sparsity, eval_every=args.eval_every,
        power_source=args.power_source, sysfs_root=args.sysfs_root,
        idle_seconds=args.idle_seconds, threads=args.threads, out_dir=args.out,
        output_model=args.output_model)
    report = run_tune(cfg, progress=not args.json or sys.stderr.isatty())
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_summary(report)
    return 0 if report["status"] == "succeeded" else 3


def _print_summary(r: dict) -> None:
    t = r["tuning"]
    est = f" (estimated: {t['energy_profile']})" if t["estimated"] else ""
    print(f"task {r['task']}  model {r['model']}  tuned by {t['method']} ({t['meta_steps']} "
          f"meta-steps over {t['steps']} steps, validation {t['validation']['examples']} examples "
          f"of the target training split)")
    print(f"{'meta-step':>9} {'val loss':>9} {'joules':>9}  lr range")
    for h in t["history"]:
        lrs = [v for row in h["lr"] for v in row]
        vl = f"{h['val_loss']:.4f}" if "val_loss" in h else "diverged"
        print(f"{h['meta_step']:>9} {vl:>9} {h['joules']:>9.2f}  {min(lrs):.2e}..{max(lrs):.2e}")
    s = r["schedule"]
    for name, lrs in zip(s["layers"], s["lr"]):
        print(f"  {name:>8} lr per block: " + " ".join(f"{v:.2e}" for v in lrs))
    print("  momentum per block: " + " ".join(f"{m:.3f}" for m in s["momentum"]))
    print(f"tuning: {t['joules']:.2f} J, {t['seconds']:.1f} s from {t['energy_source']}{est}; "
          f"information buffer {t['buffer_bits']} bits")
    print(f"adaptation: accuracy {r['initial_accuracy']:.4f} -> {r['final_accuracy']:.4f} in "
          f"{r['steps']} steps, {r['joules']:.2f} J; status {r['status']}")
