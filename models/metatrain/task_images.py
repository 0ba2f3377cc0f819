"""MNIST meta-training tasks: random class partitions and domain shifts of MNIST's training images.

Only MNIST's 60000 *training* images are read (``models.data.mnist.load_idx_train``);
its test images never reach meta-training, and HALO's odd/even split (the ``mnist-a``
evaluation task) is never a source/target pair.  Per task, a seeded permutation of
the 60000 indices gives the source domain the first half and the target domain the
second, so no image is in both.  Two kinds of task:

- ``split``: the source model is trained on ``k`` random digits and adapted to ``k``
  *other* digits (2 <= k <= 5); label ``j`` is the ``j``-th digit of a random order,
  so the source head is wrong for every target class.
- ``contrast`` / ``translate`` / ``patch``: the same ``k`` digits in both domains
  (2 <= k <= 5), the target images changed by a per-task shift: a gamma/gain/offset
  intensity change, of inverted polarity in about half the tasks (``contrast``), a
  2-4 pixel translation with zero fill (``translate``), or a fixed random pixel
  permutation of one square patch of 10-20 pixels (``patch``); in about half the
  shift tasks two target classes also swap labels.

Target training sets hold ``shots`` images per class (10 .. 1000); few-shot sets
(<= 30 per class) may be ``oversampled``: repeated until they hold at least
``OVERSAMPLE_ROWS`` rows.  The held-out target set (``val_per_class`` per class) comes
from other target images.  Images are standardised with the source training
images' mean and std.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

import numpy as np

from models.data.mnist import load_idx_train
from models.data.preprocess import image_channel_stats
from models.metatrain.draws import cycle, log_uniform, stream, uniform

N_TRAIN = 60000
INPUT_SHAPE = (28, 28, 1)
SOURCE_TEST_PER_CLASS = 200
OVERSAMPLE_ROWS = 256
KINDS = ("split", "contrast", "translate", "patch")
_ODD, _EVEN = frozenset(range(1, 10, 2)), frozenset(range(0, 10, 2))

Arrays = Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def plan_tasks(sec: Mapping[str, Any], seed: int) -> List[Dict[str, Any]]:
    """The settings of ``sec["tasks"]`` image tasks (JSON-able dicts) from ``seed``.

    Each has ``source`` (everything the source model depends on: digits, data seed,
    sizes) and the target's settings (kind, digits, shift, shots, horizon ...).
    """
    n = int(sec["tasks"])
    s = f"{seed}"
    archs = cycle(sec["archs"], n, seed, "mnist/arch")
    kinds = cycle(sec["kinds"], n, seed, "mnist/kind")
    lo, hi = sec["classes"]
    ks = cycle(list(range(lo, hi + 1)), n, seed, "mnist/classes")
    shots = cycle(sec["shots"], n, seed, "mnist/shots")
    h_cnn = cycle(sec["cnn_horizons"], n, seed, "mnist/horizon-cnn")
    h_mlp = cycle(sec["mlp_horizons"], n, seed, "mnist/horizon-mlp")
    overs = cycle([False, True], n, seed, "mnist/oversample")
    relabel = cycle([False, True], n, seed, "mnist/relabel")
    invert = cycle([False, True], n, seed, "mnist/invert")
    gamma = log_uniform(0.4, 2.5, n, seed, "mnist/gamma")
    gain = uniform(0.5, 1.0, n, seed, "mnist/gain")
    offset = uniform(0.0, 0.3, n, seed, "mnist/offset")
    plans = []
    for i in range(n):
        rng = stream(seed, f"mnist/{i}")
        k, kind = int(ks[i]), kinds[i]
        while True:
            perm = [int(d) for d in rng.permutation(10)]
            src = perm[:k]
            tgt = perm[k:2 * k] if kind == "split" else list(src)
            if {frozenset(src), frozenset(tgt)} != {_ODD, _EVEN}:
                break  # never HALO's own A/B pair
        shift: Dict[str, Any] = {}
        if kind == "contrast":
            shift = {"gamma": round(float(gamma[i]), 4), "gain": round(float(gain[i]), 4),
                     "offset": round(float(offset[i]), 4), "invert": bool(invert[i])}
        elif kind == "translate":
            mag = rng.randint(2, 5, size=2)
            sign = rng.choice([-1, 1], size=2)
            shift = {"dy": int(mag[0] * sign[0]), "dx": int(mag[1] * sign[1])}
        elif kind == "patch":
            size = int(rng.randint(10, 21))
            r, c = (int(v) for v in rng.randint(0, 28 - size + 1, size=2))
            shift = {"size": size, "row": r, "col": c, "perm_seed": int(rng.randint(2 ** 31))}
        if kind != "split" and relabel[i]:
            a, b = (int(v) for v in rng.choice(k, size=2, replace=False))
            shift["swap"] = [a, b]
        arch = archs[i]
        horizon = int((h_mlp if arch.startswith("mlp") else h_cnn)[i])
        few = shots[i] <= 30
        plans.append({
            "index": i, "arch": arch, "kind": kind, "num_classes": k,
            "source": {"dataset": "mnist-train", "digits": src,
                       "data_seed": int(stream(seed, f"mnist/{i}/data").randint(2 ** 31)),
                       "per_class": int(sec["source_per_class"]),
                       "test_per_class": SOURCE_TEST_PER_CLASS},
            "target_digits": tgt, "shift": shift, "shots": int(shots[i]),
            "oversampled": bool(few and overs[i]), "val_per_class": int(sec["val_per_class"]),
            "horizon": horizon, "batch_size": int(sec["batch_size"]),
            "name": _name(i, kind, k, arch, int(shots[i]), horizon, s),
        })
    return plans


def _name(i: int, kind: str, k: int, arch: str, shots: int, horizon: int, seed: str) -> str:
    return f"mnist-s{seed}-{i:02d}-{kind}{k}-{arch}-k{shots}-T{horizon}"


def _pick(pool: np.ndarray, y: np.ndarray, digits: List[int], start: int, count: int
          ) -> Tuple[np.ndarray, np.ndarray]:
    """Rows ``start:start+count`` of each digit's images in ``pool`` order; labels 0..k-1."""
    idx, lab = [], []
    for j, d in enumerate(digits):
        rows = pool[y[pool] == d][start:start + count]
        if len(rows) < count:
            raise ValueError(f"mnist: digit {d} has {len(rows) + start} images in this half, "
                             f"{start + count} needed (lower shots or val_per_class)")
        idx.append(rows)
        lab.append(np.full(len(rows), j, np.int64))
    return np.concatenate(idx), np.concatenate(lab)


