"""Evaluation of meta-trained weights on tasks never used in meta-training, for the model card.

Per task (``evaluation.tasks``), two ``bench compare`` runs (one power source, one
sampler, interleaved, same seeds and batch order for every arm):

1. *tuning*: every baseline (Adam, SGD with momentum, Adagrad...), dense and with the
   structural sparsity the evaluated weights were trained for (``adam:thirds:P1,P2,P3``),
   over the whole ``lr_grid`` on ``tune_seeds`` seeds starting at ``tune_first_seed``
   (seeds the final comparison does not use); the best baseline is the best of all;
2. *final*: HALO with the evaluated weights (untuned, its own sparsity) against each
   baseline at its ``finalists`` best learning rates from stage 1, on ``seeds`` seeds
   starting at ``first_seed``.  Each baseline's best rate is picked again on these
   seeds among its finalists (which can only favour the baselines).

Figures per arm: mean final accuracy (last evaluation) and smoothed final (mean of
the last ``smooth_evals`` evaluations; the target), training joules, and the joules
at which the seed-mean curve first reaches the best baseline's smoothed final and
Adam's (linear between evaluations).  Energy is the run's power source; on a
machine with no meter it is estimated and every table says so.  Each stage's
report is kept under ``out_dir/<task>-<model>/{tune,final}`` and reused on resume.

Any weights file, meta-trained here or not, can be evaluated with a config's
``evaluation`` block (the tasks chosen by ``--task``, all by default)::

    python -m bench.metatrain_eval --config models/metatrain/configs/halo-v3.json \
        --weights W.npz --data-dir DATA --out OUT [--task tdp-female-mlp ...]

which writes ``OUT/evaluation.json`` (the card's ``evaluation``) beside each task's
stage reports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from bench.arms import BenchConfigError, parse_arm, parse_arms
from bench.compare import CompareConfig, halo_weights, run_compare, with_sparse_baselines
from bench.report import write_outputs
from models.data import get_task
from models.registry import default_sparsity

Log = Callable[[str], None]


def mean_curve(runs: Sequence[Dict[str, Any]]):
    """(steps, mean accuracy, mean joules) over seeds at the evaluation steps all runs share."""
    steps = sorted(set.intersection(*[{p["step"] for p in r["points"]} for r in runs]))
    acc = np.array([[next(p["accuracy"] for p in r["points"] if p["step"] == s) for s in steps]
                    for r in runs]).mean(axis=0)
    joules = np.array([[next(p["joules"] for p in r["points"] if p["step"] == s) for s in steps]
                       for r in runs]).mean(axis=0)
    return steps, acc, joules


def curve_joules_to(runs: Sequence[Dict[str, Any]], target: float) -> Optional[float]:
    """Joules at which the seed-mean accuracy curve first reaches ``target`` (None: never)."""
    _, acc, joules = mean_curve(runs)
    for i, a in enumerate(acc):
        if a >= target:
            if i == 0:
                return float(joules[0])
            return float(joules[i - 1] + (target - acc[i - 1]) / (a - acc[i - 1])
                         * (joules[i] - joules[i - 1]))
    return None


def _protocol(cfg: CompareConfig) -> Dict[str, Any]:
    """What a stored stage report must share with ``cfg`` to stand for it: task, model,
    steps, evaluation interval and smoothing, seeds, learning rates and the HALO weights
    (as :func:`bench.compare.run_compare` records them), JSON-normalised."""
    arms = with_sparse_baselines(parse_arms(cfg.optimizers), cfg.sparse_baselines)
    return json.loads(json.dumps({
        "task": cfg.task, "model": cfg.model, "steps": cfg.steps, "eval_every": cfg.eval_every,
        "smooth_evals": cfg.smooth_evals,
        "seed_list": list(range(cfg.first_seed, cfg.first_seed + cfg.seeds)),
        "tune_lr": cfg.tune_lr, "halo_weights": halo_weights(cfg, arms)}))


def stage_mismatch(stored: Dict[str, Any], cfg: CompareConfig) -> Optional[str]:
    """None when the stored report ran ``cfg``'s protocol with (at least) its arms, else
    the first difference, naming the field and both values."""
    for key, want in _protocol(cfg).items():
        if stored.get(key) != want:
            return f"{key} differs (stored {stored.get(key)!r}, this run {want!r})"
    missing = {parse_arm(a).label for a in cfg.optimizers} - set(stored.get("optimizers", {}))
    if missing:
        return f"optimizers: the stored report lacks {', '.join(sorted(missing))}"
    return None


def _stage(cfg: CompareConfig, out: Path, progress: bool, log: Log, command: str,
           committed: Optional[Path] = None) -> Dict[str, Any]:
    """The stage's report: the one stored in ``out`` when it ran ``cfg``'s protocol, else a
    committed one from ``committed/tune-report.json.gz`` (or ``committed/tune/report.json``,
    copied into ``out``; one of another protocol is refused, BenchConfigError naming the
    field), else a new run."""
    path = out / "report.json"
    if path.exists():
        stored = json.loads(path.read_text())
        why = stage_mismatch(stored, cfg)
        if why is None:
            log(f"reusing {path}")
            return stored
        log(f"{path}: {why}: running the stage again")
    elif committed is not None:
        found = _committed_tune(committed)
        if found is not None:
            src, text = found
            stored = json.loads(text)
            why = stage_mismatch(stored, cfg)
            if why is not None:
                raise BenchConfigError("--tune-from", str(src),
                                       f"the tune stage of this protocol: {why}",
                                       f"--tune-from {src}: not the tune stage of this protocol: {why}")
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            log(f"reusing {path} (--tune-from: {out.parent.name} tune stage from {src})")
            return stored
        log(f"--tune-from: no tune report in {committed}: tuning it")
    report = run_compare(cfg, progress=progress, log=log, command=command)
    write_outputs(report, out, title=f"{cfg.task} ({cfg.model})")
    return report


def _committed_tune(folder: Path) -> Optional[Tuple[Path, str]]:
    """``(path, text)`` of a task's committed tune stage report in ``folder``
    (``tune-report.json.gz``, as the evaluation folders of docs/results keep them, or
    ``tune/report.json``); None when there is none."""
    import gzip

    packed, plain = folder / "tune-report.json.gz", folder / "tune" / "report.json"
    if packed.is_file():
        with gzip.open(packed, "rt") as f:
            return packed, f.read()
    if plain.is_file():
        return plain, plain.read_text()
    return None


def finalists(report: Dict[str, Any], label: str, k: int) -> List[float]:
    """The ``k`` learning rates with the best mean smoothed final accuracy (no diverged seed)."""
    grid = report["optimizers"][label]["grid"]
    ok = [g for g in grid if g["diverged"] == 0] or grid
    ok.sort(key=lambda g: -(g["final_accuracy_smoothed"]["mean"] or -1.0))
    return [float(g["lr"]) for g in ok[:k]]


def evaluate_task(weights: Path, entry: Dict[str, Any], ev: Dict[str, Any], data_dir: Path,
                  out_dir: Path, progress: bool, log: Log,
                  tune_from: Optional[Path] = None) -> Dict[str, Any]:
    spec = get_task(entry["task"])
    model = entry.get("model") or spec.default_model
    steps = int(entry.get("steps") or 300)
    key = task_key(entry)
    common = dict(task=spec.name, data_dir=Path(data_dir), model=model, steps=steps, idle_seconds=0.0,
                  eval_every=min(ev["eval_every"], steps), smooth_evals=ev["smooth_evals"])
    base = list(ev["baselines"])
    # each baseline also with the structural sparsity of the weights under test, tuned alike
    scheme = default_sparsity("halo", {"weights": str(weights)})
    base += [parse_arm(f"{b}:{scheme}").label for b in list(base) if ":" not in b]
    log(f"evaluation {key}: tuning {', '.join(base)} over {len(ev['lr_grid'])} learning rates, "
        f"{ev['tune_seeds']} seeds")
    tune_cfg = CompareConfig(optimizers=base, seeds=ev["tune_seeds"],
                             first_seed=ev["tune_first_seed"], tune_lr=list(ev["lr_grid"]), **common)
    tune = _stage(tune_cfg, out_dir / key / "tune", progress, log, f"meta-train evaluation {key} tune",
                  None if tune_from is None else Path(tune_from) / key)
    grids = {b: finalists(tune, b, ev["finalists"]) for b in base}
    log(f"evaluation {key}: halo vs " + ", ".join(f"{b} at {grids[b]}" for b in base)
        + f", {ev['seeds']} seeds")
    final = _stage(CompareConfig(optimizers=["halo"] + base, seeds=ev["seeds"],
                                 first_seed=ev["first_seed"], tune_lr=grids,
                                 options={"halo": {"weights": str(weights)}}, **common),
                   out_dir / key / "final", progress, log, f"meta-train evaluation {key} final")
    return summarize(final, key)


def summarize(final: Dict[str, Any], key: str) -> Dict[str, Any]:
    """The card's row of one task: per arm figures, the gaps and ratios the issue asks for."""
    opts = final["optimizers"]
    arms: Dict[str, Any] = {}
    for label, e in opts.items():
        arms[label] = {
            "lr": e["lr"], "sparsity": e.get("sparsity"),
            "final_accuracy": e["final_accuracy"]["mean"],
            "final_accuracy_std": e["final_accuracy"]["std"],
            "final_accuracy_smoothed": e["final_accuracy_smoothed"]["mean"],
            "final_accuracy_smoothed_std": e["final_accuracy_smoothed"]["std"],
            "joules": e["joules"]["mean"], "diverged": e["diverged"],
        }
    baselines = [k for k, e in opts.items() if e["hand_designed"]]
    best = max(baselines, key=lambda k: arms[k]["final_accuracy_smoothed"])
    best_acc = arms[best]["final_accuracy_smoothed"]
    row: Dict[str, Any] = {"task": final["task"], "model": final["model"], "steps": final["steps"],
                           "seeds": final["seed_list"], "energy_source": final["energy_source"],
                           "estimated": final["estimated"],
                           "energy_profile": final.get("energy_profile"),
                           "arms": arms, "best_baseline": best,
                           "best_baseline_smoothed_final": best_acc}
    halo_runs = opts["halo"]["runs"]
    for label in ("halo", *baselines):
        arms[label]["joules_to_best_baseline_final"] = curve_joules_to(opts[label]["runs"], best_acc)
    halo = arms["halo"]
    row["halo_minus_best_points"] = round(100 * (halo["final_accuracy_smoothed"] - best_acc), 3)
    row["within_1_point"] = bool(row["halo_minus_best_points"] >= -1.0)
    if "adam" in opts:
        adam = arms["adam"]
        target = adam["final_accuracy_smoothed"]
        jh, ja = curve_joules_to(halo_runs, target), curve_joules_to(opts["adam"]["runs"], target)
        row["adam_target"] = target
        row["halo_minus_adam_points"] = round(100 * (halo["final_accuracy_smoothed"] - target), 3)
        row["joules_to_adam_final"] = {"halo": jh, "adam": ja,
                                       "ratio": None if jh is None or not ja else round(jh / ja, 4)}
    return row


