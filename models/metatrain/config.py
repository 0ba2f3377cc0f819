"""The meta-training config file (JSON), its defaults and its checks.

Every setting of a run is in the file, so a run reproduces from the file and its
``seed``; ``docs/metatrain.md`` documents each key.  Unknown keys are refused (a
typo must not silently fall back to a default).  Errors name the key and the value.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, Dict, Union

from kernels.errors import ConfigError
from models.metatrain.es import SHAPINGS
from models.metatrain.space import P_MIN, coordinate_names

DEFAULTS: Dict[str, Any] = {
    "name": "halo-v1",
    "seed": 0,
    "start": "halo-v0",                 # a shipped version name or a weights path
    "start_probabilities": [0.1, 0.3, 0.5],
    "meta_task": {"task": "mnist-a", "model": "cnn-a", "horizon": 300, "batch_size": 64,
                  "probe_size": 256, "probe_every": 25},
    "objective": {"lambda_jac": 1e-3, "energy_weight": 0.05, "loss_clip": 2.0,
                  "weight_noise": 0.0, "final_weight": 0.0, "error_weight": 0.0},
    "cost_table": "measure",            # or {mask: relative cost} for every mask
    "distribution": None,               # a task-distribution spec: meta-train on its pool
    # spec: null (hold out `tasks` tasks of the pool) or an overlay on `distribution`
    # (e.g. {"seed": 1}) drawing a second, unseen pool for meta-validation
    "meta_validation": {"tasks": 4, "seeds_per_task": 2, "probes": 8, "spec": None},
    "meta_parameters": {},              # name -> {"sigma": s, "lr": r} (lr optional)
    "es": {"iterations": 40, "pairs": 16, "lr": 0.05, "beta1": 0.9, "beta2": 0.999,
           "clip": 3.0, "workers": 2, "data_seeds": 1000000, "shaping": "difference"},
    "average_last": 3,                  # the shipped point: mean of the last k iterates
    "evaluation": {"tasks": [], "seeds": 8, "first_seed": 0, "baselines": ["adam"],
                   "lr_grid": [1e-2, 1e-3], "tune_seeds": 2, "tune_first_seed": 100,
                   "finalists": 2, "eval_every": 25, "smooth_evals": 3},
}

_SECTIONS = ("meta_task", "objective", "es", "evaluation", "meta_validation")


def _merge(base: Dict[str, Any], given: Dict[str, Any], where: str) -> Dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in given.items():
        if k.startswith("_"):       # "_comment" keys are documentation
            continue
        if k not in base:
            raise ConfigError(f"{where}{k}", v, f"one of {', '.join(sorted(base))}")
        if k in _SECTIONS and where == "":
            if not isinstance(v, dict):
                raise ConfigError(k, v, "an object")
            out[k] = _merge(base[k], v, f"{k}.")
        else:
            out[k] = v
    return out


def _positive_int(cfg, section, key, lo=1):
    v = cfg[section][key] if section else cfg[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ConfigError(f"{section + '.' if section else ''}{key}", v, f"an integer >= {lo}")


def _number(cfg, section, key, lo=0.0, strict=False):
    v = cfg[section][key]
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (
        v > lo if strict else v >= lo)
    if not ok:
        raise ConfigError(f"{section}.{key}", v, f"a number {'>' if strict else '>='} {lo}")


def validation_spec(dist: Dict[str, Any], overlay: Dict[str, Any]) -> Dict[str, Any]:
    """``dist`` with ``overlay`` laid over it section by section (the meta-validation pool's
    spec when ``meta_validation.spec`` is set)."""
    out = copy.deepcopy(dist)
    for k, v in overlay.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = {**out[k], **copy.deepcopy(v)}
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_config(source: Union[str, Path, Dict[str, Any]]) -> Dict[str, Any]:
    """The full config from a JSON file (or a dict), defaults filled in, checked."""
    if isinstance(source, dict):
        given = source
    else:
        path = Path(source)
        try:
            given = json.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError("config", str(path), "an existing JSON file") from None
        except (OSError, ValueError) as e:
            raise ConfigError("config", str(path), f"a readable JSON file ({e})") from None
        if not isinstance(given, dict):
            raise ConfigError("config", str(path), "a JSON object")
    cfg = _merge(DEFAULTS, given, "")
    _positive_int(cfg, "", "seed", lo=0)
    _positive_int(cfg, "", "average_last")
    for key in ("horizon", "batch_size", "probe_size", "probe_every"):
        _positive_int(cfg, "meta_task", key)
    for key in ("lambda_jac", "energy_weight", "weight_noise", "final_weight", "error_weight"):
        _number(cfg, "objective", key)
    _number(cfg, "objective", "loss_clip", strict=True)
    for key in ("iterations", "pairs", "workers", "data_seeds"):
        _positive_int(cfg, "es", key)
    for key in ("lr", "clip"):
        _number(cfg, "es", key, strict=True)
    for key in ("beta1", "beta2"):
        _number(cfg, "es", key)
    if cfg["es"]["shaping"] not in SHAPINGS:
        raise ConfigError("es.shaping", cfg["es"]["shaping"], f"one of {', '.join(SHAPINGS)}")
    for key in ("seeds", "tune_seeds", "finalists", "eval_every", "smooth_evals"):
        _positive_int(cfg, "evaluation", key)
    probs = cfg["start_probabilities"]
    if not (isinstance(probs, list) and len(probs) == 3
            and all(isinstance(p, (int, float)) and P_MIN <= p <= 1 for p in probs)):
        raise ConfigError("start_probabilities", probs, f"3 probabilities in [{P_MIN}, 1]")
    mp = cfg["meta_parameters"]
    if not isinstance(mp, dict) or not mp:
        raise ConfigError("meta_parameters", mp, "an object {name: {\"sigma\": s}} with >= 1 entry")
    for name, spec in mp.items():
        if name not in coordinate_names():
            raise ConfigError("meta_parameters", name, f"names from {', '.join(coordinate_names())}")
        if not (isinstance(spec, dict) and set(spec) <= {"sigma", "lr"} and "sigma" in spec
                and all(isinstance(spec[k], (int, float)) and spec[k] > 0 for k in spec)):
            raise ConfigError(f"meta_parameters.{name}", spec,
                              "{\"sigma\": s > 0} with an optional \"lr\": r > 0")
    ct = cfg["cost_table"]
    if not (ct == "measure" or isinstance(ct, dict)):
        raise ConfigError("cost_table", ct, "\"measure\" or {mask: cost}")
    for key in ("tasks", "seeds_per_task", "probes"):
        _positive_int(cfg, "meta_validation", key)
    dist = cfg["distribution"]
    if dist is not None:
        from models.metatrain.distribution import resolve_spec

        if not isinstance(dist, dict):
            raise ConfigError("distribution", dist, "null or a task-distribution spec object")
        try:
            resolve_spec(dist)
        except ValueError as e:
            raise ConfigError("distribution", dist, f"a valid spec ({e})") from None
        if cfg["objective"]["energy_weight"] != 0 or cfg["objective"]["lambda_jac"] != 0:
            raise ConfigError("objective", cfg["objective"],
                              "energy_weight 0 and lambda_jac 0 with a distribution (its tasks "
                              "have different architectures: no one cost table; the held-out "
                              "loss replaces the Jacobian regulariser)")
        overlay = cfg["meta_validation"]["spec"]
        if overlay is not None:
            if not isinstance(overlay, dict):
                raise ConfigError("meta_validation.spec", overlay,
                                  "null or an object overlaid on distribution (e.g. {\"seed\": 1})")
            try:
                resolved = resolve_spec(validation_spec(dist, overlay))
            except ValueError as e:
                raise ConfigError("meta_validation.spec", overlay, f"a valid overlay ({e})") from None
            if resolved == resolve_spec(dist):
                raise ConfigError("meta_validation.spec", overlay,
                                  "an overlay that changes the pool (a different seed), or null")
        if any(n.startswith("p.") for n in mp):
            raise ConfigError("meta_parameters", [n for n in mp if n.startswith("p.")],
                              "no update-probability coordinates with a distribution (no energy "
                              "price to hold them back)")
    else:
        if cfg["objective"]["error_weight"] != 0:
            raise ConfigError("objective.error_weight", cfg["objective"]["error_weight"],
                              "0 without a distribution (the single-task meta-loss has no error term)")
        if cfg["meta_validation"]["spec"] is not None:
            raise ConfigError("meta_validation.spec", cfg["meta_validation"]["spec"],
                              "null without a distribution")
    ev = cfg["evaluation"]
    for i, t in enumerate(ev["tasks"]):
        if not (isinstance(t, dict) and "task" in t and set(t) <= {"task", "model", "steps"}):
            raise ConfigError(f"evaluation.tasks[{i}]", t,
                              "{\"task\": name, \"model\": arch (optional), \"steps\": n (optional)}")
    grid = ev["lr_grid"]
    if not (isinstance(grid, list) and grid and all(
            isinstance(x, (int, float)) and 0 < x < 10 for x in grid)):
        raise ConfigError("evaluation.lr_grid", grid, "a list of learning rates in (0, 10)")
    return cfg
