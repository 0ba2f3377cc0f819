"""``python -m bench.reversal``: run T steps of exactly reversible SGD with momentum on a
built-in network forward, then T steps back, and report whether the initial weights and
velocity came back bit for bit and how large the information buffer grew.

The data are seeded random images/vectors of the model's usual input shape (the
reversal does not depend on what is learnt); the gradients are the network's own
(float32, as the engine runs it), recomputed from the restored weights on the way back.
Writes a JSON report (``--out``); nothing is timed against a target.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.reversible import RADIX_BITS, ReversibleMomentum, bits_lost_per_step, rational_decay
from models.nets import Network
from models.train import batch_indices

SHAPES = {"mlp": (21,), "cnn-a": (28, 28, 1), "cnn-b": (28, 28, 1), "cnn-c": (28, 28, 1)}


def reversal_check(arch: str = "cnn-a", steps: int = 500, update_p: float = 1.0,
                   momentum: float = 0.9, batch: int = 8, seed: int = 0) -> Dict[str, Any]:
    """Forward ``steps`` steps then back; the figures of the round trip as a dict.

    ``update_p``: probability that a layer is updated in a step (1: dense); per-layer
    learning rates 0.02, 0.01, 0.005, ... from the input.  One BLAS thread.
    """
    with threadpool_limits(limits=1):
        return _round_trip(arch, steps, update_p, momentum, batch, seed)


def _round_trip(arch, steps, update_p, momentum, batch, seed) -> Dict[str, Any]:
    rng = np.random.default_rng([seed, 3])
    net = Network(arch, SHAPES[arch], 10).init(seed)
    x = rng.standard_normal((16 * batch,) + SHAPES[arch]).astype(np.float32)
    y = rng.integers(0, 10, x.shape[0])
    it = batch_indices(x.shape[0], batch, seed)
    batches = [next(it) for _ in range(steps)]
    masks = rng.random((steps, net.n_layers)) < update_p
    lrs = [0.02 / 2 ** j for j in range(net.n_layers)]
    decay = rational_decay(momentum)
    rm = ReversibleMomentum(net.params.data)
    w0, v0 = rm.w.copy(), rm.v.copy()

    def plan(t: int):
        js = [j for j in range(net.n_layers) if masks[t, j]]
        return [net.layer_ranges[j] for j in js], [lrs[j] for j in js], [decay] * len(js)

    def grad(t: int, w: np.ndarray) -> np.ndarray:
        net.params.data[...] = w
        net.loss_and_grad(x[batches[t]], y[batches[t]], masks[t])
        return net.params.grad.astype(np.float64)

    t0 = time.monotonic()
    for t in range(steps):
        segs, lr, dec = plan(t)
        rm.forward(grad(t, rm.weights), segs, lr, dec)
    forward_s = time.monotonic() - t0
    moved = float(np.abs(rm.w - w0).max()) / 2.0 ** RADIX_BITS
    bits = rm.buffer_bits()
    updates = int(sum(net.layer_ranges[j][1] - net.layer_ranges[j][0]
                      for t in range(steps) for j in range(net.n_layers) if masks[t, j]))
    t0 = time.monotonic()
    for t in range(steps - 1, -1, -1):
        segs, lr, dec = plan(t)
        rm.reverse(lambda w, t=t: grad(t, w), segs, lr, dec)
    return {
        "model": arch, "steps": steps, "update_probability": update_p, "momentum": momentum,
        "momentum_ratio": list(decay), "radix_bits": RADIX_BITS, "n_params": net.params.size,
        "max_weight_change": moved,
        "weights_restored_bit_for_bit": bool(np.array_equal(rm.w, w0)),
        "velocity_restored_bit_for_bit": bool(np.array_equal(rm.v, v0)),
        "buffer_empty_after_reversal": rm.info.is_empty(),
        "buffer_bits": bits, "buffer_kib": round(bits / 8192, 2), "element_updates": updates,
        "buffer_bits_per_element_update": bits / updates,
        "bits_lost_per_decay": bits_lost_per_step(momentum),
        "float64_trajectory_bits": 64 * updates,
        "forward_seconds": round(forward_s, 3), "reverse_seconds": round(time.monotonic() - t0, 3),
    }


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.reversal", description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=sorted(SHAPES), default="cnn-a")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--update-p", type=float, action="append",
                   help="layer update probability (repeatable; default: 1 and 0.5)")
    p.add_argument("--out", type=Path, default=None, help="write the JSON report here")
    args = p.parse_args(argv)
    runs = [reversal_check(args.model, args.steps, u) for u in (args.update_p or [1.0, 0.5])]
    text = json.dumps({"command": "python -m bench.reversal " + " ".join(argv or sys.argv[1:]),
                       "runs": runs}, indent=1)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return 0 if all(r["weights_restored_bit_for_bit"] and r["velocity_restored_bit_for_bit"]
                    for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
