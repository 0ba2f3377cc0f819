"""The report of a benchmark: best learning rates, the target accuracy, per-optimizer
figures over seeds, and writing ``report.json`` / ``report.md`` / plots to a folder.

Choices (stated in every report under ``definitions``):

- *final accuracy* is the last evaluation of a run; *smoothed final accuracy* is the
  mean of its last ``smooth_evals`` evaluations (default 3).  Both are reported; the
  smoothed one picks the best learning rate and sets the default target, because a
  single evaluation jumps by about half a point from one evaluation to the next.
- the best learning rate of a tuned optimizer has the highest mean smoothed final
  accuracy over seeds among the rates where no seed diverged (all rates when every one
  diverged); ties go to the lower mean energy.
- the default target accuracy is the best hand-designed optimizer's (at its best rate)
  mean smoothed final accuracy; with no hand-designed optimizer in the run, the best
  optimizer's.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bench.metrics import smoothed_final_accuracy, summarize_runs

SCHEMA = "halo-agent/bench-compare/1"

DEFINITIONS = {
    "joules": "energy of the training steps in J (evaluations excluded), from the run's power source",
    "final_accuracy": "accuracy (fraction) on the target test split at the last evaluation",
    "final_accuracy_smoothed": "mean accuracy of the last {k} evaluations of a run",
    "joules_per_point": "joules / (final - initial accuracy in percentage points), per seed, "
                        "then mean and std over seeds that gained (null for a seed that did not)",
    "joules_to_target": "training joules at which the curve first reaches the target "
                        "(linear between evaluations); mean and std over the seeds that reached it",
    "accuracy_at_budget": "accuracy interpolated on the curve at the joule budget; a run "
                          "that ended below the budget keeps its final accuracy",
    "seconds_per_step": "training seconds / steps (evaluations excluded)",
    "tuning_joules": "training joules of every run of the learning-rate grid, every seed "
                     "(the cost of tuning); for hypergrad, the joules of every seed's "
                     "hypergradient meta-steps; null when not tuned",
    "std": "sample standard deviation over seeds (ddof=1; 0 with one seed)",
    "order": "seed-major: for seed: for (optimizer, lr): run; the (optimizer, lr) order "
             "rotates by one place per seed; one shared power sampler",
}


def _mean(summary: Dict[str, Any], key: str) -> float:
    v = summary[key]["mean"]
    return -math.inf if v is None else v


def pick_best(cells: Sequence[Tuple[Any, Dict[str, Any]]]) -> Tuple[Any, Dict[str, Any]]:
    """The (cell, summary) with the highest mean smoothed final accuracy among cells
    with no diverged seed (all cells if each has one); ties: lower mean joules."""
    ok = [cs for cs in cells if cs[1]["diverged"] == 0] or list(cells)
    return max(ok, key=lambda cs: (_mean(cs[1], "final_accuracy_smoothed"), -_mean(cs[1], "joules")))


def _compact(run: Dict[str, Any], k: int) -> Dict[str, Any]:
    keys = ("seed", "initial_accuracy", "final_accuracy", "steps", "seconds", "joules", "status")
    return dict({x: run.get(x) for x in keys}, lr=run["hyperparameters"].get("lr"),
                final_accuracy_smoothed=smoothed_final_accuracy(run, k))


def mean_energy_split(runs: Sequence[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """Mean over runs of each run's ``energy_split`` (J and share of training by part)."""
    splits = [r["energy_split"] for r in runs if r.get("energy_split")]
    if not splits:
        return None

    def mean(key: str) -> Dict[str, float]:
        return {p: math.fsum(s[key][p] for s in splits) / len(splits) for p in splits[0][key]}

    return {"method": splits[0]["method"], "joules": mean("joules"),
            "share_of_training": mean("share_of_training")}


