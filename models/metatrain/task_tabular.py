"""Procedural tabular meta-training tasks: random teachers, scales over decades, imbalance, shifts.

Each task has a latent ``z`` in ``d`` dimensions (4 .. 64) and ``k`` classes (2 .. 5)
whose labels come from a random *teacher*:

- ``gmm``: every class a mixture of 1-3 Gaussians; class means ``sep`` apart on average
  (``sep`` 2-4 within-class standard deviations), per-dimension spread 0.5-1.5;
- ``mlp``: ``z ~ N(0, C)`` with a random correlation, labels the argmax of a random
  2-layer tanh network (16 hidden units), its output biases set so that the class
  frequencies follow the task's priors.

Class priors fall geometrically from the largest to the smallest class with ratio
``imbalance`` (1 .. 20, i.e. balanced to 1:20); a fraction ``label_noise`` (0 .. 0.15)
of the labels is replaced by another class.  What a model sees is
``x = (z R + delta u) * scale + offset``: per-feature ``scale`` factors spread over up
to ``scale_decades`` decades around a per-task centre, offsets of a few scales.
In the source domain ``R = I, delta = 0``; the target domain rotates the latent
(Givens rotations of 10-60 degrees in random planes), moves its mean by ``delta``
(0.25 .. 1.5 standard deviations), may drift every feature's scale by up to a decade
and may swap two classes' labels.  So the source model's decision boundary is wrong
in a way that adaptation must fix.

Half the tasks standardise features with the source training split's mean and std;
the others hand the raw, badly scaled features to the network (as a board reading
raw sensors would), which is what makes the best step ~100x smaller than on MNIST.
Target training sets have 24 .. 3000 examples; ``oversampled`` ones are balanced by
duplicating minority examples (as HALO's thyroid task is), the held-out set is
balanced the same way from its own examples only, so an example and its duplicates
are on one side.

Mixed feature kinds (spec ``flag_fraction`` / ``heavy_fraction``, both ``[0, 0]`` by
default, which reproduces the pools drawn before they existed): tabular records are
rarely all Gaussian.  A task draws the fraction of its features that are **binary
flags**, ``1[u_j > t_j]`` with a threshold making the flag set in 3-30% of source rows
(no scale, no offset: 0/1 as recorded), and the fraction that are **heavy-tailed**
positive readings, ``scale_j * exp(a_j u_j)`` with ``a_j`` in 0.7-1.5 (log-normal, as
lab values and counts are: a standardised reading can sit tens of standard
deviations out).  ``u = z R + delta u`` is the same pre-scale latent as above, so the
target shift moves flags' frequencies and the readings' tails too.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from models.data.preprocess import balance_by_oversampling, float_stats, standardize
from models.metatrain.draws import cycle, log_uniform, stream, uniform

SOURCE_TEST = 500
MIN_PER_CLASS = 2
HIDDEN = 16

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def plan_tasks(sec: Mapping[str, Any], seed: int) -> List[Dict[str, Any]]:
    """The settings of ``sec["tasks"]`` tabular tasks (JSON-able dicts) from ``seed``."""
    n = int(sec["tasks"])
    archs = cycle(sec["archs"], n, seed, "tab/arch")
    dims = log_uniform(sec["dims"][0], sec["dims"][1] + 1, n, seed, "tab/dims")
    lo, hi = sec["classes"]
    ks = cycle(list(range(lo, hi + 1)), n, seed, "tab/classes")
    teachers = cycle(["gmm", "mlp"], n, seed, "tab/teacher")
    imbalance = log_uniform(1.0, sec["max_imbalance"], n, seed, "tab/imbalance")
    noise = uniform(0.0, sec["max_label_noise"], n, seed, "tab/noise")
    centre = uniform(-1.0, 2.0, n, seed, "tab/scale-centre")
    spread = uniform(0.0, sec["scale_decades"], n, seed, "tab/scale-spread")
    standard = cycle([True, False], n, seed, "tab/standardize")
    sizes = log_uniform(sec["train_size"][0], sec["train_size"][1], n, seed, "tab/size")
    overs = cycle([False, True], n, seed, "tab/oversample")
    angle = uniform(10.0, 60.0, n, seed, "tab/angle")
    delta = uniform(0.25, 1.5, n, seed, "tab/delta")
    drift = uniform(0.0, 1.0, n, seed, "tab/drift")
    relabel = cycle([False, False, True], n, seed, "tab/relabel")
    horizons = cycle(sec["horizons"], n, seed, "tab/horizon")
    batches = cycle(sec["batch_sizes"], n, seed, "tab/batch")
    mixed = max(sec["flag_fraction"][1], sec["heavy_fraction"][1]) > 0.0
    flags = uniform(*sec["flag_fraction"], n, seed, "tab/flags")
    heavy = uniform(*sec["heavy_fraction"], n, seed, "tab/heavy")
    plans = []
    for i in range(n):
        d, k = int(dims[i]), int(ks[i])
        size = int(round(sizes[i]))
        src = {"dataset": "procedural", "dims": d, "classes": k, "teacher": teachers[i],
               "imbalance": round(float(imbalance[i]), 3),
               "label_noise": round(float(noise[i]), 4),
               "scale_centre": round(float(centre[i]), 3),
               "scale_spread": round(float(spread[i]), 3),
               "standardize": bool(standard[i]), "size": int(sec["source_size"]),
               "test_size": SOURCE_TEST,
               "data_seed": int(stream(seed, f"tab/{i}/data").randint(2 ** 31))}
        kinds = ""
        if mixed:  # only then: pools of specs without mixed features keep their plans and keys
            n_flag = int(round(float(flags[i]) * d))
            n_heavy = min(d - n_flag, int(round(float(heavy[i]) * d)))
            src.update(flags=n_flag, heavy=n_heavy)
            kinds = f"-f{n_flag}h{n_heavy}"
        shift = {"angle_deg": round(float(angle[i]), 2), "delta": round(float(delta[i]), 3),
                 "drift_decades": round(float(drift[i]), 3), "swap": bool(relabel[i])}
        tag = "std" if src["standardize"] else "raw"
        name = (f"tab-s{seed}-{i:02d}-{teachers[i]}-d{d}-c{k}-n{size}"
                f"{'o' if overs[i] else ''}-imb{imbalance[i]:.0f}-{tag}{kinds}-{archs[i]}-T{horizons[i]}")
        plans.append({"index": i, "arch": archs[i], "kind": teachers[i], "num_classes": k,
                      "source": src, "shift": shift, "train_size": size,
                      "oversampled": bool(overs[i]), "val_size": int(sec["val_size"]),
                      "horizon": int(horizons[i]), "batch_size": int(batches[i]), "name": name})
    return plans


def _priors(k: int, imbalance: float, rng: np.random.RandomState) -> np.ndarray:
    p = imbalance ** (-np.arange(k) / max(1, k - 1))
    return (p / p.sum())[rng.permutation(k)]


def _counts(n: int, priors: np.ndarray) -> np.ndarray:
    return np.maximum(np.round(n * priors).astype(np.int64), MIN_PER_CLASS)


class _Teacher:
    """A task's label function over the latent space, drawn from the task's data seed."""

    def __init__(self, src: Mapping[str, Any]):
        rng = stream(src["data_seed"], "tab/teacher")
        d, k = src["dims"], src["classes"]
        self.kind, self.d, self.k, self.seed = src["teacher"], d, k, src["data_seed"]
        self.priors = _priors(k, src["imbalance"], rng)
        if self.kind == "gmm":
            sep = rng.uniform(2.0, 4.0)
            self.means = [rng.standard_normal((1 + rng.randint(3), d)) * 0.7 * sep / np.sqrt(2 * d)
                          + rng.standard_normal(d) * sep / np.sqrt(2 * d) for _ in range(k)]
            self.spread = rng.uniform(0.5, 1.5, size=d)
        else:
            self.mix = np.eye(d) + rng.standard_normal((d, d)) / np.sqrt(d)
            self.w1 = rng.standard_normal((d, HIDDEN)) * rng.uniform(1.0, 3.0) / np.sqrt(d)
            self.w2 = rng.standard_normal((HIDDEN, k))
            self.b2 = np.zeros(k)
            probe = rng.standard_normal((4096, d)) @ self.mix
            h = np.tanh(probe @ self.w1) @ self.w2
            for _ in range(30):  # output biases: class frequencies follow the priors
                freq = np.bincount((h + self.b2).argmax(1), minlength=k) / len(h)
                self.b2 += 0.5 * np.log(self.priors / np.maximum(freq, 1e-3))

    def sample(self, n: int, rng: np.random.RandomState) -> Tuple[np.ndarray, np.ndarray]:
        """``n`` latents (n, d) and clean labels drawn with the priors (every class >= 2)."""
        counts = _counts(n, self.priors)
        if self.kind == "gmm":
            zs = []
            for c, m in enumerate(counts):
                comp = self.means[c][rng.randint(len(self.means[c]), size=m)]
                zs.append(comp + rng.standard_normal((m, self.d)) * self.spread)
            z = np.concatenate(zs)
            y = np.repeat(np.arange(self.k), counts)
        else:
            z_parts: List[List[np.ndarray]] = [[] for _ in range(self.k)]
            have = np.zeros(self.k, np.int64)
            for _ in range(200):
                z = rng.standard_normal((max(4 * n, 512), self.d)) @ self.mix
                lab = (np.tanh(z @ self.w1) @ self.w2 + self.b2).argmax(1)
                for c in range(self.k):
                    take = z[lab == c][:counts[c] - have[c]]
                    z_parts[c].append(take)
                    have[c] += len(take)
                if (have >= counts).all():
                    break
            else:
                raise ValueError(f"tabular teacher (data_seed {self.seed}): its class frequencies "
                                 f"{have.tolist()} cannot reach the counts {counts.tolist()} with "
                                 f"{self.d} dimensions and {self.k} classes; lower the spec's "
                                 "tabular.classes or raise tabular.dims")
            z = np.concatenate([np.concatenate(p) for p in z_parts])
            y = np.repeat(np.arange(self.k), counts)
        order = rng.permutation(len(y))
        return z[order], y[order]


def _noisy(y: np.ndarray, k: int, rate: float, rng: np.random.RandomState) -> np.ndarray:
    flip = rng.uniform(size=len(y)) < rate
    other = (y + rng.randint(1, k, size=len(y))) % k
    return np.where(flip, other, y).astype(np.int64)


def _rotation(d: int, angle_deg: float, rng: np.random.RandomState) -> np.ndarray:
    r = np.eye(d)
    a = np.deg2rad(angle_deg)
    for _ in range(max(1, d // 2)):
        i, j = rng.choice(d, size=2, replace=False)
        g = np.eye(d)
        g[i, i] = g[j, j] = np.cos(a)
        g[i, j], g[j, i] = -np.sin(a), np.sin(a)
        r = r @ g
    return r


def _feature_kinds(src: Mapping[str, Any]
                   ) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the flag and heavy-tailed features, the flags' thresholds and the
    tails' exponents (all empty for a task without mixed features)."""
    n_flag, n_heavy = int(src.get("flags", 0)), int(src.get("heavy", 0))
    rng = stream(src["data_seed"], "tab/kinds")  # its own stream: no other draw moves
    order = rng.permutation(src["dims"])
    # standard-normal tails of 30% .. 3%: the flag is set in that share of source rows
    thresh = rng.uniform(0.52, 1.88, size=n_flag)
    return (order[:n_flag], order[n_flag:n_flag + n_heavy], thresh,
            rng.uniform(0.7, 1.5, size=n_heavy))


