"""``bench compare``: every optimizer on the same task, seeds, batch order and power source,
in one process, interleaved; the report in joules per accuracy point.

Protocol (nanoGPT-style: warm up, then measure):

1. One power meter and one background sampler serve every run, so all runs are
   measured by the same source.
2. Warm-up: one short run per arm (not reported) loads the data, the source checkpoint
   and the optimizer's first-use state, so the first measured run pays no one-off cost.
3. Runs are seed-major: ``for seed: for (arm, lr): run``, with the order of the
   (arm, lr) cells rotated by one place per seed, so drift of the board's state (heat,
   clocks, background load) hits every arm alike and no arm is always first.
4. A hand-designed optimizer given ``tune_lr`` runs the whole grid; the best learning
   rate is picked by mean smoothed final accuracy (see :mod:`bench.report`), and the
   energy of the whole grid is reported as its cost of tuning.  Learned optimizers
   (``halo``) are never tuned.
5. Fair to the baselines: when HALO runs, every dense hand-designed arm also runs with
   the structural sparsity of the HALO weights under test (``adam:halo``, tuned on the
   same grid) unless ``sparse_baselines`` is off or the arm already has a sparse twin;
   the report names the weights and the probabilities.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from agent.engine import AdaptConfig
from agent.memory import peak_rss_mb
from agent.progress import ProgressBar
from bench.arms import Arm, BenchConfigError, parse_arms
from bench.hypergrad_arm import HYPERGRAD, run_config, tune_config
from bench.report import build_report
from models.data import get_task
from models.nets import build_network
from models.onnx import is_onnx_path, load_onnx_model
from power import Sampler, detect
from power.runrecord import run_record


@dataclass
class CompareConfig:
    """A comparison: arms (``NAME[:SPARSITY]``), seeds ``first_seed..first_seed+seeds-1``,
    a step budget per run, an optional learning-rate grid for hand-designed arms (one
    list for all, or a dict arm label -> list), fixed learning rates per arm label or
    optimizer name (``lrs``; these are not tuned) and optimizer options per arm label
    (``options``, e.g. ``{"halo": {"weights": PATH}}``)."""

    task: str
    data_dir: Path
    optimizers: Sequence[str] = ("halo", "adam")
    model: Optional[str] = None
    seeds: int = 3
    first_seed: int = 0
    steps: int = 300
    eval_every: int = 25
    tune_lr: Optional[Sequence[float]] = None
    lrs: Dict[str, float] = field(default_factory=dict)
    options: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    target_accuracy: Optional[float] = None   # fraction; None: best baseline's mean final
    budget_joules: Optional[float] = None
    smooth_evals: int = 3
    warmup_steps: int = 10
    power_source: Optional[str] = None
    sysfs_root: Path = Path("/sys")
    idle_seconds: float = 1.0
    threads: int = 1
    sparse_baselines: bool = True  # add NAME:halo beside every dense hand-designed arm

    def validate(self) -> None:
        """Raise :class:`BenchConfigError` naming the first bad setting."""
        get_task(self.task)
        if not (isinstance(self.seeds, int) and 1 <= self.seeds <= 1000):
            raise BenchConfigError("seeds", self.seeds, "an integer in 1..1000")
        if not (isinstance(self.steps, int) and self.steps >= 1):
            raise BenchConfigError("steps", self.steps, "an integer >= 1")
        if not (isinstance(self.warmup_steps, int) and self.warmup_steps >= 0):
            raise BenchConfigError("warmup_steps", self.warmup_steps, "an integer >= 0")
        if not (isinstance(self.smooth_evals, int) and self.smooth_evals >= 1):
            raise BenchConfigError("smooth_evals", self.smooth_evals, "an integer >= 1")
        grids = list(self.tune_lr.values()) if isinstance(self.tune_lr, dict) else [self.tune_lr or []]
        for lr in [x for g in grids for x in g] + list(self.lrs.values()):
            if not (isinstance(lr, (int, float)) and math.isfinite(lr) and 0 < lr < 1e3):
                raise BenchConfigError("tune_lr", lr, "learning rates in (0, 1000)")
        for g in grids:
            if len(set(g)) != len(list(g)):
                raise BenchConfigError("tune_lr", list(g), "distinct learning rates")
        if self.target_accuracy is not None and not (0 < self.target_accuracy <= 1):
            raise BenchConfigError("target_accuracy", self.target_accuracy, "a fraction in (0, 1]")
        if self.budget_joules is not None and not (self.budget_joules > 0
                                                   and math.isfinite(self.budget_joules)):
            raise BenchConfigError("budget_joules", self.budget_joules, "a positive number of joules")


@dataclass(frozen=True)
class Cell:
    """One (arm, learning rate) of the plan; ``lr`` None is the optimizer's default."""

    arm: Arm
    lr: Optional[float]
    tuned: bool


