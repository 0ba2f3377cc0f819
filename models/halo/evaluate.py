"""Evaluate HALO weights against Adam at 1e-3: accuracy gain after a fixed number of steps.

For each task (``name`` or ``name:arch``) and seed, the task's source model is
adapted twice from the same checkpoint with the same batch order (the engine's
``batch_indices`` and ``progress = t / steps``): once with HALO (its default
10/30/50 sparsity, no tuning) and once with dense Adam at lr 1e-3.  The score is
``(acc_halo - acc_0) / (acc_adam - acc_0)``, the fraction of Adam's accuracy gain
that HALO reaches.  Used by the distillation command to fill the model card::

    python -m models.halo.evaluate --weights models/weights/halo-v0.npz \\
        --tasks mnist-a:cnn-b,tdp-female --seeds 0,1,2 --data-dir DATA [--write-card]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.optimizers import make_optimizer
from kernels.sparsity import parse_sparsity
from models.halo.arch import HaloWeights
from models.halo.optimizer import make_halo, net_layout


def adapt_accuracy(data, net, opt, probs, steps: int, seed: int) -> float:
    """Final target-test accuracy after ``steps`` Trainer steps (NaN if the loss diverged)."""
    from models.train import Trainer, batch_indices

    trainer = Trainer(net, opt, probs, seed=seed)
    xt, yt = data.target_train.x, data.target_train.y
    it = batch_indices(xt.shape[0], data.spec.batch_size, seed)
    for t in range(steps):
        idx = next(it)
        loss = trainer.step(xt[idx], yt[idx], t, t / steps)
        if loss is not None and not math.isfinite(loss):
            return float("nan")
    return float(net.evaluate(data.target_test.x, data.target_test.y)[0])


def evaluate(w: HaloWeights, tasks: Sequence[str], seeds: Sequence[int], data_dir: Path,
             steps: int = 300, log=print) -> List[Dict]:
    """One row per task: initial, Adam 1e-3 and HALO accuracies per seed, and the gain ratio."""
    from models.data import load_task
    from models.pretrain import load_source_model

    rows = []
    with threadpool_limits(1):
        for item in tasks:
            name, _, arch = item.strip().partition(":")
            data = load_task(name, Path(data_dir))
            arch = arch or data.spec.default_model
            net = load_source_model(data, arch, Path(data_dir), log=log)
            p0 = net.params.data.copy()
            acc0 = float(net.evaluate(data.target_test.x, data.target_test.y)[0])
            adam_acc, halo_acc = [], []
            for seed in seeds:
                net.params.data[...] = p0
                adam_acc.append(adapt_accuracy(data, net, make_optimizer("adam", 1e-3), None,
                                               steps, seed))
                net.params.data[...] = p0
                opt = make_halo(None, weights=w, layout=net_layout(net))
                probs = parse_sparsity("halo", net.n_layers)
                halo_acc.append(adapt_accuracy(data, net, opt, probs, steps, seed))
            net.params.data[...] = p0
            gain = [(h - acc0) / (a - acc0) if a != acc0 else math.nan
                    for a, h in zip(adam_acc, halo_acc)]
            row = {"task": name, "model": arch, "steps": steps, "seeds": list(seeds),
                   "initial_accuracy": round(acc0, 4),
                   "adam_1e-3": [round(a, 4) for a in adam_acc],
                   "halo": [round(h, 4) for h in halo_acc],
                   "gain_ratio_per_seed": [round(x, 3) for x in gain],
                   "gain_ratio_of_means": round((np.mean(halo_acc) - acc0)
                                                / (np.mean(adam_acc) - acc0), 3)}
            log(json.dumps(row))
            rows.append(row)
    return rows


def main(argv: Optional[Sequence[str]] = None) -> int:
    from models.data import resolve_data_dir
    from models.halo.weights import card_path, load_weights

    ap = argparse.ArgumentParser(prog="python -m models.halo.evaluate",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--weights", default=None, help="weights file (default: the newest shipped version)")
    ap.add_argument("--tasks", default="mnist-a:cnn-b,tdp-female")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--write-card", action="store_true",
                    help="store the rows as the card's evaluation table")
    args = ap.parse_args(argv)
    w = load_weights(args.weights)
    rows = evaluate(w, args.tasks.split(","), [int(s) for s in args.seeds.split(",")],
                    resolve_data_dir(args.data_dir), args.steps)
    if args.write_card:
        from models.halo.weights import default_weights_path

        path = card_path(args.weights or default_weights_path())
        card = json.loads(path.read_text()) if path.exists() else {}
        card["evaluation"] = rows
        path.write_text(json.dumps(card, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
