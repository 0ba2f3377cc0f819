"""Hypergradients of a validation loss through T steps of SGD with momentum (Maclaurin et al. 2015).

The schedule (:class:`Schedule`): a learning rate per trainable layer and per time
block (log-parameterised), a momentum decay per time block, and a scale of the
initial weights.  :func:`hypergradient` runs the T steps forward in exactly
reversible fixed point (:mod:`kernels.reversible`), then runs them backwards
(the paper's Algorithm 2): the weights of every step are recovered from the final
ones, the step's gradient is recomputed, and a Hessian-vector product
(:func:`models.hypergrad.hvp.loss_grad_hvp`) carries the adjoint of the weights one
step back.  Structural sparsity: a layer not in a step's mask is neither decayed nor
moved in that step, forward and backward.  In the project's momentum convention::

    v_t = gamma_b v_{t-1} + g_t(w_{t-1})      w_t = w_{t-1} - lr_{l,b} v_t
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from kernels.reversible import ReversibleMomentum, rational_decay
from models.hypergrad.hvp import check_hvp_support, loss_grad_hvp
from models.nets import Network

Batch = Tuple[np.ndarray, np.ndarray]


@dataclass
class Schedule:
    """Hyperparameters of T steps: ``log_lr`` (L layers, B blocks), ``decay`` (B,) in (0, 1),
    ``init_scale`` (the initial weights are ``init_scale * w_init``)."""

    log_lr: np.ndarray
    decay: np.ndarray
    init_scale: float = 1.0

    @classmethod
    def constant(cls, n_layers: int, blocks: int, lr: float, decay: float) -> Schedule:
        """The same learning rate and decay everywhere."""
        return cls(np.full((n_layers, blocks), np.log(lr)), np.full(blocks, float(decay)))

    @property
    def blocks(self) -> int:
        return int(self.log_lr.shape[1])

    def block(self, t: int, steps: int) -> int:
        """The block of step ``t`` (0-based) of ``steps``: equal parts of the run."""
        return min(self.blocks - 1, t * self.blocks // max(1, steps))

    def decay_ratio(self, b: int) -> Tuple[int, int]:
        """Block ``b``'s decay as the exact ratio ``(n, d)`` the reversible step uses."""
        return rational_decay(self.decay[b])

    def effective_decay(self, b: int) -> float:
        n, d = self.decay_ratio(b)
        return n / d

    def to_json(self, layer_names: Sequence[str], steps: int) -> Dict[str, object]:
        """The schedule as JSON-able data (learning rates, not their logs)."""
        return {"steps": int(steps), "blocks": self.blocks, "layers": list(layer_names),
                "lr": np.exp(self.log_lr).tolist(),
                "momentum": [self.effective_decay(b) for b in range(self.blocks)],
                "init_scale": float(self.init_scale)}


@dataclass
class HyperGradient:
    """``d f / d`` each hyperparameter, the validation loss ``f`` and what the unroll cost."""

    val_loss: float
    d_log_lr: np.ndarray     # (L, B)
    d_decay: np.ndarray      # (B,)
    d_init_scale: float
    train_losses: List[float]
    buffer_bits: int         # size of the information buffer after the forward pass
    restored_exactly: bool   # the reversal reached the initial weights and velocity bit for bit


def _step_plan(net: Network, sched: Schedule, mask: np.ndarray, t: int, steps: int):
    b = sched.block(t, steps)
    layers = [j for j in range(net.n_layers) if mask[j]]
    segs = [net.layer_ranges[j] for j in layers]
    lrs = [float(np.exp(sched.log_lr[j, b])) for j in layers]
    return b, layers, segs, lrs, [sched.decay_ratio(b)] * len(layers)


def _set_weights(net: Network, w: np.ndarray) -> None:
    net.params.data[...] = w  # cast to the network's dtype, deterministically


def _grad(net: Network, batch: Batch, mask: np.ndarray) -> Tuple[float, np.ndarray]:
    loss = net.loss_and_grad(batch[0], batch[1], mask)
    return loss, net.params.grad.astype(np.float64)


