"""One training step of a network with an optimizer and structural sparsity; seeded batch order."""

from __future__ import annotations

import math
import time
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np

from kernels.layers import cross_entropy_per_example
from kernels.optim_base import Optimizer, StepInfo, slice_state
from kernels.sparsity import adjacent_groups, draw_mask, segments
from models.nets import EVAL_CHUNK, Network


def batch_indices(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Endless mini-batch index arrays: a fresh permutation of ``range(n)`` per epoch.

    The order depends only on ``(n, batch_size, seed)``, so every optimizer run
    with the same seed sees the same batches in the same order.
    """
    if n < 1:
        raise ValueError("cannot draw batches from an empty training split")
    rng = np.random.default_rng([int(seed), 0])
    bs = min(batch_size, n)
    while True:
        perm = rng.permutation(n)
        for s in range(0, n - bs + 1, bs):
            yield perm[s:s + bs]


_GROUP_CHUNK = 4096
"""Rows hashed or compared at a time by :func:`example_groups` (bounds its extra memory)."""


def _byte_rows(x, rows) -> np.ndarray:
    """Examples ``rows`` (a slice or index array) as contiguous byte rows, uint8 (m, bytes):
    a lazily standardised image split gives its stored uint8 pixels (no float32 copy)."""
    sub = _rows(x, rows)
    sub = sub.stored() if hasattr(sub, "stored") else np.asarray(sub)
    sub = np.ascontiguousarray(sub.reshape(sub.shape[0], -1))
    return sub.view(np.uint8).reshape(sub.shape[0], -1)


def _row_chunks(x) -> Iterator[Tuple[int, np.ndarray]]:
    """``(start, rows)``: :func:`_byte_rows` of the examples, a chunk at a time."""
    for a in range(0, x.shape[0], _GROUP_CHUNK):
        yield a, _byte_rows(x, slice(a, a + _GROUP_CHUNK))


def _row_hashes(x) -> np.ndarray:
    """A 64-bit hash of each example's bytes (uint64 (N,)), chunk by chunk."""
    out = np.empty(x.shape[0], np.uint64)
    mul, shift = np.uint64(0x9E3779B97F4A7C15), np.uint64(29)
    for a, rows in _row_chunks(x):
        pad = -rows.shape[1] % 8
        if pad:
            rows = np.concatenate([rows, np.zeros((rows.shape[0], pad), np.uint8)], axis=1)
        words = rows.view(np.uint64)
        h = np.full(rows.shape[0], 0xCBF29CE484222325, np.uint64)
        for w in range(words.shape[1]):
            h ^= words[:, w]
            h *= mul
            h ^= h >> shift
        out[a:a + rows.shape[0]] = h
    return out


def _first_appearance_ids(first: np.ndarray, inverse: np.ndarray) -> np.ndarray:
    """Group ids numbered in order of first appearance, so the ids (and a seeded split by
    them) do not depend on how the examples are stored (uint8 pixels or float32)."""
    rank = np.empty(first.size, np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(first.size)
    return rank[inverse.ravel()]


def example_groups(x: np.ndarray) -> np.ndarray:
    """Group id (int64, (N,)) per example: identical examples share one id, numbered in
    order of first appearance.

    A training split balanced by oversampling (HALO's thyroid task) holds copies of
    the same example; a validation split must keep every copy on one side, or it
    measures memorisation instead of generalisation.  Examples are equal when their
    stored bytes are (uint8 pixels for image splits).  Found by a 64-bit hash of each
    example, then checked byte for byte against its group's first example, a chunk at a
    time, so the extra memory is O(N) integers (sorting the rows themselves held two
    copies of a 60k-image split); a hash collision (never seen) falls back to sorting.
    """
    _, first, inverse = np.unique(_row_hashes(x), return_index=True, return_inverse=True)
    rep = first[inverse.ravel()]  # each example's group's first example
    for a, rows in _row_chunks(x):
        own = rep[a:a + rows.shape[0]]
        other = own != np.arange(a, a + rows.shape[0])
        if other.any() and not np.array_equal(rows[other], _byte_rows(x, own[other])):
            return _example_groups_sorted(x)
    return _first_appearance_ids(first, inverse)


def _example_groups_sorted(x: np.ndarray) -> np.ndarray:
    """:func:`example_groups` by sorting the rows' bytes (the reference; memory: copies)."""
    rows = _byte_rows(x, slice(None))
    keys = rows.view(np.dtype((np.void, rows.shape[1]))).ravel()
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return _first_appearance_ids(first, inverse)


def validation_split(x: np.ndarray, y: np.ndarray, fraction: float, max_examples: int,
                     seed: int, groups: Optional[np.ndarray] = None
                     ) -> Tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: a seeded, per-class split of a training split.

    About ``fraction`` of each class's examples (in all at most ``max_examples``) go to
    validation, in whole groups of identical examples (:func:`example_groups`); a class
    with a single distinct example stays in training.  Raises ``ValueError`` when the
    fraction is outside (0, 0.5] or nothing can be held out.  ``groups``: the
    :func:`example_groups` of ``x`` when the caller has them already.
    """
    if not 0.0 < fraction <= 0.5:
        raise ValueError(f"validation fraction must be in (0, 0.5], got {fraction!r}")
    n = int(y.shape[0])
    if groups is None:
        groups = example_groups(x)
    rng = np.random.default_rng([int(seed), 2])
    quota = min(float(fraction), max(1, int(max_examples)) / max(1, n))
    val = np.zeros(n, dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        ids = np.unique(groups[members])
        if ids.size < 2:
            continue
        rng.shuffle(ids)
        want = quota * members.size
        sizes = np.bincount(groups[members])[ids]
        take = ids[:max(1, int(np.searchsorted(np.cumsum(sizes), want, side="right")))]
        take = take[:ids.size - 1]  # at least one distinct example stays in training
        val[members[np.isin(groups[members], take)]] = True
    if not val.any() or val.all():
        raise ValueError(f"cannot hold out a validation split from {n} examples "
                         f"({np.unique(groups).size} distinct)")
    return np.flatnonzero(~val), np.flatnonzero(val)


def class_error(wrong: np.ndarray, y: np.ndarray, num_classes: int = 0) -> float:
    """Class-balanced error: the mean over the classes present in ``y`` of the fraction of
    their examples that ``wrong`` (bool per example) marks misclassified."""
    count = np.bincount(y, minlength=num_classes)
    per_class = np.bincount(y, weights=wrong.astype(np.float64), minlength=num_classes)
    present = count > 0
    return float(np.mean(per_class[present] / count[present]))


class ValidationProbe:
    """The held-out loss a learned optimizer may watch: every ``every`` steps the trainer
    measures it (forward passes only, in chunks of ``chunk``) before the step's batch.

    The loss is the mean cross-entropy with each class weighted by its share of the
    *training* split over its share of the validation split, so it estimates the loss
    under the distribution the model is trained on (a split balanced by oversampling
    stays balanced).

    ``rollback > 0``: :meth:`keep_best` keeps a copy of the parameters at the best probe
    and restores it when a probe is worse than the best by more than ``rollback`` in log
    ratio of the loss, or with ``on_error`` in absolute class-balanced error (or not
    finite); ``rollbacks`` counts the restores.  0: off, nothing kept.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, train_y: np.ndarray, num_classes: int,
                 every: int, chunk: int = EVAL_CHUNK, planned_epochs: float = math.nan,
                 rollback: float = 0.0, on_error: bool = False, duplication_skew: float = 0.0):
        if every < 1:
            raise ValueError(f"validation every must be >= 1 step, got {every}")
        if not rollback >= 0.0:
            raise ValueError(f"validation rollback must be >= 0 (0: off), got {rollback}")
        self.x, self.y, self.every, self.chunk = x, y, int(every), int(chunk)
        self.rollback = float(rollback)
        self.on_error = bool(on_error)
        self.best = self.best_error = math.inf
        self.snapshot: Optional[np.ndarray] = None
        self.rollbacks = 0
        self.planned_epochs = float(planned_epochs)
        """Passes over the distinct training examples the step budget allows (NaN:
        unknown)."""
        self.duplication_skew = float(duplication_skew)
        """How unevenly the distinct training examples are copied: ``log(n sum c^2 / (sum
        c)^2)`` over their copy counts ``c`` (0: all alike, e.g. no duplicates)."""
        f_train = np.bincount(train_y, minlength=num_classes) / max(1, train_y.shape[0])
        f_val = np.bincount(y, minlength=num_classes) / max(1, y.shape[0])
        w = (f_train / np.maximum(f_val, 1e-12))[y]
        self.weights = (w / w.sum()).astype(np.float64)

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def loss(self, net: Network) -> float:
        return self.measure(net)[0]

    def measure(self, net: Network) -> Tuple[float, float]:
        """``(class-reweighted loss, class-balanced error)`` of ``net`` on the held-out
        examples, from one forward pass: the error is the mean over the classes present of
        the fraction of their examples misclassified (what a balanced test split's
        accuracy measures)."""
        ce = np.empty(self.y.shape[0])
        wrong = np.empty(self.y.shape[0], bool)
        for s in range(0, self.y.shape[0], self.chunk):  # the evaluation's chunk: its buffers
            logits = net.forward(self.x[s:s + self.chunk])
            yb = self.y[s:s + self.chunk]
            ce[s:s + yb.shape[0]] = cross_entropy_per_example(logits, yb)
            wrong[s:s + yb.shape[0]] = logits.argmax(axis=1) != yb
        total = float(np.dot(ce, self.weights))
        return total, class_error(wrong, self.y) if self.y.size else math.nan

    def keep_best(self, params: np.ndarray, loss: float, error: float = math.nan) -> bool:
        """After a probe of ``params`` (the whole flat buffer) with ``loss`` and ``error``:
        remember them if best so far, or restore the best ones if the probe is worse by
        more than the margin.  True when ``params`` were restored.  No-op when ``rollback``
        is 0.  The criterion is the loss (margin in log ratio), or with ``on_error`` the
        class-balanced error (margin absolute, ties broken by the loss)."""
        if self.rollback <= 0.0:
            return False
        finite = math.isfinite(loss) and (not self.on_error or math.isfinite(error))
        if finite and ((error, loss) < (self.best_error, self.best) if self.on_error
                       else loss < self.best):
            self.best, self.best_error = loss, error
            if self.snapshot is None:
                self.snapshot = params.copy()
            else:
                np.copyto(self.snapshot, params)
            return False
        if self.snapshot is None:
            return False
        if finite:
            worse = (error - self.best_error if self.on_error
                     else math.log(max(loss, 1e-300) / max(self.best, 1e-300)))
            if worse <= self.rollback:
                return False
        np.copyto(params, self.snapshot)
        self.rollbacks += 1
        return True


def _rows(x, rows: np.ndarray):
    """``x[rows]``, kept lazy for a lazily standardised image split (``subset``)."""
    return x.subset(rows) if hasattr(x, "subset") else x[rows]


def hold_out_validation(optimizer: Optimizer, x: np.ndarray, y: np.ndarray, num_classes: int,
                        seed: int, steps: Optional[int] = None, batch_size: Optional[int] = None
                        ) -> Tuple[np.ndarray, np.ndarray, Optional[ValidationProbe]]:
    """``(x_train, y_train, probe)`` for an optimizer that asks for a validation probe in
    its hyperparameters (``"validation": {"fraction", "max_examples", "every"}``, and
    optionally ``"rollback"``),
    else ``(x, y, None)``: the held-out examples are taken out of training.  With the
    step budget and batch size, the probe also carries ``planned_epochs``."""
    want = optimizer.hyperparameters.get("validation")
    if not want:
        return x, y, None
    groups = example_groups(x)  # once: the split and the planned epochs both need it
    tr, va = validation_split(x, y, float(want["fraction"]), int(want["max_examples"]), seed,
                              groups=groups)
    epochs = math.nan
    copies = np.unique(groups[tr], return_counts=True)[1].astype(np.float64)  # per distinct example
    if steps and batch_size:
        epochs = float(steps) * min(int(batch_size), tr.size) / max(1, copies.size)
    # the copies of the row a draw lands on, on average (sum c^2 / sum c), over the mean
    # copies of a distinct example (sum c / n): log(1 + CV^2) of the copy counts
    skew = math.log(copies.size * float(np.dot(copies, copies)) / float(copies.sum()) ** 2) \
        if tr.size else 0.0
    probe = ValidationProbe(_rows(x, va), y[va], y[tr], num_classes, int(want["every"]),
                            planned_epochs=epochs, rollback=float(want.get("rollback", 0.0)),
                            on_error=bool(want.get("rollback_on_error", 0.0)),
                            duplication_skew=max(0.0, skew))
    return _rows(x, tr), y[tr], probe


class Trainer:
    """A network, an optimizer and per-layer update probabilities, stepping in place.

    ``probs``: update probability per trainable layer (None: every layer every
    step).  Masks come from their own seeded stream, independent of the batch
    order.  A layer's optimizer state is touched only on steps that update it;
    ``counts[j]`` is how many updates layer ``j`` has had.  ``validation``: a
    :class:`ValidationProbe` measured every ``validation.every`` steps and passed to
    the optimizer in ``StepInfo.val_loss`` (None: no probe, the default).  The update
    is one optimizer call per segment of adjacent updated layers at one count, or, for
    an optimizer with ``Optimizer.runs``, per group of adjacent updated layers
    (``StepInfo.runs`` holds their counts).
    """

    def __init__(self, net: Network, optimizer: Optimizer, probs: Optional[Sequence[float]] = None,
                 seed: int = 0, validation: Optional[ValidationProbe] = None):
        self.net = net
        self.optimizer = optimizer
        self.state = optimizer.init(net.params.size)
        self.probs = None if probs is None else np.asarray(probs, dtype=np.float64)
        if self.probs is not None and self.probs.shape != (net.n_layers,):
            raise ValueError(f"sparsity: {len(self.probs)} probabilities for a model with "
                             f"{net.n_layers} trainable layers")
        self.counts = np.zeros(net.n_layers, dtype=np.int64)
        self.mask_rng = np.random.default_rng([int(seed), 1])
        self.layer_updates = 0  # sum over steps of layers updated (for cost accounting)
        self.validation = validation
        self.val_loss, self.val_step = math.nan, -1
        self.val_probes = 0
        # measured wall time of each part of the steps (for the report's energy split)
        self.seconds = {"forward_backward": 0.0, "optimizer_update": 0.0, "validation_probe": 0.0}

    def next_mask(self) -> np.ndarray:
        """The update mask of the next step (bool per trainable layer)."""
        if self.probs is None:
            return np.ones(self.net.n_layers, dtype=bool)
        return draw_mask(self.probs, self.mask_rng)

    def step(self, xb: np.ndarray, yb: np.ndarray, step: int, progress: float,
             mask: Optional[np.ndarray] = None) -> Optional[float]:
        """Forward, masked backward and optimizer update on one batch.

        Returns the batch loss (nats), or None when the mask updates no layer: then
        nothing is computed at all (no forward pass either).  A validation probe due at
        this step is measured first, whatever the mask.
        """
        probe = self.validation
        if probe is not None and step % probe.every == 0 and step != self.val_step:
            t0 = time.perf_counter()
            (self.val_loss, val_error), self.val_step = probe.measure(self.net), step
            probe.keep_best(self.net.params.data, self.val_loss, val_error)  # off unless asked
            self.val_probes += 1
            self.seconds["validation_probe"] += time.perf_counter() - t0
        if mask is None:
            mask = self.next_mask()
        if not mask.any():
            return None
        net = self.net
        t0 = time.perf_counter()
        loss = net.loss_and_grad(xb, yb, mask)
        t1 = time.perf_counter()
        self.counts[mask] += 1
        self.layer_updates += int(mask.sum())
        p, g = net.params.data, net.params.grad
        ranges, counts = net.layer_ranges, self.counts
        segs = segments(mask, counts)
        if len(segs) > 1 and self.optimizer.runs:  # adjacent ones at once
            calls = [(grp[0][0], grp[-1][1], () if len(grp) == 1 else tuple(
                [(ranges[a][0], ranges[b][1], int(counts[a])) for a, b in grp]))
                for grp in adjacent_groups(segs)]
        else:
            calls = [(first, last, ()) for first, last in segs]
        for first, last, runs in calls:
            lo, hi = ranges[first][0], ranges[last][1]
            info = StepInfo(step=step, progress=progress, count=int(counts[first]),
                            lo=lo, hi=hi, loss=loss, val_loss=self.val_loss,
                            val_step=self.val_step,
                            planned_epochs=math.nan if probe is None else probe.planned_epochs,
                            runs=runs,
                            duplication_skew=0.0 if probe is None else probe.duplication_skew)
            self.optimizer.update(p[lo:hi], g[lo:hi], slice_state(self.state, lo, hi), info)
        t2 = time.perf_counter()
        self.seconds["forward_backward"] += t1 - t0
        self.seconds["optimizer_update"] += t2 - t1
        return loss


def train_steps(trainer: Trainer, x: np.ndarray, y: np.ndarray, steps: int, batch_size: int,
                seed: int) -> List[float]:
    """Run ``steps`` steps over (x, y) with the seeded batch order; the losses of steps taken."""
    losses = []
    it = batch_indices(x.shape[0], batch_size, seed)
    for t in range(steps):
        idx = next(it)
        loss = trainer.step(x[idx], y[idx], t, t / max(1, steps))
        if loss is not None:
            losses.append(loss)
    return losses
