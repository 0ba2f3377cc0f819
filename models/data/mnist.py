"""MNIST and Fashion-MNIST loaders: the four IDX files of the official train/test split."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import List, Tuple

import numpy as np

from .catalogue import get_dataset
from .errors import DatasetCorrupt
from .idx import MAGIC_IMAGES, MAGIC_LABELS, read_idx
from .inventory import require
from .rawio import cache_key

MNIST_CLASSES = tuple(str(d) for d in range(10))
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class ImageSet:
    """An image classification dataset with its official split.

    ``train_x``/``test_x``: uint8 ``(N, H, W, C)`` (NHWC, 0-255, read-only, shared by the
    per-process cache); ``train_y``/``test_y``: uint8 ``(N,)`` class ids.
    ``notes``: facts a report must carry (e.g. a partial test set)."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    class_names: Tuple[str, ...]
    notes: Tuple[str, ...] = field(default=())


@lru_cache(maxsize=8)
def _read_pair(images_key: Tuple[str, int, int], labels_key: Tuple[str, int, int]
               ) -> Tuple[np.ndarray, np.ndarray]:
    images = read_idx(Path(images_key[0]), MAGIC_IMAGES)
    labels = read_idx(Path(labels_key[0]), MAGIC_LABELS)
    if images.shape[0] != labels.shape[0]:
        raise DatasetCorrupt(
            f"{images_key[0]} has {images.shape[0]} images but {labels_key[0]} has "
            f"{labels.shape[0]} labels", path=images_key[0])
    if labels.size and int(labels.max()) > 9:
        raise DatasetCorrupt(f"{labels_key[0]}: label {int(labels.max())} outside 0..9",
                             path=labels_key[0])
    return images[..., None], labels


def load_idx_dataset(name: str, data_dir: Path) -> ImageSet:
    """Load ``mnist`` or ``fashion-mnist`` from ``data_dir/<name>/``.

    Returns an :class:`ImageSet` with uint8 images ``(60000, 28, 28, 1)`` train and
    ``(10000, 28, 28, 1)`` test. Parsed arrays are cached per process (keyed by resolved
    path, size and mtime). Raises DatasetMissing / DatasetCorrupt naming the file."""
    info = get_dataset(name)
    data_dir = Path(data_dir)
    parts: List[np.ndarray] = []
    for split in ("train", "t10k"):
        img, _ = require(info, data_dir, f"{split}-images")
        lab, _ = require(info, data_dir, f"{split}-labels")
        parts.extend(_read_pair(cache_key(img), cache_key(lab)))
    classes = MNIST_CLASSES if name == "mnist" else FASHION_CLASSES
    return ImageSet(name, parts[0], parts[1], parts[2], parts[3], classes)


def load_idx_train(name: str, data_dir: Path) -> Tuple[np.ndarray, np.ndarray]:
    """Only the *training* split of ``mnist`` or ``fashion-mnist``: ``(x, y)``, uint8
    ``(60000, 28, 28, 1)`` and ``(60000,)``, read-only. The test files are neither opened
    nor required (what meta-training uses, so that no test image can reach it)."""
    info = get_dataset(name)
    img, _ = require(info, Path(data_dir), "train-images")
    lab, _ = require(info, Path(data_dir), "train-labels")
    return _read_pair(cache_key(img), cache_key(lab))


def clear_cache() -> None:
    """Drop the parsed arrays held by the per-process cache."""
    _read_pair.cache_clear()
