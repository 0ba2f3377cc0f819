"""HALO's per-parameter update as elementwise ufunc chains: the MLP expanded into multiply-adds.

One call updates a segment ``[0, n)`` of the flat buffer in place: Adam-style moment
sums, the two features, the mirror-pair MLP of ``kernels.halo_fold`` and the step,
in chunks of ``CHUNK`` elements.  Every per-step and per-tensor scalar (bias
corrections, epsilon, learning rate, gain, output weights) is folded into the ufunc
constants, so a chunk costs only these passes (elementwise ops on length-C vectors)::

    state       m = b1 m + g; v = b2 v + g^2; s = sqrt(v) + eps'          7
    pair k      zeta_k = (base + kappa other) / s                      1 or 3
    even part   M_k = max(|zeta_k|, |beta_k|)                          1 or 2
    odd part    O_k = zeta_k +/- clip(zeta_k, -|beta_k|, |beta_k|)     0 or 3
    output      A = sum_k c_k O_k; E = max(e0 + sum_k e_k M_k, 0); p -= sign(D) A E

The shipped halo-v0 uses one pair (zero bias) for both outputs: 16 passes, against
Adam's 12; all 15 weights non-zero would take 32.  Zero weights cost
nothing: their passes are skipped.  ``max`` runs against full constant arrays (4x
faster than against a scalar in NumPy 2.x, docs/references.md §1.1).  The chunk
loop hoists every scalar conversion and branch out of the loop: on a slow core the
~1 us per ufunc call is what a chunk costs beyond its passes.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple, Union

import numpy as np

from kernels.halo_fold import (
    KernelBase,
    MirrorMLP,
    Pieces,
    StepFold,
    fold_step,
    tensor_arrays,
    tensor_scalars,
)

CHUNK = 65536
"""Elements per chunk (Adam's too).  On the 2-core x86 box at n = 1e6, against Adam:
32768 and 65536 within 3% of each other on a quiet machine, 131072-262144 3-5% slower,
16384 15-25% slower under load (per-call overhead of ~1 us per ufunc)."""

_mul = np.multiply
_add = np.add
_sub = np.subtract
_div = np.divide
_sqrt = np.sqrt
_sq = np.square
_abs = np.absolute
_max = np.maximum
_min = np.minimum
_f32 = np.float32

Piece = Tuple[int, int, float, float]
"""``(a, b, lr, gamma)``: elements ``[a, b)`` of the segment belong to one tensor."""


class _Pair:
    """One active pair's plan for a step: buffers, modes and float32 constants."""

    __slots__ = ("base_is_m", "kappa", "z", "mk", "even", "odd", "hi", "lo", "ek_index")

    def __init__(self, base_is_m, kappa, z, mk, even, odd, hi, lo):
        self.base_is_m, self.kappa, self.z, self.mk = base_is_m, kappa, z, mk
        self.even, self.odd, self.hi, self.lo = even, odd, hi, lo


class ElementwiseKernel(KernelBase):
    """The elementwise HALO update for segments of at most ``n_max`` elements.

    ``mlp``: the per-parameter weights; ``beta1``, ``beta2``, ``eps``: the moment
    decays and epsilon.  Scratch (7 vectors of ``min(n_max, chunk)`` float32 plus
    constant vectors) is allocated here, once.
    """

    name = "elementwise"

    def __init__(self, mlp: MirrorMLP, beta1: float, beta2: float, eps: float, n_max: int,
                 chunk: int = CHUNK):
        super().__init__(mlp, beta1, beta2, eps, n_max, chunk)
        c = self.chunk
        self._z = [np.empty(c, np.float32) for _ in range(2)]
        self._mk = [np.empty(c, np.float32) for _ in range(2)]
        self._zeros = np.zeros(c, np.float32)
        self._lo = [np.empty(c, np.float32) for _ in range(2)]  # -|beta_k|, refilled on change
        self._hi = [np.empty(c, np.float32) for _ in range(2)]  # |beta_k|
        self._filled = [float("nan")] * 2
        self._b1, self._b2 = _f32(beta1), _f32(beta2)
        self._count = -1
        self._fold: StepFold = fold_step(mlp, beta1, beta2, eps, 1)
        self._plan: List[_Pair] = []

    def _prepare(self, count: int) -> StepFold:
        """Fold the step's scalars once per count; refill the |beta| vectors if they moved."""
        if count == self._count:
            return self._fold
        fold = fold_step(self.mlp, self.beta1, self.beta2, self.eps, count)
        plan = []
        for k, pf in enumerate(fold.pairs):
            ab = abs(pf.beta)
            if ab != 0.0 and self._filled[k] != ab:
                self._hi[k].fill(ab)
                self._lo[k].fill(-ab)
                self._filled[k] = ab
            even = 0 if not pf.even else (2 if ab != 0.0 else 1)
            odd = 0 if not pf.odd else (1 if ab == 0.0 else (2 if pf.beta > 0.0 else 3))
            mk = self._mk[k] if (pf.even and pf.odd) else self._z[k]
            plan.append(_Pair(pf.base_is_m, _f32(pf.kappa) if pf.kappa != 0.0 else None,
                              self._z[k], mk, even, odd, self._hi[k], self._lo[k]))
        self._fold, self._plan, self._count = fold, plan, count
        return fold

    def update(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, count: int,
               pieces: Union[Pieces, Sequence[Piece]]) -> None:
        """Update ``p``, ``m``, ``v`` (float32 (n,)) in place from ``g`` (read only).

        ``count``: 1-based update count of the segment (bias correction).  ``pieces``:
        the tensors covering ``[0, n)``: a :class:`Pieces` or consecutive
        ``(a, b, lr, gamma)`` tuples.
        """
        fold = self._prepare(count)
        plan = self._plan
        odd_rest = tuple((pl.z, _f32(fold.d_coef[k])) for k, pl in enumerate(plan)
                         if pl.odd)[1:]
        first_odd = next((pl.z for pl in plan if pl.odd), None)
        e_plan = self._e_plan(fold, plan, Pieces.of(pieces))
        apply = _sub if fold.d_scale > 0.0 else _add
        eps = _f32(fold.eps_s)
        n = p.shape[0]
        c = self.chunk
        for lo in range(0, n, c):
            hi = min(n, lo + c)
            w = None if hi - lo == c else hi - lo  # the last, short chunk uses views
            self._chunk(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], w, eps, plan, first_odd,
                        odd_rest, e_plan, apply, lo, hi)

    @staticmethod
    def _e_plan(fold: StepFold, plan, pieces: Pieces):
        """How to form ``E`` (the per-tensor factor of ``A``).

        With one tensor (or every tensor alike) the factors are float32 scalars; with
        several they are float32 per-element vectors (n,) made once per call by
        repeating each tensor's value over its elements, so a chunk costs the same
        ufunc calls whatever the number of tensors.  Values and operation order are
        those of the per-tensor form (bit-identical results).

        ``("scalar", e0)``: no magnitude output, ``E = e0``;
        ``("shared", c0, ((k, c_k), ...), clamp, scale)``: every tensor has the same
        gain, so ``phi = max(c0 + sum c_k M_k, 0)`` is formed once and multiplied by
        each tensor's ``|lr D|`` (``scale``; None with one tensor: folded into the c's);
        ``("general", e0, ((k, e_k), ...), clamp)``: per-tensor ``e0`` and ``e_k``.
        """
        d = abs(fold.d_scale)
        if pieces.uniform():
            pieces = Pieces(pieces.bounds[[0, -1]], pieces.lr[:1], pieces.gamma[:1])
        one = pieces.lr.size == 1
        if not any(pl.even for pl in plan):
            e0 = np.abs(pieces.lr) * d * (1.0 + pieces.gamma * fold.q_bias)
            return ("scalar", _f32(e0[0]) if one else pieces.spread(e0))
        if one or (pieces.gamma == pieces.gamma[0]).all():
            gam = float(pieces.gamma[0])
            c0 = 1.0 + gam * fold.q_bias
            ck = [gam * q for q in fold.q_coef]
            low = c0 + sum(x * abs(pf.beta) for x, pf in zip(ck, fold.pairs))
            clamp = any(x < 0.0 for x in ck) or low < 0.0
            if one:
                lr = abs(float(pieces.lr[0])) * d
                return ("shared", _f32(c0 * lr),
                        tuple((k, _f32(x * lr)) for k, x in enumerate(ck) if x != 0.0), clamp, None)
            terms = tuple((k, _f32(x)) for k, x in enumerate(ck) if x != 0.0)
            return ("shared", _f32(c0), terms, clamp, pieces.spread(np.abs(pieces.lr) * d))
        if one:
            e0, ek, clamp = tensor_scalars(fold, float(pieces.lr[0]), float(pieces.gamma[0]))
            return ("general", _f32(e0), tuple((k, _f32(x)) for k, x in enumerate(ek) if x != 0.0),
                    clamp)
        e0, ek = tensor_arrays(fold, pieces.lr, pieces.gamma)  # clamp: max(E, 0) is E if E >= 0
        return ("general", pieces.spread(e0), tuple((k, pieces.spread(x)) for k, x in enumerate(ek)
                                                    if fold.q_coef[k] != 0.0), True)

    def _chunk(self, p, g, m, v, w, eps, plan, first_odd, odd_rest, e_plan, apply,
               lo, hi) -> None:
        if w is None:
            s, t, e, zeros = self._s, self._t, self._e, self._zeros
        else:
            s, t, e, zeros = self._s[:w], self._t[:w], self._e[:w], self._zeros[:w]
        _mul(m, self._b1, m)
        _add(m, g, m)  # m = b1 m + g
        _sq(g, t)
        _mul(v, self._b2, v)
        _add(v, t, v)  # v = b2 v + g^2
        _sqrt(v, s)
        _add(s, eps, s)  # s = sqrt(v) + eps / a_v
        for pl in plan:
            z = pl.z if w is None else pl.z[:w]
            base, other = (m, g) if pl.base_is_m else (g, m)
            if pl.kappa is not None:
                _mul(other, pl.kappa, z)
                _add(z, base, z)
                _div(z, s, z)
            else:
                _div(base, s, z)  # zeta_k
            if pl.even:
                mk = pl.mk if w is None else pl.mk[:w]
                _abs(z, mk)
                if pl.even == 2:
                    _max(mk, pl.hi if w is None else pl.hi[:w], out=mk)  # max(|zeta|, |beta|)
            if pl.odd >= 2:
                _max(z, pl.lo if w is None else pl.lo[:w], out=t)
                _min(t, pl.hi if w is None else pl.hi[:w], out=t)  # clip(zeta, -|beta|, |beta|)
                (_add if pl.odd == 2 else _sub)(z, t, z)
        if first_odd is None:
            return  # d = 0: the moments move, the parameters do not
        acc = first_odd if w is None else first_odd[:w]
        for z, coef in odd_rest:  # A = d / D
            _mul(z if w is None else z[:w], coef, t)
            _add(acc, t, acc)
        kind = e_plan[0]
        if kind == "scalar":  # E = e0 (per tensor)
            e0 = e_plan[1]
            _mul(acc, e0 if e0.ndim == 0 else e0[lo:hi], acc)
            apply(p, acc, p)
            return
        if kind == "shared":
            _, c0, terms, clamp, scale = e_plan
            self._affine(e, t, zeros, c0, terms, clamp, plan, w, lo, hi)
            if scale is not None:  # each tensor's |lr D|
                _mul(e, scale[lo:hi], e)
        else:
            _, e0, terms, clamp = e_plan
            self._affine(e, t, zeros, e0, terms, clamp, plan, w, lo, hi)
        _mul(acc, e, acc)
        apply(p, acc, p)

    @staticmethod
    def _affine(e, t, zeros, c0, terms, clamp, plan, w, lo, hi) -> None:
        """``e = max(c0 + sum_k c_k M_k, 0)`` (the max only if ``clamp``); ``c0``, ``c_k``:
        float32 scalars or per-element vectors of the segment (sliced to ``[lo, hi)``)."""
        if c0.ndim:
            c0 = c0[lo:hi]
        if not terms:
            if c0.ndim:
                e[...] = c0
            else:
                e.fill(c0)
            return
        for i, (k, ck) in enumerate(terms):
            mk = plan[k].mk
            mk = mk if w is None else mk[:w]
            if ck.ndim:
                ck = ck[lo:hi]
            if i == 0:
                _mul(mk, ck, e)
            else:
                _mul(mk, ck, t)
                _add(e, t, e)
        _add(e, c0, e)
        if clamp:
            _max(e, zeros, out=e)
