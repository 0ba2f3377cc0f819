"""``halo-agent meta-train``: ES meta-training (:mod:`models.metatrain.run`), then the
evaluation against tuned baselines (:mod:`bench.metatrain_eval`), written into the card.

Registered as a command of ``halo-agent`` through the ``halo_agent.commands`` entry
points (pyproject.toml), so the agent layer's CLI does not import this layer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.argtypes import DATA_DIR_HELP, positive_int


def add_command(sub) -> None:
    p = sub.add_parser(
        "meta-train", help="meta-train the HALO learned optimizer with ES (NumPy, CPU)",
        description="Meta-train HALO's tensor-level meta-parameters with antithetic evolution "
                    "strategies on the config's meta-training task, then evaluate the weights "
                    "on the config's evaluation tasks and write the model card. Resumes from "
                    "the output folder. Config keys: docs/metatrain.md.")
    p.add_argument("--config", type=Path, required=True, help="meta-training config (JSON)")
    p.add_argument("--out", type=Path, default=None,
                   help="output folder: state, meta-loss CSV and plot, weights and card, "
                        "evaluation reports (default: meta-train-<name> in the current folder)")
    p.add_argument("--data-dir", default=None, help=DATA_DIR_HELP)
    p.add_argument("--workers", type=positive_int, default=None,
                   help="worker processes for the ES unrolls (default: the config's es.workers)")
    p.add_argument("--backend", choices=["process", "ray"], default="process",
                   help="where the ES unrolls run: a local process pool (default) or Ray "
                        "(pip install 'halo-agent[ray]'); the result is the same on either")
    p.add_argument("--address", default=None,
                   help="with --backend ray: the cluster to join (e.g. ray://HOST:10001 or "
                        "auto; default: start a local instance with --workers CPUs)")
    p.add_argument("--no-eval", action="store_true", help="stop after writing the weights")
    p.add_argument("--measure-costs", action="store_true",
                   help="only measure and print the per-mask step cost table of the config's "
                        "meta-training model (JSON), to paste into the config")
    p.set_defaults(func=cmd_meta_train)


def cmd_meta_train(args) -> int:
    from agent.progress import ProgressBar
    from bench.metatrain_eval import evaluate_weights
    from kernels.errors import ConfigError
    from models.data.paths import resolve_data_dir
    from models.halo.weights import card_path, load_weights, save_weights
    from models.metatrain.config import load_config
    from models.metatrain.run import meta_train

    cfg = load_config(args.config)
    if args.measure_costs:
        from models.data import get_task
        from models.metatrain.costs import measure_cost_table

        mt = cfg["meta_task"]
        spec = get_task(mt["task"])
        table = measure_cost_table(mt["model"], spec.input_shape, spec.num_classes,
                                   batch_size=mt["batch_size"])
        print(json.dumps(table))
        return 0
    out = args.out or Path(f"meta-train-{cfg['name']}")
    data_dir = resolve_data_dir(args.data_dir)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.address is not None and args.backend != "ray":
        raise ConfigError("address", args.address, "used with --backend ray only")
    card, wpath = meta_train(cfg, data_dir, out, log=log, workers=args.workers,
                             backend=args.backend, address=args.address,
                             bar=lambda total: ProgressBar(total=total, enabled=True,
                                                           label="meta-train "))
    if not args.no_eval and cfg["evaluation"]["tasks"]:
        card["evaluation"] = evaluate_weights(wpath, cfg["evaluation"], data_dir,
                                              out / "evaluation", progress=True, log=log)
        save_weights(wpath, load_weights(wpath), card)
        log(f"evaluation written into {card_path(wpath)}")
    summary = {"weights": str(out / f"{cfg['name']}.npz"),
               "update_probabilities": card["meta_training"]["update_probabilities"],
               "wall_seconds": card["meta_training"]["wall_seconds"],
               "evaluation": None if not card.get("evaluation") else [
                   {k: t.get(k) for k in ("task", "model", "best_baseline",
                                          "halo_minus_best_points", "within_1_point",
                                          "joules_to_adam_final")}
                   for t in card["evaluation"]["tasks"]]}
    print(json.dumps(summary, indent=1))
    return 0


__all__ = ["add_command"]
