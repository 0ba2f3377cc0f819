"""Adam, Adagrad and RMSProp as in-place float32 ufunc chains over a flat buffer."""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels import fused
from kernels.optim_base import Optimizer, StepInfo
from kernels.optim_common import chunked, decay, ema_moments, f32, nonnegative, positive, zeros

_mul = np.multiply
_add = np.add
_sub = np.subtract
_div = np.divide
_sqrt = np.sqrt
_F32 = np.dtype(np.float32)

# ---------------------------------------------------------------------------- adam


class AdamState(NamedTuple):
    """Float32 (n,) arrays: ``m`` EMA of g, ``v`` EMA of g**2, ``tmp`` scratch."""

    m: np.ndarray
    v: np.ndarray
    tmp: np.ndarray


def _adam_kernel(p, g, m, v, tmp, b1, omb1, b2, omb2, eps_hat, step):
    ema_moments(g, m, v, tmp, b1, omb1, b2, omb2)
    _sqrt(v, tmp)
    _add(tmp, eps_hat, tmp)  # tmp = sqrt(v) + eps sqrt(1-b2^t)
    _div(m, tmp, tmp)
    _mul(tmp, step, tmp)
    _sub(p, tmp, p)  # p -= lr m_hat / (sqrt(v_hat) + eps)


def adam_scalars(lr: float, beta1: float, beta2: float, eps: float, count: int):
    """The two per-step scalars of Adam's folded bias correction.

    ``lr * m_hat / (sqrt(v_hat) + eps)`` with ``m_hat = m / (1 - beta1**count)``,
    ``v_hat = v / (1 - beta2**count)`` equals ``step * m / (sqrt(v) + eps_hat)`` with
    ``step = lr * sqrt(1 - beta2**count) / (1 - beta1**count)`` and ``eps_hat = eps *
    sqrt(1 - beta2**count)``.  Returns ``(step, eps_hat)`` as Python floats (float64).
    """
    bc1 = 1.0 - beta1**count
    sbc2 = math.sqrt(1.0 - beta2**count)
    return lr * sbc2 / bc1, eps * sbc2


def adam(
    lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8
) -> Optimizer:
    """Adam (Kingma & Ba) with bias correction from ``info.count``.

    ``m <- b1 m + (1-b1) g``; ``v <- b2 v + (1-b2) g^2``;
    ``p <- p - lr * m_hat / (sqrt(v_hat) + eps)``, ``m_hat = m / (1 - b1^count)``,
    ``v_hat = v / (1 - b2^count)`` (computed in the folded form of
    :func:`adam_scalars`, exact in real arithmetic).  Defaults lr 1e-3, b1 0.9, b2
    0.999, eps 1e-8.  State: m, v, scratch, float32 (n,).  12 ufunc passes per step.
    """
    name = "adam"
    lr = positive(name, "lr", lr)
    beta1 = decay(name, "beta1", beta1)
    beta2 = decay(name, "beta2", beta2)
    eps = positive(name, "eps", eps)
    b1, omb1, b2, omb2 = f32(beta1), f32(1.0 - beta1), f32(beta2), f32(1.0 - beta2)
    native = fused.enabled()  # one fused loop, bit-identical to the ufunc chain (None: the chain)
    consts = (float(b1), float(omb1), float(b2), float(omb2))

    def init(n: int) -> AdamState:
        return AdamState(zeros(n), zeros(n), zeros(n))

    def update(params: np.ndarray, grads: np.ndarray, state: AdamState, info: StepInfo) -> None:
        step, eps_hat = adam_scalars(lr, beta1, beta2, eps, info.count)
        if native is not None and params.dtype == grads.dtype == _F32:  # raw float32 loop
            native.adam(params, grads, state.m, state.v, *consts, float(f32(eps_hat)), float(f32(step)))
            return
        arrays = (params, grads, state.m, state.v, state.tmp)
        chunked(_adam_kernel, arrays, b1, omb1, b2, omb2, f32(eps_hat), f32(step))

    hp = {"lr": lr, "beta1": beta1, "beta2": beta2, "eps": eps}
    return Optimizer(name, hp, init, update)


