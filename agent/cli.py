"""The ``halo-agent`` command line: adapt, data, power, doctor, serve, bench, meta-train, tune."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional

from agent import __version__
from agent.argtypes import add_run_arguments, positive_int


def add_adapt(sub) -> None:
    p = sub.add_parser(
        "adapt", help="adapt a task's source-domain model to its target domain",
        description="Adapt the pretrained source-domain model of a task to the task's target "
                    "domain on this machine, measuring accuracy against energy.")
    p.add_argument("--task", default="synthetic-a",
                   help="adaptation task (default: synthetic-a, built in, needs no files)")
    p.add_argument("--model", default=None,
                   help="architecture: cnn-a, cnn-b, cnn-c, mlp (default: the task's), or an .onnx "
                        "file to import and adapt (see docs/onnx.md)")
    p.add_argument("--model-path", type=Path, default=None,
                   help="start from this model file instead of the task's source checkpoint")
    p.add_argument("--optimizer", default="adam", help="optimizer name (default: adam)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the optimizer's own default)")
    p.add_argument("--optimizer-weights", type=Path, default=None,
                   help="weights file of a learned optimizer (default: the newest shipped version)")
    p.add_argument("--kernel", choices=["elementwise", "matmul", "auto"], default=None,
                   help="kernel of the learned optimizer's per-parameter MLP (default: auto)")
    p.add_argument("--steps", type=positive_int, default=300, help="step budget (default: 300)")
    p.add_argument("--seconds", type=float, default=None, help="budget in seconds of training")
    p.add_argument("--joules", type=float, default=None, help="budget in joules of training")
    p.add_argument("--target-accuracy", type=float, default=None,
                   help="stop once the target test accuracy (fraction) reaches this")
    p.add_argument("--eval-every", type=positive_int, default=25,
                   help="evaluate on the target test split every N steps (default: 25)")
    p.add_argument("--seed", type=int, default=0, help="seed of batch order and masks (default: 0)")
    p.add_argument("--sparsity", default=None,
                   help="per-layer update probabilities, comma-separated, 'halo' (10/30/50%%), "
                        "'thirds:P1,P2,P3', 'dense', 'last:K' (only the last K layers) or 'bias' "
                        "(only biases and the classifier of an .onnx model; TinyTL) (default: the "
                        "optimizer's own: dense for hand-designed ones, the weights' for halo)")
    p.add_argument("--eval-backend", choices=["numpy", "ort"], default="numpy",
                   help="evaluate an .onnx model with the engine's NumPy forward or onnxruntime "
                        "(default: numpy)")
    add_run_arguments(p)
    p.add_argument("--output-model", type=Path, default=None,
                   help="write the adapted model here (never over the source model)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=cmd_adapt)


def _print_summary(r: dict) -> None:
    est = " (estimated: " + str(r.get("energy_profile")) + ")" if r["estimated"] else ""
    print(f"task {r['task']}  model {r['model']}  optimizer {r['optimizer']}  seed {r['seed']}")
    print(f"{'step':>7} {'seconds':>9} {'joules':>10} {'loss':>8} {'accuracy':>9}")
    for p in r["points"]:
        print(f"{p['step']:>7} {p['seconds']:>9.3f} {p['joules']:>10.3f} {p['loss']:>8.4f} "
              f"{p['accuracy']:>9.4f}")
    gain = (r["final_accuracy"] - r["initial_accuracy"]) * 100
    print(f"accuracy {r['initial_accuracy']:.4f} -> {r['final_accuracy']:.4f} "
          f"({gain:+.2f} points) in {r['steps']} steps, {r['seconds']:.2f} s, "
          f"{r['joules']:.2f} J from {r['energy_source']}{est}; status {r['status']}")
    if gain > 0:
        print(f"joules per accuracy point: {r['joules'] / gain:.4f} J/pt")
    if r.get("peak_rss_mb") is not None:
        print(f"peak resident memory: {r['peak_rss_mb']} MB")


def _optimizer_options(args) -> dict:
    opts = {}
    if args.optimizer_weights is not None:
        opts["weights"] = str(args.optimizer_weights)
    if args.kernel is not None:
        opts["kernel"] = args.kernel
    return opts


def cmd_adapt(args) -> int:
    from agent.engine import AdaptConfig, run_adaptation
    from models.data.paths import resolve_data_dir

    cfg = AdaptConfig(
        task=args.task, data_dir=resolve_data_dir(args.data_dir), model=args.model,
        model_path=args.model_path, optimizer=args.optimizer, lr=args.lr, steps=args.steps,
        seconds=args.seconds, joules=args.joules, target_accuracy=args.target_accuracy,
        eval_every=args.eval_every, seed=args.seed, sparsity=args.sparsity,
        power_source=args.power_source, sysfs_root=args.sysfs_root,
        idle_seconds=args.idle_seconds, threads=args.threads, output_model=args.output_model,
        hyperparameters=_optimizer_options(args), eval_backend=args.eval_backend)
    report = run_adaptation(cfg, progress=not args.json or sys.stderr.isatty())
    if args.json:
        json.dump(report, sys.stdout)
        sys.stdout.write("\n")
    else:
        _print_summary(report)
    return 0 if report["status"] in ("succeeded",) else 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="halo-agent",
        description="On-device adaptation with a learned optimizer, measured in joules per "
                    "accuracy point.")
    parser.add_argument("--version", action="version", version=f"halo-agent {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_adapt(sub)
    from agent.server.cli import add_commands as add_serve
    from models.data.cli import add_commands as add_data
    from power.cli import add_commands as add_power

    add_data(sub)
    add_power(sub)
    add_serve(sub)
    add_plugins(sub)
    from models.onnx.cli import add_commands as add_model

    add_model(sub)
    from agent.tune_cli import add_command as add_tune

    add_tune(sub)
    return parser


PLUGINS = "halo_agent.commands"
"""Entry-point group of the commands that live above this layer (``bench``,
``meta-train``; pyproject.toml): the command line finds them installed, so the agent
layer never imports the benchmark layer."""


def add_plugins(sub) -> None:
    """Register every command of the :data:`PLUGINS` entry points, by name."""
    from importlib.metadata import entry_points

    eps = entry_points()
    group = eps.select(group=PLUGINS) if hasattr(eps, "select") else eps.get(PLUGINS, [])
    for ep in sorted(group, key=lambda e: e.name):
        ep.load()(sub)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``halo-agent`` console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # our own errors: one clear line, no stack trace
        if _is_user_error(e):
            print(f"halo-agent: error: {e}", file=sys.stderr)
            return 2
        raise


def _is_user_error(e: Exception) -> bool:
    """Every package's own errors derive from ``kernels.errors.HaloError``; a plain
    ``ValueError`` from a library is a bad value the user gave, too."""
    from kernels.errors import HaloError

    return isinstance(e, (HaloError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
