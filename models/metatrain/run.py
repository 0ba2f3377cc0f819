"""``halo-agent meta-train --config FILE``: ES meta-training of HALO, then evaluation, then the model card.

Stages, each resumable from what it left in the output folder:

1. ``config.json``: the config with defaults filled in and the cost table measured
   (when it says ``"measure"``); a later run in the same folder must have the same
   config (the measured table is reused, so a resumed run reproduces);
2. ES (``models.metatrain.es``) over the meta-parameters of ``meta_parameters`` with
   the objective of ``models.metatrain.objective``: ``state.json`` after every
   iteration, ``meta-loss.csv`` (one row per iteration), ``meta-loss.png``;
3. the weights: the mean of the last ``average_last`` iterates, written as
   ``<name>.npz`` with its card ``<name>.json``;
4. evaluation, written into the card: a benchmark, so it lives in ``bench.metatrain_eval``
   and the ``halo-agent meta-train`` command (``bench.metatrain_cli``) runs it after
   :func:`meta_train`; this module imports nothing above the models layer.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import numpy as np

from kernels.errors import ConfigError
from models.data import get_task
from models.halo.weights import card_path, load_weights, save_weights, shipped_versions
from models.metatrain.backends import close_pool, make_pool
from models.metatrain.config import load_config, validation_spec
from models.metatrain.costs import check_table, expected_cost, layer_probabilities, measure_cost_table
from models.metatrain.es import ESConfig, load_state, run_es
from models.metatrain.objective import Unroll
from models.metatrain.space import MetaSpace
from models.nets import build_network

Log = Callable[[str], None]


def start_weights_path(start: str) -> Path:
    """A shipped version name (``halo-v0``) or a path to a weights file."""
    versions = shipped_versions()
    if start in versions:
        return versions[start]
    p = Path(start)
    if not p.exists():
        raise ConfigError("start", start, f"a shipped version ({', '.join(versions)}) or a weights file")
    return p


def resolve_config(cfg: Dict[str, Any], out_dir: Path, log: Log) -> Dict[str, Any]:
    """The run's config: ``cfg`` with the cost table measured, or the one saved in ``out_dir``."""
    saved = out_dir / "config.json"
    if saved.exists():
        old = json.loads(saved.read_text())
        mine = dict(cfg, cost_table=old["cost_table"] if cfg["cost_table"] == "measure"
                    else cfg["cost_table"])
        # worker processes change how fast, not what: a run resumes with any number of them
        mine["es"] = dict(mine["es"], workers=old["es"]["workers"])
        if mine != old:
            diff = sorted(k for k in set(mine) | set(old) if mine.get(k) != old.get(k))
            raise ConfigError("config", ", ".join(diff),
                              f"the same settings as the run in {out_dir} (or another --out)")
        old["es"]["workers"] = cfg["es"]["workers"]
        return old
    cfg = copy.deepcopy(cfg)
    if cfg["distribution"] is not None:  # many architectures: no one cost table
        cfg["cost_table"] = {}
        out_dir.mkdir(parents=True, exist_ok=True)
        saved.write_text(json.dumps(cfg, indent=1) + "\n")
        return cfg
    mt = cfg["meta_task"]
    spec = get_task(mt["task"])
    n_layers = build_network(mt["model"], spec.input_shape, spec.num_classes, seed=None).n_layers
    if cfg["cost_table"] == "measure":
        log(f"measuring the per-mask step cost of {mt['model']} (batch {mt['batch_size']})")
        cfg["cost_table"] = measure_cost_table(mt["model"], spec.input_shape, spec.num_classes,
                                               batch_size=mt["batch_size"])
    cfg["cost_table"] = check_table(cfg["cost_table"], n_layers)
    out_dir.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(cfg, indent=1) + "\n")
    return cfg


def build(cfg: Dict[str, Any], data_dir: Path):
    """(space, objective, ES config) of a resolved config."""
    start = load_weights(start_weights_path(cfg["start"]))
    mp = cfg["meta_parameters"]
    space = MetaSpace(tuple(mp), start, tuple(float(p) for p in cfg["start_probabilities"]))
    mt, ob = cfg["meta_task"], cfg["objective"]
    if cfg["distribution"] is not None:
        from models.metatrain.multitask import TaskUnroll
        from models.pretrain import cache_dir

        mv = cfg["meta_validation"]
        unroll = TaskUnroll(space, cfg["distribution"], Path(data_dir),
                            cache_dir(Path(data_dir)) / "metatasks",
                            n_validation_tasks=mv["tasks"], probes=mv["probes"],
                            final_weight=ob["final_weight"], loss_clip=ob["loss_clip"],
                            error_weight=ob["error_weight"],
                            validation_spec=None if mv["spec"] is None else validation_spec(
                                cfg["distribution"], mv["spec"]))
    else:
        unroll = Unroll(space, dict(cfg["cost_table"]), Path(data_dir), task=mt["task"],
                        model=mt["model"], horizon=mt["horizon"], batch_size=mt["batch_size"],
                        probe_size=mt["probe_size"], probe_every=mt["probe_every"],
                        lambda_jac=ob["lambda_jac"], energy_weight=ob["energy_weight"],
                        loss_clip=ob["loss_clip"], weight_noise=ob["weight_noise"],
                        final_weight=ob["final_weight"])
    es = cfg["es"]
    lr = np.array([float(mp[n].get("lr", es["lr"])) for n in mp])
    es_cfg = ESConfig(iterations=es["iterations"], pairs=es["pairs"],
                      sigma=[float(mp[n]["sigma"]) for n in mp], lr=lr, beta1=es["beta1"],
                      beta2=es["beta2"], clip=es["clip"], clip_value=ob["loss_clip"] + 1.0,
                      seed=cfg["seed"], workers=es["workers"], data_seeds=es["data_seeds"],
                      shaping=es["shaping"])
    return space, unroll, es_cfg


