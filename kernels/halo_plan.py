"""The elementwise HALO kernel's per-count plans: the fold's float32 constants and modes.

A plan holds what an update derives from its count alone (``kernels.halo_fold``'s fold
of the bias corrections, as float32 ufunc constants, and which passes each pair takes);
:class:`FoldBlock` folds a block of counts at once, with the same float64 operations.
Pure arithmetic, no I/O.
"""

from __future__ import annotations

from typing import Dict, List, Optional

import numpy as np

from kernels.halo_fold import StepFold, fold_floats

_f32 = np.float32
_add = np.add
_sub = np.subtract


class Pair:
    """One active pair's modes (they change only when a fold's structure does).

    ``k``: index of its buffers; ``mk_t``: ``M_k`` is formed in the scratch ``t``
    (free once ``v`` is updated when this is the only pair and it clips nothing),
    one chunk vector fewer in cache."""

    __slots__ = ("k", "base_is_m", "has_kappa", "mk_own", "mk_t", "even", "odd")

    def __init__(self, k, base_is_m, has_kappa, mk_own, mk_t, even, odd):
        self.k, self.base_is_m, self.has_kappa = k, base_is_m, has_kappa
        self.mk_own, self.mk_t, self.even, self.odd = mk_own, mk_t, even, odd


def structure(fold: StepFold) -> tuple:
    """What decides the pairs' modes: per pair (base, kappa != 0, |beta| != 0, beta > 0,
    odd, even)."""
    return tuple([(pf.base_is_m, pf.kappa != 0.0, pf.beta != 0.0, pf.beta > 0.0, pf.odd, pf.even)
                  for pf in fold.pairs])


def pairs_of(fold: StepFold) -> List[Pair]:
    pairs = []
    solo = len(fold.pairs) == 1
    for k, pf in enumerate(fold.pairs):
        ab = abs(pf.beta)
        even = 0 if not pf.even else (2 if ab != 0.0 else 1)
        odd = 0 if not pf.odd else (1 if ab == 0.0 else (2 if pf.beta > 0.0 else 3))
        pairs.append(Pair(k, pf.base_is_m, pf.kappa != 0.0, bool(pf.even and pf.odd),
                           solo and odd < 2, even, odd))
    return pairs


def pair_modes(pairs: List[Pair]) -> tuple:
    """What a plan derives from its pairs alone: the odd pairs' indices, any even part."""
    return [pl.k for pl in pairs if pl.odd], any([pl.even for pl in pairs])


class StepPlan:
    """Everything :meth:`ElementwiseKernel.update` derives from the update count alone:
    the pairs' modes, their float32 ``kappa``s and ``|beta|``s, where ``A`` is formed and
    the other odd parts' float32 coefficients, how the step is applied (``apply``, by the
    sign of ``d_scale``), the float32 epsilon, and what ``E`` needs (``d_scale``,
    ``q_bias``, ``q_coef``, ``any_even``; the whole fold, :attr:`fold`, is made on demand
    from ``source`` = ``(mlp_floats, beta1, beta2, eps)``).
    """

    __slots__ = ("count", "pairs", "kappa", "abs_beta", "first_odd", "odd_rest", "apply", "eps",
                 "any_even", "gains", "d_scale", "q_bias", "q_coef", "_fold", "_source")

    def __init__(self, source: tuple, count: int, pairs: List[Pair], kappa32, abs_beta, d_coef32,
                 eps32, d_scale: float, q_bias: float, q_coef, fold: Optional[StepFold] = None,
                 modes: Optional[tuple] = None):
        self._source, self.count, self.pairs = source, count, pairs
        self.kappa, self.abs_beta, self.eps = kappa32, abs_beta, eps32
        self.d_scale, self.q_bias, self.q_coef, self._fold = d_scale, q_bias, q_coef, fold
        if modes is None:
            modes = pair_modes(pairs)
        odd, self.any_even = modes
        self.first_odd = odd[0] if odd else None  # index of z holding A
        self.odd_rest = tuple([(k, d_coef32[k]) for k in odd[1:]])
        self.apply = _sub if d_scale > 0.0 else _add
        self.gains: Dict[float, tuple] = {}  # gamma -> (c0, c_k, clamp, ...) of the shared E

    @classmethod
    def of(cls, source: tuple, count: int, fold: StepFold, pairs: List[Pair]) -> StepPlan:
        return cls(source, count, pairs, [_f32(pf.kappa) for pf in fold.pairs],
                   [abs(pf.beta) for pf in fold.pairs], [_f32(c) for c in fold.d_coef],
                   _f32(fold.eps_s), fold.d_scale, fold.q_bias, fold.q_coef, fold)

    @property
    def fold(self) -> StepFold:
        if self._fold is None:
            self._fold = fold_floats(*self._source, self.count)
        return self._fold


