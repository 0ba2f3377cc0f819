"""Time HALO's kernels against Adam, HALO's step against a cnn-b training step, sparse vs dense.

Three measurements, each side by side in one process with one BLAS thread
(``threadpool_limits(1)``), interleaved (A, B, A, B, ...) so that drift of a shared
machine hits both sides alike; every ratio is the median of per-round ratios:

1. **Kernel vs Adam** at ``--n`` parameters (default 1e6), one tensor: the
   project's Adam (``kernels.optimizers.adam``) against HALO's elementwise and
   matmul kernels with the newest shipped weights (named in the output), and against the elementwise
   kernel with every MLP weight non-zero (what a fully meta-trained network costs).
2. **HALO step vs training step** (batch 64, random data shaped like MNIST for cnn-b
   and like TDP for the 3-layer MLP): the whole HALO ``update`` of a dense step
   (controller, features, MLP, step) against one dense ``Trainer.step`` (forward,
   backward, HALO update); Adam's update alongside.
3. **Sparse vs dense**: mean ``Trainer.step`` time over ``--steps`` steps with
   HALO's 10/30/50 masks (seeded, steps with no layer cost nothing, as in the
   Trainer) against dense steps.

Usage: ``python -m bench.halo_kernels [--n 1e6] [--rounds 15] [--steps 300] [--json]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Callable, Dict, List

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.halo_elementwise import ElementwiseKernel
from kernels.halo_fold import MirrorMLP
from kernels.halo_matmul import MatmulKernel
from kernels.optim_base import StepInfo
from kernels.optimizers import adam
from kernels.sparsity import parse_sparsity
from models.halo.optimizer import make_halo, net_layout
from models.halo.weights import default_weights_path, load_weights
from models.nets import build_network
from models.train import Trainer


def _timed(f: Callable[[], None]) -> float:
    t0 = time.perf_counter()
    f()
    return time.perf_counter() - t0


def side_by_side(ref: Callable[[], None], others: Dict[str, Callable[[], None]],
                 rounds: int) -> Dict[str, Dict[str, float]]:
    """Median seconds of ``ref`` and each other, and the median per-round ratio to ``ref``."""
    for f in [ref, *others.values()]:
        f()
        f()
    t_ref: List[float] = []
    t_oth: Dict[str, List[float]] = {k: [] for k in others}
    ratios: Dict[str, List[float]] = {k: [] for k in others}
    for _ in range(rounds):
        for name, f in others.items():
            a = _timed(ref)
            b = _timed(f)
            c = _timed(ref)
            t_ref.append((a + c) / 2)
            t_oth[name].append(b)
            ratios[name].append(b / ((a + c) / 2))
    out = {"reference": {"s": statistics.median(t_ref)}}
    for name in others:
        out[name] = {"s": statistics.median(t_oth[name]), "ratio": statistics.median(ratios[name])}
    return out


def kernels_vs_adam(n: int, rounds: int) -> Dict[str, Dict[str, float]]:
    """Measurement 1: one full update of ``n`` parameters, seconds and ratio to Adam."""
    w = load_weights()
    version = default_weights_path().stem
    rng = np.random.default_rng(0)
    g = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    pieces = [(0, n, w.base_lr, 1.0)]
    opt = adam(1e-3)
    ast = opt.init(n)
    pa = rng.standard_normal(n).astype(np.float32)

    def run_adam():
        opt.update(pa, g, ast, StepInfo(10, 0.5, 10, 0, n, 1.0))

    dense = MirrorMLP(np.array([[0.3, 0.7], [0.5, -0.9]]), np.array([0.1, 0.2]),
                      np.array([0.9, 0.2]), np.array([0.1, -0.4]), -0.1)
    cands = {f"elementwise ({version})": ElementwiseKernel(w.mlp, w.beta1, w.beta2, w.eps, n),
             f"matmul ({version})": MatmulKernel(w.mlp, w.beta1, w.beta2, w.eps, n),
             "elementwise (all 15 weights non-zero)": ElementwiseKernel(dense, w.beta1, w.beta2,
                                                                       w.eps, n)}
    funcs = {}
    for name, k in cands.items():
        arrays = (rng.standard_normal(n).astype(np.float32), g, np.zeros(n, np.float32),
                  np.zeros(n, np.float32))
        funcs[name] = (lambda k=k, a=arrays: k.update(a[0], a[1], a[2], a[3], 10, pieces))
    return side_by_side(run_adam, funcs, rounds)


SHAPES = {"cnn-b": ((28, 28, 1), 5), "mlp": ((26,), 4)}
"""Optimizee -> (input shape, classes): cnn-b on MNIST, the 3-layer MLP on TDP."""


def _net(arch: str = "cnn-b", seed: int = 0):
    shape, classes = SHAPES[arch]
    net = build_network(arch, shape, classes, seed=seed)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((64, *shape)).astype(np.float32)
    y = rng.integers(0, classes, 64)
    return net, x, y


def halo_step_vs_train_step(rounds: int, arch: str = "cnn-b") -> Dict[str, Dict[str, float]]:
    """Measurement 2: the HALO update of a dense step against the whole training step."""
    net, x, y = _net(arch)
    opt = make_halo(None, layout=net_layout(net), kernel="elementwise")
    trainer = Trainer(net, opt, None, seed=0)
    n = net.params.size
    p, gr = net.params.data, net.params.grad
    step = [0]

    def full_step():
        trainer.step(x, y, step[0], 0.5)
        step[0] += 1

    def halo_only():
        opt.update(p, gr, trainer.state, StepInfo(step[0], 0.5, step[0] + 1, 0, n, 1.0))
        step[0] += 1

    def adam_like_update():
        a_opt.update(p, gr, a_state, StepInfo(step[0], 0.5, step[0] + 1, 0, n, 1.0))

    a_opt = adam(1e-3)
    a_state = a_opt.init(n)
    full_step()
    return side_by_side(full_step, {"halo update": halo_only, "adam update": adam_like_update},
                        rounds)


def sparse_vs_dense(steps: int, blocks: int = 3) -> Dict[str, float]:
    """Measurement 3: mean seconds per Trainer step, HALO 10/30/50 masks against dense."""
    out = {"dense": [], "sparse": []}
    for b in range(blocks):
        for kind in ("dense", "sparse"):
            net, x, y = _net("cnn-b")
            probs = parse_sparsity("halo", net.n_layers) if kind == "sparse" else None
            tr = Trainer(net, make_halo(None, layout=net_layout(net), kernel="elementwise"),
                         probs, seed=b)
            for t in range(5):
                tr.step(x, y, t, 0.0, mask=np.ones(net.n_layers, bool))
            t0 = time.perf_counter()
            for t in range(steps):
                tr.step(x, y, t, t / steps)
            out[kind].append((time.perf_counter() - t0) / steps)
    ratios = [s / d for s, d in zip(out["sparse"], out["dense"])]
    return {"dense_s": statistics.median(out["dense"]),
            "sparse_s": statistics.median(out["sparse"]),
            "ratio": statistics.median(ratios), "saved": 1.0 - statistics.median(ratios)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=float, default=1e6, help="parameters for measurement 1 (1e6)")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    ap.add_argument("--steps", type=int, default=300, help="Trainer steps per block (300)")
    ap.add_argument("--only", default="1,2,3", help="which measurements (1,2,3)")
    ap.add_argument("--json", action="store_true", help="print JSON")
    args = ap.parse_args(argv)
    which = {int(s) for s in args.only.split(",")}
    res: Dict[str, object] = {"machine": f"{platform.machine()} {platform.processor()}",
                              "numpy": np.__version__, "threads": 1,
                              "halo_weights": default_weights_path().stem}
    with threadpool_limits(1):
        if 1 in which:
            res["kernels_vs_adam"] = kernels_vs_adam(int(args.n), args.rounds)
        if 2 in which:
            res["halo_step_vs_cnn_b_step"] = halo_step_vs_train_step(max(args.rounds, 30))
            res["halo_step_vs_mlp_step"] = halo_step_vs_train_step(max(args.rounds, 30), "mlp")
        if 3 in which:
            res["sparse_vs_dense_cnn_b"] = sparse_vs_dense(args.steps)
    if args.json:
        print(json.dumps(res, indent=1))
        return 0
    print(f"{res['machine']}, numpy {res['numpy']}, 1 thread, HALO weights {res['halo_weights']}; "
          f"ratios are medians of "
          f"interleaved rounds")
    if "kernels_vs_adam" in res:
        r = res["kernels_vs_adam"]
        n = int(args.n)
        print(f"\n1. one update of n = {n:.0f} parameters; Adam {r['reference']['s'] * 1e9 / n:.2f} "
              f"ns/param")
        for k, v in r.items():
            if k != "reference":
                print(f"   {k:40s} {v['s'] * 1e9 / n:6.2f} ns/param   x Adam {v['ratio']:.2f}")
    for arch in ("cnn_b", "mlp"):
        if f"halo_step_vs_{arch}_step" not in res:
            continue
        r = res[f"halo_step_vs_{arch}_step"]
        print(f"\n2. {arch.replace('_', '-')}, batch 64: dense Trainer.step with HALO "
              f"{r['reference']['s'] * 1e3:.3f} ms")
        for k, v in r.items():
            if k != "reference":
                print(f"   {k:40s} {v['s'] * 1e6:7.1f} us   = {100 * v['ratio']:.1f}% of the step")
    if "sparse_vs_dense_cnn_b" in res:
        r = res["sparse_vs_dense_cnn_b"]
        print(f"\n3. cnn-b, batch 64, HALO, {args.steps} steps: dense {r['dense_s'] * 1e3:.2f} ms, "
              f"10/30/50 {r['sparse_s'] * 1e3:.2f} ms per step: sparse/dense {r['ratio']:.3f} "
              f"({100 * r['saved']:.1f}% cheaper)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
