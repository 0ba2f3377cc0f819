"""HALO against Adam at equal work: the update alone, and a whole training step.

``halo-agent bench kernels`` measures, in one process with one BLAS thread
(``threadpool_limits(1)``), side by side and interleaved (Adam, HALO, Adam, ...) so
that drift of a shared machine hits both alike; every ratio is the median of the
per-round ratios, never an absolute time compared across runs:

1. **Update vs Adam** at n = 1e4, 1e5, 1e6 parameters (one tensor): the whole
   ``update`` of the HALO optimizer (controller, features, MLP, step) with each
   weights file (default: every shipped version, labelled by its version) against
   the project's Adam ``update``.
2. **Training step vs training step**: one ``Trainer.step`` (forward, backward,
   update) with HALO against one with Adam, batch 64 of random inputs shaped like
   the task's (gsad-a/mlp, tdp-female/mlp, mnist-a/cnn-b: no dataset needed), both
   dense and at HALO's structural sparsity with the *same* masks for both (same
   seeded mask stream), ``--block`` steps per timed block.
3. **Sparse vs dense**: mean cnn-b ``Trainer.step`` time with HALO's structural
   sparsity against dense steps (what the sparsity saves).
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
from threadpoolctl import threadpool_limits

from bench.compare import machine_info
from kernels import fused
from kernels.optim_base import StepInfo
from kernels.optimizers import adam
from kernels.sparsity import parse_sparsity
from models.data.tasks import get_task
from models.halo.optimizer import default_sparsity, make_halo, net_layout
from models.halo.weights import card_path, load_weights, shipped_versions
from models.nets import build_network
from models.train import Trainer

SIZES = (10_000, 100_000, 1_000_000)
CONTROL = "control: Adam"
"""The ``weights`` label of the null rows: a second Adam where HALO would be."""
STEP_CASES = (("gsad-a", "mlp"), ("tdp-female", "mlp"), ("mnist-a", "cnn-b"))


def shipped_weights() -> List[Path]:
    """Every shipped weights file, oldest version first."""
    return list(shipped_versions().values())


def weights_label(path: Path) -> str:
    """The weights' version (their card's ``version``, else the file name)."""
    card = card_path(path)
    try:
        return str(json.loads(card.read_text()).get("version") or Path(path).stem)
    except (OSError, ValueError):
        return Path(path).stem


def interleaved(ref: Callable[[], None], other: Callable[[], None], rounds: int) -> Dict[str, float]:
    """Median seconds of ``ref`` and ``other`` and the median per-round ratio other/ref.

    Strict alternation, ref, other, ref, other, ..., ref: every timed call follows a call of
    the *other* function, so each finds the caches as the other left them, and round i
    compares other_i with the mean of the refs on either side of it.  (The earlier order,
    ref-other-ref per round, timed every round's first ref straight after the last round's
    second: warm, on its own arrays.  At n = 1e6 that read Adam against a second Adam at
    1.19, not 1; the ``control`` rows of :func:`run_kernels` measure that null case.)"""
    for f in (ref, other, ref, other):
        f()

    def timed(f: Callable[[], None]) -> float:
        t0 = time.perf_counter()
        f()
        return time.perf_counter() - t0

    t_ref = [timed(ref)]
    t_oth: List[float] = []
    for _ in range(rounds):
        t_oth.append(timed(other))
        t_ref.append(timed(ref))
    ratios = [o / ((a + b) / 2) for o, a, b in zip(t_oth, t_ref, t_ref[1:])]
    return {"reference_s": statistics.median(t_ref), "s": statistics.median(t_oth),
            "ratio": statistics.median(ratios), "rounds": rounds}


def update_vs_adam(n: int, weights: Optional[Path], rounds: int) -> Dict[str, float]:
    """Measurement 1: one HALO ``update`` of ``n`` parameters against Adam's.  ``weights``
    None: the null control, a second Adam on its own arrays in HALO's place (reads 1.00
    when the method is fair to the second slot)."""
    rng = np.random.default_rng(0)
    g = (rng.standard_normal(n) * 1e-2).astype(np.float32)
    opt_a = adam(1e-3)
    opt_h = adam(1e-3) if weights is None else make_halo(None, weights=weights, kernel="elementwise")
    st_a, st_h = opt_a.init(n), opt_h.init(n)
    p_a = rng.standard_normal(n).astype(np.float32)
    p_h = p_a.copy()
    step = [0]

    def info() -> StepInfo:
        step[0] += 1
        return StepInfo(step[0], 0.5, step[0], 0, n, 1.0)

    return interleaved(lambda: opt_a.update(p_a, g, st_a, info()),
                       lambda: opt_h.update(p_h, g, st_h, info()), rounds)


def _random_batch(spec) -> Tuple[np.ndarray, np.ndarray]:
    """Batch 64 of seeded random inputs shaped like task ``spec``'s, and random labels."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, *spec.input_shape)).astype(np.float32)
    return x, rng.integers(0, spec.num_classes, 64)


