"""Readers of a user's own data: ``.npz`` arrays, a CSV with a label column, and images
in one folder per class (a folder, or a ``.zip`` read in memory and never extracted).

Each reader returns a :class:`RawData` (examples, integer labels, class names and,
when the user gave one, their own train/test split); :mod:`models.data.user`
validates, splits, normalises and stores it.  Every error is a
:class:`UserDataError` naming the field or the file entry and the value.
"""

from __future__ import annotations

import csv
import io
import math
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MISSING_TOKENS = ("", "na", "n/a", "nan", "null", "none", "?")
MAX_ZIP_ENTRIES = 200_000
DEFAULT_MAX_UNPACKED_BYTES = 512 * 1024 * 1024
SPLIT_NAMES = ("train", "test")
MAX_SOURCE_PIXELS = 4096 * 4096  # a larger image would take too much memory to decode on a board


class UserDataError(DataError, ValueError):
    """A user's dataset is refused; ``field`` names what is wrong (an option, a
    column, an array, a file entry) and the message gives the value."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass
class RawData:
    """Examples as read: ``x`` (N, ...) numeric, ``y`` int64 labels 0..K-1,
    ``class_names`` (K,), ``split`` None or a bool (N,) array, True for the user's
    test examples; ``notes`` say what was done (imputation, resizing)."""

    x: np.ndarray
    y: np.ndarray
    class_names: List[str]
    split: Optional[np.ndarray] = None
    notes: Tuple[str, ...] = ()


def _labels_from_names(names: Sequence[str], field: str) -> Tuple[np.ndarray, List[str]]:
    """Class ids 0..K-1 from label values, classes in ascending order (numeric order
    when every label is an integer)."""
    unique = sorted(set(names))
    try:
        unique = sorted(unique, key=lambda s: int(s))
    except ValueError:
        pass
    if not unique:
        raise UserDataError(field, "no labels")
    index = {name: i for i, name in enumerate(unique)}
    return np.array([index[n] for n in names], dtype=np.int64), list(unique)


# -- .npz -----------------------------------------------------------------------------------


def read_npz(data: bytes, source: str = "upload") -> RawData:
    """``x`` and ``y`` arrays, or ``x_train, y_train, x_test, y_test`` (the user's own
    split).  Pickled objects are refused.  ``y``: integer class ids >= 0 (or
    integral floats); optional ``class_names`` (strings)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise UserDataError("file", f"{source} is not a readable .npz without pickles ({e})"
                            ) from None
    if "x" in arrays and "y" in arrays:
        x, y, split = arrays["x"], arrays["y"], None
    elif all(k in arrays for k in ("x_train", "y_train", "x_test", "y_test")):
        _check_pair(arrays["x_train"], arrays["y_train"], "x_train", "y_train")
        _check_pair(arrays["x_test"], arrays["y_test"], "x_test", "y_test")
        if arrays["x_train"].shape[1:] != arrays["x_test"].shape[1:]:
            raise UserDataError("x_test", f"shape {arrays['x_test'].shape[1:]} per example; "
                                          f"x_train has {arrays['x_train'].shape[1:]}")
        x = np.concatenate([arrays["x_train"], arrays["x_test"]])
        y = np.concatenate([arrays["y_train"], arrays["y_test"]])
        split = np.r_[np.zeros(len(arrays["y_train"]), bool), np.ones(len(arrays["y_test"]), bool)]
    else:
        raise UserDataError("file", f"{source} holds arrays {sorted(arrays)}; expected 'x' and "
                                    "'y' (or x_train, y_train, x_test, y_test)")
    _check_pair(x, y, "x", "y")
    y = integer_labels(y, "y")
    k = int(y.max()) + 1
    names = [str(i) for i in range(k)]
    if "class_names" in arrays:
        cn = arrays["class_names"]
        if cn.dtype.kind not in "US" or cn.ndim != 1 or len(cn) != k:
            raise UserDataError("class_names", f"got {cn.dtype} {cn.shape}; expected {k} strings "
                                               "(one per class id 0..max(y))")
        names = [str(s) for s in cn.tolist()]
    return RawData(x, y, names, split)


