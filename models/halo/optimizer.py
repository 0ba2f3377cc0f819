"""The HALO optimizer as an ``Optimizer(name, hyperparameters, init, update)`` over the flat buffer.

``update(params, grads, state, info)`` maps the segment ``[info.lo, info.hi)`` (one or
more whole layers from the Trainer; any range from other callers) to the tensors
inside it, asks the controller for each tensor's learning rate and gain, and runs
the per-parameter kernel over the segment with those folded in (docs/halo.md).

Per-parameter state: ``m`` and ``v`` (2 floats per parameter).  The controller's
per-tensor numbers and the validation level's offset (O(tensors)) are in the state
too (``HaloState.tensors``, a ``TensorLevel`` every segment shares), as optax keeps a
run's state: one optimizer can drive several runs, each from its own ``init``.  Only
the kernel's scratch (O(chunk)) and the per-segment index cache, which depend on the
layout alone, are held by the optimizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from kernels.halo_elementwise import ElementwiseKernel
from kernels.halo_fold import Pieces
from kernels.halo_matmul import MatmulKernel
from kernels.optim_base import Optimizer, StepInfo, TensorLevel
from kernels.optim_common import positive
from models.halo.arch import HaloWeights
from models.halo.controller import Controller
from models.halo.schedule import ValidationSchedule
from models.halo.weights import default_weights_path, load_weights

KERNELS = {"elementwise": ElementwiseKernel, "matmul": MatmulKernel}
KERNEL_CHOICES = ("elementwise", "matmul", "auto")
OPTIONS = ("weights", "kernel", "data_dir")


class HaloTensors(TensorLevel):
    """The run's tensor and global levels: the controller's per-tensor numbers and
    the validation level's offset (None without one)."""

    def __init__(self, ctrl: Controller, sched: Optional[ValidationSchedule]):
        self.ctrl, self.sched = ctrl, sched


class HaloState(NamedTuple):
    """Float32 (n,) arrays ``m`` = sum_i beta1^(t-i) g_i, ``v`` = sum_i beta2^(t-i) g_i^2,
    and ``tensors``, the run's per-tensor state (shared by every segment)."""

    m: np.ndarray
    v: np.ndarray
    tensors: HaloTensors


class Layout(NamedTuple):
    """Where the tensors are: ``starts`` int64 (T+1,) boundaries in the flat buffer,
    ``depth`` float64 (T,) the controller's depth feature, ``names`` (T,)."""

    starts: np.ndarray
    depth: np.ndarray
    names: Tuple[str, ...]

    @property
    def size(self) -> int:
        return int(self.starts[-1])


def net_layout(net) -> Layout:
    """The layout of a ``models.nets.Network``: every tensor, depth from its layer.

    A tensor of trainable layer j of L has depth feature ``1 - 2 (j + 1/2) / L``.
    """
    starts, depth, names = [0], [], []
    n_layers = net.n_layers
    for name, _ in net.params.specs:
        lo, hi = net.params.offsets[name]
        j = next(i for i, (a, b) in enumerate(net.layer_ranges) if a <= lo and hi <= b)
        starts.append(hi)
        depth.append(1.0 - 2.0 * (j + 0.5) / n_layers)
        names.append(name)
    return Layout(np.asarray(starts, np.int64), np.asarray(depth), tuple(names))


def flat_layout(n: int) -> Layout:
    """One tensor of ``n`` elements at depth 0 (a buffer with no network behind it)."""
    return Layout(np.asarray([0, int(n)], np.int64), np.zeros(1), ("params",))


