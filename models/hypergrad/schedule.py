"""A tuned momentum schedule as a file and as an optimizer the engine runs (``momentum-schedule``).

The schedule of :mod:`models.hypergrad.unroll` saved as JSON::

    {"format": "halo-agent/momentum-schedule", "version": 1, "task": ..., "model": ...,
     "steps": T, "blocks": B, "layers": [names], "lr": [[lr per block] per layer],
     "momentum": [decay per block], "init_scale": 1.0, ...}

The optimizer runs ``v <- momentum_b v + g``, ``p <- p - lr_{layer,b} v`` (the
project's momentum convention), block ``b = floor(step * B / T)``; steps past T keep
the last block's values.  It is registered as a learned optimizer (it is never
tuned over a grid); its options: ``schedule`` (a dict or a file path) or ``weights``
(a file path, as ``halo-agent adapt --optimizer-weights`` gives it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional

import numpy as np

from kernels.optim_base import Optimizer, StepInfo
from kernels.optim_common import f32, zeros
from models.nets import ModelError, Network

NAME = "momentum-schedule"
FORMAT = "halo-agent/momentum-schedule"


class ScheduleError(ModelError):
    """A schedule file or dict that cannot drive the model; names the field and value."""


def load_schedule(source: Any) -> Dict[str, Any]:
    """A schedule dict from a dict or a JSON file path; checked by :func:`check_schedule`."""
    if isinstance(source, dict):
        sched = source
    else:
        path = Path(str(source))
        try:
            sched = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise ScheduleError(f"schedule: cannot read {str(path)!r} as JSON: {e}") from None
        if not isinstance(sched, dict):
            raise ScheduleError(f"schedule {str(path)!r}: expected a JSON object")
    check_schedule(sched)
    return sched


def check_schedule(sched: Dict[str, Any], n_layers: Optional[int] = None) -> None:
    """Raise :class:`ScheduleError` naming the first bad field."""
    steps = sched.get("steps")
    if not (isinstance(steps, int) and steps >= 1):
        raise ScheduleError(f"schedule field 'steps': got {steps!r}; expected an integer >= 1")
    lr = np.asarray(sched.get("lr"), dtype=float) if isinstance(sched.get("lr"), list) else None
    if lr is None or lr.ndim != 2 or lr.size == 0 or not np.all(np.isfinite(lr)) or (lr <= 0).any():
        raise ScheduleError(f"schedule field 'lr': got {str(sched.get('lr'))[:80]}; expected a "
                            "list per layer of positive learning rates per block")
    if n_layers is not None and lr.shape[0] != n_layers:
        raise ScheduleError(f"schedule field 'lr': {lr.shape[0]} layers; the model has {n_layers}")
    mom = sched.get("momentum")
    if not (isinstance(mom, list) and len(mom) == lr.shape[1]
            and all(isinstance(m, (int, float)) and 0 < m < 1 for m in mom)):
        raise ScheduleError(f"schedule field 'momentum': got {str(mom)[:80]}; expected "
                            f"{lr.shape[1]} decays in (0, 1), one per block")


class ScheduleState(NamedTuple):
    """``velocity``: float32 (n,) heavy-ball buffer."""

    velocity: np.ndarray


def scheduled_momentum(net: Network, sched: Dict[str, Any]) -> Optimizer:
    """SGD with momentum following ``sched`` per trainable layer of ``net`` and per block."""
    check_schedule(sched, net.n_layers)
    lr = np.asarray(sched["lr"], dtype=float)
    mom = [float(m) for m in sched["momentum"]]
    steps, blocks = int(sched["steps"]), lr.shape[1]
    ranges = list(net.layer_ranges)

    def init(n: int) -> ScheduleState:
        return ScheduleState(zeros(n))

    def update(params: np.ndarray, grads: np.ndarray, state: ScheduleState, info: StepInfo) -> None:
        b = min(blocks - 1, info.step * blocks // steps)
        mu = f32(mom[b])
        for j, (lo, hi) in enumerate(ranges):
            a, z = max(lo, info.lo), min(hi, info.hi)
            if a >= z:
                continue
            v = state.velocity[a - info.lo:z - info.lo]
            np.multiply(v, mu, v)
            np.add(v, grads[a - info.lo:z - info.lo], v)
            params[a - info.lo:z - info.lo] -= f32(lr[j, b]) * v

    hp = {"schedule_steps": steps, "blocks": blocks,
          "lr_range": [float(lr.min()), float(lr.max())], "momentum": mom}
    return Optimizer(NAME, hp, init, update)


def build(net: Network, lr: Optional[float], options: Dict[str, Any]) -> Optimizer:
    """The registry's builder: ``options['schedule']`` or ``options['weights']``; ``lr``
    (when given) multiplies every learning rate of the schedule."""
    source = options.get("schedule", options.get("weights"))
    if source is None:
        raise ScheduleError(f"optimizer {NAME!r} needs a schedule: tune one with "
                            "'halo-agent tune --method hypergrad' and pass its schedule.json "
                            "(--optimizer-weights FILE)")
    sched = dict(load_schedule(source))
    if lr is not None:
        if not (math.isfinite(lr) and lr > 0):
            raise ScheduleError(f"lr: got {lr!r}; expected a positive multiplier of the schedule")
        sched["lr"] = (np.asarray(sched["lr"], dtype=float) * lr).tolist()
    return scheduled_momentum(net, sched)