def _check_pair(x: np.ndarray, y: np.ndarray, xn: str, yn: str) -> None:
    if x.dtype.kind not in "uif" or x.dtype.itemsize > 8:
        raise UserDataError(xn, f"dtype {x.dtype}; expected numbers (uint8, int, float)")
    if x.ndim not in (2, 3, 4):
        raise UserDataError(xn, f"shape {x.shape}; expected (N, features), (N, H, W) or "
                                "(N, H, W, C) with C 1 or 3")
    if x.ndim == 4 and x.shape[-1] not in (1, 3):
        raise UserDataError(xn, f"shape {x.shape}; the last axis (channels, NHWC) must be 1 or 3")
    if y.ndim != 1 or len(y) != len(x):
        raise UserDataError(yn, f"shape {y.shape}; expected ({len(x)},), one label per row of {xn}")


def integer_labels(y: np.ndarray, field: str) -> np.ndarray:
    """``y`` as int64 class ids; refuses negatives, fractions, NaN/Inf and non-numbers."""
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise UserDataError(field, "holds NaN or Inf; expected integer class ids")
        if not np.all(y == np.round(y)):
            bad = y[y != np.round(y)][0]
            raise UserDataError(field, f"holds {bad!r}; expected integer class ids")
    elif y.dtype.kind not in "iub":
        raise UserDataError(field, f"dtype {y.dtype}; expected integer class ids")
    y = y.astype(np.int64)
    if len(y) and y.min() < 0:
        raise UserDataError(field, f"holds {int(y.min())}; expected class ids 0, 1, 2, ...")
    if len(y) == 0:
        raise UserDataError(field, "is empty; expected at least a few examples per class")
    return y


# -- CSV ------------------------------------------------------------------------------------


def read_csv(data: bytes, label_column: str, missing: str = "refuse",
             split_column: Optional[str] = None, source: str = "upload") -> RawData:
    """A CSV with a header row: ``label_column`` holds the class of each row (names or
    numbers), every other column a numeric feature.  ``missing``: ``refuse`` (the
    default; the error names the row and the column) or ``mean`` (a feature's mean
    over the rows that have it).  ``split_column``: optional column of ``train`` /
    ``test`` (the user's own split)."""
    if missing not in ("refuse", "mean"):
        raise UserDataError("missing", f"got {missing!r}; expected 'refuse' or 'mean'")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise UserDataError("file", f"{source} is not UTF-8 text ({e})") from None
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise UserDataError("file", f"{source} has {len(rows)} non-empty lines; expected a header "
                                    "row and data rows")
    header = [h.strip() for h in rows[0]]
    if label_column not in header:
        raise UserDataError("label_column", f"got {label_column!r}; the header has "
                                            f"{', '.join(repr(h) for h in header[:20])}")
    li = header.index(label_column)
    si = None
    if split_column is not None:
        if split_column not in header:
            raise UserDataError("split_column", f"got {split_column!r}; not in the header")
        si = header.index(split_column)
    features = [i for i in range(len(header)) if i not in (li, si)]
    if not features:
        raise UserDataError("file", f"{source} has no feature columns besides the label")
    x = np.empty((len(rows) - 1, len(features)), dtype=np.float64)
    labels, split = [], []
    for n, row in enumerate(rows[1:]):
        line = n + 2
        if len(row) != len(header):
            raise UserDataError(f"line {line}", f"{len(row)} fields; the header has {len(header)}")
        label = row[li].strip()
        if label.lower() in MISSING_TOKENS:
            raise UserDataError(f"line {line}, column {label_column!r}",
                                "no label; every row needs a class")
        labels.append(label)
        if si is not None:
            part = row[si].strip().lower()
            if part not in SPLIT_NAMES:
                raise UserDataError(f"line {line}, column {split_column!r}",
                                    f"got {row[si]!r}; expected 'train' or 'test'")
            split.append(part == "test")
        for j, i in enumerate(features):
            x[n, j] = _number(row[i], line, header[i], missing)
    notes: List[str] = []
    gaps = np.isnan(x)
    if gaps.any():
        empty = np.flatnonzero(gaps.all(axis=0))
        if len(empty):
            raise UserDataError(f"column {header[features[int(empty[0])]]!r}",
                                "has no values at all; nothing to impute from")
        x = np.where(gaps, np.nanmean(x, axis=0)[None, :], x)
        notes.append(f"{int(gaps.sum())} missing values imputed with their column's mean "
                     "over all rows")
    if not np.all(np.isfinite(x)):
        r, c = np.argwhere(~np.isfinite(x))[0]
        raise UserDataError(f"line {r + 2}, column {header[features[c]]!r}",
                            f"got {x[r, c]}; expected a finite number")
    y, names = _labels_from_names(labels, "label_column")
    return RawData(x.astype(np.float32), y, names, np.array(split) if si is not None else None,
                   tuple(notes))