class Segment(NamedTuple):
    """A segment ``[lo, hi)``'s tensors, made once per segment and reused every step.

    ``ids``: ``slice`` of the tensors it touches; ``bounds`` int64: their boundaries in
    segment coordinates (``Pieces.bounds``); ``sample`` int64: the positions of the
    controller's strided statistics samples inside the segment, tensor after tensor;
    ``sample_starts`` int64: where each sampled tensor's run starts in ``sample``;
    ``sample_counts`` float64: its number of samples; ``sampled``: the ids of the
    tensors with at least one sample here (a slice when they are consecutive);
    ``sample_all``: every element of the segment is sampled (``sample`` is ``0..n-1``);
    ``x`` float64 (3, samples) and ``sums`` float64 (4, sampled tensors), row 3 the
    sample counts: the statistics' scratch, allocated once with the segment;
    ``all_tensors``: every tensor of the layout is sampled here; ``sampled_ids`` int64:
    ``sampled`` as an array; ``sample_first``, ``sample_stride`` int64: each sampled
    tensor's run as a strided slice of the segment (what the compiled statistics read);
    ``before32`` float32 (samples,): their scratch for the parameters before the step.
    """

    ids: slice
    bounds: np.ndarray
    sizes: np.ndarray
    sample: np.ndarray
    sample_starts: np.ndarray
    sample_counts: np.ndarray
    sampled: Union[slice, np.ndarray]
    sample_all: bool
    x: np.ndarray
    sums: np.ndarray
    all_tensors: bool
    sampled_ids: np.ndarray
    sample_first: np.ndarray
    sample_stride: np.ndarray
    before32: np.ndarray

    @classmethod
    def of(cls, starts: np.ndarray, lo: int, hi: int, ctrl: Controller) -> Segment:
        first = int(np.searchsorted(starts, lo, side="right")) - 1
        last = int(np.searchsorted(starts, hi, side="left"))
        bounds = np.clip(starts[first:last + 1], lo, hi) - lo
        runs: List[np.ndarray] = []
        sampled: List[int] = []
        firsts: List[int] = []
        strides: List[int] = []
        for k in range(first, last):
            sl = ctrl.sample_slice(k, int(starts[k]) - lo, int(bounds[k - first]),
                                   int(bounds[k - first + 1]))
            if sl is not None:
                runs.append(np.arange(sl.start, sl.stop, sl.step, dtype=np.int64))
                sampled.append(k)
                firsts.append(sl.start)
                strides.append(sl.step)
        lengths = [r.size for r in runs]
        sampled_ids = np.asarray(sampled, np.int64)
        ids: Union[slice, np.ndarray] = sampled_ids
        if sampled and sampled == list(range(sampled[0], sampled[-1] + 1)):
            ids = slice(sampled[0], sampled[-1] + 1)
        bounds = bounds.astype(np.int64)
        sample = np.concatenate(runs) if runs else np.zeros(0, np.int64)
        n = int(bounds[-1])
        counts = np.asarray(lengths, np.float64)
        sums = np.empty((4, counts.size))
        sums[3] = counts
        return cls(slice(first, last), bounds, np.diff(bounds), sample,
                   np.cumsum([0] + lengths[:-1]).astype(np.int64), counts, ids,
                   sample.size == n and bool(np.array_equal(sample, np.arange(n))),
                   np.empty((3, sample.size)), sums, len(sampled) == starts.size - 1,
                   sampled_ids, np.asarray(firsts, np.int64),
                   np.asarray(strides, np.int64), np.empty(sample.size, np.float32))


def _weights(weights: Union[None, str, Path, HaloWeights]) -> Tuple[HaloWeights, str]:
    if isinstance(weights, HaloWeights):
        return weights, "given"
    path = default_weights_path() if weights is None else Path(weights)
    return load_weights(path), str(path)


