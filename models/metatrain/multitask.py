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
   + error_weight * (mean_t e_t + final_weight * e_T) + energy_weight * E[step cost](p)``
   with ``e_t`` the held-out *class-balanced error* (mean over classes of the fraction
   misclassified, 0..1); a non-finite loss counts as ``loss_clip`` (and ``e`` as 1) for
   the rest of the unroll.

The error term measures what the evaluation measures (accuracy, and on a split
balanced by oversampling, per-class accuracy): the held-out loss alone rewards
confident logits, and on an oversampled few-shot task the loss can keep falling while
accuracy on the minority classes drops.  Absolute error (not a ratio to the start)
so that every task's points weigh the same, as the evaluation's "within 1 point"
does.

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

from kernels import layers as K
from models.halo.optimizer import make_halo, net_layout
from models.metatrain.costs import expected_cost, layer_probabilities
from models.metatrain.objective import run_unroll
from models.metatrain.space import MetaSpace
from models.nets import EVAL_CHUNK
from models.train import Trainer, class_error, hold_out_validation

_POOLS: Dict[Tuple[str, str, str, int, bool], list] = {}


def _pool(spec: Mapping[str, Any], data_dir: Path, cache_dir: Path, n_validation: int,
          validation: bool, validation_spec: Optional[Mapping[str, Any]] = None) -> list:
    """The meta-training or meta-validation tasks.

    Without ``validation_spec``: ``n_validation`` tasks of ``spec``'s pool are held out
    (``split_pool``).  With it: meta-training uses all of ``spec``'s pool and
    meta-validation all of ``validation_spec``'s, a second pool drawn from the same
    distribution with another seed, so it is unseen by every candidate trained on
    ``spec``'s pool (any start weights or earlier runs included).
    """
    import json

    from models.metatrain.distribution import split_pool, task_pool

    key = (json.dumps(spec, sort_keys=True), str(data_dir), str(cache_dir), n_validation,
           validation, json.dumps(validation_spec, sort_keys=True))
    if key not in _POOLS:
        if validation_spec is not None:
            _POOLS[key] = list(task_pool(validation_spec if validation else spec,
                                         Path(data_dir), Path(cache_dir)))
        else:
            tasks = task_pool(spec, Path(data_dir), Path(cache_dir))
            train, val = split_pool(tasks, n_validation, int(spec.get("seed", 0)))
            _POOLS[key] = list(val if validation else train)
    return _POOLS[key]


def balanced_error(logits: np.ndarray, y: np.ndarray, num_classes: int) -> float:
    """Mean over the classes present in ``y`` of the fraction of their examples misclassified."""
    return class_error(logits.argmax(axis=1) != y, y, num_classes)


def held_out_probe(net, x: np.ndarray, y: np.ndarray) -> Tuple[float, float]:
    """``(class-balanced error, mean loss in nats)`` of ``net`` on ``(x, y)``, in chunks."""
    losses, wrong = [], np.empty(x.shape[0], bool)
    for s in range(0, x.shape[0], EVAL_CHUNK):
        out = net.forward(x[s:s + EVAL_CHUNK])  # a buffer the next forward overwrites
        loss, _ = K.softmax_cross_entropy(out, y[s:s + EVAL_CHUNK])
        losses.append(loss * out.shape[0])
        wrong[s:s + out.shape[0]] = out.argmax(axis=1) != y[s:s + EVAL_CHUNK]
    return class_error(wrong, y, net.num_classes), float(sum(losses)) / max(1, x.shape[0])


@dataclass(frozen=True)
class TaskUnroll:
    """The distribution meta-objective's settings (see the module docstring).

    ``validation_tasks``: evaluate on the held-out tasks of the pool (meta-validation)
    instead of the meta-training ones.  ``validation_spec``: meta-validation draws its
    own pool from this spec (see :func:`_pool`); ``error_weight``: the weight of the
    held-out class-balanced error in the meta-loss.
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
    error_weight: float = 0.0
    validation_spec: Optional[Mapping[str, Any]] = None

    def tasks(self) -> list:
        return _pool(self.spec, self.data_dir, self.cache_dir, self.n_validation_tasks,
                     self.validation_tasks, self.validation_spec)

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
        e0, l0 = held_out_probe(net, task.x_val, task.y_val)
        every = max(1, task.horizon // max(1, self.probes))
        checkpoints = sorted(set(range(every, task.horizon + 1, every)) | {task.horizon})
        values, diverged = run_unroll(trainer, xt, yt, task.horizon, task.batch_size, seed,
                                      checkpoints, lambda: held_out_probe(net, task.x_val, task.y_val))
        missing = len(checkpoints) - len(values)
        losses = [min(lv / l0, self.loss_clip) for _, lv in values] + [self.loss_clip] * missing
        errors = [e for e, _ in values] + [1.0] * missing
        cost = expected_cost(probs, self.cost_table) if self.cost_table else 1.0
        meta = (float(np.mean(losses)) + self.final_weight * losses[-1]
                + self.error_weight * (float(np.mean(errors)) + self.final_weight * errors[-1])
                + self.energy_weight * cost)
        return {"meta_loss": meta, "loss": float(np.mean(losses)), "final_loss": losses[-1],
                "start_error": e0, "final_error": errors[-1], "cost": cost,
                "diverged": float(diverged), "task": task.name}


def evaluate_tasks(objective: TaskUnroll, x: np.ndarray, seeds_per_task: int = 1,
                   pool: Optional[Any] = None) -> Dict[str, Any]:
    """Mean meta-loss at ``x`` over every task of the objective's pool, ``seeds_per_task``
    seeds each (meta-validation when ``objective.validation_tasks``)."""
    n = len(objective.tasks())
    seeds = [t + n * k for k in range(seeds_per_task) for t in range(n)]
    rows = list(pool.map(objective.details, [x] * len(seeds), seeds)) if pool is not None else [
        objective.details(x, s) for s in seeds]
    per_task: Dict[str, List[float]] = {}
    per_task_error: Dict[str, List[float]] = {}
    for r in rows:
        per_task.setdefault(r["task"], []).append(r["meta_loss"])
        per_task_error.setdefault(r["task"], []).append(r["final_error"])
    return {"meta_loss": float(np.mean([r["meta_loss"] for r in rows])),
            "final_loss": float(np.mean([r["final_loss"] for r in rows])),
            "final_error": float(np.mean([r["final_error"] for r in rows])),
            "per_task": {k: float(np.mean(v)) for k, v in per_task.items()},
            "per_task_final_error": {k: float(np.mean(v)) for k, v in per_task_error.items()}}
