"""HALO's tensor and global levels: per-tensor learning rates and gains at O(number of tensors) cost.

For every tensor k in the segment being updated the controller builds the feature
vector ``phi_k`` (``arch.CONTROLLER_FEATURES``) and sets::

    log_mult_k = clip(theta[0] . phi_k, -C, C),   lr_k    = base_lr * exp(log_mult_k)
    log_gain_k = clip(theta[1] . phi_k, -C, C),   gamma_k = exp(log_gain_k)

Features: bias; depth ``1 - 2 (j + 1/2) / L`` of the tensor's layer j of L;
``log(count / (step + 1))`` (how often structural sparsity lets the layer update);
``t/T`` and ``4 t/T (1 - t/T)``; the loss trend ``clip(F - S, -1, 1)`` with
``F <- 0.8 F + 0.2 log loss`` and ``S <- 0.97 S + 0.03 log loss`` updated once per
step; the relative log gradient magnitude ``clip(r_g - rbar_g, -3, 3)`` with
``r_g = log RMS(g_k)`` and ``rbar_g <- 0.9 rbar_g + 0.1 r_g``; the update ratio
``clip(log RMS(last step_k) - log(RMS(p_k) + 1e-3), -12, 2)``; and HALO's relative
log learning rate ``log_mult_k (last time) - mean over tensors``.

The RMS statistics are *lagged*: gathered while tensor k is updated, used the next
time it is (0 before that), on a strided sample of at most ``SAMPLE`` elements per
tensor, aligned to the tensor's start.  So a tensor updated in two segment calls
gets the same learning rate as in one, and the cost stays O(tensors).  They are
gathered only when ``theta`` reads them, and turned into features at the start of
the next step (``begin_step``), every tensor gathered at once: a tensor's statistics
change only when it is gathered, so this is what finalising them at its next update
would give, at one pass over the tensors per step instead of one per segment.  This
state (a few floats per tensor) lives here, not in the per-parameter optimizer state;
a skipped layer's entries are not touched.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Union

import numpy as np

from kernels import fused
from models.halo.arch import CONTROLLER_FEATURES

SAMPLE = 1024
"""Elements per tensor sampled for the RMS statistics (stride ceil(size / SAMPLE))."""

_F = {name: i for i, name in enumerate(CONTROLLER_FEATURES)}
_STAT_FEATURES = ("rel_log_grad", "log_update_ratio")
_IN_EPS = np.array([1e-30, 0.0, 1e-30])
_OUT_EPS = np.array([0.0, 1e-3, 0.0])
"""``log(sqrt(mean + in) + out)`` per statistic: r_g = log RMS g, log(RMS p + 1e-3), r_u."""
_CLIP_LO = np.array([-12.0, -3.0])
_CLIP_HI = np.array([2.0, 3.0])
"""Clips of the update ratio and of the relative log gradient."""
Ids = Union[np.ndarray, slice]
"""Tensors of a segment: an index array, or a slice (contiguous ids, cheaper to index)."""
_SHARED = tuple(_F[f] for f in ("bias", "log_update_rate", "progress", "mid_run", "loss_trend"))


class Controller:
    """Per-tensor learning rates and gains for one run.

    ``theta`` (2, n_features); ``log_clip``: output clip C; ``sizes`` (T,): elements
    per tensor; ``depth`` (T,): the depth feature of each tensor.
    """

    def __init__(self, theta: np.ndarray, log_clip: float, sizes: Sequence[int],
                 depth: Sequence[float]):
        self.theta = np.asarray(theta, np.float64)
        self.log_clip = float(log_clip)
        t = len(sizes)
        self.sizes = np.asarray(sizes, np.int64)
        self.stride = np.maximum(1, -(-self.sizes // SAMPLE))
        self.depth = np.asarray(depth, np.float64)
        self.uses_stats = bool(np.any(self.theta[:, [_F[f] for f in _STAT_FEATURES]] != 0.0))
        self.uses_loss = bool(np.any(self.theta[:, _F["loss_trend"]] != 0.0))
        self.uses_rel_lr = bool(np.any(self.theta[:, _F["rel_log_lr"]] != 0.0))
        per_tensor = [_F[f] for f in ("depth", "rel_log_grad", "log_update_ratio", "rel_log_lr")]
        self.uniform = not bool(np.any(self.theta[:, per_tensor] != 0.0))
        """True when no per-tensor column is used: every tensor of a step gets one lr."""
        self.step = -1
        self.fast = self.slow = math.nan
        self.log_mult = np.zeros(t)  # the latest output per tensor (kept when rel_log_lr is read)
        self.prev_mult = np.zeros(t)  # the output of the tensor's previous step
        self.mult_step = np.full(t, -1, np.int64)
        self.mean_log_mult = 0.0
        # lagged statistics: sums accumulating this step, and finalised ones, one row per
        # quantity (contiguous rows: every NumPy call below is over all tensors at once)
        self.acc = np.zeros((4, t))  # sum g^2, sum p^2, sum u^2, samples
        self.mask = np.zeros(t, bool)  # tensors gathered this step (unless gathered_all)
        self.gathered_any = self.gathered_all = False
        self.fin = np.zeros((3, t))  # finalised: r_g, its EMA rbar_g, the update ratio
        self.have = np.zeros(t, bool)
        self.n_have = 0  # tensors with statistics (all: the EMA needs no where())
        # per-tensor parts of theta @ phi (2, T): depth (fixed) and the statistics
        # (set when they are finalised; 0 before, as the features are)
        self.depth_term = self.theta[:, _F["depth"], None] * self.depth
        self.stat_term = np.zeros((2, t))
        self._sh = np.zeros((2, 1))
        self._sh_runs: dict = {}  # (2, k) scratch of scalars with runs, per number of tensors
        self._th_shared = [[float(self.theta[o, c]) for c in _SHARED] for o in (0, 1)]
        self._th_rel_g = self.theta[:, _F["rel_log_grad"], None]
        self._th_ratio = self.theta[:, _F["log_update_ratio"], None]
        # _finish's scratch and constants, made once
        self._w = np.empty((4, t))  # r_g, r_p then rbar, ratio, rel
        self._term = np.empty((2, t))
        self._term2 = np.empty((2, t))
        self._in_eps, self._out_eps = _IN_EPS[:, None], _OUT_EPS[:, None]
        self._clip_lo, self._clip_hi = _CLIP_LO[:, None], _CLIP_HI[:, None]
        self._c09, self._c01, self._one = np.float64(0.9), np.float64(0.1), np.float64(1.0)
        self._clip_out = (np.float64(-self.log_clip), np.float64(self.log_clip))
        self._th_stats = tuple((float(self.theta[0, _F[f]]), float(self.theta[1, _F[f]]))
                               for f in _STAT_FEATURES)  # (rel_log_grad, log_update_ratio)
        self._bind()

    _VIEWS = ("_w_rows", "_w_log", "_w_clip", "_acc3", "_cnt", "_rbar", "_views", "native")

    def _bind(self) -> None:
        """Views of the arrays above, made once (and again for a copy: a deep copy of a
        view is not a view of the copy)."""
        self._w_rows = tuple(self._w)
        self._w_log = self._w[:3]
        self._w_clip = self._w[2:]
        self._acc3, self._cnt = self.acc[:3], self.acc[3]
        self._rbar = self.fin[1]
        self._views: dict = {}  # scalars' views of depth_term, stat_term per slice of tensors
        # the compiled finish/scalars/gather (kernels/_fused.c): the same float64 operations
        # in the same order, one call each instead of ~10-20 NumPy calls (None: NumPy)
        self.native = fused.enabled()

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in self._VIEWS}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()

    @property
    def r_g(self) -> np.ndarray:
        """Per tensor: log RMS of its gradient sample, as last finalised (T,)."""
        return self.fin[0]

    @property
    def rbar_g(self) -> np.ndarray:
        """Per tensor: the EMA of ``r_g`` (T,)."""
        return self.fin[1]

    @property
    def ratio(self) -> np.ndarray:
        """Per tensor: the clipped log update ratio (T,)."""
        return self.fin[2]

    def begin_step(self, step: int, loss: float) -> None:
        """Global level, once per step (later calls with the same ``step`` do nothing);
        finalises the statistics gathered since the last step (module docstring)."""
        if step == self.step:
            return
        self.step = step
        if self.uses_rel_lr:
            self.mean_log_mult = float(self.log_mult.mean())
        if self.uses_loss and math.isfinite(loss) and loss > 0.0:
            x = math.log(loss)
            if math.isnan(self.fast):
                self.fast = self.slow = x
            self.fast = 0.8 * self.fast + 0.2 * x
            self.slow = 0.97 * self.slow + 0.03 * x
        if self.gathered_any:  # every gathered sum is of an earlier step now
            self._finish()

    def _finish(self) -> None:
        """Finalise the tensors gathered since the last step (all at an earlier step):
        ``r_g``, its EMA, the update ratio, and their contribution ``stat_term`` to both
        outputs.  Computed for every tensor at once (a fixed number of NumPy calls) and
        kept for the gathered ones only (``mask``) unless every tensor was gathered."""
        every = self.gathered_all
        self.gathered_any = self.gathered_all = False
        if self.native is not None:
            self.n_have = self.native.finish(self.acc, self.fin, self.have, self.mask, self.stat_term,
                                            *self._th_stats, every, self.n_have)
            return
        w, (r_g, rbar, ratio, rel) = self._w, self._w_rows
        x = self._w_log
        cnt = self._cnt
        if not every:  # a tensor not gathered has 0 samples: 1 keeps its row finite
            np.maximum(cnt, self._one, out=cnt)
        np.divide(self._acc3, cnt, out=x)  # mean g^2, p^2, u^2
        np.add(x, self._in_eps, out=x)
        np.sqrt(x, out=x)
        np.add(x, self._out_eps, out=x)
        np.log(x, out=x)  # r_g, r_p = log(RMS p + 1e-3), r_u
        np.subtract(ratio, rbar, out=ratio)  # r_u - r_p (rbar's row still holds r_p)
        np.multiply(self._rbar, self._c09, out=rbar)  # rbar = 0.9 rbar + 0.1 r_g
        np.multiply(r_g, self._c01, out=rel)
        np.add(rbar, rel, out=rbar)
        if self.n_have != self.have.size:  # a tensor's first statistics: rbar = r_g
            np.copyto(rbar, r_g, where=~self.have)
            if every:
                self.have.fill(True)
            else:
                self.have |= self.mask
            self.n_have = int(np.count_nonzero(self.have))
        np.subtract(r_g, rbar, out=rel)
        y = self._w_clip  # clip(r_u - r_p, -12, 2) and clip(r_g - rbar, -3, 3) at once
        np.maximum(y, self._clip_lo, out=y)
        np.minimum(y, self._clip_hi, out=y)
        term, term2 = self._term, self._term2
        np.multiply(self._th_rel_g, rel, out=term)
        np.multiply(self._th_ratio, ratio, out=term2)
        if every:
            np.add(term, term2, out=self.stat_term)
            self.fin[...] = w[:3]
        else:
            np.add(term, term2, out=term)
            mask = self.mask
            np.copyto(self.fin, w[:3], where=mask)
            np.copyto(self.stat_term, term, where=mask)
            mask.fill(False)
        self.acc.fill(0.0)

    def features(self, ids: np.ndarray, count: int, progress: float) -> np.ndarray:
        """``phi`` (len(ids), n_features) for tensors ``ids`` at the current step.

        The definition, for reading and tests; :meth:`scalars` computes ``theta @ phi``
        without building it.  (Statistics a weight of 0 ignores are not kept: 0.)
        """
        phi = np.zeros((ids.size, len(CONTROLLER_FEATURES)))
        tau = min(max(float(progress), 0.0), 1.0)
        phi[:, _F["bias"]] = 1.0
        phi[:, _F["depth"]] = self.depth[ids]
        phi[:, _F["log_update_rate"]] = max(-5.0, math.log(count / (max(self.step, 0) + 1.0)))
        phi[:, _F["progress"]] = tau
        phi[:, _F["mid_run"]] = 4.0 * tau * (1.0 - tau)
        if self.uses_loss and not math.isnan(self.fast):
            phi[:, _F["loss_trend"]] = min(1.0, max(-1.0, self.fast - self.slow))
        if self.uses_stats:
            phi[:, _F["rel_log_grad"]] = np.clip(self.r_g[ids] - self.rbar_g[ids], -3.0, 3.0)
            phi[:, _F["log_update_ratio"]] = np.where(self.have[ids], self.ratio[ids], 0.0)
        prev = np.where(self.mult_step[ids] != self.step, self.log_mult[ids], self.prev_mult[ids])
        phi[:, _F["rel_log_lr"]] = prev - self.mean_log_mult if self.uses_rel_lr else 0.0
        return phi

    def scalars(self, ids: Ids, count: int, progress: float, runs: Optional[tuple] = None):
        """``(lr multipliers, gains)``, float64 (len(ids),), for tensors ``ids``; records the
        log multipliers when ``rel_log_lr`` reads them.

        Equal to ``exp(clip(features(ids, ...) @ theta.T))``, computed with the columns
        shared by every tensor of the step (bias, update rate, progress, loss trend)
        folded into one scalar per output, both outputs at once: O(1) NumPy calls per
        segment, whatever its number of tensors (``ids``: an index array or a slice).
        ``runs``: None, or ``(counts, spans)`` when the tensors are in runs at different
        update counts: tensors ``[t0, t1)`` of ``ids`` (``spans[r]``) at count ``counts[r]``
        (``count`` is then unused); the same numbers as one call per run.
        """
        th = self.theta
        if self.native is not None and not self.uses_rel_lr and isinstance(ids, slice):
            return self._fast_scalars(ids, count, progress, runs)
        if runs is None:
            sh = self._sh  # (2, 1): theta @ phi over the shared columns, per output
            sh[0, 0], sh[1, 0] = self._shared(count, progress)
        else:  # (2, len(ids)): each run's shared part over its tensors
            k = runs[1][-1][1]
            sh = self._sh_runs.get(k)
            if sh is None:
                sh = self._sh_runs[k] = np.empty((2, k))
            for c, (t0, t1) in zip(*runs):
                sh[0, t0:t1], sh[1, t0:t1] = self._shared(c, progress)
        key = (ids.start, ids.stop) if isinstance(ids, slice) else None
        views = self._views.get(key)
        if views is None:  # the arrays' views for these tensors (kept for a slice)
            views = (self.depth_term[:, ids], self.stat_term[:, ids])
            if key is not None:
                self._views[key] = views
        out = views[0] + sh
        if self.uses_stats:
            out += views[1]
        if self.uses_rel_lr:
            new = self.mult_step[ids] != self.step
            self.prev_mult[ids] = np.where(new, self.log_mult[ids], self.prev_mult[ids])
            self.mult_step[ids] = self.step
            out += th[:, _F["rel_log_lr"], None] * (self.prev_mult[ids] - self.mean_log_mult)
        np.maximum(out, self._clip_out[0], out=out)
        np.minimum(out, self._clip_out[1], out=out)  # clip, as np.clip, at two ufunc calls
        if self.uses_rel_lr:  # the only reader of the recorded log multipliers
            self.log_mult[ids] = out[0]
        np.exp(out, out=out)
        return out[0], out[1]

    def _fast_scalars(self, ids: slice, count: int, progress: float, runs: Optional[tuple]):
        """:meth:`scalars` in one compiled call (no relative-lr column, a slice of tensors)."""
        t0, t1 = ids.start, ids.stop
        out = np.empty((2, t1 - t0))
        if runs is None:
            s0, s1 = self._shared(count, progress)
            per_run = None
        else:
            s0 = s1 = 0.0
            per_run = tuple([(a, b, *self._shared(c, progress)) for c, (a, b) in zip(*runs)])
        self.native.scalars(self.depth_term, self.stat_term, t0, t1, s0, s1, per_run,
                            self.uses_stats, self.log_clip, out)
        return out[0], out[1]

    def _shared(self, count: int, progress: float):
        """``theta @ phi`` over the columns every tensor of this step shares, per output."""
        tau = min(max(float(progress), 0.0), 1.0)
        trend = (min(1.0, max(-1.0, self.fast - self.slow))
                 if self.uses_loss and not math.isnan(self.fast) else 0.0)
        rate = max(-5.0, math.log(count / (max(self.step, 0) + 1.0)))
        mid = 4.0 * tau * (1.0 - tau)
        (a0, a1, a2, a3, a4), (b0, b1, b2, b3, b4) = self._th_shared
        # the sum over (bias, rate, tau, mid, trend) in this order, from 0.0 as sum() does
        return (0.0 + a0 * 1.0 + a1 * rate + a2 * tau + a3 * mid + a4 * trend,
                0.0 + b0 * 1.0 + b1 * rate + b2 * tau + b3 * mid + b4 * trend)

    def uniform_scalars(self, count: int, progress: float):
        """``(lr multiplier, gain)`` as floats when every tensor gets the same (:attr:`uniform`)."""
        c = self.log_clip
        base = self._shared(count, progress)
        return (math.exp(min(c, max(-c, base[0]))), math.exp(min(c, max(-c, base[1]))))

    def gather(self, k: int, g: np.ndarray, p_before: np.ndarray, p_after: np.ndarray) -> None:
        """Add one sample of tensor ``k`` (strided views, same length) to this step's sums."""
        if g.shape[0] == 0:
            return
        self.mask[k] = self.gathered_any = True  # begin_step finalised earlier sums
        a = self.acc[:, k]  # 0 or of this step
        u = p_after - p_before
        a[0] += float(np.dot(g, g))
        a[1] += float(np.dot(p_after, p_after))
        a[2] += float(np.dot(u, u))
        a[3] += g.shape[0]

    def gather_segment(self, seg, g: np.ndarray, p_before: np.ndarray, p_after: np.ndarray) -> None:
        """:meth:`gather` for every sampled tensor of a segment at once (O(1) NumPy calls).

        ``seg``: a ``models.halo.optimizer.Segment`` (``sample`` positions, per-tensor
        ``sample_starts``, ``sampled`` tensor ids); ``g``, ``p_after``: the segment's
        gradient and updated parameters; ``p_before``: ``params[seg.sample]`` before
        the update (float32 or float64; the compiled sums take float32).  Sums are taken
        in float64.
        """
        if seg.sample.size == 0:
            return
        ids = seg.sampled  # begin_step finalised them: their sums are 0 or of this step
        if self.native is not None and p_before.dtype == np.float32:
            self.native.gather(g, p_after, p_before, seg.sample_first, seg.sample_stride,
                               seg.sample_starts, seg.sampled_ids, seg.sample_counts, self.acc)
        else:
            x, sums = seg.x, seg.sums  # (3, samples) and (4, sampled tensors), row 3 the counts
            if seg.sample_all:  # every element is sampled: slices instead of gathers
                x[0] = g
                x[1] = p_after
            else:
                x[0] = g[seg.sample]
                x[1] = p_after[seg.sample]
            np.subtract(x[1], p_before, out=x[2])
            np.square(x, out=x)
            np.add.reduceat(x, seg.sample_starts, axis=1, out=sums[:3])
            self.acc[:, ids] += sums
        self.gathered_any = True
        if seg.all_tensors:
            self.gathered_all = True
        else:
            self.mask[ids] = True

    def sample_slice(self, k: int, t0: int, a: int, b: int) -> Optional[slice]:
        """The strided sample of tensor ``k`` (starting at ``t0``) inside ``[a, b)``, or None."""
        s = int(self.stride[k])
        first = a + (t0 - a) % s
        return slice(first, b, s) if first < b else None