def _number(cell: str, line: int, column: str, missing: str) -> float:
    text = cell.strip()
    if text.lower() in MISSING_TOKENS:
        if missing == "refuse":
            raise UserDataError(f"line {line}, column {column!r}",
                                f"missing value {cell!r}; fill it, or import with missing=mean")
        return math.nan
    try:
        v = float(text)
    except ValueError:
        raise UserDataError(f"line {line}, column {column!r}",
                            f"got {cell[:40]!r}; expected a number") from None
    if not math.isfinite(v):
        raise UserDataError(f"line {line}, column {column!r}",
                            f"got {cell!r}; expected a finite number")
    return v


# -- images ------------------------------------------------------------------------------------


def parse_size(text: str) -> Tuple[int, int]:
    """``"HxW"`` (or one number for a square) -> ``(H, W)``, each in 4..512."""
    parts = str(text).lower().replace(" ", "").split("x")
    try:
        hw = [int(p) for p in parts]
    except ValueError:
        hw = []
    if len(hw) == 1:
        hw = hw * 2
    if len(hw) != 2 or not all(4 <= v <= 512 for v in hw):
        raise UserDataError("image_size", f"got {text!r}; expected HxW such as 28x28, "
                                          "each side 4..512 pixels")
    return hw[0], hw[1]


def check_zip(zf: zipfile.ZipFile, max_unpacked_bytes: int) -> List[zipfile.ZipInfo]:
    """The file entries of ``zf`` once every entry is known safe: no absolute path, no
    ``..``, no symbolic link, at most :data:`MAX_ZIP_ENTRIES` entries and at most
    ``max_unpacked_bytes`` declared in all.  Nothing is extracted."""
    infos = zf.infolist()
    if len(infos) > MAX_ZIP_ENTRIES:
        raise UserDataError("file", f"zip has {len(infos)} entries; at most {MAX_ZIP_ENTRIES}")
    total = 0
    for info in infos:
        name = info.filename
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
            raise UserDataError("file", f"zip entry {name[:200]!r} has an absolute path")
        if ".." in PurePosixPath(name.replace("\\", "/")).parts:
            raise UserDataError("file", f"zip entry {name[:200]!r} climbs out with '..'")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise UserDataError("file", f"zip entry {name[:200]!r} is a symbolic link")
        total += info.file_size
        if total > max_unpacked_bytes:
            raise UserDataError("file", f"zip unpacks to more than {max_unpacked_bytes} bytes "
                                        "(the limit); refused before unpacking")
    return [i for i in infos if not i.is_dir()]


