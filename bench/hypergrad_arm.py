"""The ``hypergrad`` arm of ``bench compare``: per seed, tune a momentum schedule by
hypergradients (``agent.tune``) on a validation set split off the target training data,
then adapt with it; its tuning joules are those meta-steps' (every seed summed).

Options (``bench compare --hypergrad KEY=VALUE``, repeatable) are fields of
:class:`agent.tune.TuneConfig`: ``meta_steps``, ``blocks``, ``lr``, ``momentum``,
``meta_lr``, ``validation_fraction``, ``max_validation``.  A warm-up run uses one
meta-step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from agent.engine import AdaptConfig, run_adaptation
from agent.tune import TuneConfig, run_tune
from bench.arms import BenchConfigError

HYPERGRAD = "hypergrad"
OPTION_TYPES = {"meta_steps": int, "blocks": int, "lr": float, "momentum": float,
                "meta_lr": float, "validation_fraction": float, "max_validation": int}


def parse_options(items: Optional[List[str]]) -> Dict[str, Any]:
    """``["meta_steps=8", "lr=1e-2"]`` -> ``{"meta_steps": 8, "lr": 0.01}``; a clear error
    naming ``--hypergrad`` and the item otherwise."""
    out: Dict[str, Any] = {}
    for item in items or []:
        key, sep, value = (s.strip() for s in item.partition("="))
        key = key.replace("-", "_")
        if not sep or key not in OPTION_TYPES:
            raise BenchConfigError("hypergrad", item,
                                   f"KEY=VALUE with KEY one of {', '.join(OPTION_TYPES)}")
        try:
            out[key] = OPTION_TYPES[key](value)
        except ValueError:
            raise BenchConfigError("hypergrad", item,
                                   f"{key}={OPTION_TYPES[key].__name__}") from None
    return out


def tune_config(cfg: Any, sparsity: Optional[str], seed: int, **kw: Any) -> TuneConfig:
    """The :class:`TuneConfig` of a hypergrad cell (``kw``: the engine settings the
    comparison overrides, e.g. a warm-up's ``steps``)."""
    opts = dict(cfg.options.get(HYPERGRAD, {}))
    base = dict(task=cfg.task, data_dir=Path(cfg.data_dir), model=cfg.model, steps=cfg.steps,
                eval_every=cfg.eval_every, seed=seed, sparsity=sparsity,
                power_source=cfg.power_source, sysfs_root=cfg.sysfs_root,
                idle_seconds=cfg.idle_seconds, threads=cfg.threads)
    base.update(kw)
    if base["steps"] != cfg.steps:  # a warm-up: one meta-step is enough
        opts["meta_steps"] = 1
    base.update(opts)
    return TuneConfig(**base)


def run_config(acfg: Any, **kw: Any) -> Dict[str, Any]:
    """Run an engine config or a tuning config with the engine's calling convention."""
    if isinstance(acfg, AdaptConfig):
        return run_adaptation(acfg, **kw)
    return run_tune(acfg, **kw)


def tuning_joules(runs: List[Dict[str, Any]]) -> float:
    """Joules of every seed's meta-steps."""
    return float(sum(r["tuning"]["joules"] for r in runs))