def plan_cells(arms: Sequence[Arm], cfg: CompareConfig) -> List[Cell]:
    """The (arm, lr) cells: the grid for tunable arms, one cell for the others."""
    cells: List[Cell] = []
    for arm in arms:
        fixed = cfg.lrs.get(arm.label, cfg.lrs.get(arm.optimizer))
        grid = cfg.tune_lr.get(arm.label, cfg.tune_lr.get(arm.optimizer)) \
            if isinstance(cfg.tune_lr, dict) else cfg.tune_lr
        if fixed is None and arm.hand_designed and grid:
            cells += [Cell(arm, float(lr), True) for lr in grid]
        else:
            cells.append(Cell(arm, fixed, False))
    names = {a.label for a in arms} | {a.optimizer for a in arms}
    for what, keys in (("lr", cfg.lrs), ("tune_lr", cfg.tune_lr if isinstance(cfg.tune_lr, dict)
                                          else {}), ("options", cfg.options)):
        unused = set(keys) - names
        if unused:
            raise BenchConfigError(what, sorted(unused)[0], "an optimizer of --optimizers")
    return cells


def with_sparse_baselines(arms: Sequence[Arm], enabled: bool = True) -> List[Arm]:
    """``arms`` with ``NAME:halo`` after every dense hand-designed arm when a HALO arm runs
    and the optimizer has no sparse arm yet."""
    out = list(arms)
    if not enabled or not any(a.optimizer == "halo" for a in arms):
        return out
    for arm in arms:
        has_sparse = any(a.optimizer == arm.optimizer and a.sparse for a in arms)
        if arm.hand_designed and not arm.sparse and not has_sparse:
            out.insert(out.index(arm) + 1, Arm(f"{arm.optimizer}:halo", arm.optimizer, "halo"))
    return out


def halo_weights(cfg: CompareConfig, arms: Sequence[Arm]) -> Optional[Dict[str, Any]]:
    """The HALO weights under test (the first ``halo`` arm's ``weights`` option, else the
    newest shipped): name, path and update probabilities; None when nothing uses them."""
    halo = next((a for a in arms if a.optimizer == "halo"), None)
    if halo is None and not any(a.sparsity == "halo" for a in arms):
        return None
    from models.halo.weights import default_weights_path
    from models.registry import default_sparsity

    opts = dict(cfg.options.get(halo.label, cfg.options.get("halo", {}))) if halo else {}
    weights = opts.get("weights")
    scheme = default_sparsity("halo", {"weights": weights} if weights else {})
    probs = [float(x) for x in scheme.split(":", 1)[1].split(",")]
    path = Path(weights) if weights else default_weights_path()
    return {"name": path.stem, "path": str(weights) if weights else path.name,
            "update_probabilities": probs, "sparsity": scheme}


def resolve_halo_sparsity(arms: Sequence[Arm], weights: Optional[Dict[str, Any]]) -> List[Arm]:
    """``NAME:halo`` arms with the probabilities of the HALO weights under test."""
    if weights is None:
        return list(arms)
    probs = tuple(weights["update_probabilities"])
    return [Arm(a.label, a.optimizer, probs) if a.sparsity == "halo" else a for a in arms]


def interleaved_order(cells: Sequence[Cell], seeds: Sequence[int]) -> List[Tuple[int, Cell]]:
    """Seed-major order: for each seed every cell, rotated by one place per seed."""
    order: List[Tuple[int, Cell]] = []
    n = len(cells)
    for i, seed in enumerate(seeds):
        r = i % n
        order += [(seed, c) for c in list(cells[r:]) + list(cells[:r])]
    return order


def _adapt_config(cfg: CompareConfig, cell: Cell, seed: int, n_layers: int, **kw) -> AdaptConfig:
    if cell.arm.optimizer == HYPERGRAD:  # tuned per seed by hypergradients, then adapted
        return tune_config(cfg, cell.arm.sparsity_spec(n_layers), seed, **kw)
    base = dict(task=cfg.task, data_dir=Path(cfg.data_dir), model=cfg.model,
                optimizer=cell.arm.optimizer, lr=cell.lr, steps=cfg.steps,
                eval_every=cfg.eval_every, seed=seed, sparsity=cell.arm.sparsity_spec(n_layers),
                power_source=cfg.power_source, sysfs_root=cfg.sysfs_root,
                idle_seconds=cfg.idle_seconds, threads=cfg.threads,
                hyperparameters=dict(cfg.options.get(cell.arm.label, {})))
    base.update(kw)
    return AdaptConfig(**base)