def task_key(entry: Dict[str, Any]) -> str:
    """``<task>-<model>``: the folder of one evaluation task's reports."""
    spec = get_task(entry["task"])
    return f"{spec.name}-{entry.get('model') or spec.default_model}"


def evaluate_weights(weights: Path, ev: Dict[str, Any], data_dir: Path, out_dir: Path, *,
                     progress: bool = False, log: Optional[Log] = None,
                     only: Optional[Sequence[str]] = None,
                     tune_from: Optional[Path] = None) -> Dict[str, Any]:
    """Evaluate ``weights`` on every task of ``ev["tasks"]`` (those whose :func:`task_key`
    is in ``only``, when given); the card's ``evaluation``.  ``tune_from``: a folder of
    committed tune stages (per task ``tune_from/KEY``, see :func:`_stage`)."""
    log = log or (lambda m: None)
    rows = [evaluate_task(Path(weights), entry, ev, data_dir, Path(out_dir), progress, log,
                          tune_from)
            for entry in ev["tasks"] if only is None or task_key(entry) in only]
    return {
        "protocol": {k: ev[k] for k in ("baselines", "lr_grid", "tune_seeds", "tune_first_seed",
                                        "finalists", "seeds", "first_seed", "eval_every",
                                        "smooth_evals")},
        "definitions": {
            "final_accuracy_smoothed": "mean of the last smooth_evals evaluations (the target)",
            "joules": "training joules (evaluations excluded), mean over seeds",
            "joules_to_*": "joules at which the seed-mean accuracy curve first reaches the "
                           "target (linear between evaluations); null: never",
            "tuning": "baselines run the whole lr_grid on tune_seeds seeds; the finalists best "
                      "rates run again on the evaluation seeds and the best there is reported",
        },
        "tasks": rows,
    }