def step_vs_step(task: str, arch: str, weights: Optional[Path], sparse: bool, rounds: int,
                 block: int) -> Dict[str, Any]:
    """Measurement 2: ``block`` Trainer steps with HALO against ``block`` with Adam."""
    spec = get_task(task)
    x, y = _random_batch(spec)
    trainers = []
    probs = None
    for opt_of in (lambda net: adam(1e-3),
                   lambda net: make_halo(None, weights=weights, kernel="elementwise",
                                         layout=net_layout(net))):
        net = build_network(arch, spec.input_shape, spec.num_classes, seed=0)
        if sparse:
            scheme = default_sparsity({"weights": None if weights is None else str(weights)})
            probs = parse_sparsity(scheme, net.n_layers)
        trainers.append([Trainer(net, opt_of(net), probs, seed=0), 0])

    def run(tr):
        def block_of_steps():
            t = tr[1]
            for k in range(block):
                tr[0].step(x, y, t + k, 0.5)
            tr[1] += block
        return block_of_steps

    res = interleaved(run(trainers[0]), run(trainers[1]), rounds)
    res.update(task=task, model=arch, sparsity=None if probs is None else [float(p) for p in probs],
               block_steps=block, params=int(trainers[0][0].net.params.size),
               tensors=len(trainers[0][0].net.params.specs))
    return res


def sparse_vs_dense(steps: int, blocks: int = 3) -> Dict[str, float]:
    """Measurement 3: mean seconds per cnn-b ``Trainer.step`` with HALO's structural
    sparsity (the newest weights' probabilities, seeded masks; steps with no layer cost
    nothing) against dense steps, alternating blocks; the median ratio."""
    out: Dict[str, List[float]] = {"dense": [], "sparse": []}
    spec = get_task("mnist-a")
    x, y = _random_batch(spec)
    for b in range(blocks):
        for kind in ("dense", "sparse"):
            net = build_network("cnn-b", spec.input_shape, spec.num_classes, seed=0)
            probs = (parse_sparsity(default_sparsity({}), net.n_layers) if kind == "sparse"
                     else None)
            tr = Trainer(net, make_halo(None, layout=net_layout(net), kernel="elementwise"),
                         probs, seed=b)
            for t in range(5):
                tr.step(x, y, t, 0.0, mask=np.ones(net.n_layers, bool))
            t0 = time.perf_counter()
            for t in range(steps):
                tr.step(x, y, t, t / steps)
            out[kind].append((time.perf_counter() - t0) / steps)
    ratios = [s / d for s, d in zip(out["sparse"], out["dense"])]
    return {"dense_s": statistics.median(out["dense"]), "sparse_s": statistics.median(out["sparse"]),
            "ratio": statistics.median(ratios), "steps": steps, "blocks": blocks}


