"""The HALO optimizer as an ``Optimizer(name, hyperparameters, init, update)`` over the flat buffer.

``update(params, grads, state, info)`` maps the segment ``[info.lo, info.hi)`` (one or
more whole layers from the Trainer; any range from other callers) to the tensors
inside it, asks the controller for each tensor's learning rate and gain, and runs
the per-parameter kernel over the segment with those folded in (docs/halo.md).

Per-parameter state: ``m`` and ``v`` (2 floats per parameter).  Kernel scratch
(O(chunk)) and the controller's per-tensor state (O(tensors)) are made by ``init``
and held by the optimizer: one optimizer instance per run, and ``init`` starts a
fresh run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Optional, Tuple, Union

import numpy as np

from kernels.halo_elementwise import ElementwiseKernel
from kernels.halo_matmul import MatmulKernel
from kernels.optim_base import Optimizer, StepInfo
from kernels.optim_common import positive
from models.halo.arch import HaloWeights
from models.halo.controller import Controller
from models.halo.weights import default_weights_path, load_weights

KERNELS = {"elementwise": ElementwiseKernel, "matmul": MatmulKernel}
KERNEL_CHOICES = ("elementwise", "matmul", "auto")
OPTIONS = ("weights", "kernel", "data_dir")


class HaloState(NamedTuple):
    """Float32 (n,) arrays: ``m`` = sum_i beta1^(t-i) g_i, ``v`` = sum_i beta2^(t-i) g_i^2."""

    m: np.ndarray
    v: np.ndarray


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
        run["ctrl"] = Controller(w.theta, w.log_clip, np.diff(lay.starts), lay.depth)
        run["segments"] = {}
        return HaloState(np.zeros(n, np.float32), np.zeros(n, np.float32))

    def segment(lo: int, hi: int):
        key = (lo, hi)
        seg = run["segments"].get(key)
        if seg is None:
            starts = run["layout"].starts
            first = int(np.searchsorted(starts, lo, side="right")) - 1
            last = int(np.searchsorted(starts, hi, side="left"))
            ids = np.arange(first, last, dtype=np.int64)
            bounds: List[Tuple[int, int, int]] = []
            for k in ids:
                a, b = max(lo, int(starts[k])), min(hi, int(starts[k + 1]))
                bounds.append((a - lo, b - lo, int(starts[k]) - lo))
            seg = run["segments"][key] = (ids, bounds)
        return seg

    def update(params: np.ndarray, grads: np.ndarray, state: HaloState, info: StepInfo) -> None:
        if info.hi <= info.lo:
            return
        ctrl: Controller = run["ctrl"]
        ctrl.begin_step(info.step, info.loss)
        if ctrl.uniform:  # one lr and gain for the whole segment (halo-v0)
            mult, gain = ctrl.uniform_scalars(info.count, info.progress)
            pieces = [(0, info.hi - info.lo, base_lr * mult, gain)]
            run["kernel"].update(params, grads, state.m, state.v, int(info.count), pieces)
            return
        ids, bounds = segment(info.lo, info.hi)
        mult, gain = ctrl.scalars(ids, info.count, info.progress)
        pieces = [(a, b, base_lr * float(mu), float(ga))
                  for (a, b, _), mu, ga in zip(bounds, mult, gain)]
        samples = None
        if ctrl.uses_stats:
            samples = []
            for k, (a, b, t0) in zip(ids, bounds):
                sl = ctrl.sample_slice(int(k), t0, a, b)
                if sl is not None:
                    samples.append((int(k), sl, params[sl].copy()))
        run["kernel"].update(params, grads, state.m, state.v, int(info.count), pieces)
        if samples:
            for k, sl, before in samples:
                ctrl.gather(k, grads[sl], before, params[sl])

    return Optimizer(name, hp, init, update)


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