def _describe(space: MetaSpace, unroll: Unroll, n_layers: Optional[int]):
    def describe(theta: np.ndarray) -> Dict[str, float]:
        row = {f"x.{n}": round(float(v), 6) for n, v in zip(space.names, theta)}
        row.update(space.describe(theta))
        if unroll.cost_table:
            probs = layer_probabilities(space.weights(theta).update_probabilities, n_layers)
            row["expected_cost"] = round(expected_cost(probs, unroll.cost_table), 4)
        else:
            row["expected_cost"] = 1.0  # not priced (a distribution of architectures)
        return row
    return describe


def final_point(space: MetaSpace, history, k: int) -> np.ndarray:
    """The mean of the last ``k`` iterates (ES's iterates are noisy; the mean is steadier)."""
    rows = history[-k:]
    return np.array([[r[f"x.{n}"] for n in space.names] for r in rows]).mean(axis=0)


def plot_meta_loss(history, path: Path) -> Optional[str]:
    """``meta-loss.png``: meta-loss (mean, min-max band) and expected step cost per iteration."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return "matplotlib is not installed (pip install 'halo-agent[plot]')"
    it = [r["iteration"] for r in history]
    fig = Figure(figsize=(7, 4))
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(it, [r["meta_loss"] for r in history], label="meta-loss (mean over the pairs' runs)")
    ax.fill_between(it, [r["min"] for r in history], [r["max"] for r in history], alpha=0.2)
    ax.set_xlabel("ES iteration")
    ax.set_ylabel("meta-loss")
    ax2 = ax.twinx()
    ax2.plot(it, [r["expected_cost"] for r in history], color="tab:red",
             label="expected step cost (dense = 1)")
    ax2.set_ylabel("expected step cost (dense = 1)")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="center right", fontsize="small")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
    return None


def meta_train(config, data_dir: Path, out_dir: Path, *,
               bar: Optional[Callable[[int], Any]] = None, log: Optional[Log] = None,
               workers: Optional[int] = None, backend: str = "process",
               address: Optional[str] = None) -> Dict[str, Any]:
    """Run (or resume) ES and write the weights and their card; returns ``(card, path)``.

    ``bar(total)``: makes a progress bar (``update(i, text)``, ``close()``, ``enabled``);
    None: progress goes to ``log`` one line per iteration.  The card keeps an earlier
    evaluation of the same folder (``bench.metatrain_eval`` writes it).

    ``backend``: where the unrolls run, ``process`` (a local pool of ``workers``) or
    ``ray`` (``address``: a cluster; None: a local instance with ``workers`` CPUs); the
    result does not depend on it (``models.metatrain.backends``)."""
    log = log or (lambda m: None)
    cfg = load_config(config)
    if workers is not None:
        cfg["es"]["workers"] = int(workers)
    out_dir = Path(out_dir)
    cfg = resolve_config(cfg, out_dir, log)
    space, unroll, es_cfg = build(cfg, data_dir)
    if cfg["distribution"] is None:
        spec = get_task(unroll.task)
        n_layers = build_network(unroll.model, spec.input_shape, spec.num_classes,
                                 seed=None).n_layers
    else:
        n_layers = None  # many architectures: the step cost is not priced (no cost table)
    describe = _describe(space, unroll, n_layers)
    ck, csv_path = out_dir / "state.json", out_dir / "meta-loss.csv"
    done = load_state(ck).iteration if ck.exists() else 0
    if done:
        log(f"resuming from iteration {done} of {es_cfg.iterations} ({ck})")
    unroll.prepare()  # data and source model made once, before the workers fork
    bar = bar(es_cfg.iterations) if bar is not None else _NoBar()

    def on_iteration(row):
        bar.update(row["iteration"], f"meta-loss {row['meta_loss']:.4f} "
                                     f"cost {row['expected_cost']:.3f}")
        if not bar.enabled:
            log(f"iteration {row['iteration']}/{es_cfg.iterations}: meta-loss "
                f"{row['meta_loss']:.4f} (min {row['min']:.4f}, max {row['max']:.4f}), "
                f"expected step cost {row['expected_cost']:.3f}, {row['seconds']:.1f} s")

    pool = make_pool(backend, es_cfg.workers, address)
    try:
        if backend == "ray":
            log(f"unrolls on Ray: {pool.cpus} CPUs")
        st = run_es(unroll, space.zeros(), es_cfg, checkpoint=ck, log_csv=csv_path,
                    on_iteration=on_iteration, describe=describe, pool=pool)
        bar.close()
        x = final_point(space, st.history, cfg["average_last"])
        weights = space.weights(x)
        plot_note = plot_meta_loss(st.history, out_dir / "meta-loss.png")
        card = model_card(cfg, space, x, st.history, unroll, n_layers, plot_note)
        card["meta_training"]["backend"] = backend
        if cfg["distribution"] is not None:
            card["meta_validation"] = meta_validate(unroll, x, cfg["meta_validation"], log, pool)
    finally:
        close_pool(pool)
    wpath = out_dir / f"{cfg['name']}.npz"
    old_eval = None
    if card_path(wpath).exists():
        old_eval = json.loads(card_path(wpath).read_text()).get("evaluation")
    card["evaluation"] = old_eval
    save_weights(wpath, weights, card)
    log(f"wrote {wpath} and {card_path(wpath).name}")
    return card, wpath


class _NoBar:
    enabled = False

    def update(self, i: int, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def meta_validate(unroll, x: np.ndarray, mv: Dict[str, Any], log: Log,
                  pool: Optional[Any] = None) -> Dict[str, Any]:
    """Held-out tasks of the distribution: the meta-loss at the start (x = 0) and at ``x``."""
    from dataclasses import replace

    from models.metatrain.multitask import evaluate_tasks

    val = replace(unroll, validation_tasks=True)
    start = evaluate_tasks(val, np.zeros_like(x), mv["seeds_per_task"], pool)
    final = evaluate_tasks(val, x, mv["seeds_per_task"], pool)
    log(f"meta-validation on {len(final['per_task'])} held-out tasks: meta-loss "
        f"{start['meta_loss']:.4f} at the start, {final['meta_loss']:.4f} meta-trained")
    return {"tasks": sorted(final["per_task"]), "seeds_per_task": mv["seeds_per_task"],
            "start": start, "meta_trained": final}


def model_card(cfg, space: MetaSpace, x: np.ndarray, history, unroll: Unroll,
               n_layers: Optional[int], plot_note: Optional[str]) -> Dict[str, Any]:
    """The card of the meta-trained weights (evaluation added later)."""
    start_card_path = card_path(start_weights_path(cfg["start"]))
    start_card = json.loads(start_card_path.read_text()) if start_card_path.exists() else {}
    w = space.weights(x)
    cost = (expected_cost(layer_probabilities(w.update_probabilities, n_layers), unroll.cost_table)
            if unroll.cost_table else None)
    wall = float(sum(r["seconds"] for r in history))
    return {
        "name": cfg["name"],
        "format": start_card.get("format"),
        "architecture": start_card.get("architecture"),
        "version": cfg["name"],
        "made_by": "halo-agent meta-train --config CONFIG (models/metatrain)",
        "date": time.strftime("%Y-%m-%d"),
        "config": cfg,
        "seed": cfg["seed"],
        "meta_training": {
            "estimator": "antithetic ES, full horizon, common random numbers per pair; Adam "
                         "meta-optimizer with per-element clipping",
            "iterations": len(history), "wall_seconds": round(wall, 1),
            "unrolls": 2 * cfg["es"]["pairs"] * len(history),
            "final_point": f"mean of the last {cfg['average_last']} iterates",
            "meta_parameters": {n: round(float(v), 6) for n, v in zip(space.names, x)},
            "update_probabilities": list(w.update_probabilities),
            "expected_step_cost_meta_task": None if cost is None else round(cost, 4),
            "meta_loss_curve": [{k: r[k] for k in ("iteration", "meta_loss", "min", "max",
                                                   "expected_cost", "seconds")} for r in history],
            "plot": "meta-loss.png" if plot_note is None else None,
            "plot_skipped": plot_note,
        },
        "weights": {"theta": w.theta.tolist(), "mlp_w": np.asarray(w.mlp.w).tolist(),
                    "mlp_b": np.asarray(w.mlp.b).tolist(),
                    "mlp_delta": np.asarray(w.mlp.delta).tolist(),
                    "mlp_mu": np.asarray(w.mlp.mu).tolist(), "mlp_b_q": float(w.mlp.b_q),
                    "base_lr": w.base_lr, "beta1": w.beta1, "beta2": w.beta2, "eps": w.eps,
                    "log_clip": w.log_clip},
    }