def build_report(cfg, arch: str, arms, cells, results: Dict[Any, List[Dict[str, Any]]],
                 seeds: Sequence[int], meta: Dict[str, Any]) -> Dict[str, Any]:
    """The benchmark report (schema :data:`SCHEMA`) from the runs of every (arm, lr) cell."""
    k = cfg.smooth_evals
    by_arm: Dict[str, List[Tuple[Any, Dict[str, Any]]]] = {a.label: [] for a in arms}
    for cell in cells:
        by_arm[cell.arm.label].append((cell, summarize_runs(results[cell], k=k)))
    best = {a.label: pick_best(by_arm[a.label]) for a in arms}

    target, target_source = cfg.target_accuracy, "given (--target-accuracy)"
    if target is None:
        pool = [a for a in arms if a.hand_designed] or list(arms)
        top = max(pool, key=lambda a: _mean(best[a.label][1], "final_accuracy_smoothed"))
        target = best[top.label][1]["final_accuracy_smoothed"]["mean"]
        kind = "hand-designed optimizer" if top.hand_designed else "optimizer"
        target_source = f"best {kind} {top.label}: mean of the last {k} evaluations, over seeds"

    optimizers: Dict[str, Any] = {}
    for arm in arms:
        cell, _ = best[arm.label]
        runs = results[cell]
        entry: Dict[str, Any] = {
            "optimizer": arm.optimizer, "hand_designed": arm.hand_designed,
            "sparsity": runs[0]["hyperparameters"].get("sparsity"),
            "lr": cell.lr if cell.lr is not None else runs[0]["hyperparameters"].get("lr"),
            "tuned": cell.tuned, "tuning_joules": None, "grid": None,
        }
        if cell.tuned:
            grid = by_arm[arm.label]
            entry["tuning_joules"] = math.fsum(r["joules"] for c, _ in grid for r in results[c])
            entry["tuning_runs"] = sum(len(results[c]) for c, _ in grid)
            lrs = sorted(c.lr for c, _ in grid)
            entry["lr_at_grid_edge"] = len(lrs) > 1 and cell.lr in (lrs[0], lrs[-1])
            entry["grid"] = [{
                "lr": c.lr, "chosen": c == cell,
                "final_accuracy": s["final_accuracy"],
                "final_accuracy_smoothed": s["final_accuracy_smoothed"],
                "joules": s["joules"], "diverged": s["diverged"],
                "runs": [_compact(r, k) for r in results[c]]} for c, s in grid]
        if arm.optimizer == "hypergrad":  # per seed: meta-steps on a validation split
            entry["tuning_joules"] = math.fsum(r["tuning"]["joules"] for r in runs)
            entry["tuning_runs"] = f"{len(runs)} x {runs[0]['tuning']['meta_steps']} meta-steps"
        entry.update(summarize_runs(runs, target=target, budget_j=cfg.budget_joules, k=k))
        entry["energy_split"] = mean_energy_split(runs)
        entry["runs"] = runs
        optimizers[arm.label] = entry

    report = {
        "schema": SCHEMA, "task": cfg.task, "model": arch, "steps": cfg.steps,
        "eval_every": cfg.eval_every, "seeds": len(seeds), "seed_list": list(seeds),
        "energy_source": meta["energy_source"], "estimated": meta["estimated"],
        "energy_profile": meta["energy_profile"],
        "accuracy_unit": "fraction of the target test split (a point = 0.01)",
        "energy_unit": "J",
        "target_accuracy": target, "target_source": target_source,
        "budget_joules": cfg.budget_joules, "smooth_evals": k,
        "tune_lr": (dict(cfg.tune_lr) if isinstance(cfg.tune_lr, dict) else list(cfg.tune_lr))
        if cfg.tune_lr else None,
        "idle_seconds": cfg.idle_seconds, "threads": cfg.threads,
        "definitions": dict(DEFINITIONS, final_accuracy_smoothed=DEFINITIONS[
            "final_accuracy_smoothed"].format(k=k)),
        "optimizers": optimizers,
    }
    report.update({key: v for key, v in meta.items() if key not in report})
    return report


def write_outputs(report: Dict[str, Any], out_dir: Path, *, plots: bool = True,
                  title: Optional[str] = None) -> Dict[str, Any]:
    """Write ``report.json``, ``report.md`` and (matplotlib permitting) the plots into
    ``out_dir``; returns ``{"files": [...], "plots_skipped": reason or None}``."""
    from bench.markdown import compare_markdown
    from bench.plots import plot_curves

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "report.json", out / "report.md"]
    files[0].write_text(json.dumps(report, indent=1) + "\n")
    skipped = None
    made: List[Path] = []
    if plots:
        made, skipped = plot_curves(report, out, title=title)
    files[1].write_text(compare_markdown(report, plots=[p.name for p in made], note=skipped))
    return {"files": [str(f) for f in files + made], "plots_skipped": skipped}