class FoldBlock:
    """The folds of counts ``[start, start + size)`` computed together, vectorised over
    the counts with the float64 operations of :func:`fold_floats` in the same order (so
    the same values), for a run of counts whose pairs keep one structure."""

    def __init__(self, mlp, beta1: float, beta2: float, eps: float, start: int, size: int):
        self.start, self.size = start, size
        counts = range(start, start + size)
        b1c = np.array([beta1**c for c in counts])  # Python's pow, as moment_scales
        b2c = np.array([beta2**c for c in counts])
        a_m = (1.0 - beta1) / (1.0 - b1c)
        a_v = np.sqrt((1.0 - beta2) / (1.0 - b2c))
        q_bias, per_pair = mlp
        q_bias = np.full(size, q_bias)
        self.shape: Optional[tuple] = ()
        shape = []
        kappa, beta, d_coef, q_coef = [], [], [], []
        d_scale = None
        for w_g, w_m, delta, mu, b in per_pair:
            u_g = w_g / a_v
            u_m = w_m * a_m / a_v
            dead = (u_g == 0.0) & (u_m == 0.0)
            if dead.all():  # h+ = h- = relu(b), constant
                q_bias = q_bias + mu * 2.0 * max(b, 0.0)
                continue
            if dead.any():
                self.shape = None
                return
            base_is_m = np.abs(u_m) >= np.abs(u_g)
            if base_is_m.all():
                base, rho, kap = True, u_m, u_g / u_m
            elif not base_is_m.any():
                base, rho, kap = False, u_g, u_m / u_g
            else:  # the base changes inside the block: fold count by count
                self.shape = None
                return
            odd, even = delta != 0.0, mu != 0.0
            if not (odd or even):
                continue
            bet = b / np.abs(rho)
            flags = (kap != 0.0, bet != 0.0, bet > 0.0)
            if not all([f.all() or not f.any() for f in flags]):  # not one structure
                self.shape = None
                return
            shape.append((base, bool(flags[0][0]), bool(flags[1][0]), bool(flags[2][0]), odd,
                          even))
            kappa.append(kap)
            beta.append(np.abs(bet))
            if odd:
                if d_scale is None:
                    d_scale = delta * rho
                    if (d_scale == 0.0).any():  # fold_floats would take the next odd pair
                        self.shape = None
                        return
                d_coef.append(delta * rho / d_scale)
            else:
                d_coef.append(np.zeros(size))
            if even:
                q_bias = q_bias + mu * np.abs(rho) * bet
                q_coef.append(mu * np.abs(rho))
            else:
                q_coef.append(np.zeros(size))
        self.shape = tuple(shape)
        self.eps32 = (eps / a_v).astype(np.float32)
        self.d_scale = (np.zeros(size) if d_scale is None else d_scale).tolist()
        self.q_bias = q_bias.tolist()
        self.kappa32 = [x.astype(np.float32) for x in kappa]
        self.abs_beta = [x.tolist() for x in beta]
        self.d_coef32 = [x.astype(np.float32) for x in d_coef]
        self.q_coef = [x.tolist() for x in q_coef]
        self._rows: Optional[list] = None
        self._modes: Optional[tuple] = None

    def _per(self, per_pair: list) -> list:
        """Per-pair sequences over the block's counts as per-count tuples over the pairs."""
        return list(zip(*per_pair)) if per_pair else [()] * self.size

    def plan(self, source: tuple, count: int, pairs: List[Pair]) -> StepPlan:
        """The plan of ``count`` (in the block) for pairs of the block's structure."""
        if self._rows is None:  # per count: (kappa, |beta|, d_coef, eps, d_scale, q_bias, q_coef)
            self._rows = list(zip(self._per(self.kappa32), self._per(self.abs_beta),
                                  self._per(self.d_coef32), list(self.eps32), self.d_scale,
                                  self.q_bias, self._per(self.q_coef)))
        if self._modes is None or self._modes[0] is not pairs:
            self._modes = (pairs, pair_modes(pairs))
        kap, ab, dc, e, ds, qb, qc = self._rows[count - self.start]
        return StepPlan(source, count, pairs, kap, ab, dc, e, ds, qb, qc, None, self._modes[1])


BLOCK = 256
"""Counts folded together (a few microseconds each, instead of tens one by one)."""


def shared_gain(plan: StepPlan, gam: float) -> tuple:
    """The count-and-gain part of a shared ``E = max(c0 + sum_k c_k M_k, 0)``:
    ``(c0, [c_k], clamp, float32 c0, ((k, float32 c_k) for c_k != 0))``; ``clamp`` False
    when every ``c_k >= 0`` and ``c0 + sum_k c_k |beta_k| >= 0`` (E >= 0 anyway)."""
    c0 = 1.0 + gam * plan.q_bias
    ck = []
    terms = []
    neg = False
    acc = 0  # sum() of c_k |beta_k|, from 0 as sum() adds
    for k, (q, ab) in enumerate(zip(plan.q_coef, plan.abs_beta)):
        x = gam * q
        ck.append(x)
        neg = neg or x < 0.0
        acc = acc + x * ab
        if x != 0.0:
            terms.append((k, _f32(x)))
    return c0, ck, neg or c0 + acc < 0.0, _f32(c0), tuple(terms)
