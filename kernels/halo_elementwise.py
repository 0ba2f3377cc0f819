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
~1 us per ufunc call is what a chunk costs beyond its passes.  What depends on the
update count alone (the fold, its float32 constants, the passes' modes) is a plan of
``kernels.halo_plan``, folded 256 counts at a time and kept per count.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from kernels import fused
from kernels.halo_fold import (
    KernelBase,
    MirrorMLP,
    Pieces,
    StepFold,
    fold_floats,
    mlp_floats,
    tensor_arrays,
    tensor_scalars,
)
from kernels.halo_plan import BLOCK, FoldBlock, Pair, StepPlan, pairs_of, shared_gain, structure

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
_F32 = np.dtype(np.float32)

Piece = Tuple[int, int, float, float]
"""``(a, b, lr, gamma)``: elements ``[a, b)`` of the segment belong to one tensor."""


_PLANS_KEPT = 64
"""Update counts whose plans a kernel keeps (sparse segments at nearby counts reuse them;
a plan is cheap to remake from its block)."""


def _run(a: int, b: int, count: int, pieces: Pieces) -> tuple:
    """A run as the fused loop reads it: ``(a, b, count, bounds, lr, gamma)``, contiguous."""
    return (a, b, int(count), pieces.bounds, np.ascontiguousarray(pieces.lr, np.float64),
            np.ascontiguousarray(pieces.gamma, np.float64))


class ElementwiseKernel(KernelBase):
    """The elementwise HALO update for segments of at most ``n_max`` elements.

    ``mlp``: the per-parameter weights; ``beta1``, ``beta2``, ``eps``: the moment
    decays and epsilon.  Scratch (at most 7 vectors of ``min(n_max, chunk)`` float32
    plus constant vectors) is allocated here, once.
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
        self._plans: Dict[int, StepPlan] = {}
        self._mlp_floats = mlp_floats(mlp)
        self._source = (self._mlp_floats, beta1, beta2, eps)  # what a plan folds from
        self._shape: tuple = ()
        self._shape_pairs: List[Pair] = []
        self._blocks: Dict[int, FoldBlock] = {}
        self._plan = self._prepare(1)
        self._views: Dict[int, tuple] = {}
        self._native = fused.enabled()  # the fused C loop, None: the ufunc chain
        self._fb = (float(self._b1), float(self._b2))
        self.implementation = "fused" if self._native is not None else "ufunc"

    def __getstate__(self) -> dict:  # a module does not pickle: found again on load
        return {k: v for k, v in self.__dict__.items() if k != "_native"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._native = fused.enabled() if state.get("implementation") == "fused" else None

    def _prepare(self, count: int) -> StepPlan:
        """The step's plan (folded scalars, modes), made once per count; refill the
        |beta| vectors if they moved."""
        if count == self._count:
            return self._plan
        plan = self._plans.get(count)
        if plan is None:
            plan = self._blocked(count)
            if plan is None:
                fold = fold_floats(self._mlp_floats, self.beta1, self.beta2, self.eps, count)
                plan = StepPlan.of(self._source, count, fold, self._pairs_of(structure(fold), fold))
            if len(self._plans) >= _PLANS_KEPT:
                self._plans.clear()
            self._plans[count] = plan
        for k, ab in enumerate(plan.abs_beta):
            if ab != 0.0 and self._filled[k] != ab:
                self._hi[k].fill(ab)
                self._lo[k].fill(-ab)
                self._filled[k] = ab
        self._plan, self._count = plan, count
        return plan

    def _pairs_of(self, shape: tuple, fold: StepFold) -> List[Pair]:
        """The pairs' modes for a fold of structure ``shape`` (made when it changes)."""
        if shape != self._shape:
            self._shape, self._shape_pairs = shape, pairs_of(fold)
        return self._shape_pairs

    def _blocked(self, count: int) -> Optional[StepPlan]:
        """The plan of ``count`` from the block of counts around it (None: fold it alone)."""
        start = (count - 1) // BLOCK * BLOCK + 1  # blocks [1, 257), [257, 513), ...
        blk = self._blocks.get(start)
        if blk is None:
            if len(self._blocks) >= 8:  # segments at different counts keep a few
                self._blocks.pop(next(iter(self._blocks)))
            blk = self._blocks[start] = FoldBlock(self._mlp_floats, self.beta1, self.beta2, self.eps,
                                               start, BLOCK)
        if blk.shape is None:
            return None
        if blk.shape != self._shape:
            fold = fold_floats(self._mlp_floats, self.beta1, self.beta2, self.eps, count)
            if structure(fold) != blk.shape:
                return None
            self._pairs_of(blk.shape, fold)
        return blk.plan(self._source, count, self._shape_pairs)

    def _scratch(self, w: int) -> tuple:
        """Views of the scratch for a chunk of ``w`` elements (made once per width)."""
        v = self._views.get(w)
        if v is None:
            if len(self._views) >= 64:
                self._views.clear()
            v = self._views[w] = (self._s[:w], self._t[:w], self._zeros[:w],
                                  [z[:w] for z in self._z], [mk[:w] for mk in self._mk],
                                  [hi[:w] for hi in self._hi], [lo[:w] for lo in self._lo])
        return v

    def update(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, count: int,
               pieces: Union[Pieces, Sequence[Piece]]) -> None:
        """Update ``p``, ``m``, ``v`` (float32 (n,)) in place from ``g`` (read only).

        ``count``: 1-based update count of the segment (bias correction).  ``pieces``:
        the tensors covering ``[0, n)``: a :class:`Pieces` or consecutive
        ``(a, b, lr, gamma)`` tuples.
        """
        if self._native is not None:
            self._fused(p, g, m, v, (_run(0, p.shape[0], count, Pieces.of(pieces)),))
            return
        plan = self._prepare(count)
        e_plan = self._e_plan(plan, Pieces.of(pieces))
        n = p.shape[0]
        c = self.chunk
        if n <= c:
            self._chunk(p, g, m, v, self._scratch(n), plan, e_plan, 0, n)
            return
        full = self._scratch(c)
        for lo in range(0, n, c):
            hi = min(n, lo + c)
            self._chunk(p[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi],
                        full if hi - lo == c else self._scratch(hi - lo), plan, e_plan, lo, hi)

    def update_runs(self, p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray,
                    runs: Sequence[Tuple[int, int, int, Pieces]]) -> None:
        """:meth:`update` for adjacent runs of tensors at different update counts:
        ``runs`` of ``(a, b, count, pieces)``, run r updating ``[a, b)`` of the arrays
        (its pieces relative to ``a``); one compiled call for all of them."""
        if self._native is None:
            super().update_runs(p, g, m, v, runs)
            return
        self._fused(p, g, m, v, tuple([_run(a, b, count, pc) for a, b, count, pc in runs]))

    def _fused(self, p, g, m, v, runs: tuple) -> None:
        """The fused loop (``kernels/_fused.c``) over ``runs`` of ``(a, b, count, bounds, lr,
        gamma)``: the count's plan (the fold of :mod:`kernels.halo_plan`) and E's per-tensor
        constants (:meth:`_e_plan`) made in C by the same float64 operations, then
        :meth:`_chunk`'s operations in its order, so the ufunc chain's float32 results."""
        if not p.dtype == g.dtype == m.dtype == v.dtype == _F32:  # the loop reads raw float32
            raise TypeError(f"HALO update: p, g, m, v must be float32, got {p.dtype}, {g.dtype}, "
                            f"{m.dtype}, {v.dtype}")
        b1, b2 = self._fb
        self._native.halo_step(p, g, m, v, b1, b2, self._mlp_floats, self.beta1, self.beta2,
                               self.eps, runs)

    @staticmethod
    def _e_plan(plan: StepPlan, pieces: Pieces):
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
        d = abs(plan.d_scale)
        lr, gamma = pieces.lr, pieces.gamma
        one = lr.size == 1
        same_gamma = True
        if not one:  # one set() each: one C call whatever the number of tensors
            same_gamma = len(set(gamma.tolist())) == 1
            if same_gamma and len(set(lr.tolist())) == 1:
                pieces = Pieces(pieces.bounds[[0, -1]], lr[:1], gamma[:1])
                lr, gamma, one = pieces.lr, pieces.gamma, True
        if not plan.any_even:
            e0 = np.abs(lr) * d * (1.0 + gamma * plan.q_bias)
            return ("scalar", _f32(e0[0]) if one else pieces.spread(e0))
        if same_gamma:
            gam = float(gamma[0])
            got = plan.gains.get(gam)
            if got is None:
                got = plan.gains[gam] = shared_gain(plan, gam)
                if len(plan.gains) > 8:
                    plan.gains.clear()
            c0, ck, clamp, c0_32, terms = got
            if one:
                lr = abs(float(lr[0])) * d
                return ("shared", _f32(c0 * lr),
                        tuple([(k, _f32(x * lr)) for k, x in enumerate(ck) if x != 0.0]), clamp,
                        None)
            # in float64, rounded once to float32 (astype: cheaper than a casting out=)
            scale = np.multiply(np.abs(lr), d).astype(np.float32)
            sizes = pieces.sizes
            return ("shared", c0_32, terms, clamp,
                    scale.repeat(np.diff(pieces.bounds) if sizes is None else sizes))
        fold = plan.fold
        if one:
            e0, ek, clamp = tensor_scalars(fold, float(lr[0]), float(gamma[0]))
            return ("general", _f32(e0), tuple((k, _f32(x)) for k, x in enumerate(ek) if x != 0.0),
                    clamp)
        e0, ek = tensor_arrays(fold, lr, gamma)  # clamp: max(E, 0) is E if E >= 0
        return ("general", pieces.spread(e0), tuple((k, pieces.spread(x)) for k, x in enumerate(ek)
                                                    if fold.q_coef[k] != 0.0), True)

    def _chunk(self, p, g, m, v, views, plan: StepPlan, e_plan, lo, hi) -> None:
        s, t, zeros, zs, mks, his, los = views
        _mul(m, self._b1, m)
        _add(m, g, m)  # m = b1 m + g
        _sq(g, t)
        _mul(v, self._b2, v)
        _add(v, t, v)  # v = b2 v + g^2
        _sqrt(v, s)
        _add(s, plan.eps, s)  # s = sqrt(v) + eps / a_v
        for pl in plan.pairs:
            k = pl.k
            z = zs[k]
            base, other = (m, g) if pl.base_is_m else (g, m)
            if pl.has_kappa:
                _mul(other, plan.kappa[k], z)
                _add(z, base, z)
                _div(z, s, z)
            else:
                _div(base, s, z)  # zeta_k
            if pl.even:
                mk = t if pl.mk_t else (mks[k] if pl.mk_own else z)
                _abs(z, mk)
                if pl.even == 2:
                    _max(mk, his[k], out=mk)  # max(|zeta|, |beta|)
            if pl.odd >= 2:
                _max(z, los[k], out=t)
                _min(t, his[k], out=t)  # clip(zeta, -|beta|, |beta|)
                (_add if pl.odd == 2 else _sub)(z, t, z)
        if plan.first_odd is None:
            return  # d = 0: the moments move, the parameters do not
        acc = zs[plan.first_odd]
        for k, coef in plan.odd_rest:  # A = d / D
            _mul(zs[k], coef, t)
            _add(acc, t, acc)
        kind = e_plan[0]
        apply = plan.apply
        if kind == "scalar":  # E = e0 (per tensor)
            e0 = e_plan[1]
            _mul(acc, e0 if e0.ndim == 0 else e0[lo:hi], acc)
            apply(p, acc, p)
            return
        e = s  # s is free once every zeta_k is formed
        if kind == "shared":
            _, c0, terms, clamp, scale = e_plan
            self._affine(e, t, zeros, c0, terms, clamp, plan.pairs, views, lo, hi)
            if scale is not None:  # each tensor's |lr D|
                _mul(e, scale[lo:hi], e)
        else:
            _, e0, terms, clamp = e_plan
            self._affine(e, t, zeros, e0, terms, clamp, plan.pairs, views, lo, hi)
        _mul(acc, e, acc)
        apply(p, acc, p)

    @staticmethod
    def _affine(e, t, zeros, c0, terms, clamp, pairs, views, lo, hi) -> None:
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
        zs, mks = views[3], views[4]
        for i, (k, ck) in enumerate(terms):
            pl = pairs[k]
            mk = t if pl.mk_t else (mks[k] if pl.mk_own else zs[k])
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