def machine_info() -> Dict[str, Any]:
    """Where the benchmark ran (labels only)."""
    import os

    import numpy as np

    return {"platform": platform.platform(), "machine": platform.machine(),
            "processor": platform.processor(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


def run_compare(cfg: CompareConfig, *, progress: bool = False,
                log: Optional[Callable[[str], None]] = None,
                command: Optional[str] = None) -> Dict[str, Any]:
    """Run the comparison and return its report (see :func:`bench.report.build_report`)."""
    cfg.validate()
    arms = with_sparse_baselines(parse_arms(cfg.optimizers), cfg.sparse_baselines)
    weights = halo_weights(cfg, arms)
    arms = resolve_halo_sparsity(arms, weights)
    cells = plan_cells(arms, cfg)
    spec = get_task(cfg.task)
    arch = cfg.model or spec.default_model
    if is_onnx_path(arch):  # an imported model: its own trainable layers
        n_layers = load_onnx_model(arch, num_classes=spec.num_classes, input_shape=spec.input_shape).n_layers
    else:
        n_layers = build_network(arch, spec.input_shape, spec.num_classes, seed=None).n_layers
    seeds = list(range(cfg.first_seed, cfg.first_seed + cfg.seeds))
    order = interleaved_order(cells, seeds)
    for seed, cell in order:  # every setting checked before anything runs
        _adapt_config(cfg, cell, seed, n_layers).validate()

    record = run_record(cfg.sysfs_root, cfg.threads)  # board state before the first run
    meter, skipped = detect(spec=cfg.power_source, sysfs_root=cfg.sysfs_root)
    results: Dict[Cell, List[Dict[str, Any]]] = {c: [] for c in cells}
    t0 = time.monotonic()
    with meter, Sampler(meter) as sampler:
        whole = sampler.open_window()
        warm = _warm_up(cfg, arms, cells, seeds[0], n_layers, sampler, log)
        bar = ProgressBar(total=len(order) * cfg.steps, enabled=progress, label="bench ")
        for i, (seed, cell) in enumerate(order):
            base = i * cfg.steps
            note = f"run {i + 1}/{len(order)} {cell.arm.label}" + (
                f" lr {cell.lr:g}" if cell.lr is not None else "") + f" seed {seed}"

            def on_point(pt, base=base, note=note):
                bar.update(base + pt.step, f"{note} acc {pt.accuracy:.3f}")

            acfg = _adapt_config(cfg, cell, seed, n_layers)
            results[cell].append(run_config(acfg, sampler=sampler, on_point=on_point, log=log))
        bar.close()
        total = whole.close()
        stats = sampler.stats()
    meta = {
        "energy_source": meter.source, "estimated": bool(meter.estimated),
        "energy_profile": meter.profile, "energy_attribution": meter.attribution,
        "energy_covers": meter.covers, "halo_weights": weights,
        "power_skipped": [{"source": s, "reason": r} for s, r in skipped],
        "sampler": {"samples": stats.samples, "errors": stats.errors, "gaps": stats.gaps,
                    "period_s": stats.period_s, "overhead": round(stats.overhead, 6)},
        "warmup": warm, "wall_seconds": round(time.monotonic() - t0, 3),
        "benchmark_joules": round(total.energy_j, 6),
        "order": [{"seed": s, "optimizer": c.arm.label, "lr": c.lr} for s, c in order],
        "machine": machine_info(), "run_record": record, "command": command,
        "peak_rss_mb": peak_rss_mb(),  # the whole benchmark process (arms interleave in it)
    }
    return build_report(cfg, arch, arms, cells, results, seeds, meta)


def _warm_up(cfg, arms, cells, seed, n_layers, sampler, log) -> Dict[str, Any]:
    """One short unreported run per arm; returns its steps, seconds and joules."""
    if cfg.warmup_steps == 0:
        return {"steps_per_arm": 0, "seconds": 0.0, "joules": 0.0}
    w = sampler.open_window()
    t0 = time.monotonic()
    for arm in arms:
        cell = next(c for c in cells if c.arm == arm)
        acfg = _adapt_config(cfg, cell, seed, n_layers, steps=cfg.warmup_steps,
                             eval_every=cfg.warmup_steps, idle_seconds=0.0)
        run_config(acfg, sampler=sampler, log=log)
    return {"steps_per_arm": cfg.warmup_steps, "seconds": round(time.monotonic() - t0, 3),
            "joules": round(w.close().energy_j, 6)}
