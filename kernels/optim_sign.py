"""AddSign and PowerSign (Bello et al. 2017), with the amalgamation pool's soft-sign variant.

Both scale the gradient up where it agrees in sign with its moving average ``m``:
AddSign by ``alpha + sign(g) sign(m)``, PowerSign by ``base ** (sign(g) sign(m))``.
Huang et al. 2022 (optimizer amalgamation, App. C.2) use them as distillation
teachers with each sign replaced by a tanh of the value over its running RMS; here
that is the ``temperature > 0`` variant (our reading; the formula is lost from the
text we have): ``sign(x) ~ tanh(x / (temperature * (sqrt(v_hat) + eps)))``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from kernels.optim_base import Optimizer, StepInfo
from kernels.optim_common import UNUSED, chunked, decay, ema_moments, f32, nonnegative, positive, zeros

_mul = np.multiply
_add = np.add
_sub = np.subtract
_div = np.divide
_sqrt = np.sqrt
_tanh = np.tanh
_exp = np.exp
_copysign = np.copysign


class SignState(NamedTuple):
    """Float32 arrays: ``m`` EMA of g and ``tmp`` scratch, (n,); ``v`` EMA of g**2 and
    ``tmp2`` second scratch, (n,) for the soft sign (``temperature > 0``), else (0,)."""

    m: np.ndarray
    v: np.ndarray
    tmp: np.ndarray
    tmp2: np.ndarray


def _hard_kernel(p, g, m, tmp, beta, ombeta, a_lr, b_lr):
    # update = a g + b sign(g) sign(m) g = a g + b copysign(g, m)
    _mul(m, beta, m)
    _mul(g, ombeta, tmp)
    _add(m, tmp, m)  # m = beta m + (1-beta) g
    _copysign(g, m, tmp)  # |g| sign(m)
    _mul(tmp, b_lr, tmp)
    _sub(p, tmp, p)
    _mul(g, a_lr, tmp)
    _sub(p, tmp, p)


def _soft_kernel(p, g, m, v, a, b, beta, ombeta, b2, omb2, d_mul, d_add, lr, c, power):
    ema_moments(g, m, v, a, beta, ombeta, b2, omb2)
    _sqrt(v, a)
    _mul(a, d_mul, a)
    _add(a, d_add, a)  # a = temperature (sqrt(v_hat) + eps)
    _div(g, a, b)
    _tanh(b, b)
    _div(m, a, a)
    _tanh(a, a)
    _mul(a, b, a)  # a = s = soft sign(g) * soft sign(m), in (-1, 1)
    if power:
        _mul(a, c, a)
        _exp(a, a)  # base ** s
    else:
        _add(a, c, a)  # alpha + s
    _mul(a, g, a)
    _mul(a, lr, a)
    _sub(p, a, p)


def _sign_optimizer(name, lr, beta, temperature, beta2, eps, a, b, c, power, extra):
    lr = positive(name, "lr", lr)
    beta = decay(name, "beta", beta)
    temperature = nonnegative(name, "temperature", temperature)
    beta2 = decay(name, "beta2", beta2)
    eps = positive(name, "eps", eps)
    soft = temperature > 0.0
    consts = (f32(beta), f32(1.0 - beta))
    a_lr, b_lr = f32(a * lr), f32(b * lr)
    soft_consts = (f32(beta2), f32(1.0 - beta2))
    lr32, c32 = f32(lr), f32(c)

    def init(n: int) -> SignState:
        if soft:
            return SignState(zeros(n), zeros(n), zeros(n), zeros(n))
        return SignState(zeros(n), UNUSED, zeros(n), UNUSED)

    def update(params: np.ndarray, grads: np.ndarray, state: SignState, info: StepInfo) -> None:
        if not soft:
            chunked(_hard_kernel, (params, grads, state.m, state.tmp), *consts, a_lr, b_lr)
            return
        d_mul = f32(temperature / math.sqrt(1.0 - beta2**info.count))
        arrays = (params, grads, state.m, state.v, state.tmp, state.tmp2)
        d_add = f32(temperature * eps)
        chunked(_soft_kernel, arrays, *consts, *soft_consts, d_mul, d_add, lr32, c32, power)

    hp = {"lr": lr, "beta": beta, **extra, "temperature": temperature, "beta2": beta2, "eps": eps}
    return Optimizer(name, hp, init, update)


def addsign(
    lr: float = 0.01,
    beta: float = 0.9,
    alpha: float = 1.0,
    temperature: float = 0.0,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    """AddSign: ``m <- beta m + (1-beta) g``; ``p <- p - lr (alpha + sign(g) sign(m)) g``.

    Bello et al. 2017 with ``alpha`` 1 and ``beta`` 0.9 (so the step is ``2 lr g`` or 0);
    default lr 0.01 (the step is proportional to g, as SGD's).  Computed as ``alpha g +
    copysign(g, m)``, which differs from the sign form only where ``m`` is exactly 0.
    ``temperature > 0``: each sign becomes ``tanh(x / (temperature (sqrt(v_hat) + eps)))``
    with ``v`` an EMA of g**2 (decay ``beta2``, bias-corrected from ``info.count``);
    ``beta2`` and ``eps`` are unused otherwise.  State: m, scratch float32 (n,) (plus v
    and a second scratch when soft).  8 ufunc passes per step (hard), 19 (soft).
    """
    alpha = nonnegative("addsign", "alpha", alpha)
    extra = {"alpha": alpha}
    return _sign_optimizer(
        "addsign", lr, beta, temperature, beta2, eps, alpha, 1.0, alpha, False, extra
    )


def powersign(
    lr: float = 0.01,
    beta: float = 0.9,
    base: float = math.e,
    temperature: float = 0.0,
    beta2: float = 0.999,
    eps: float = 1e-8,
) -> Optimizer:
    """PowerSign: ``m <- beta m + (1-beta) g``; ``p <- p - lr base^(sign(g) sign(m)) g``.

    Bello et al. 2017 with ``base`` e and ``beta`` 0.9 (the step is ``e lr g`` or
    ``lr g / e``); default lr 0.01.  Since ``sign(g) sign(m)`` is +-1, ``base^s g =
    cosh(L) g + sinh(L) copysign(g, m)`` with ``L = ln(base)``: computed that way,
    exact except where ``m`` is exactly 0.  ``temperature > 0``: soft sign as in
    :func:`addsign`, then ``exp(L s) g``.  State and passes as :func:`addsign` (20 soft).
    """
    base = positive("powersign", "base", base)
    log_base = math.log(base)
    # base^s = cosh(L) + sinh(L) s for s = +-1
    a, b = math.cosh(log_base), math.sinh(log_base)
    extra = {"base": base}
    return _sign_optimizer(
        "powersign", lr, beta, temperature, beta2, eps, a, b, log_base, True, extra
    )
