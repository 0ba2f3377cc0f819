"""Distil a pool of hand-designed teachers into HALO's per-parameter MLP (halo-v0).

Optimizer amalgamation (Huang et al. 2022; docs/references.md §2), simplified to one-step
imitation on a shared trajectory:

1. *Trajectory*: cnn-a trained from He init (``--seed``) on the MNIST source split
   (even digits, the source of ``mnist-a``) by Adam at 1e-3, batch 64, ``--steps``
   steps.  At every step each teacher (Adam, RMSProp, SGD-momentum, AddSign,
   PowerSign; the sign ones with the soft tanh sign) updates its own state with the
   same gradient and proposes a step; HALO's features ``x_g``, ``x_m`` and the
   teachers' steps are recorded every other step after the 10th.
2. *Fit* (:func:`fit`): the MLP's weights minimise the mean over teachers of the
   per-tensor cosine distance between the student's step ``-d max(1 + q, 0)`` and
   the teacher's (the controller sets each tensor's scale, so only the shape is
   distilled), plus ``ANCHOR`` x the squared log ratio of the student's per-tensor
   RMS step to Adam's ``m_hat / sigma`` (so ``lr`` keeps Adam's meaning).  Full-batch
   Adam on hand-written gradients, from the Adam-like initialisation, with the
   structure mask :data:`MASK` (the kernel's cost depends on it).
3. *Controller*: :data:`CONTROLLER_V0`, a fixed design (docs/halo.md §3), not fitted.

Reproduce the shipped file (about 20 s on 2 cores; the evaluation against Adam,
which fills the card's table, about 30 s more)::

    python -m models.halo.distill --out models/weights/halo-v0.npz --data-dir DATA --seed 0 \
        --evaluate mnist-a:cnn-b,tdp-female --eval-seeds 0,1,2

The result depends only on the seed and the data (one BLAS thread; bit-identical on
the same machine and libraries).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
from threadpoolctl import threadpool_limits

from kernels.halo_fold import MirrorMLP, untied
from kernels.optim_base import StepInfo
from kernels.optimizers import make_optimizer
from models.halo.arch import CONTROLLER_FEATURES, CONTROLLER_OUTPUTS, MLP_FEATURES, HaloWeights

TEACHERS: Dict[str, Dict] = {
    "adam": {"lr": 1e-3},
    "rmsprop": {"lr": 1e-3, "rho": 0.9},
    "momentum": {"lr": 1e-2, "momentum": 0.9},
    "addsign": {"lr": 1e-2, "temperature": 1.0},
    "powersign": {"lr": 1e-2, "temperature": 1.0},
}
"""The teacher pool (amalgamation's large pool less plain SGD), project implementations."""

ANCHOR = 0.1
"""Weight of the log-RMS anchor to Adam's normalised step."""

MASK = MirrorMLP(w=np.array([[1.0, 1.0], [0.0, 0.0]]), b=np.array([0.0, 0.0]),
                 delta=np.array([1.0, 0.0]), mu=np.array([1.0, 0.0]), b_q=1.0)
"""Which weights are fitted (1) or held at their initial value (0).  One mirror pair,
a learned mix ``z = w . x`` with zero bias, feeds both outputs: ``d = delta z`` and
``q = b_q + mu |z|``; the second pair stays 0.  This is the cheapest structure that
fits the pool about as well as all 15 weights (loss 0.238; two pairs, one per output,
0.235; all free 0.228; Adam-like 0.383) and adapts as well (docs/halo.md §6): 16
elementwise passes, against 19 for the two-pair fit.  The kernels take any weights;
zero ones just cost nothing."""

INIT = MirrorMLP(w=np.array([[0.0, 1.0], [0.0, 0.0]]), b=np.zeros(2),
                 delta=np.array([1.0, 0.0]), mu=np.zeros(2), b_q=0.0)
"""The Adam-like start: ``d = x_m`` exactly (``relu(x_m) - relu(-x_m) = x_m``), ``q = 0``."""

CONTROLLER_V0 = {"log_update_rate": -0.25, "progress": -0.3, "mid_run": 0.3,
                 "loss_trend": -1.0}
"""halo-v0's controller, log lr multiplier row (gain row 0): see docs/halo.md §3."""

BASE_LR_V0 = 1e-2
"""halo-v0's base learning rate: Adam's tuned lr on mnist-a (feasibility.md, Exp 1)."""


# ----------------------------------------------------------------------------- data


def collect(data_dir: Path, steps: int = 300, seed: int = 0, task: str = "mnist-a",
            arch: str = "cnn-a", every: int = 2, log=print, lookahead: bool = False
            ) -> Dict[str, np.ndarray]:
    """Record features and teacher steps along an Adam trajectory on the task's source split.

    Returns ``x`` (R, n, 2) features, ``adam_n`` (R, n) Adam's step at lr 1
    (``m_hat / sigma``), ``teach`` (R, J, n) the teachers' steps, ``bounds`` (T+1,)
    tensor boundaries; one record every ``every`` steps after the first 10.  With
    ``lookahead``, also ``teach_loss`` (R, J): the loss on the next batch after each
    teacher's step alone (what the optimal-choice mechanism chooses by).
    """
    from models.data import load_task

    data = load_task(task, Path(data_dir))
    return collect_on(data.source_train.x, data.source_train.y, data.spec.input_shape,
                      data.spec.num_classes, steps=steps, seed=seed, arch=arch, every=every,
                      log=log, lookahead=lookahead, where=f"{task} source")


def collect_on(xs: np.ndarray, ys: np.ndarray, input_shape, num_classes: int, steps: int = 300,
               seed: int = 0, arch: str = "cnn-a", every: int = 2, log=print,
               lookahead: bool = False, where: str = "given data") -> Dict[str, np.ndarray]:
    """:func:`collect` on arrays (e.g. a meta-training task of the distribution)."""
    from models.nets import build_network
    from models.train import batch_indices

    net = build_network(arch, input_shape, num_classes, seed=seed)
    n = net.params.size
    driver = make_optimizer("adam", 1e-3)
    dstate = driver.init(n)
    teachers = [(name, make_optimizer(name, **kw)) for name, kw in TEACHERS.items()]
    tstates = [opt.init(n) for _, opt in teachers]
    m = np.zeros(n)
    v = np.zeros(n)
    b1, b2, eps = 0.9, 0.999, 1e-8
    rec_x: List[np.ndarray] = []
    rec_a: List[np.ndarray] = []
    rec_t: List[np.ndarray] = []
    rec_l: List[np.ndarray] = []
    it = batch_indices(xs.shape[0], 64, seed)
    p, gbuf = net.params.data, net.params.grad
    idx = next(it)
    for t in range(steps):
        nxt = next(it)
        net.loss_and_grad(xs[idx], ys[idx])
        g = gbuf.copy()
        info = StepInfo(t, 0.0, t + 1, 0, n, 0.0)
        steps_j = []
        for (_, opt), st in zip(teachers, tstates):
            q = p.copy()
            opt.update(q, g, st, info)
            steps_j.append(q.astype(np.float64) - p)
        g64 = g.astype(np.float64)
        m = b1 * m + (1 - b1) * g64
        v = b2 * v + (1 - b2) * g64 * g64
        sigma = np.sqrt(v / (1 - b2 ** (t + 1))) + eps
        xg, xm = g64 / sigma, m / (1 - b1 ** (t + 1)) / sigma
        if t >= 10 and t % every == 0:
            rec_x.append(np.stack([xg, xm], axis=1))
            rec_a.append(-xm)
            rec_t.append(np.stack(steps_j))
            if lookahead:
                p0 = p.copy()
                losses = []
                for step in steps_j:
                    p[...] = p0 + step
                    losses.append(net.evaluate(xs[nxt], ys[nxt])[1])
                p[...] = p0
                rec_l.append(np.array(losses))
        driver.update(p, g, dstate, info)
        idx = nxt
    bounds = np.array([0] + [net.params.offsets[name][1] for name, _ in net.params.specs])
    log(f"distill: {len(rec_x)} records of {n} parameters from {steps} {arch} steps on "
        f"{where}")
    out = {"x": np.stack(rec_x), "adam_n": np.stack(rec_a), "teach": np.stack(rec_t),
           "bounds": bounds}
    if lookahead:
        out["teach_loss"] = np.stack(rec_l)
    return out


# ------------------------------------------------------------------------------ fit


def _forward(mlp: MirrorMLP, x: np.ndarray):
    w1, b1, w2, b2 = untied(mlp)
    pre = x @ w1 + b1  # (..., 4)
    h = np.maximum(pre, 0.0)
    out = h @ w2 + b2
    d, q = out[..., 0], out[..., 1]
    phi = np.maximum(1.0 + q, 0.0)
    return -d * phi, (pre, h, d, q, phi)


def _group_sums(a: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    return np.add.reduceat(a, bounds[:-1], axis=-1)


MECHANISMS = ("mean", "minmax", "choice")
"""Amalgamation mechanisms (Huang et al. 2022, §3): the weight of teacher j at record r is
1/J (mean), 1 for the teacher the student imitates worst at that record and 0 for the
others (min-max: "the worst takes all"), or 1 for the teacher whose step alone gave the
lowest loss on the next batch (optimal choice, an oracle choice per step in place of
the paper's trained LSTM policy; needs ``collect(..., lookahead=True)``)."""


def teacher_weights(mechanism: str, per_teacher: np.ndarray, rec: Dict[str, np.ndarray]
                    ) -> np.ndarray:
    """(R, J) weights of each teacher's loss at each record (rows sum to 1)."""
    r, j = per_teacher.shape
    if mechanism == "mean":
        return np.full((r, j), 1.0 / j)
    if mechanism == "minmax":
        pick = per_teacher.argmax(axis=1)
    elif mechanism == "choice":
        if "teach_loss" not in rec:
            raise ValueError("the choice mechanism needs records made with lookahead=True")
        pick = rec["teach_loss"].argmin(axis=1)
    else:
        raise ValueError(f"mechanism must be one of {', '.join(MECHANISMS)}, got {mechanism!r}")
    w = np.zeros((r, j))
    w[np.arange(r), pick] = 1.0
    return w


def loss_and_grad(mlp: MirrorMLP, rec: Dict[str, np.ndarray], anchor: float = ANCHOR,
                  mechanism: str = "mean"):
    """Distillation loss and its gradient as a ``MirrorMLP`` of partial derivatives.

    Also returns the mean cosine similarity to each teacher, (J,).  ``mechanism``
    weighs the teachers (:data:`MECHANISMS`); ``mean`` is halo-v0's fit, unchanged.
    """
    if mechanism != "mean":
        return _weighted_loss_and_grad(mlp, rec, anchor, mechanism)
    x, teach, adam_n, bounds = rec["x"], rec["teach"], rec["adam_n"], rec["bounds"]
    s, (pre, h, d, q, phi) = _forward(mlp, x)  # s (R, n)
    sizes = np.diff(bounds).astype(np.float64)
    ss = _group_sums(s * s, bounds)  # (R, T)
    ns = np.sqrt(ss) + 1e-30
    n_groups = ss.size
    n_t = teach.shape[1]
    grad_s = np.zeros_like(s)
    loss = 0.0
    cos_mean = np.zeros(n_t)
    for j in range(n_t):
        b = teach[:, j]
        nb = np.sqrt(_group_sums(b * b, bounds)) + 1e-30
        dot = _group_sums(s * b, bounds)
        cos = dot / (ns * nb)
        cos_mean[j] = cos.mean()
        loss += (1.0 - cos).mean() / n_t
        # d(1 - cos)/ds = -(b / (|s||b|) - cos s / |s|^2), per group
        c1 = np.repeat(1.0 / (ns * nb), sizes.astype(int), axis=1)
        c2 = np.repeat(cos / (ns * ns), sizes.astype(int), axis=1)
        grad_s -= (b * c1 - s * c2) / (n_t * n_groups)
    ra = np.sqrt(_group_sums(adam_n * adam_n, bounds))
    lr_log = np.log(ns) - np.log(ra + 1e-30)
    loss += anchor * (lr_log ** 2).mean()
    grad_s += np.repeat(anchor * 2.0 * lr_log / (ns * ns) / n_groups, sizes.astype(int),
                        axis=1) * s
    return _backward(loss, grad_s, mlp, x, pre, h, d, q, phi, cos_mean)


def _weighted_loss_and_grad(mlp: MirrorMLP, rec: Dict[str, np.ndarray], anchor: float,
                            mechanism: str):
    """:func:`loss_and_grad` with per-record teacher weights (:func:`teacher_weights`)."""
    x, teach, adam_n, bounds = rec["x"], rec["teach"], rec["adam_n"], rec["bounds"]
    s, (pre, h, d, q, phi) = _forward(mlp, x)
    sizes = np.diff(bounds).astype(int)
    ss = _group_sums(s * s, bounds)
    ns = np.sqrt(ss) + 1e-30
    n_rec, n_groups = ss.shape
    n_t = teach.shape[1]
    cos = np.empty((n_t,) + ss.shape)
    nbs = np.empty_like(cos)
    for j in range(n_t):
        b = teach[:, j]
        nbs[j] = np.sqrt(_group_sums(b * b, bounds)) + 1e-30
        cos[j] = _group_sums(s * b, bounds) / (ns * nbs[j])
    per_teacher = (1.0 - cos).mean(axis=2).T  # (R, J)
    wts = teacher_weights(mechanism, per_teacher, rec)
    loss = float((wts * per_teacher).sum(axis=1).mean())
    grad_s = np.zeros_like(s)
    for j in range(n_t):
        wr = wts[:, j][:, None] / (n_rec * n_groups)  # (R, 1)
        c1 = np.repeat(wr / (ns * nbs[j]), sizes, axis=1)
        c2 = np.repeat(wr * cos[j] / (ns * ns), sizes, axis=1)
        grad_s -= teach[:, j] * c1 - s * c2
    ra = np.sqrt(_group_sums(adam_n * adam_n, bounds))
    lr_log = np.log(ns) - np.log(ra + 1e-30)
    loss += anchor * float((lr_log ** 2).mean())
    grad_s += np.repeat(anchor * 2.0 * lr_log / (ns * ns) / lr_log.size, sizes, axis=1) * s
    return _backward(loss, grad_s, mlp, x, pre, h, d, q, phi, cos.mean(axis=(1, 2)))


def _backward(loss, grad_s, mlp, x, pre, h, d, q, phi, cos_mean):
    # back through s = -d phi
    g_d = -grad_s * phi
    g_q = -grad_s * d * (1.0 + q > 0.0)
    w1, b1, w2, b2 = untied(mlp)
    h2, gd, gq = h.reshape(-1, 4), g_d.reshape(-1), g_q.reshape(-1)
    g_w2 = np.stack([h2.T @ gd, h2.T @ gq], 1)  # (4, 2)
    g_pre = (gd[:, None] * w2[:, 0] + gq[:, None] * w2[:, 1]) * (pre.reshape(-1, 4) > 0.0)
    g_w1 = x.reshape(-1, x.shape[-1]).T @ g_pre  # (F, 4)
    g_b1 = g_pre.sum(0)
    g_bq = gq.sum()
    # fold the untied gradients back onto the tied parameters
    gw = np.stack([g_w1[:, 0] - g_w1[:, 1], g_w1[:, 2] - g_w1[:, 3]])
    gb = np.array([g_b1[0] + g_b1[1], g_b1[2] + g_b1[3]])
    gdelta = np.array([g_w2[0, 0] - g_w2[1, 0], g_w2[2, 0] - g_w2[3, 0]])
    gmu = np.array([g_w2[0, 1] + g_w2[1, 1], g_w2[2, 1] + g_w2[3, 1]])
    return loss, MirrorMLP(gw, gb, gdelta, gmu, float(g_bq)), cos_mean


def mlp_from_vector(vec: np.ndarray, like: MirrorMLP) -> MirrorMLP:
    """The ``MirrorMLP`` shaped as ``like`` whose weights, flattened in field order, are ``vec``."""
    out, i = [], 0
    for a in like:
        shp = np.shape(a)
        size = int(np.prod(shp)) if shp else 1
        out.append(vec[i:i + size].reshape(shp) if shp else float(vec[i]))
        i += size
    return MirrorMLP(*out)


PERTURBATIONS = ("fixed", "random", "adversarial")
"""Weight perturbations of the student during the fit (amalgamation §3.3): ``fixed``,
Gaussian noise of std ``scale`` (halo-v0: 1e-3); ``random``, Gaussian noise of std
``scale * ||tensor|| / sqrt(size)`` per weight tensor; ``adversarial``, one projected
step up the loss's gradient of length ``scale * ||tensor||`` per tensor (the paper's
PGD attack with depth 1) before the gradient is taken."""


def fit(rec: Dict[str, np.ndarray], init: MirrorMLP = INIT, mask: MirrorMLP = MASK,
        iters: int = 300, lr: float = 0.02, seed: int = 0, log=print, mechanism: str = "mean",
        perturbation: str = "fixed", scale: float = 1e-3) -> Dict:
    """Adam on the masked weights; returns ``{"mlp", "loss", "cos", "history"}``.

    ``seed`` draws the perturbation of the fitted weights at every iteration
    (:data:`PERTURBATIONS`; the defaults are halo-v0's: Gaussian, std 1e-3).
    ``mechanism``: how the teachers' losses are combined (:data:`MECHANISMS`).
    """
    if perturbation not in PERTURBATIONS:
        raise ValueError(f"perturbation must be one of {', '.join(PERTURBATIONS)}, "
                         f"got {perturbation!r}")
    rng = np.random.default_rng(seed)
    flat = np.concatenate([np.ravel(a) for a in init])
    keep = np.concatenate([np.ravel(np.asarray(a, np.float64)) for a in mask]) != 0.0
    shapes = [np.shape(a) for a in init]

    def unflat(vec):
        return mlp_from_vector(vec, init)

    starts = np.cumsum([0] + [int(np.prod(shp)) if shp else 1 for shp in shapes])

    def per_tensor_norm(vec):
        out = np.empty_like(vec)
        for a, b in zip(starts[:-1], starts[1:]):
            out[a:b] = np.linalg.norm(vec[a:b] * keep[a:b])
        return out

    def perturb(vec):
        if perturbation == "fixed":
            return rng.standard_normal(vec.shape) * scale * keep
        sizes = np.repeat(np.diff(starts), np.diff(starts)).astype(np.float64)
        if perturbation == "random":
            return rng.standard_normal(vec.shape) * scale * per_tensor_norm(vec) / np.sqrt(sizes) * keep
        _, g0, _ = loss_and_grad(unflat(vec), rec, mechanism=mechanism)
        g0 = np.concatenate([np.ravel(a) for a in g0]) * keep
        return scale * per_tensor_norm(vec) * g0 / (per_tensor_norm(g0) + 1e-30)

    mom = np.zeros_like(flat)
    sec = np.zeros_like(flat)
    history = []
    for it in range(1, iters + 1):
        noise = perturb(flat)
        loss, grad, cos = loss_and_grad(unflat(flat + noise), rec, mechanism=mechanism)
        gvec = np.concatenate([np.ravel(a) for a in grad]) * keep
        mom = 0.9 * mom + 0.1 * gvec
        sec = 0.999 * sec + 0.001 * gvec * gvec
        flat = flat - lr * (mom / (1 - 0.9**it)) / (np.sqrt(sec / (1 - 0.999**it)) + 1e-8)
        if it == 1 or it % 50 == 0 or it == iters:
            history.append({"iter": it, "loss": round(float(loss), 6)})
            log(f"distill: iter {it} loss {loss:.5f} cos {np.round(cos, 3).tolist()}")
    mlp = unflat(flat)
    loss, _, cos = loss_and_grad(mlp, rec, mechanism=mechanism)
    return {"mlp": mlp, "loss": float(loss), "cos": cos, "history": history}


def controller_theta(row: Optional[Dict[str, float]] = None) -> np.ndarray:
    """The controller matrix (2, features) with the log-lr row from ``row``, gains 0."""
    theta = np.zeros((2, len(CONTROLLER_FEATURES)))
    for name, value in (CONTROLLER_V0 if row is None else row).items():
        theta[0, CONTROLLER_FEATURES.index(name)] = value
    return theta


# ----------------------------------------------------------------------------- main


def _portable(argv: Sequence[str]) -> List[str]:
    """``argv`` with the data directory's value replaced by ``DATA`` (no local paths in cards)."""
    out, skip = [], False
    for a in argv:
        if skip:
            out.append("DATA")
            skip = False
        elif a == "--data-dir":
            out.append(a)
            skip = True
        elif a.startswith("--data-dir="):
            out.append("--data-dir=DATA")
        else:
            out.append(a)
    return out


def model_card(w: HaloWeights, result: Dict, args, runtime_s: float,
               evaluation: Optional[List[Dict]] = None) -> Dict:
    """The JSON model card of a distilled weights file."""
    names = list(TEACHERS)
    mlp = w.mlp
    return {
        "name": Path(args.out).stem,
        "format": "halo-mirror-mlp/1",
        "architecture": {
            "per_parameter": "mirror-pair MLP, 2 features -> 4 ReLU hidden (2 tied pairs) -> "
                             "2 outputs (direction d, magnitude q); "
                             "step = -lr_k * d * max(1 + gamma_k * q, 0)",
            "features": list(MLP_FEATURES),
            "state_per_parameter": ["m = sum beta1^(t-i) g_i", "v = sum beta2^(t-i) g_i^2"],
            "controller": "per tensor: [log lr multiplier, log gain] = clip(theta @ phi, "
                          "+-log_clip)",
            "controller_features": list(CONTROLLER_FEATURES),
            "controller_outputs": list(CONTROLLER_OUTPUTS),
            "constants": {"base_lr": w.base_lr, "beta1": w.beta1, "beta2": w.beta2,
                          "eps": w.eps, "log_clip": w.log_clip},
        },
        "weights": {"w": mlp.w.tolist(), "b": mlp.b.tolist(), "delta": mlp.delta.tolist(),
                    "mu": mlp.mu.tolist(), "b_q": mlp.b_q,
                    "theta_log_lr": dict(zip(CONTROLLER_FEATURES, w.theta[0].tolist()))},
        "provenance": {
            "command": "python -m models.halo.distill " + " ".join(_portable(args.argv)),
            "seed": args.seed, "trajectory": f"cnn-a from He init, Adam 1e-3, batch 64, "
                                              f"{args.steps} steps, mnist-a source split",
            "teachers": TEACHERS, "anchor": ANCHOR, "fit_iters": args.iters,
            "mask": {k: np.asarray(v).tolist() for k, v in MASK._asdict().items()},
            "runtime_s": round(runtime_s, 1), "python": platform.python_version(),
            "numpy": np.__version__, "machine": platform.machine(),
        },
        "distillation": {"loss": round(result["loss"], 6),
                         "cosine_to_teacher": dict(zip(names, np.round(result["cos"], 4).tolist())),
                         "adam_like_cosine": dict(zip(names, np.round(result["cos0"], 4).tolist())),
                         "history": result["history"]},
        "evaluation": evaluation or [],
    }


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m models.halo.distill --out PATH --data-dir DIR [--seed N] ...``."""
    from models.data import resolve_data_dir
    from models.halo.weights import save_weights

    ap = argparse.ArgumentParser(prog="python -m models.halo.distill", description=__doc__.split(
        "\n")[0])
    ap.add_argument("--out", required=True, help="weights file to write (.npz; card .json beside)")
    ap.add_argument("--data-dir", type=Path, default=None, help="data directory with mnist/")
    ap.add_argument("--seed", type=int, default=0, help="seed of init, batches, noise (0)")
    ap.add_argument("--steps", type=int, default=300, help="trajectory steps (300)")
    ap.add_argument("--iters", type=int, default=300, help="fit iterations (300)")
    ap.add_argument("--evaluate", default="", help="comma-separated tasks to evaluate against "
                    "Adam 1e-3 into the card (e.g. mnist-a:cnn-b,tdp-female)")
    ap.add_argument("--eval-seeds", default="0,1,2", help="seeds of the evaluation (0,1,2)")
    args = ap.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    t0 = time.perf_counter()
    data_dir = resolve_data_dir(args.data_dir)
    with threadpool_limits(1):  # one BLAS thread: the same sums, so the same file, anywhere
        rec = collect(data_dir, steps=args.steps, seed=args.seed)
        _, _, cos0 = loss_and_grad(INIT, rec)
        result = fit(rec, iters=args.iters, seed=args.seed)
    result["cos0"] = cos0
    w = HaloWeights(result["mlp"], controller_theta(), BASE_LR_V0)
    runtime = time.perf_counter() - t0
    evaluation = []
    if args.evaluate:
        from models.halo.evaluate import evaluate

        seeds = [int(s) for s in args.eval_seeds.split(",") if s.strip()]
        evaluation = evaluate(w, args.evaluate.split(","), seeds, data_dir)
    save_weights(args.out, w, model_card(w, result, args, runtime, evaluation))
    print(f"wrote {args.out} in {runtime:.1f} s (fit loss {result['loss']:.5f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
