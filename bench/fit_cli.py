"""``halo-agent bench memory`` and ``halo-agent bench kernels``: does it fit the board."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional, Tuple

from agent.argtypes import positive_int
from bench.arms import split_list
from bench.cli import _command


def _cases(items: List[str]) -> List[Tuple[str, Optional[str]]]:
    """``TASK`` or ``TASK:MODEL`` items; ``all``: every built-in task with its default model."""
    from models.data.tasks import get_task, list_tasks

    out: List[Tuple[str, Optional[str]]] = []
    for item in items:
        if item == "all":
            out += [(s.name, s.default_model) for s in list_tasks()]
            continue
        task, _, model = item.partition(":")
        spec = get_task(task)  # DataError naming the task
        out.append((spec.name, model or spec.default_model))
    return out


def _add_report_options(p) -> None:
    """``--out`` and ``--json``: where :func:`_finish` writes the report, and how it prints it."""
    p.add_argument("--out", type=Path, default=None, help="folder for report.json and report.md")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def add_fit_commands(sub) -> None:
    """Add ``memory`` and ``kernels`` to the ``bench`` sub-parser set ``sub``."""
    m = sub.add_parser("memory", help="peak RSS of adaptation runs and of the daemon",
                       description="Peak resident memory (MB) of one adaptation per task and "
                                   "model, each in a fresh process, and of the daemon idle and "
                                   "while adapting.")
    m.add_argument("--cases", type=split_list, default=["all", "mnist-a:cnn-b", "mnist-a:cnn-c"],
                   help="comma-separated TASK or TASK:MODEL; 'all' = every built-in task with "
                        "its default model (default: all,mnist-a:cnn-b,mnist-a:cnn-c)")
    m.add_argument("--optimizer", default="halo", help="optimizer of every run (default: halo)")
    m.add_argument("--steps", type=positive_int, default=100, help="steps per run (default: 100)")
    m.add_argument("--daemon-task", default="mnist-a",
                   help="task of the daemon's adaptation job ('none': no daemon; default: mnist-a)")
    m.add_argument("--data-dir", default=None, help="datasets and cached checkpoints "
                                                     "(default: $HALO_DATA_DIR or the user's)")
    _add_report_options(m)
    m.set_defaults(func=cmd_memory)

    k = sub.add_parser("kernels", help="HALO vs Adam: the update and a whole training step",
                       description="HALO's update against Adam's at n = 1e4, 1e5, 1e6, and a "
                                   "whole HALO training step against an Adam one at equal "
                                   "sparsity; ratios of interleaved rounds, 1 BLAS thread.")
    k.add_argument("--weights", action="append", type=Path, default=None, metavar="FILE",
                   help="HALO weights of the update measurement (repeatable; default: every "
                        "shipped version)")
    k.add_argument("--step-weights", type=Path, default=None, metavar="FILE",
                   help="HALO weights of the training-step measurement (default: the newest "
                        "shipped)")
    k.add_argument("--sizes", type=split_list, default=["1e4", "1e5", "1e6"],
                   help="parameter counts of the update measurement (default: 1e4,1e5,1e6)")
    k.add_argument("--cases", type=split_list,
                   default=["gsad-a:mlp", "tdp-female:mlp", "mnist-a:cnn-b"],
                   help="TASK:MODEL of the training-step measurement "
                        "(default: gsad-a:mlp,tdp-female:mlp,mnist-a:cnn-b)")
    k.add_argument("--rounds", type=positive_int, default=15,
                   help="interleaved rounds per measurement (default: 15)")
    k.add_argument("--block", type=positive_int, default=20,
                   help="training steps per timed block (default: 20)")
    k.add_argument("--sparse-steps", type=int, default=100,
                   help="cnn-b steps per block of the sparse-vs-dense measurement (default: 100; "
                        "0: skip it)")
    _add_report_options(k)
    k.set_defaults(func=cmd_kernels)


def _finish(report, args, module) -> int:
    command = _command(args)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "report.json").write_text(json.dumps(dict(report, command=command), indent=1)
                                              + "\n")
        (args.out / "report.md").write_text(module.markdown(report, command))
        print(f"wrote {args.out / 'report.json'}, {args.out / 'report.md'}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        print(module.markdown(report, command))
    return 0


def cmd_memory(args) -> int:
    from bench import memory
    from models.data.paths import resolve_data_dir

    daemon = None if args.daemon_task in ("none", "") else args.daemon_task
    report = memory.run_memory(resolve_data_dir(args.data_dir), _cases(args.cases), args.optimizer,
                               args.steps, daemon, log=lambda s: print(s, file=sys.stderr))
    return _finish(report, args, memory)


def cmd_kernels(args) -> int:
    from bench import halo_kernels

    try:
        sizes = [int(float(s)) for s in args.sizes]
    except ValueError:
        raise ValueError(f"sizes: {','.join(args.sizes)!r} is not a list of numbers") from None
    if any(n < 1 for n in sizes):
        raise ValueError(f"sizes: {','.join(args.sizes)!r}: every size must be at least 1")
    cases = _cases(args.cases)
    weights = args.weights or halo_kernels.shipped_weights()
    report = halo_kernels.run_kernels(weights, sizes, cases, args.rounds, args.block,
                                      args.step_weights, max(0, args.sparse_steps),
                                      log=lambda s: print(s, file=sys.stderr))
    return _finish(report, args, halo_kernels)
