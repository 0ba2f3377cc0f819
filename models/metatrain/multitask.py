"""The meta-objective over a task distribution: one seeded unroll on one task of a pool.

``f(x, seed)`` (lower is better), with ``w = space.weights(x)`` and the task
``tasks[seed % len(tasks)]`` of a pool from ``models.metatrain.distribution``:

1. start from the task's source-pretrained network; train ``task.horizon`` steps on
   ``task.x_train`` with HALO ``w`` (its update probabilities per third; a validation
   level, when ``w`` has one, holds out its probe from ``x_train`` exactly as
   ``halo-agent adapt`` does), batch order and masks seeded by ``seed``;
2. every ``probe_every``-th of the horizon (``probes`` points) take the loss on the
   task's **held-out** examples ``x_val`` (never trained on, never seen by the
   optimizer);
3. ``f = mean_t min(L_t / L_0, loss_clip) + final_weight * min(L_T / L_0, loss_clip)
   + energy_weight * E[step cost](p)``; a non-finite loss counts as ``loss_clip`` for
   the rest of the unroll.

Unlike the single-task objective (``objective.Unroll``, HALO's training-loss
meta-loss on MNIST B->A), the loss here is held-out: an optimizer that overfits a
few-shot or oversampled task scores worse, which is the behaviour the evaluation
tasks (thyroid above all) punish.  Pairs of an antithetic ES step share ``seed``,
so both members see the same task, batches and masks.

The object is picklable; each worker process builds the pool once from the on-disk
cache of pretrained sources (``task_pool`` pretrains only what is missing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from models.halo.optimizer import make_halo, net_layout
from models.metatrain.costs import expected_cost, layer_probabilities
from models.metatrain.objective import run_unroll
from models.metatrain.space import MetaSpace
from models.train import Trainer, hold_out_validation

_POOLS: Dict[Tuple[str, str, str, int, bool], list] = {}


def _pool(spec: Mapping[str, Any], data_dir: Path, cache_dir: Path, n_validation: int,
          validation: bool) -> list:
    import json

    from models.metatrain.distribution import split_pool, task_pool

    key = (json.dumps(spec, sort_keys=True), str(data_dir), str(cache_dir), n_validation,
           validation)
    if key not in _POOLS:
        tasks = task_pool(spec, Path(data_dir), Path(cache_dir))
        train, val = split_pool(tasks, n_validation, int(spec.get("seed", 0)))
        _POOLS[key] = list(val if validation else train)
    return _POOLS[key]


@dataclass(frozen=True)
class TaskUnroll:
    """The distribution meta-objective's settings (see the module docstring).

    ``validation_tasks``: evaluate on the held-out tasks of the pool (meta-validation)
    instead of the meta-training ones.
    """

    space: MetaSpace
    spec: Mapping[str, Any]
    data_dir: Path
    cache_dir: Path
    cost_table: Mapping[str, float] = field(default_factory=dict)
    n_validation_tasks: int = 4
    validation_tasks: bool = False
    probes: int = 8
    energy_weight: float = 0.0
    final_weight: float = 1.0
    loss_clip: float = 2.0

    def tasks(self) -> list:
        return _pool(self.spec, self.data_dir, self.cache_dir, self.n_validation_tasks,
                     self.validation_tasks)

    def prepare(self) -> None:
        """Build the pool in this process (forked workers inherit it)."""
        self.tasks()

    def __call__(self, x: np.ndarray, seed: int) -> float:
        return self.details(x, seed)["meta_loss"]

    def details(self, x: np.ndarray, seed: int) -> Dict[str, Any]:
        with threadpool_limits(limits=1):
            return self._run(np.asarray(x, np.float64), int(seed))

    def _run(self, x: np.ndarray, seed: int) -> Dict[str, Any]:
        tasks = self.tasks()
        task = tasks[seed % len(tasks)]
        net = task.network()
        w = self.space.weights(x)
        probs = layer_probabilities(w.update_probabilities, net.n_layers)
        opt = make_halo(weights=w, kernel="elementwise", layout=net_layout(net))
        xt, yt, probe = hold_out_validation(opt, task.x_train, task.y_train, net.num_classes, seed,
                                            task.horizon, task.batch_size)
        trainer = Trainer(net, opt, probs, seed=seed, validation=probe)
        _, l0 = net.evaluate(task.x_val, task.y_val)
        every = max(1, task.horizon // max(1, self.probes))
        checkpoints = sorted(set(range(every, task.horizon + 1, every)) | {task.horizon})
        values, diverged = run_unroll(trainer, xt, yt, task.horizon, task.batch_size, seed,
                                      checkpoints, lambda: net.evaluate(task.x_val, task.y_val))
        losses = [min(lv / l0, self.loss_clip) for _, lv in values]
        losses += [self.loss_clip] * (len(checkpoints) - len(losses))
        cost = expected_cost(probs, self.cost_table) if self.cost_table else 1.0
        meta = (float(np.mean(losses)) + self.final_weight * losses[-1]
                + self.energy_weight * cost)
        return {"meta_loss": meta, "loss": float(np.mean(losses)), "final_loss": losses[-1],
                "cost": cost, "diverged": float(diverged), "task": task.name}


def evaluate_tasks(objective: TaskUnroll, x: np.ndarray, seeds_per_task: int = 1,
                   pool: Optional[Any] = None) -> Dict[str, Any]:
    """Mean meta-loss at ``x`` over every task of the objective's pool, ``seeds_per_task``
    seeds each (meta-validation when ``objective.validation_tasks``)."""
    n = len(objective.tasks())
    seeds = [t + n * k for k in range(seeds_per_task) for t in range(n)]
    rows = list(pool.map(objective.details, [x] * len(seeds), seeds)) if pool is not None else [
        objective.details(x, s) for s in seeds]
    per_task: Dict[str, List[float]] = {}
    for r in rows:
        per_task.setdefault(r["task"], []).append(r["meta_loss"])
    return {"meta_loss": float(np.mean([r["meta_loss"] for r in rows])),
            "final_loss": float(np.mean([r["final_loss"] for r in rows])),
            "per_task": {k: float(np.mean(v)) for k, v in per_task.items()}}
