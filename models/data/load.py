"""Build a task's four splits (source/target x train/test), normalised with source-train stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from .cifar import load_cifar10
from .gsad import load_gsad
from .har import load_har
from .lazy import StandardizedImages, lookup_table
from .mnist import ImageSet, load_idx_dataset
from .paths import PathLike, resolve_data_dir
from .preprocess import (
    balance_by_oversampling,
    float_stats,
    image_channel_stats,
    seeded_rng,
    select_classes,
    standardize,
    stratified_split,
)
from .synthetic import DOMAIN_CLASSES, generate_synthetic
from .tasks import TaskSpec, get_task
from .thyroid import load_thyroid

TEST_FRACTION = 0.25


@dataclass(frozen=True)
class Split:
    """One split: ``x`` float32 ``(N, *input_shape)`` (NHWC for images), standardised
    (image tasks: a ``models.data.lazy.StandardizedImages`` over the uint8 pixels,
    converted as it is indexed); ``y`` int64 ``(N,)`` labels 0..num_classes-1."""

    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


@dataclass(frozen=True)
class TaskData:
    """A loaded task. ``norm_mean`` / ``norm_std`` (float64, per channel ``(C,)`` for
    images, per feature ``(F,)`` for tabular data) were computed on the source training
    split (images: on pixel values scaled to [0, 1]) and applied to all four splits, as
    on a board that only knows the pretraining statistics. ``notes``: facts a report
    must repeat (partial data, resampling, batches used)."""

    spec: TaskSpec
    source_train: Split
    source_test: Split
    target_train: Split
    target_test: Split
    norm_mean: np.ndarray
    norm_std: np.ndarray
    notes: List[str] = field(default_factory=list)
    seed: int = 0
    data_dir: Path | None = None

    def sizes(self) -> Dict[str, int]:
        """Sample counts per split."""
        return {k: len(getattr(self, k)) for k in
                ("source_train", "source_test", "target_train", "target_test")}

    def summary(self) -> Dict[str, Any]:
        """A JSON-ready description: task, sizes, seed, data directory and notes."""
        return {"task": self.spec.name, "dataset": self.spec.dataset, "sizes": self.sizes(),
                "seed": self.seed, "data_dir": str(self.data_dir) if self.data_dir else None,
                "notes": list(self.notes)}


def load_task(name: str, data_dir: PathLike | None = None, *, seed: int = 0) -> TaskData:
    """Load task ``name`` from ``data_dir`` (None: ``$HALO_DATA_DIR`` or
    ``~/.local/share/halo-agent``; ignored by tasks with ``needs_files=False``).

    ``seed`` fixes the TDP/GSAD train/test splits, the TDP class-balancing draws and the
    synthetic images (default 0; the official MNIST/Fashion/CIFAR splits do not depend
    on it). Raises UnknownTask, DatasetMissing or DatasetCorrupt (all DataError)."""
    spec = get_task(name)
    if not spec.needs_files:
        return _synthetic(spec, seed)
    root = resolve_data_dir(data_dir)
    if spec.dataset in ("mnist", "fashion-mnist"):
        return _images(spec, load_idx_dataset(spec.dataset, root), seed, root)
    if spec.dataset == "cifar10":
        return _images(spec, load_cifar10(root), seed, root)
    if spec.dataset == "thyroid":
        return _thyroid(spec, root, seed)
    if spec.dataset == "gsad":
        return _gsad(spec, root, seed)
    if spec.dataset == "har":
        return _har(spec, root, seed)
    raise AssertionError(f"no builder for dataset {spec.dataset!r}")  # registry bug


def _images(spec: TaskSpec, raw: ImageSet, seed: int, root: Path) -> TaskData:
    splits: Dict[str, Tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    for role, classes in (("source", spec.source_classes), ("target", spec.target_classes)):
        for part, (xs, ys) in (("train", (raw.train_x, raw.train_y)),
                               ("test", (raw.test_x, raw.test_y))):
            idx, y = select_classes(ys, classes)
            splits[f"{role}_{part}"] = (xs, idx, y)
    xs, idx, _ = splits["source_train"]
    mean, std = image_channel_stats(xs, idx)
    lut = lookup_table(mean, std)
    # uint8 pixels shared with the loader, standardised per batch (models.data.lazy)
    out = {k: Split(StandardizedImages(x, i, lut), y) for k, (x, i, y) in splits.items()}
    notes = list(raw.notes) + [
        f"official {raw.name} train/test files, filtered by class",
        _norm_note(mean, std, "per channel, pixels scaled to [0, 1]"),
    ]
    return TaskData(spec, **out, norm_mean=mean, norm_std=std, notes=notes, seed=seed,
                    data_dir=root)


def _split_domain(x: np.ndarray, y: np.ndarray, seed: int, salt: str, balance: bool
                  ) -> Tuple[Tuple[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray],
                             np.ndarray]:
    """Stratified 75/25 split, optionally oversampling both parts to balance classes.

    HALO (supplement E) re-samples TDP "to adjust the class distributions since
    negative cases dominate"; its accuracies (73.9% on male, 55.7% on female before
    adaptation) are only possible on class-balanced test data (negatives alone are
    85% of the raw female cases), so the test part is balanced too: its accuracy is
    then the mean of the per-class accuracies.
    Returns ``((x_train, y_train), (x_test, y_test), unique_train_x)``."""
    tr, te = stratified_split(y, TEST_FRACTION, seeded_rng(seed, salt + "/split"))
    unique_x = x[tr]
    if balance:
        tr = tr[balance_by_oversampling(y[tr], seeded_rng(seed, salt + "/balance"))]
        te = te[balance_by_oversampling(y[te], seeded_rng(seed, salt + "/balance-test"))]
    return (x[tr], y[tr]), (x[te], y[te]), unique_x


def _tabular(spec: TaskSpec, parts: Dict[str, Tuple[Tuple[np.ndarray, np.ndarray], ...]],
             unique_src_train: np.ndarray, notes: List[str], seed: int, root: Path
             ) -> TaskData:
    mean, std = float_stats(unique_src_train, axis=(0,))
    out = {}
    for role in ("source", "target"):
        (xtr, ytr), (xte, yte) = parts[role]
        out[f"{role}_train"] = Split(standardize(xtr, mean, std), ytr.astype(np.int64))
        out[f"{role}_test"] = Split(standardize(xte, mean, std), yte.astype(np.int64))
    notes.append(_norm_note(mean, std, "per feature, on the source training rows before "
                            "any resampling; constant features get std 1"))
    return TaskData(spec, **out, norm_mean=mean, norm_std=std, notes=notes, seed=seed,
                    data_dir=root)


def _thyroid(spec: TaskSpec, root: Path, seed: int) -> TaskData:
    domains = load_thyroid(root)
    parts, notes, unique_src = {}, [], None
    for role, dom in (("source", spec.source_domain), ("target", spec.target_domain)):
        x, y = domains[dom]
        train, test, unique = _split_domain(x, y, seed, f"thyroid/{dom}", balance=True)
        parts[role] = (train, test)
        if role == "source":
            unique_src = unique
        notes.append(f"{dom}: {len(y)} cases -> {len(unique)} train (oversampled to "
                     f"{len(train[1])}, {_counts(train[1])}) / test oversampled to "
                     f"{len(test[1])} ({_counts(test[1])})")
    return _tabular(spec, parts, unique_src, notes, seed, root)


def _gsad(spec: TaskSpec, root: Path, seed: int) -> TaskData:
    gas = load_gsad(root)
    notes = [f"GSAD batches used: {_join(gas.batches_used)}"
             + (f"; missing: {_join(gas.batches_missing)}" if gas.batches_missing else "")]
    parts, unique_src = {}, None
    for role, classes in (("source", spec.source_classes), ("target", spec.target_classes)):
        idx, y = select_classes(gas.gas, classes)
        salt = "gsad/" + "-".join(str(c) for c in sorted(classes))
        train, test, unique = _split_domain(gas.x[idx], y, seed, salt, balance=False)
        parts[role] = (train, test)
        if role == "source":
            unique_src = unique
        notes.append(f"{role} gases {_join(classes)}: {len(y)} samples -> "
                     f"{len(train[1])} train / {len(test[1])} test")
    return _tabular(spec, parts, unique_src, notes, seed, root)


def _har(spec: TaskSpec, root: Path, seed: int) -> TaskData:
    har = load_har(root)
    parts, notes = {}, ["official UCI HAR train/test files (split by subject), filtered by class"]
    for role, classes in (("source", spec.source_classes), ("target", spec.target_classes)):
        split = []
        for part in ("train", "test"):
            idx, y = select_classes(har[part].y, classes)
            split.append((har[part].x[idx], y))
        parts[role] = tuple(split)
        notes.append(f"{role} activities {_join(classes)}: {len(split[0][1])} train / "
                     f"{len(split[1][1])} test windows")
    return _tabular(spec, parts, parts["source"][0][0], notes, seed, root)


def _synthetic(spec: TaskSpec, seed: int) -> TaskData:
    data = generate_synthetic(seed)
    src = "A" if tuple(spec.source_classes) == DOMAIN_CLASSES["A"] else "B"
    tgt = "B" if src == "A" else "A"
    mean, std = float_stats(data[src]["train"][0], axis=(0, 1, 2))
    out = {}
    for role, dom in (("source", src), ("target", tgt)):
        for part in ("train", "test"):
            x, y = data[dom][part]
            out[f"{role}_{part}"] = Split(standardize(x, mean, std), y)
    notes = [f"procedural glyphs (seed {seed}): domain {src} -> domain {tgt}",
             _norm_note(mean, std, "on pixels in [0, 1]")]
    return TaskData(spec, **out, norm_mean=mean, norm_std=std, notes=notes, seed=seed,
                    data_dir=None)


def _norm_note(mean: np.ndarray, std: np.ndarray, how: str) -> str:
    if mean.size <= 3:
        return (f"standardised with source-train mean {np.round(mean, 4).tolist()} / std "
                f"{np.round(std, 4).tolist()} ({how})")
    return f"standardised with source-train mean/std ({how})"


def _counts(y: np.ndarray) -> str:
    return "per class " + "/".join(str(int(n)) for n in np.bincount(y))


def _join(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)