def main(argv: Optional[List[str]] = None) -> int:
    import argparse
    import sys

    from kernels.errors import HaloError
    from models.metatrain.config import load_config

    ap = argparse.ArgumentParser(prog="python -m bench.metatrain_eval",
                                 description="Evaluate HALO weights with a meta-training "
                                             "config's evaluation protocol.")
    ap.add_argument("--config", type=Path, required=True, help="meta-training config (JSON)")
    ap.add_argument("--weights", type=Path, required=True, help="HALO weights (.npz)")
    ap.add_argument("--data-dir", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True, help="folder for the stage reports")
    ap.add_argument("--task", action="append", default=None, metavar="TASK-MODEL",
                    help="only this evaluation task (repeatable), e.g. tdp-female-mlp")
    ap.add_argument("--tune-from", type=Path, default=None, metavar="DIR",
                    help="take each task's tune stage from DIR/TASK-MODEL/tune-report.json.gz "
                         "(an evaluation folder of docs/results) when its protocol is this "
                         "config's: only the final stages run")
    a = ap.parse_args(argv)
    try:
        cfg = load_config(a.config)
        ev = cfg["evaluation"]
        keys = [task_key(e) for e in ev["tasks"]]
        unknown = sorted(set(a.task or []) - set(keys))
        if unknown or not keys:
            what = f"--task {unknown[0]}" if unknown else f"{a.config}"
            print(f"error: {what}: the config's evaluation tasks are "
                  f"{', '.join(keys) or 'none'}", file=sys.stderr)
            return 2
        if not a.weights.is_file():
            print(f"error: --weights {a.weights}: no such file", file=sys.stderr)
            return 2
        if a.tune_from is not None and not a.tune_from.is_dir():
            print(f"error: --tune-from {a.tune_from}: no such folder", file=sys.stderr)
            return 2
        result = evaluate_weights(a.weights, ev, a.data_dir, a.out, progress=True,
                                  log=lambda m: print(m, flush=True), only=a.task,
                                  tune_from=a.tune_from)
    except HaloError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "evaluation.json").write_text(json.dumps(result, indent=1) + "\n")
    for row in result["tasks"]:
        halo = row["arms"]["halo"]["final_accuracy_smoothed"]
        print(f"{row['task']}/{row['model']}: halo {100 * halo:.2f}% "
              f"vs {row['best_baseline']} {100 * row['best_baseline_smoothed_final']:.2f}% "
              f"({row['halo_minus_best_points']:+.2f} points)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
