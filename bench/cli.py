"""``halo-agent bench compare`` and ``halo-agent bench paper``: optimizer comparisons in
joules per accuracy point, and HALO's tables and ablation in this project's terms.

``add_commands(subparsers)`` adds the ``bench`` command to ``halo-agent``'s parser;
``main(argv)`` runs ``bench`` on its own (``python -m bench.cli compare ...``).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Dict, List, Optional

from agent.argtypes import add_run_arguments, positive_int
from bench.arms import BenchConfigError, split_list


def _floats(text: str) -> List[float]:
    try:
        return [float(x) for x in split_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> List[int]:
    try:
        return [int(x) for x in split_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _lr_pairs(items: Optional[List[str]]) -> Dict[str, float]:
    out: Dict[str, float] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        try:
            out[name.strip().lower()] = float(value)
        except ValueError:
            raise BenchConfigError("lr", item, "NAME=LR, like adam=1e-2") from None
        if not sep or not name.strip():
            raise BenchConfigError("lr", item, "NAME=LR, like adam=1e-2")
    return out


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per optimizer (default: 3)")
    p.add_argument("--lr", action="append", metavar="NAME=LR",
                   help="fixed learning rate of an optimizer (not tuned; 'bench paper': of the "
                        "tables); repeatable")
    add_run_arguments(p, before="each run")
    p.add_argument("--warmup-steps", type=int, default=10,
                   help="steps of the unreported warm-up run per optimizer (default: 10; 0: none)")
    p.add_argument("--no-plots", action="store_true", help="write no plots")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")


def add_commands(subparsers) -> None:
    """Add ``bench compare`` and ``bench paper`` to a ``halo-agent`` sub-parser set."""
    bench = subparsers.add_parser("bench", help="benchmarks: joules per accuracy point",
                                  description="Optimizer benchmarks in joules per accuracy point.")
    sub = bench.add_subparsers(dest="bench_command", metavar="BENCH_COMMAND")
    bench.set_defaults(func=lambda args: (bench.print_help(), 2)[1])

    c = sub.add_parser("compare", help="optimizers side by side on one task",
                       description="Run optimizers on the same task, seeds, batch order and power "
                                   "source, interleaved, and report joules per accuracy point.")
    c.add_argument("--task", default="synthetic-a", help="adaptation task (default: synthetic-a)")
    c.add_argument("--model", default=None,
                   help="architecture (default: the task's) or an .onnx file to import")
    c.add_argument("--optimizers", type=split_list, default=["halo", "adam"],
                   help="comma-separated NAME[:SPARSITY], e.g. halo,adam,adam:10-30-50, "
                        "adam:halo (the HALO weights' own sparsity) or adam:thirds:0.25,0.93,0.92 "
                        "(default: halo,adam)")
    c.add_argument("--no-sparse-baselines", action="store_true",
                   help="do not add NAME:halo (each dense hand-designed optimizer with the "
                        "structural sparsity of the HALO weights under test, tuned on the same "
                        "grid) beside a HALO arm")
    c.add_argument("--steps", type=positive_int, default=300, help="steps per run (default: 300)")
    c.add_argument("--eval-every", type=positive_int, default=25, help="evaluation period (default: 25)")
    c.add_argument("--first-seed", type=int, default=0, help="first seed (default: 0)")
    c.add_argument("--tune-lr", type=_floats, default=None, metavar="GRID",
                   help="learning-rate grid for hand-designed optimizers, e.g. 1e-1,1e-2,1e-3")
    c.add_argument("--budget-joules", type=float, default=None,
                   help="also report the accuracy at this many training joules")
    c.add_argument("--target-accuracy", type=float, default=None,
                   help="target accuracy (fraction) for joules-to-target (default: the best "
                        "hand-designed optimizer's mean final accuracy, last 3 evaluations)")
    c.add_argument("--smooth-evals", type=positive_int, default=3,
                   help="evaluations averaged for the smoothed final accuracy (default: 3)")
    c.add_argument("--hypergrad", action="append", metavar="KEY=VALUE",
                   help="setting of the 'hypergrad' arm (tuned per seed by hypergradients): "
                        "meta_steps, blocks, lr, momentum, meta_lr, ...; repeatable")
    c.add_argument("--out", type=Path, default=None, help="folder for report.json, report.md, plots")
    _common(c)
    c.set_defaults(func=cmd_compare)

    p = sub.add_parser("paper", help="HALO's Tables 2 and 3 and Fig. 4 with this project's optimizers",
                       description="HALO's Tables 2, 3 (TDP, GSAD MLPs at 1k/2k/3k iterations) and "
                                   "Fig. 4 (sparsity ablation), as Markdown tables and plots.")
    p.add_argument("--out", type=Path, default=Path("docs/results"),
                   help="folder for paper.md and the parts (default: docs/results)")
    p.add_argument("--optimizers", type=split_list, default=["halo", "adam", "adagrad", "sgd"],
                   help="optimizers of the tables (default: halo,adam,adagrad,sgd)")
    p.add_argument("--tune-lr", type=_floats, default=[1e-1, 1e-2, 1e-3, 1e-4, 1e-5], metavar="GRID",
                   help="learning-rate grid of the tables (default: 1e-1,...,1e-5)")
    p.add_argument("--iterations", type=_ints, default=[1000, 2000, 3000],
                   help="iteration counts of the table columns (default: 1000,2000,3000)")
    p.add_argument("--eval-every", type=positive_int, default=100, help="evaluation period (default: 100)")
    p.add_argument("--tables", type=split_list, default=["tdp", "gsad"],
                   help="tables: tdp, gsad or TASK:MODEL (default: tdp,gsad; '' for none)")
    p.add_argument("--ablation", default="cifar10-a:cnn-b",
                   help="TASK:MODEL of the sparsity ablation (default: cifar10-a:cnn-b; 'none')")
    p.add_argument("--ablation-optimizers", type=split_list,
                   default=["halo", "halo:30-30-30", "halo:50-30-10", "adam", "adam:10-30-50"],
                   help="arms of the ablation (default: halo at 10-30-50, 30-30-30, 50-30-10; "
                        "adam dense and 10-30-50)")
    p.add_argument("--ablation-steps", type=positive_int, default=300, help="steps (default: 300)")
    p.add_argument("--ablation-eval-every", type=positive_int, default=25,
                   help="evaluation period of the ablation (default: 25)")
    p.add_argument("--ablation-tune-lr", type=_floats, default=None, metavar="GRID",
                   help="learning-rate grid of the ablation's hand-designed arms (default: none)")
    p.add_argument("--ablation-lr", action="append", metavar="NAME=LR",
                   help="fixed learning rate of an ablation arm or optimizer; repeatable")
    _common(p)
    p.set_defaults(func=cmd_paper)

    from bench.fit_cli import add_fit_commands  # memory, kernels (does it fit the board)

    add_fit_commands(sub)

    pub = sub.add_parser("publish", help="regenerate every published number (README, docs/results)",
                         description="Run every benchmark the README and docs cite, write each "
                                     "report under --out and OUT/published.md, and rewrite the "
                                     "README's measured table from the reports.")
    pub.add_argument("--out", type=Path, default=Path("docs/results"),
                     help="folder of the reports (default: docs/results)")
    pub.add_argument("--quick", action="store_true",
                     help="a few steps on the synthetic task: checks the pipeline, numbers mean "
                          "nothing, README untouched")
    pub.add_argument("--readme", type=Path, default=Path("README.md"),
                     help="README whose published table to rewrite (default: README.md)")
    pub.add_argument("--only", type=split_list, default=None,
                     help="comma-separated steps: adapt-mnist-a, adapt-tdp-female, "
                          "compare-mnist-a, paper, kernels (default: all)")
    pub.add_argument("--data-dir", default=None,
                     help="data directory (default: $HALO_DATA_DIR or ~/.local/share/halo-agent)")
    pub.set_defaults(func=cmd_publish)


def cmd_publish(args) -> int:
    """``bench publish``: run the published benchmarks and write their table."""
    from bench.publish import run_publish

    res = run_publish(args.out, args.data_dir, quick=args.quick,
                      readme=None if args.quick else args.readme, only=args.only, log=_log)
    print(f"wrote {len(res['rows'])} rows to {Path(res['out']) / 'published.md'}")
    return 0


def _command(args) -> str:
    argv = getattr(args, "_argv", None)
    argv = argv if argv is not None else sys.argv[2:]
    return "halo-agent bench " + " ".join(shlex.quote(a) for a in argv)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr)


def cmd_compare(args) -> int:
    """``bench compare``: run, write the folder, print the table or the JSON."""
    from bench.compare import CompareConfig, run_compare
    from bench.hypergrad_arm import parse_options
    from bench.markdown import main_table
    from bench.report import write_outputs
    from models.data.paths import resolve_data_dir

    cfg = CompareConfig(
        task=args.task, data_dir=resolve_data_dir(args.data_dir), optimizers=args.optimizers,
        model=args.model, seeds=args.seeds, first_seed=args.first_seed, steps=args.steps,
        eval_every=args.eval_every, tune_lr=args.tune_lr, lrs=_lr_pairs(args.lr),
        target_accuracy=args.target_accuracy, budget_joules=args.budget_joules,
        smooth_evals=args.smooth_evals, warmup_steps=args.warmup_steps,
        power_source=args.power_source, sysfs_root=args.sysfs_root,
        idle_seconds=args.idle_seconds, threads=args.threads,
        sparse_baselines=not args.no_sparse_baselines,
        options={"hypergrad": parse_options(args.hypergrad)} if args.hypergrad else {})
    report = run_compare(cfg, progress=sys.stderr.isatty(), log=_log, command=_command(args))
    written = None
    if args.out is not None:
        written = write_outputs(report, args.out, plots=not args.no_plots)
        if written["plots_skipped"] and not args.no_plots:
            _log(f"bench: {written['plots_skipped']}")
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        print("\n".join(main_table(report)))
        if written:
            print("wrote " + ", ".join(written["files"]))
    return 0


def cmd_paper(args) -> int:
    """``bench paper``: run the tables and the ablation, write ``paper.md`` and the parts."""
    from bench.paper import PaperConfig, run_paper
    from models.data.paths import resolve_data_dir

    ablation = None if str(args.ablation).strip().lower() in ("", "none") else args.ablation
    cfg = PaperConfig(
        data_dir=resolve_data_dir(args.data_dir), out_dir=args.out, optimizers=args.optimizers,
        tune_lr=args.tune_lr or None, seeds=args.seeds, iterations=args.iterations,
        eval_every=args.eval_every, tables=args.tables, ablation=ablation,
        ablation_optimizers=args.ablation_optimizers, ablation_steps=args.ablation_steps,
        ablation_eval_every=args.ablation_eval_every, ablation_tune_lr=args.ablation_tune_lr,
        ablation_lrs=_lr_pairs(args.ablation_lr),
        lrs=_lr_pairs(args.lr), power_source=args.power_source, sysfs_root=args.sysfs_root,
        idle_seconds=args.idle_seconds, threads=args.threads, warmup_steps=args.warmup_steps,
        plots=not args.no_plots)
    result = run_paper(cfg, progress=sys.stderr.isatty(), log=_log, command=_command(args))
    if args.json:
        json.dump({k: v["report"] for k, v in result["parts"].items()}, sys.stdout)
        sys.stdout.write("\n")
    else:
        print(f"wrote {result['paper_md']}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``bench ...`` (without the ``halo-agent`` prefix); returns the exit code.
    Bad settings print one line naming the option and value and return 2."""
    parser = argparse.ArgumentParser(prog="halo-agent", description="halo-agent benchmarks")
    add_commands(parser.add_subparsers(dest="command"))
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "bench":
        argv = ["bench"] + argv
    args = parser.parse_args(argv)
    args._argv = argv[1:]
    try:
        return int(args.func(args) or 0)
    except Exception as e:
        from agent.errors import AgentError
        from models.data.errors import DataError
        from models.nets import ModelError
        from power.errors import PowerError

        if isinstance(e, (AgentError, DataError, ModelError, PowerError, ValueError)):
            print(f"halo-agent: error: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
