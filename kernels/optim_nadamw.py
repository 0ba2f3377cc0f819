"""NAdamW: Nesterov Adam with decoupled weight decay and a warm-up + cosine schedule.

The 10-hyperparameter baseline of Metz et al. 2022 ("Practical tradeoffs between
memory, compute, and performance in learned optimizers"), Appendix F, itself from
Metz et al. 2020 (opt_list).  Equations as in F.1, with the step ``t`` replaced by
``info.progress = t / T`` and ``t + 1`` (bias correction) by ``info.count``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.optim_base import Optimizer, StepInfo
from kernels.optim_common import (
    UNUSED,
    chunked,
    decay,
    ema_moments,
    f32,
    flag,
    fraction,
    nonnegative,
    positive,
    zeros,
)

_mul = np.multiply
_add = np.add
_sub = np.subtract
_div = np.divide
_sqrt = np.sqrt


def nadamw_lr(
    lr: float,
    progress: float,
    warmup_fraction: float = 0.0,
    constant_fraction: float = 0.0,
    min_lr_mult: float = 0.0,
) -> float:
    """NAdamW's learning rate at ``progress`` (fraction of the budget used, in [0, 1]).

    Metz et al. 2022, App. F eqs. 4-9, in fractions of the budget: with ``p =
    clip(progress, 0, 1)``, ``lr_min = min_lr_mult * lr`` and ``c = constant_fraction``,

    - during warm-up (``p < warmup_fraction``): ``lr * p / warmup_fraction``, linear
      from 0 (the paper's eq. 8 omits the factor ``lr``; opt_list has it);
    - afterwards: ``lr_min + (lr - lr_min) * (1 + cos(pi * s)) / 2`` with ``s =
      max(p - c, 0) / (1 - c)``: held at ``lr`` until ``c``, then a single cosine
      half-period down to ``lr_min`` at ``p = 1`` (``c = 1``: constant ``lr``).

    The constant phase includes the warm-up, as in the paper (opt_list instead
    stretches the warm-up to ``max(warmup_fraction, constant_fraction)``).  If the
    warm-up outlasts the constant phase, the lr drops at its end to the cosine's
    value, as eq. 9 says.  Returns a float.
    """
    p = min(max(progress, 0.0), 1.0)
    if warmup_fraction > 0.0 and p < warmup_fraction:
        return lr * p / warmup_fraction
    if constant_fraction >= 1.0:
        return lr
    s = max(p - constant_fraction, 0.0) / (1.0 - constant_fraction)
    lr_min = min_lr_mult * lr
    return lr_min + (lr - lr_min) * (0.5 * math.cos(math.pi * s) + 0.5)


class NAdamWState(NamedTuple):
    """Float32 arrays: ``m`` EMA of g, ``v`` EMA of g**2, ``tmp`` scratch, all (n,);
    ``tmp2``: second scratch, (n,) with Nesterov or L2 decay, else (0,)."""

    m: np.ndarray
    v: np.ndarray
    tmp: np.ndarray
    tmp2: np.ndarray


def _nadamw_kernel(p, g, m, v, a, b, l2x2, b1, omb1, b2, omb2, eps_hat, ratio, step, keep, nest):
    # ge: the gradient of loss + l2 ||p||^2, in b when l2 is on (p before this step)
    if l2x2:
        _mul(p, l2x2, b)
        _add(b, g, b)
        ge = b
    else:
        ge = g
    ema_moments(ge, m, v, a, b1, omb1, b2, omb2)  # of ge
    if nest:  # b = ge + ratio m = (b1 m_hat + (1-b1) ge) / (1-b1)
        if ge is b:
            _mul(m, ratio, a)
            _add(b, a, b)
        else:
            _mul(m, ratio, b)
            _add(b, g, b)
    _sqrt(v, a)
    _add(a, eps_hat, a)  # a = sqrt(v) + eps sqrt(1-b2^t) = sqrt(1-b2^t) (sqrt(v_hat) + eps)
    _div(b if nest else m, a, a)
    _mul(a, step, a)  # a = lr_t u
    if keep != 1.0:
        _mul(p, keep, p)  # decoupled decay: p (1 - lr_t wd)
    _sub(p, a, p)


def nadamw(
    lr: float = 1e-3,
    beta1: float = 0.9,
    beta2: float = 0.999,
    eps: float = 1e-8,
    l2_weight_decay: float = 0.0,
    adamw_weight_decay: float = 0.0,
    use_nesterov: bool = True,
    warmup_fraction: float = 0.0,
    constant_fraction: float = 0.0,
    min_lr_mult: float = 0.0,
) -> Optimizer:
    """NAdamW (Metz et al. 2022, App. F.1): NAdam with decoupled weight decay.

    Per step, with ``a_t = nadamw_lr(lr, info.progress, warmup_fraction,
    constant_fraction, min_lr_mult)`` and ``t1 = info.count``::

        ge = g + 2 * l2_weight_decay * p             # gradient of loss + l2 ||p||^2
        m  = b1 m + (1-b1) ge;   v = b2 v + (1-b2) ge^2
        m_hat = m / (1 - b1^t1); v_hat = v / (1 - b2^t1)
        u  = (b1 m_hat + (1-b1) ge) / (sqrt(v_hat) + eps)  if use_nesterov
             m_hat / (sqrt(v_hat) + eps)                   otherwise
        p  = p - a_t u - a_t adamw_weight_decay p

    The paper fixes no defaults (F.2 is a search space).  Defaults here: lr 1e-3 and
    b1 0.9, b2 0.999, eps 1e-8 (the paper's Adam settings); Nesterov on; both weight
    decays, warm-up, constant phase and final lr at 0 (each is a setting the search
    samples: decays 0 w.p. 1/3, warm-up 0 and min-lr-mult 0 w.p. 1/2), i.e. a single
    cosine decay from ``lr`` to 0 over the budget.  With an open-ended budget
    (``progress`` stays 0) the lr stays at ``lr``, or at 0 if ``warmup_fraction`` > 0.
    State: m, v, scratch float32 (n,), second scratch (n,) with Nesterov or L2 decay.
    14 ufunc passes per step (Nesterov, no decay), 17 with both decays.
    """
    name = "nadamw"
    lr = positive(name, "lr", lr)
    beta1 = decay(name, "beta1", beta1)
    beta2 = decay(name, "beta2", beta2)
    eps = positive(name, "eps", eps)
    l2 = nonnegative(name, "l2_weight_decay", l2_weight_decay)
    wd = nonnegative(name, "adamw_weight_decay", adamw_weight_decay)
    nest = flag(name, "use_nesterov", use_nesterov)
    warm = fraction(name, "warmup_fraction", warmup_fraction)
    const = fraction(name, "constant_fraction", constant_fraction)
    lr_mult = fraction(name, "min_lr_mult", min_lr_mult)
    two_buffers = nest or l2 > 0.0
    b1, omb1, b2, omb2 = f32(beta1), f32(1.0 - beta1), f32(beta2), f32(1.0 - beta2)
    l2x2 = f32(2.0 * l2)

    def init(n: int) -> NAdamWState:
        return NAdamWState(zeros(n), zeros(n), zeros(n), zeros(n) if two_buffers else UNUSED)

    def update(params: np.ndarray, grads: np.ndarray, state: NAdamWState, info: StepInfo) -> None:
        a_t = nadamw_lr(lr, info.progress, warm, const, lr_mult)
        bc1 = 1.0 - beta1**info.count
        sbc2 = math.sqrt(1.0 - beta2**info.count)
        if nest:
            # b1 m_hat + (1-b1) ge = (1-b1) (ge + ratio m)
            ratio = beta1 / ((1.0 - beta1) * bc1)
            step = a_t * sbc2 * (1.0 - beta1)
        else:
            ratio = 0.0
            step = a_t * sbc2 / bc1
        keep = f32(1.0 - a_t * wd) if wd > 0.0 else 1.0
        if two_buffers:
            kernel = _nadamw_kernel
            arrays = (params, grads, state.m, state.v, state.tmp, state.tmp2)
        else:
            kernel = _nadamw_kernel_one_buffer
            arrays = (params, grads, state.m, state.v, state.tmp)
        eps_hat, ratio32, step32 = f32(eps * sbc2), f32(ratio), f32(step)
        chunked(kernel, arrays, l2x2, b1, omb1, b2, omb2, eps_hat, ratio32, step32, keep, nest)

    hp = {
        "lr": lr,
        "beta1": beta1,
        "beta2": beta2,
        "eps": eps,
        "l2_weight_decay": l2,
        "adamw_weight_decay": wd,
        "use_nesterov": nest,
        "warmup_fraction": warm,
        "constant_fraction": const,
        "min_lr_mult": lr_mult,
    }
    return Optimizer(name, hp, init, update)


def _nadamw_kernel_one_buffer(p, g, m, v, a, *scalars):
    # Heavy-ball update without L2 decay: the second scratch is never touched.
    _nadamw_kernel(p, g, m, v, a, None, *scalars)