# ------------------------------------------------------------------------- adagrad


class AdagradState(NamedTuple):
    """Float32 (n,) arrays: ``v`` running sum of g**2, ``tmp`` scratch."""

    v: np.ndarray
    tmp: np.ndarray


def _adagrad_kernel(p, g, v, tmp, eps, lr):
    _mul(g, g, tmp)
    _add(v, tmp, v)  # v += g^2
    _sqrt(v, tmp)
    _add(tmp, eps, tmp)
    _div(g, tmp, tmp)
    _mul(tmp, lr, tmp)
    _sub(p, tmp, p)  # p -= lr g / (sqrt(v) + eps)


def adagrad(lr: float = 0.01, eps: float = 1e-10, initial_accumulator: float = 0.0) -> Optimizer:
    """Adagrad (Duchi et al.): ``v <- v + g^2``; ``p <- p - lr * g / (sqrt(v) + eps)``.

    Defaults (PyTorch's): lr 0.01, eps 1e-10, ``v`` starts at ``initial_accumulator``
    = 0.  State: v, scratch, float32 (n,).  7 ufunc passes per step.
    """
    name = "adagrad"
    lr = positive(name, "lr", lr)
    eps = positive(name, "eps", eps)
    v0 = nonnegative(name, "initial_accumulator", initial_accumulator)
    eps32, lr32 = f32(eps), f32(lr)

    def init(n: int) -> AdagradState:
        v = zeros(n)
        v.fill(v0)
        return AdagradState(v, zeros(n))

    def update(params: np.ndarray, grads: np.ndarray, state: AdagradState, info: StepInfo) -> None:
        chunked(_adagrad_kernel, (params, grads, state.v, state.tmp), eps32, lr32)

    hp = {"lr": lr, "eps": eps, "initial_accumulator": v0}
    return Optimizer(name, hp, init, update)


# ------------------------------------------------------------------------- rmsprop


class RMSPropState(NamedTuple):
    """Float32 (n,) arrays: ``v`` EMA of g**2, ``tmp`` scratch."""

    v: np.ndarray
    tmp: np.ndarray


def _rmsprop_kernel(p, g, v, tmp, rho, omrho, eps, lr):
    _mul(v, rho, v)  # v = rho v
    _mul(g, g, tmp)
    _mul(tmp, omrho, tmp)
    _add(v, tmp, v)  # v += (1-rho) g^2
    _sqrt(v, tmp)
    _add(tmp, eps, tmp)
    _div(g, tmp, tmp)
    _mul(tmp, lr, tmp)
    _sub(p, tmp, p)  # p -= lr g / (sqrt(v) + eps)


def rmsprop(lr: float = 1e-3, rho: float = 0.9, eps: float = 1e-8) -> Optimizer:
    """RMSProp (Tieleman & Hinton), no momentum, not centred, no bias correction.

    ``v <- rho v + (1-rho) g^2``; ``p <- p - lr * g / (sqrt(v) + eps)``.  Defaults
    lr 1e-3, rho 0.9 (the amalgamation pool's), eps 1e-8.  State: v, scratch,
    float32 (n,).  9 ufunc passes per step.
    """
    name = "rmsprop"
    lr = positive(name, "lr", lr)
    rho = decay(name, "rho", rho)
    eps = positive(name, "eps", eps)
    consts = (f32(rho), f32(1.0 - rho), f32(eps), f32(lr))

    def init(n: int) -> RMSPropState:
        return RMSPropState(zeros(n), zeros(n))

    def update(params: np.ndarray, grads: np.ndarray, state: RMSPropState, info: StepInfo) -> None:
        chunked(_rmsprop_kernel, (params, grads, state.v, state.tmp), *consts)

    hp = {"lr": lr, "rho": rho, "eps": eps}
    return Optimizer(name, hp, init, update)
