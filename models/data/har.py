"""UCI HAR (human activity recognition using smartphones, UCI 240) loader: the 561
engineered features of each 2.56 s window, the activity (1..6) and the subject (1..30).

Files as UCI ships them, under ``DATA_DIR/har/`` (each may be gzip-compressed):
``train/X_train.txt`` (7352 lines of 561 space-separated floats in ``-1..1``, e.g.
``2.8858451e-001``), ``train/y_train.txt`` (one activity id per line),
``train/subject_train.txt``, and the same for ``test`` (2947 lines).  The official split
is by subject (21 train, 9 test volunteers), so the test split holds people the model
never saw.  ``halo-agent data fetch har`` downloads them from UCI.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, Tuple

import numpy as np

from .catalogue import get_dataset
from .errors import DatasetCorrupt
from .inventory import locate, missing_error
from .rawio import cache_key, read_bytes

N_FEATURES = 561
#: Activity names by UCI id (``activity_labels.txt``), zero-based in the tasks.
ACTIVITIES = ("walking", "walking_upstairs", "walking_downstairs", "sitting", "standing",
              "laying")


@dataclass(frozen=True)
class HarSplit:
    """One official split: ``x`` float64 ``(N, 561)``, ``y`` int64 ``(N,)`` zero-based
    activity, ``subject`` int64 ``(N,)`` (all -1 when the subject file is absent)."""

    x: np.ndarray
    y: np.ndarray
    subject: np.ndarray


def _numbers(text: str, source: str, dtype, per_line: int) -> np.ndarray:
    """Whitespace-separated numbers, ``per_line`` on every non-empty line."""
    rows = []
    for lineno, line in enumerate(text.splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != per_line:
            raise DatasetCorrupt(f"{source}:{lineno}: {len(parts)} values, expected {per_line}",
                                 path=source)
        rows.append(parts)
    if not rows:
        raise DatasetCorrupt(f"{source}: no rows", path=source)
    try:
        return np.array(rows, dtype=dtype)
    except ValueError as e:
        raise DatasetCorrupt(f"{source}: non-numeric value ({e})", path=source) from e


@lru_cache(maxsize=8)
def _read(key: Tuple[str, int, int], per_line: int, kind: str) -> np.ndarray:
    dtype = np.float64 if kind == "x" else np.int64
    out = _numbers(read_bytes(Path(key[0])).decode("ascii"), key[0], dtype, per_line)
    out.flags.writeable = False
    return out


def parse_split(x_text: str, y_text: str, source: str = "<text>") -> HarSplit:
    """One split from the text of its X and y files (for tests and tools)."""
    x = _numbers(x_text, f"{source}/X", np.float64, N_FEATURES)
    y = _numbers(y_text, f"{source}/y", np.int64, 1)[:, 0]
    return _checked(x, y, None, source)


def _checked(x: np.ndarray, y: np.ndarray, subject, source: str) -> HarSplit:
    if len(x) != len(y):
        raise DatasetCorrupt(f"{source}: {len(x)} feature rows but {len(y)} labels", path=source)
    if y.min() < 1 or y.max() > len(ACTIVITIES):
        raise DatasetCorrupt(f"{source}: activity id outside 1..{len(ACTIVITIES)}", path=source)
    if not np.all(np.isfinite(x)):
        raise DatasetCorrupt(f"{source}: non-finite feature value", path=source)
    if subject is None:
        subject = np.full(len(y), -1, dtype=np.int64)
    elif len(subject) != len(y):
        raise DatasetCorrupt(f"{source}: {len(subject)} subjects but {len(y)} labels", path=source)
    return HarSplit(np.asarray(x), (y - 1).astype(np.int64), np.asarray(subject, dtype=np.int64))


def load_har(data_dir: Path) -> Dict[str, HarSplit]:
    """``{"train": HarSplit, "test": HarSplit}`` from ``data_dir/har/``.

    Raises DatasetMissing naming the file and ``halo-agent data fetch har`` when a
    required file is absent, DatasetCorrupt naming the file and line when one is bad."""
    info = get_dataset("har")
    folder = Path(data_dir) / info.subdir
    out = {}
    for part in ("train", "test"):
        paths = {}
        for what in ("x", "y", "subject"):
            spec = info.file(f"{what}_{part}")
            path, _ = locate(folder, spec)
            if path is None and spec.required:
                raise missing_error(info, Path(data_dir), spec)
            paths[what] = path
        x = _read(cache_key(paths["x"]), N_FEATURES, "x")
        y = _read(cache_key(paths["y"]), 1, "y")[:, 0]
        subject = None if paths["subject"] is None else _read(cache_key(paths["subject"]), 1, "y")[:, 0]
        out[part] = _checked(x, y, subject, str(paths["x"].parent))
    return out