def _shift(x: np.ndarray, shift: Mapping[str, Any]) -> np.ndarray:
    """Apply the target's image shift to float images ``(N, 28, 28, 1)`` in [0, 1]."""
    if "gamma" in shift:
        x = 1.0 - x if shift["invert"] else x
        return np.clip(shift["offset"] + shift["gain"] * x ** shift["gamma"], 0.0, 1.0)
    if "dx" in shift:
        dy, dx = shift["dy"], shift["dx"]
        out = np.zeros_like(x)
        h, w = x.shape[1], x.shape[2]
        out[:, max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            x[:, max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        return out
    if "size" in shift:
        s, r, c = shift["size"], shift["row"], shift["col"]
        perm = stream(shift["perm_seed"], "mnist/patch").permutation(s * s)
        out = x.copy()
        patch = x[:, r:r + s, c:c + s].reshape(x.shape[0], s * s, -1)
        out[:, r:r + s, c:c + s] = patch[:, perm].reshape(x.shape[0], s, s, -1)
        return out
    return x


def indices(plan: Mapping[str, Any], y_all: np.ndarray) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Which MNIST training images a task uses: ``{part: (image indices, labels 0..k-1)}``
    for ``source_train``, ``source_test`` (source half), ``target_train`` (oversampled
    when the plan says so) and ``target_val`` (target half); target labels swapped as
    the shift says."""
    src = plan["source"]
    perm = stream(src["data_seed"], "mnist/indices").permutation(N_TRAIN)
    src_pool, tgt_pool = perm[:N_TRAIN // 2], perm[N_TRAIN // 2:]
    out = {"source_train": _pick(src_pool, y_all, src["digits"], 0, src["per_class"]),
           "source_test": _pick(src_pool, y_all, src["digits"], src["per_class"],
                                src["test_per_class"])}
    shots = plan["shots"]
    xi, xy = _pick(tgt_pool, y_all, plan["target_digits"], 0, shots)
    vi, vy = _pick(tgt_pool, y_all, plan["target_digits"], shots, plan["val_per_class"])
    if "swap" in plan["shift"]:
        a, b = plan["shift"]["swap"]
        xy, vy = (np.where(np.isin(y, [a, b]), a + b - y, y) for y in (xy, vy))
    order = stream(src["data_seed"], "mnist/order").permutation(len(xi))
    xi, xy = xi[order], xy[order]
    if plan["oversampled"]:
        reps = math.ceil(OVERSAMPLE_ROWS / len(xi))
        rep = np.tile(np.arange(len(xi)), reps)
        rep = rep[stream(src["data_seed"], "mnist/oversample").permutation(len(rep))]
        xi, xy = xi[rep], xy[rep]
    out["target_train"], out["target_val"] = (xi, xy), (vi, vy)
    return out


def build_task(plan: Mapping[str, Any], data_dir: Path) -> Tuple[Arrays, Arrays]:
    """``(source, target)`` arrays of a planned task: ``(x_train, y_train, x_test, y_test)``
    and ``(x_train, y_train, x_val, y_val)``, float32 NHWC standardised with the source
    training images' statistics, int64 labels 0..k-1."""
    x_all, y_all = load_idx_train("mnist", data_dir)
    parts = indices(plan, y_all)
    mean, std = image_channel_stats(x_all, parts["source_train"][0])
    mean, std = np.float32(mean[0]), np.float32(std[0])

    def prep(part: str, shift: Mapping[str, Any]) -> Tuple[np.ndarray, np.ndarray]:
        idx, y = parts[part]
        x = _shift(x_all[idx].astype(np.float32) / np.float32(255.0), shift)
        return ((x - mean) / std).astype(np.float32), y

    source = prep("source_train", {}) + prep("source_test", {})
    target = prep("target_train", plan["shift"]) + prep("target_val", plan["shift"])
    return source, target


def describe(plan: Mapping[str, Any]) -> str:
    """One line for the task table."""
    src, sh = plan["source"]["digits"], plan["shift"]
    if plan["kind"] == "split":
        return f"digits {src} -> digits {plan['target_digits']}"
    if plan["kind"] == "contrast":
        what = (f"{'inverted, ' if sh['invert'] else ''}gamma {sh['gamma']:.2f}, "
                f"gain {sh['gain']:.2f}, offset {sh['offset']:.2f}")
    elif plan["kind"] == "translate":
        what = f"translated by ({sh['dy']}, {sh['dx']}) px"
    else:
        what = f"{sh['size']}x{sh['size']} patch at ({sh['row']}, {sh['col']}) permuted"
    swap = f", labels {sh['swap'][0]}<->{sh['swap'][1]} swapped" if "swap" in sh else ""
    return f"digits {src}, {what}{swap}"