def read_image_zip(data: bytes, image_size: Tuple[int, int], channels: int,
                   max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> RawData:
    """Images in a zip: ``CLASS/IMAGE`` (optionally under one top folder, and
    optionally ``train/CLASS/...`` and ``test/CLASS/...`` for the user's split)."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as e:
        raise UserDataError("file", f"not a readable zip ({e})") from None
    with zf:
        files = check_zip(zf, max_unpacked_bytes)
        budget = [max_unpacked_bytes]

        def read(info: zipfile.ZipInfo) -> bytes:
            with zf.open(info) as f:  # never trust the declared size: read at most the budget
                blob = f.read(budget[0] + 1)
            budget[0] -= len(blob)
            if budget[0] < 0:
                raise UserDataError("file", f"zip unpacks to more than {max_unpacked_bytes} bytes")
            return blob

        entries = {i.filename.replace("\\", "/"): (lambda i=i: read(i)) for i in files}
        return _read_image_tree(entries, image_size, channels, "zip")


def read_image_folder(root: Path, image_size: Tuple[int, int], channels: int,
                      progress: Optional[Callable[[int, int], None]] = None) -> RawData:
    """Images in a folder, laid out as for :func:`read_image_zip`; symbolic links are
    refused, like in a zip.  ``progress(done, total)`` is called as images are read."""
    root = Path(root)
    entries: Dict[str, Callable[[], bytes]] = {}
    for p in sorted(root.rglob("*")):
        if p.is_symlink():
            raise UserDataError("file", f"{p} is a symbolic link")
        if p.is_file():
            entries[p.relative_to(root).as_posix()] = p.read_bytes
    return _read_image_tree(entries, image_size, channels, "folder", progress)


def _read_image_tree(entries: Dict[str, Callable[[], bytes]], image_size: Tuple[int, int],
                     channels: int, what: str,
                     progress: Optional[Callable[[int, int], None]] = None) -> RawData:
    from PIL import Image, UnidentifiedImageError

    if channels not in (1, 3):
        raise UserDataError("channels", f"got {channels!r}; expected 1 (grey) or 3 (RGB)")
    visible = [p for p in entries if not any(part.startswith((".", "__MACOSX"))
                                             for part in p.split("/"))]
    paths = [p for p in visible if p.lower().endswith(IMAGE_SUFFIXES)]
    skipped = [p for p in visible if not p.lower().endswith(IMAGE_SUFFIXES)]
    parts = [p.split("/") for p in paths]
    while parts and len({q[0] for q in parts}) == 1 and all(len(q) > 2 for q in parts):
        parts = [q[1:] for q in parts]  # one wrapping top folder
    if not parts:
        raise UserDataError("file", f"the {what} holds no .png/.jpg/.jpeg images")
    user_split = {q[0] for q in parts} == set(SPLIT_NAMES) and all(len(q) == 3 for q in parts)
    h, w = image_size
    xs, labels, split = [], [], []
    for full, q in zip(paths, parts):
        if user_split:
            part, cls = q[0], q[1]
        elif len(q) == 2:
            part, cls = "train", q[0]
        else:
            raise UserDataError("file", f"{full!r} is not CLASS/IMAGE; expected one folder per "
                                        "class (or train/CLASS/IMAGE and test/CLASS/IMAGE)")
        try:
            with Image.open(io.BytesIO(entries[full]())) as im:
                if im.size[0] * im.size[1] > MAX_SOURCE_PIXELS:  # checked before decoding
                    raise UserDataError("file", f"{full!r} is {im.size[0]}x{im.size[1]} pixels; "
                                                f"at most {MAX_SOURCE_PIXELS} pixels per image")
                im.load()
                img = im.convert("L" if channels == 1 else "RGB").resize((w, h), Image.BILINEAR)
        except UserDataError:  # too large, or the zip's unpacked budget is spent
            raise
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
            raise UserDataError("file", f"{full!r} is not a readable PNG or JPEG ({e})") from None
        arr = np.asarray(img, dtype=np.uint8)
        xs.append(arr.reshape(h, w, channels))
        labels.append(cls)
        split.append(part == "test")
        if progress is not None and (len(xs) % 250 == 0 or len(xs) == len(paths)):
            progress(len(xs), len(paths))
    y, names = _labels_from_names(labels, "class folders")
    notes = [f"{len(xs)} images resized to {h}x{w}, {'grey' if channels == 1 else 'RGB'}"]
    if skipped:
        notes.append(f"{len(skipped)} files that are not .png/.jpg/.jpeg skipped, e.g. {skipped[0]!r}")
    return RawData(np.stack(xs), y, names, np.array(split) if user_split else None, tuple(notes))