def run_kernels(weights: Sequence[Path], sizes: Sequence[int] = SIZES,
                cases: Sequence = STEP_CASES, rounds: int = 15, block: int = 20,
                step_weights: Optional[Path] = None, sparse_steps: int = 100,
                log=print) -> Dict[str, Any]:
    """Both measurements; the report as a dict (ratios HALO/Adam, medians of rounds)."""
    updates = []
    steps = []
    with threadpool_limits(1):
        for n in sizes:
            for w in [None, *weights]:  # None: the Adam-vs-Adam control first
                r = update_vs_adam(int(n), w, rounds)
                r.update(n=int(n), weights=CONTROL if w is None else weights_label(w))
                log(f"update n={n:.0e} {r['weights']}: x Adam {r['ratio']:.2f}")
                updates.append(r)
        for task, arch in cases:
            for sparse in (False, True):
                r = step_vs_step(task, arch, step_weights, sparse, rounds, block)
                log(f"step {task}/{arch} {'sparse' if sparse else 'dense'}: x Adam {r['ratio']:.2f}")
                steps.append(r)
        sparse = sparse_vs_dense(sparse_steps) if sparse_steps else None
    if sparse:
        log(f"cnn-b sparse/dense step: {sparse['ratio']:.2f}")
    w_step = step_weights if step_weights is not None else load_weights_path()
    return {"updates": updates, "steps": steps, "sparse_vs_dense": sparse,
            "step_weights": weights_label(w_step), "threads": 1, "rounds": rounds,
            "implementation": fused.describe(), "machine": machine_info()}


def load_weights_path() -> Path:
    """The newest shipped weights file (what ``make_halo`` uses by default)."""
    from models.halo.weights import default_weights_path

    path = default_weights_path()
    load_weights(path)  # fails here, naming the path, if it is unreadable
    return path


def markdown(report: Dict[str, Any], command: str) -> str:
    m = report["machine"]
    lines = ["# HALO vs Adam: update and training step", "", f"Command: `{command}`", "",
             f"Machine: {m['platform']} ({m['machine']}, {m['cpus']} CPUs), Python {m['python']}, "
             f"NumPy {m['numpy']}, 1 BLAS thread.  Ratios HALO/Adam are medians of "
             f"{report['rounds']} strictly alternating rounds (Adam, HALO, Adam, HALO, ..., Adam: "
             f"each HALO call against the mean of the Adam calls on either side); seconds are "
             f"medians too.  Rows `{CONTROL}` put a second Adam, on its own arrays, in HALO's "
             f"place: the method's null reading, 1.00 when it favours neither slot.  "
             f"HALO's and Adam's updates alike ran as: "
             f"{report.get('implementation', 'NumPy ufunc chains')}.",
             "", "## 1. One update of n parameters (one tensor)", "",
             "| n | weights | Adam (ns/param) | HALO (ns/param) | HALO / Adam |",
             "|---:|---|---:|---:|---:|"]
    for r in report["updates"]:
        lines.append(f"| {r['n']:.0e} | {r['weights']} | {r['reference_s'] * 1e9 / r['n']:.2f} | "
                     f"{r['s'] * 1e9 / r['n']:.2f} | {r['ratio']:.2f} |")
    lines += ["", f"## 2. Whole training step (forward, backward, update), HALO "
                  f"{report['step_weights']} vs Adam, batch 64", "",
              "Same network, inputs and masks for both; sparse: HALO's structural sparsity for "
              "both optimizers.", "",
              "| task/model | params (tensors) | sparsity | Adam step (us) | HALO step (us) | "
              "HALO / Adam |", "|---|---:|---|---:|---:|---:|"]
    for r in report["steps"]:
        sp = "dense" if r["sparsity"] is None else "/".join(f"{p:g}" for p in r["sparsity"])
        lines.append(f"| {r['task']}/{r['model']} | {r['params']} ({r['tensors']}) | {sp} | "
                     f"{r['reference_s'] * 1e6 / r['block_steps']:.0f} | "
                     f"{r['s'] * 1e6 / r['block_steps']:.0f} | {r['ratio']:.2f} |")
    sp = report.get("sparse_vs_dense")
    if sp:
        lines += ["", "## 3. Structural sparsity: cnn-b HALO step, sparse vs dense", "",
                  f"Mean over {sp['steps']} steps per block, median of {sp['blocks']} blocks: dense "
                  f"{sp['dense_s'] * 1e3:.2f} ms, sparse {sp['sparse_s'] * 1e3:.2f} ms per step; "
                  f"sparse / dense = {sp['ratio']:.2f}."]
    return "\n".join(lines) + "\n"