def make_halo(lr: Optional[float] = None, *, weights: Union[None, str, Path, HaloWeights] = None,
              kernel: str = "elementwise", layout: Optional[Layout] = None,
              data_dir: Optional[Path] = None) -> Optimizer:
    """The HALO optimizer.

    ``lr``: base learning rate (None: the weights' ``base_lr``); the controller's
    per-tensor multipliers scale it.  ``weights``: a path, a ``HaloWeights`` or None
    for the newest shipped version.  ``kernel``: ``elementwise``, ``matmul`` or ``auto``
    (time both on first use per machine and parameter count; cached in
    ``data_dir/kernel-choice.json`` when ``data_dir`` is given).  ``layout``: the
    tensors (None: the buffer given to ``init`` is one tensor).  Raises
    ``ValueError`` for a bad lr or kernel, or unreadable weights (naming the path).
    """
    name = "halo"
    w, source = _weights(weights)
    base_lr = w.base_lr if lr is None else positive(name, "lr", lr)
    if kernel not in KERNEL_CHOICES:
        raise ValueError(f"{name}: kernel must be one of {', '.join(KERNEL_CHOICES)}, "
                         f"got {kernel!r}")
    hp: Dict[str, Any] = {"lr": base_lr, "weights": source, "kernel": kernel,
                          "beta1": w.beta1, "beta2": w.beta2, "eps": w.eps}
    if w.validation is not None:  # the trainer holds out and probes this (models.train)
        hp["validation"] = w.validation.probe()
    run: Dict[str, Any] = {}

    def resolve_kernel(lay: Layout) -> str:
        if kernel != "auto" or "kernel_choice" in hp:
            return hp["kernel"]
        from models.halo.autokernel import choose_kernel

        hp["kernel"], hp["kernel_choice"] = choose_kernel(w, lay, data_dir)
        return hp["kernel"]

    if kernel == "auto" and layout is not None:
        resolve_kernel(layout)

    def init(n: int) -> HaloState:
        lay = layout if layout is not None and layout.size == n else flat_layout(n)
        kname = resolve_kernel(lay)
        run["layout"] = lay
        run["kernel"] = KERNELS[kname](w.mlp, w.beta1, w.beta2, w.eps, max(1, n))
        run["segments"] = {}
        run["splits"] = {}
        ctrl = Controller(w.theta, w.log_clip, np.diff(lay.starts), lay.depth)
        sched = None if w.validation is None else ValidationSchedule(w.validation)
        return HaloState(np.zeros(n, np.float32), np.zeros(n, np.float32), HaloTensors(ctrl, sched))

    def segment(lo: int, hi: int, ctrl: Controller) -> Segment:
        key = (lo, hi)  # depends on the layout only: the same for every run
        seg = run["segments"].get(key)
        if seg is None:
            seg = run["segments"][key] = Segment.of(run["layout"].starts, lo, hi, ctrl)
        return seg

    def update(params: np.ndarray, grads: np.ndarray, state: HaloState, info: StepInfo) -> None:
        if info.hi <= info.lo:
            return
        ctrl = state.tensors.ctrl
        ctrl.begin_step(info.step, info.loss)
        lr = base_lr
        sched = state.tensors.sched
        if sched is not None:  # the validation level's global offset (halo-v3 on)
            sched.begin(info.planned_epochs, info.duplication_skew)
            sched.observe(info.val_loss, info.val_step)
            lr = base_lr * sched.factor
        kern = run["kernel"]
        if ctrl.uniform:  # one lr and gain for the whole segment (halo-v0), or per run
            for a, b, count in (info.runs or ((info.lo, info.hi, info.count),)):
                mult, gain = ctrl.uniform_scalars(count, info.progress)
                a, b = a - info.lo, b - info.lo
                kern.update(params[a:b], grads[a:b], state.m[a:b], state.v[a:b], int(count),
                            [(0, b - a, lr * mult, gain)])
            return
        seg = segment(info.lo, info.hi, ctrl)
        split = None if not info.runs else runs_of(info, seg)
        mult, gain = ctrl.scalars(seg.ids, info.count, info.progress,
                                  None if split is None else ([c for _, _, c in info.runs], split[1]))
        before = None
        fast = ctrl.native
        if ctrl.uses_stats and seg.sample.size:  # params[sample] before the step
            if fast is not None:  # float32: the values are parameters
                before = seg.before32
                fast.take(params, seg.sample_first, seg.sample_stride, seg.sample_starts, before)
            else:
                before = seg.x[2]
                before[...] = params if seg.sample_all else params[seg.sample]
        if split is None:
            kern.update(params, grads, state.m, state.v, int(info.count),
                        Pieces(seg.bounds, lr * mult, gain, seg.sizes))
        else:  # each run as its own call would (its count, its tensors' pieces)
            lrs = lr * mult
            kern.update_runs(params, grads, state.m, state.v, [
                (a, b, int(count), Pieces(bounds, lrs[t0:t1], gain[t0:t1], sizes))
                for (a, b, t0, t1, bounds, sizes), (_, _, count) in zip(split[0], info.runs)])
        if before is not None:
            ctrl.gather_segment(seg, grads, before, params)

    def runs_of(info: StepInfo, seg: Segment) -> tuple:
        """``info.runs`` in segment coordinates: ``([(a, b, t0, t1, bounds, sizes)], spans)``
        per run: its elements ``[a, b)``, its tensors ``[t0, t1)`` of the segment's, their
        ``Pieces`` bounds and sizes, and the ``(t0, t1)`` of every run (made once per split)."""
        key = tuple([(lo, hi) for lo, hi, _ in info.runs]) + ((info.lo, info.hi),)
        got = run["splits"].get(key)
        if got is None:
            edges = [e for lo, hi, _ in info.runs for e in (lo, hi)]
            if edges[0] != info.lo or edges[-1] != info.hi or edges[1:-1:2] != edges[2:-1:2]:
                raise ValueError(f"halo: runs {[(lo, hi) for lo, hi, _ in info.runs]} do not "
                                 f"cover [{info.lo}, {info.hi}) one after another")
            parts, per = [], []
            for lo, hi, _ in info.runs:
                a, b = lo - info.lo, hi - info.lo
                t0 = int(np.searchsorted(seg.bounds, a, side="right")) - 1
                t1 = int(np.searchsorted(seg.bounds, b, side="left"))
                if seg.bounds[t0] != a or seg.bounds[t1] != b:
                    raise ValueError(f"halo: run [{lo}, {hi}) does not start and end at tensors")
                bounds = seg.bounds[t0:t1 + 1] - a
                parts.append((a, b, t0, t1, bounds, np.diff(bounds)))
                per.append((t0, t1))
            got = run["splits"][key] = (parts, per)
        return got

    return Optimizer(name, hp, init, update, runs=True)


