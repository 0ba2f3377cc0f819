"""The meta-objective: one seeded adaptation unroll with HALO weights built from a meta-parameter vector.

``f(x, seed)`` (lower is better), with ``w = space.weights(x)``:

1. start from the pretrained source model of the meta-training task (MNIST digits
   B -> A, cnn-a); train ``horizon`` steps on the target training split with HALO
   ``w``, batch ``batch_size``, the batch order and masks seeded by ``seed``, layer
   update probabilities ``w.update_probabilities`` (per third), the controller
   seeing ``t / horizon``;
2. every ``probe_every`` steps (and at step 0) take the loss ``L_t`` and the full
   gradient ``g_t`` on a fixed probe of ``probe_size`` training images;
3. ``f = mean_t min(L_t / L_0, loss_clip)  +  lambda_jac * min(mean_t ||g_t||^2, C)
   +  energy_weight * E[step cost](p)  +  final_weight * min(L_T / L_0, loss_clip)``,
   the means over probes after step 0,
   ``C = loss_clip / lambda_jac``; a non-finite loss counts as ``loss_clip`` (the rest
   of the unroll too: training stops) and its regulariser as ``C``; ``E[step cost]``
   is from the measured per-mask table, dense = 1.

The first term is HALO's meta-loss (mean training loss over the unroll, normalised
and clipped), the second its Jacobian regulariser (lambda_1 = 1e-3, best in HALO's Appendix D), the
third prices the learned update probabilities in energy (a step's energy is its
time times the board's power).  The fourth (0 by default, as in HALO) weighs the
loss at the end of the budget once more: the mean over the unroll favours early
progress, while the evaluation's target is the accuracy at the end.

The object is picklable (worker processes); data and the source model are loaded
once per process and cached.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from models.data import load_task
from models.halo.optimizer import make_halo, net_layout
from models.metatrain.costs import expected_cost, layer_probabilities
from models.metatrain.space import MetaSpace, noisy
from models.pretrain import load_source_model
from models.train import Trainer, batch_indices

_CACHE: Dict[Tuple[str, str, str], Any] = {}


def run_unroll(trainer: Trainer, x: np.ndarray, y: np.ndarray, horizon: int, batch_size: int,
               seed: int, checkpoints: List[int], probe: Callable[[], Tuple[float, ...]]
               ) -> Tuple[List[Tuple[float, ...]], bool]:
    """Train ``horizon`` seeded steps; after each step in ``checkpoints`` take ``probe()``.

    Returns the probes' values and whether the run diverged (a non-finite batch loss
    or probe value ends it: the values taken so far are kept).
    """
    values: List[Tuple[float, ...]] = []
    it = batch_indices(x.shape[0], batch_size, seed)
    marks = set(checkpoints)
    for t in range(horizon):
        idx = next(it)
        loss = trainer.step(x[idx], y[idx], t, t / horizon)
        if loss is not None and not math.isfinite(loss):
            return values, True
        if t + 1 in marks:
            v = probe()
            if not all(math.isfinite(a) for a in v):
                return values, True
            values.append(v)
    return values, False


def _task_and_model(task: str, model: str, data_dir: Path):
    key = (task, model, str(data_dir))
    if key not in _CACHE:
        data = load_task(task, data_dir)
        net = load_source_model(data, model, data_dir)
        _CACHE[key] = (data, net, net.params.data.copy())
    return _CACHE[key]


@dataclass(frozen=True)
class Unroll:
    """The meta-objective's settings (see the module docstring)."""

    space: MetaSpace
    cost_table: Mapping[str, float]
    data_dir: Path
    task: str = "mnist-a"
    model: str = "cnn-a"
    horizon: int = 300
    batch_size: int = 64
    probe_size: int = 256
    probe_every: int = 25
    lambda_jac: float = 1e-3
    energy_weight: float = 0.05
    loss_clip: float = 2.0
    weight_noise: float = 0.0
    final_weight: float = 0.0

    def prepare(self) -> None:
        """Load the data and make the source model (pretraining it on first use) in this
        process, so worker processes forked later inherit them."""
        _task_and_model(self.task, self.model, Path(self.data_dir))

    def probe_steps(self) -> List[int]:
        """Steps after which the probe is taken (every ``probe_every``, and the last)."""
        return sorted(set(range(self.probe_every, self.horizon + 1, self.probe_every)) | {self.horizon})

    def __call__(self, x: np.ndarray, seed: int) -> float:
        return self.details(x, seed)["meta_loss"]

    def details(self, x: np.ndarray, seed: int) -> Dict[str, float]:
        """The meta-loss and its parts for ``x`` and ``seed``."""
        with threadpool_limits(limits=1):
            return self._run(np.asarray(x, np.float64), int(seed))

    def _run(self, x: np.ndarray, seed: int) -> Dict[str, float]:
        data, net, p0 = _task_and_model(self.task, self.model, Path(self.data_dir))
        net.params.data[...] = p0
        w = self.space.weights(x)
        if self.weight_noise > 0:
            w = noisy(w, self.weight_noise, np.random.default_rng([seed, 7]))
        probs = layer_probabilities(w.update_probabilities, net.n_layers)
        opt = make_halo(weights=w, kernel="elementwise", layout=net_layout(net))
        trainer = Trainer(net, opt, probs, seed=seed)
        xt, yt = data.target_train.x, data.target_train.y
        pidx = np.random.default_rng(12345).permutation(xt.shape[0])[:self.probe_size]
        xp, yp = xt[pidx], yt[pidx]
        l0 = net.loss_and_grad(xp, yp)
        probes = self.probe_steps()

        def probe():
            lp = net.loss_and_grad(xp, yp)
            return lp, float(np.dot(net.params.grad, net.params.grad))

        values, diverged = run_unroll(trainer, xt, yt, self.horizon, self.batch_size, seed,
                                      probes, probe)
        losses = [min(lp / l0, self.loss_clip) for lp, _ in values]
        jac = [g2 for _, g2 in values]
        losses += [self.loss_clip] * (len(probes) - len(losses))
        loss_term = float(np.mean(losses))
        # the regulariser is capped at the clip too, and a diverged run gets the cap: a run
        # that blows up must never score better than one that nearly does
        cap = self.loss_clip / self.lambda_jac if self.lambda_jac > 0 else math.inf
        jac_term = min(float(np.mean(jac)) if jac else 0.0, cap)
        if diverged and self.lambda_jac > 0:
            jac_term = cap
        cost = expected_cost(probs, self.cost_table)
        meta = (loss_term + self.lambda_jac * jac_term + self.energy_weight * cost
                + self.final_weight * float(losses[-1]))
        return {"meta_loss": meta, "loss": loss_term, "jacobian": jac_term, "cost": cost,
                "final_loss": float(losses[-1]), "diverged": float(diverged)}


def evaluate_center(objective: Unroll, x: np.ndarray, seeds, pool: Optional[Any] = None
                    ) -> Dict[str, float]:
    """Mean of :meth:`Unroll.details` over ``seeds`` (the meta-loss at ``x`` itself)."""
    seeds = list(seeds)
    if pool is not None:
        rows = list(pool.map(objective.details, [x] * len(seeds), seeds))
    else:
        rows = [objective.details(x, s) for s in seeds]
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}