def validation_loss_grad(net: Network, x: np.ndarray, y: np.ndarray,
                         batch_size: int = 256) -> Tuple[float, np.ndarray]:
    """Mean softmax-CE over (x, y) and its gradient (float64, every layer), in batches."""
    n = x.shape[0]
    total, grad = 0.0, np.zeros(net.params.size)
    for s in range(0, n, batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        w = xb.shape[0] / n
        total += w * net.loss_and_grad(xb, yb)
        grad += w * net.params.grad
    return total, grad


def check_unroll(net: Network, sched: Schedule, batches: Sequence[Batch], masks: np.ndarray) -> None:
    """Raise ``ValueError`` naming the field when the unroll's pieces do not fit together."""
    check_hvp_support(net)
    if sched.log_lr.shape[0] != net.n_layers:
        raise ValueError(f"log_lr has {sched.log_lr.shape[0]} rows, model {net.arch} has "
                         f"{net.n_layers} trainable layers")
    if sched.decay.shape != (sched.blocks,):
        raise ValueError(f"decay has shape {sched.decay.shape}, expected ({sched.blocks},)")
    if masks.shape != (len(batches), net.n_layers):
        raise ValueError(f"masks have shape {masks.shape}, expected ({len(batches)}, {net.n_layers})")


def hypergradient(net: Network, w_init: np.ndarray, sched: Schedule, batches: Sequence[Batch],
                  masks: np.ndarray, val: Batch,
                  on_step: Optional[Callable[[str, int], None]] = None) -> HyperGradient:
    """Gradient of the validation loss after ``len(batches)`` steps w.r.t. the schedule.

    ``w_init``: (n_params,) initial weights (scaled by ``sched.init_scale``);
    ``batches[t]`` the batch of step t; ``masks`` bool (T, L) the layers each step
    updates; ``val``: the validation (x, y).  The network's parameters are left at
    the final weights.  ``on_step(phase, t)`` reports progress ("forward"/"reverse").
    """
    check_unroll(net, sched, batches, masks)
    steps = len(batches)
    w_init = np.asarray(w_init, dtype=np.float64)
    rm = ReversibleMomentum(sched.init_scale * w_init)
    w_start, v_start = rm.w.copy(), rm.v.copy()
    losses = []
    for t in range(steps):
        if not masks[t].any():
            continue
        _, _, segs, lrs, decays = _step_plan(net, sched, masks[t], t, steps)
        _set_weights(net, rm.weights)
        loss, g = _grad(net, batches[t], masks[t])
        losses.append(loss)
        rm.forward(g, segs, lrs, decays)
        if on_step is not None:
            on_step("forward", t)
    bits = rm.buffer_bits()
    w_final = rm.weights
    _set_weights(net, w_final)
    f, dw = validation_loss_grad(net, *val)
    dv = np.zeros_like(dw)
    d_log_lr = np.zeros_like(sched.log_lr)
    d_decay = np.zeros(sched.blocks)
    for t in range(steps - 1, -1, -1):
        if not masks[t].any():
            continue
        b, layers, segs, lrs, decays = _step_plan(net, sched, masks[t], t, steps)
        v_t = rm.velocity
        for j, (lo, hi), lr in zip(layers, segs, lrs):
            d_log_lr[j, b] -= lr * float(dw[lo:hi] @ v_t[lo:hi])
        rm.undo_position(segs, lrs)
        _set_weights(net, rm.weights)
        _, g = _grad(net, batches[t], masks[t])
        rm.undo_velocity(g, segs, decays)
        v_prev = rm.velocity
        direction = np.zeros_like(dw)
        for (lo, hi), lr in zip(segs, lrs):
            dv[lo:hi] -= lr * dw[lo:hi]
            d_decay[b] += float(dv[lo:hi] @ v_prev[lo:hi])
            direction[lo:hi] = dv[lo:hi]
        _, _, hr = loss_grad_hvp(net, batches[t][0], batches[t][1], direction)
        dw += hr
        gamma = sched.effective_decay(b)
        for lo, hi in segs:
            dv[lo:hi] *= gamma
        if on_step is not None:
            on_step("reverse", t)
    exact = bool(np.array_equal(rm.w, w_start) and np.array_equal(rm.v, v_start))
    _set_weights(net, w_final)
    return HyperGradient(float(f), d_log_lr, d_decay, float(dw @ w_init), losses, bits, exact)


def unroll_loss(net: Network, w_init: np.ndarray, sched: Schedule, batches: Sequence[Batch],
                masks: np.ndarray, val: Batch) -> float:
    """The validation loss after the same T steps in plain floating point (no fixed point).

    The function :func:`hypergradient` differentiates, for checks by finite differences
    (decays are taken as the same exact ratios).  Leaves the network at the final weights.
    """
    check_unroll(net, sched, batches, masks)
    steps = len(batches)
    w = sched.init_scale * np.asarray(w_init, dtype=np.float64)
    v = np.zeros_like(w)
    for t in range(steps):
        if not masks[t].any():
            continue
        b, _, segs, lrs, _ = _step_plan(net, sched, masks[t], t, steps)
        _set_weights(net, w)
        _, g = _grad(net, batches[t], masks[t])
        gamma = sched.effective_decay(b)
        for (lo, hi), lr in zip(segs, lrs):
            v[lo:hi] = gamma * v[lo:hi] + g[lo:hi]
            w[lo:hi] -= lr * v[lo:hi]
    _set_weights(net, w)
    return validation_loss_grad(net, *val)[0]