def build_halo(net, lr: Optional[float], options: Dict[str, Any]) -> Optimizer:
    """The builder registered in ``models.registry.LEARNED``: HALO for ``net``.

    ``options``: ``weights`` (path or None), ``kernel`` (None: ``auto``),
    ``data_dir`` (where the auto choice is cached; None: not cached).
    """
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"halo: unknown option {unknown[0]!r} = {options[unknown[0]]!r}; "
                         f"known: {', '.join(OPTIONS)}")
    data_dir = options.get("data_dir")
    return make_halo(lr, weights=options.get("weights"), kernel=options.get("kernel") or "auto",
                     layout=net_layout(net), data_dir=None if data_dir is None else Path(data_dir))


def default_sparsity(options: Dict[str, Any]) -> str:
    """The sparsity scheme the weights in ``options`` (``weights``: path or None for the
    newest shipped) were trained for: ``thirds:P1,P2,P3``.  A missing or unreadable
    file raises ``ValueError`` naming the path."""
    from kernels.sparsity import thirds_scheme

    w, _ = _weights(options.get("weights"))
    return thirds_scheme(w.update_probabilities)


def factory(lr: Optional[float] = None, **kwargs: Any) -> Optimizer:
    """``make_halo`` with the shared optimizer test table's calling convention."""
    return make_halo(lr, **kwargs)


__all__ = ["HaloState", "Layout", "make_halo", "build_halo", "net_layout",
           "flat_layout", "factory", "default_sparsity"]