def build_task(plan: Mapping[str, Any]) -> Tuple[Arrays, Arrays]:
    """``(source, target)`` arrays of a planned task: ``(x_train, y_train, x_test, y_test)``
    and ``(x_train, y_train, x_val, y_val)``; float32 features (standardised with the
    source training split's statistics when ``standardize``), int64 labels 0..k-1."""
    src, sh = plan["source"], plan["shift"]
    teacher = _Teacher(src)
    d, k = src["dims"], src["classes"]
    rng = stream(src["data_seed"], "tab/observe")
    scale = 10.0 ** (src["scale_centre"] + src["scale_spread"] * rng.uniform(-0.5, 0.5, d))
    offset = scale * rng.standard_normal(d) * 3.0
    flag, heavy, thresh, tail = _feature_kinds(src)
    srng = stream(src["data_seed"], "tab/source")

    def observe(z: np.ndarray, rot: np.ndarray, shift: np.ndarray, sc: np.ndarray) -> np.ndarray:
        u = z @ rot + shift
        x = u * sc + offset
        x[:, heavy] = sc[heavy] * np.exp(np.clip(tail * u[:, heavy], -30.0, 30.0))
        x[:, flag] = (u[:, flag] > thresh).astype(x.dtype)
        return x

    def draw(n: int, r: np.random.RandomState, rot, shift, sc, swap=None):
        z, y = teacher.sample(n, r)
        y = _noisy(y, k, src["label_noise"], r)
        if swap is not None:
            y = np.where(np.isin(y, swap), swap[0] + swap[1] - y, y)
        return observe(z, rot, shift, sc), y

    eye, zero = np.eye(d), np.zeros(d)
    xs, ys = draw(src["size"], srng, eye, zero, scale)
    xs_test, ys_test = draw(src["test_size"], srng, eye, zero, scale)

    trng = stream(src["data_seed"] ^ 0x5EED, "tab/target")
    rot = _rotation(d, sh["angle_deg"], trng)
    u = trng.standard_normal(d)
    shift = sh["delta"] * u / np.linalg.norm(u)
    sc = scale * 10.0 ** (sh["drift_decades"] * trng.uniform(-1.0, 1.0, d))
    swap = [int(c) for c in trng.choice(k, size=2, replace=False)] if sh["swap"] else None
    xt, yt = draw(plan["train_size"], trng, rot, shift, sc, swap)
    xv, yv = draw(plan["val_size"], trng, rot, shift, sc, swap)
    if plan["oversampled"]:
        bi = balance_by_oversampling(yt, trng)
        xt, yt = xt[bi], yt[bi]
        bi = balance_by_oversampling(yv, trng)
        xv, yv = xv[bi], yv[bi]
    if src["standardize"]:
        mean, std = float_stats(xs, (0,))
    else:
        mean, std = np.zeros(d), np.ones(d)
    f = [standardize(a, mean, std) for a in (xs, xs_test, xt, xv)]
    return (f[0], ys, f[1], ys_test), (f[2], yt, f[3], yv)


def describe(plan: Mapping[str, Any]) -> str:
    """One line for the task table."""
    s = plan["source"]
    return (f"{s['teacher']} teacher, {s['dims']} features, {s['classes']} classes, "
            f"imbalance 1:{s['imbalance']:.1f}, noise {s['label_noise']:.2f}, "
            f"scales 10^({s['scale_centre']:.1f}+-{s['scale_spread'] / 2:.1f}), "
            f"{'standardised' if s['standardize'] else 'raw'}, rotate "
            f"{plan['shift']['angle_deg']:.0f} deg, shift {plan['shift']['delta']:.2f}"
            f"{', swap 2 labels' if plan['shift']['swap'] else ''}"
            + (f", {s['flags']} binary flags, {s['heavy']} heavy-tailed" if "flags" in s else ""))
