"""A user's own datasets: validate, split, normalise, store content-addressed, load.

``import_dataset`` turns what a reader of :mod:`models.data.user_read` returns into a
stored dataset::

    DATA_DIR/user-datasets/<id>/data.npz       x_train, y_train, x_test, y_test, mean, std
    DATA_DIR/user-datasets/<id>/manifest.json  name, format, shapes, classes, split, stats

``id`` is the sha256 of the stored arrays (dtype, shape and bytes of each, in a fixed
order) and the class names, so importing the same data twice gives the same id and
stores it once.  A dataset is written to a temporary folder and renamed into place:
it appears complete or not at all.  ``load_user_task`` gives the engine a
:class:`TaskData` whose target splits are the user's data.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from .lazy import StandardizedImages, lookup_table
from .load import Split, TaskData
from .preprocess import (
    float_stats,
    image_channel_stats,
    seeded_rng,
    standardize,
    stratified_split,
)
from .tasks import BATCH_SIZE, TaskSpec
from .user_read import (
    DEFAULT_MAX_UNPACKED_BYTES,
    RawData,
    UserDataError,
    parse_size,
    read_csv,
    read_image_folder,
    read_image_zip,
    read_npz,
)

STORE_DIR = "user-datasets"
MIN_PER_CLASS = 5          # at least 4 to train on and 1 to test on
MAX_CLASSES = 1000
DATASET_ID = re.compile(r"^[0-9a-f]{64}$")
FORMATS = ("npz", "csv", "images")


@dataclass(frozen=True)
class ImportOptions:
    """How to read and split an upload.  ``label_column`` / ``missing`` /
    ``split_column``: CSV only; ``image_size`` ("HxW") / ``channels``: images only;
    ``test_fraction`` and ``seed``: the stratified split, unless the data carries the
    user's own."""

    name: str
    label_column: str = "label"
    missing: str = "refuse"
    split_column: Optional[str] = None
    image_size: Optional[str] = None
    channels: int = 3
    test_fraction: float = 0.25
    seed: int = 0

    def check(self) -> None:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}", self.name or ""):
            raise UserDataError("name", f"got {self.name!r}; expected 1-64 letters, digits, "
                                        "spaces, '.', '_' or '-', starting with a letter or digit")
        if not (0.05 <= self.test_fraction <= 0.5):
            raise UserDataError("test_fraction", f"got {self.test_fraction!r}; expected 0.05..0.5")
        if self.channels not in (1, 3):
            raise UserDataError("channels", f"got {self.channels!r}; expected 1 (grey) or 3 (RGB)")
        if not (0 <= self.seed <= 2**31 - 1):
            raise UserDataError("seed", f"got {self.seed!r}; expected 0..2^31-1")


def format_of(filename: str) -> str:
    """``npz``, ``csv`` or ``images`` (a ``.zip``) from a file name's suffix."""
    name = filename.lower()
    for suffix, fmt in ((".npz", "npz"), (".csv", "csv"), (".zip", "images")):
        if name.endswith(suffix):
            return fmt
    raise UserDataError("file", f"got {filename[:120]!r}; expected a .npz, .csv or .zip file "
                                "(or a folder of images)")


def read_upload(data: bytes, filename: str, opts: ImportOptions,
                max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES) -> Tuple[str, RawData]:
    """``(format, raw data)`` of an uploaded file's bytes."""
    fmt = format_of(filename)
    if fmt == "npz":
        return fmt, read_npz(data, filename)
    if fmt == "csv":
        return fmt, read_csv(data, opts.label_column, opts.missing, opts.split_column, filename)
    return fmt, read_image_zip(data, _image_size(opts), opts.channels, max_unpacked_bytes)


def _image_size(opts: ImportOptions) -> Tuple[int, int]:
    if opts.image_size is None:
        raise UserDataError("image_size", "required for images; give HxW such as 28x28")
    return parse_size(opts.image_size)


def read_path(path: Path, opts: ImportOptions,
              max_unpacked_bytes: int = DEFAULT_MAX_UNPACKED_BYTES,
              progress: Optional[Callable[[int, int], None]] = None) -> Tuple[str, RawData]:
    """``(format, raw data)`` of a file or an image folder on this machine;
    ``progress(done, total)`` while the images of a folder are read."""
    path = Path(path)
    if path.is_dir():
        return "images", read_image_folder(path, _image_size(opts), opts.channels, progress)
    if not path.is_file():
        raise UserDataError("file", f"{path} does not exist")
    return read_upload(path.read_bytes(), path.name, opts, max_unpacked_bytes)


# -- validate, split, normalise ----------------------------------------------------------------


def _validate(raw: RawData) -> None:
    x, y = raw.x, raw.y
    if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
        bad = np.argwhere(~np.isfinite(x))[0]
        raise UserDataError("x", f"holds {x[tuple(bad)]} at index {tuple(int(i) for i in bad)}; "
                                 "expected finite numbers (no NaN or Inf)")
    counts = np.bincount(y, minlength=len(raw.class_names))
    k = len(counts)
    if k < 2 or np.count_nonzero(counts) < 2:
        raise UserDataError("y", f"holds {np.count_nonzero(counts)} class; expected at least 2 "
                                 "classes to classify")
    if k > MAX_CLASSES:
        raise UserDataError("y", f"holds {k} classes; at most {MAX_CLASSES}")
    few = [i for i in range(k) if counts[i] < MIN_PER_CLASS]
    if few:
        c = few[0]
        raise UserDataError("y", f"class {raw.class_names[c]!r} (id {c}) has {int(counts[c])} "
                                 f"examples; every class id 0..{k - 1} needs at least "
                                 f"{MIN_PER_CLASS}")
    if raw.split is not None:
        for part, mask in (("train", ~raw.split), ("test", raw.split)):
            missing = sorted(set(range(k)) - set(np.unique(y[mask]).tolist()))
            if missing:
                raise UserDataError("split", f"the user's {part} part has no example of class "
                                             f"{raw.class_names[missing[0]]!r}")


def _as_stored(x: np.ndarray) -> Tuple[np.ndarray, str]:
    """Images (N, H, W[, C]) stay uint8 when they are uint8; everything else float32."""
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim == 4 and x.dtype == np.uint8:
        return x, "images-uint8"
    return x.astype(np.float32), ("images-float" if x.ndim == 4 else "tabular")


def prepare(raw: RawData, opts: ImportOptions) -> Tuple[Dict[str, np.ndarray], Dict[str, Any]]:
    """Validated, split and normalised arrays, and the facts for the manifest."""
    _validate(raw)
    x, kind = _as_stored(raw.x)
    if raw.split is not None:
        tr, te = np.flatnonzero(~raw.split), np.flatnonzero(raw.split)
        split = {"kind": "user"}
    else:
        tr, te = stratified_split(raw.y, opts.test_fraction, seeded_rng(opts.seed, "user-split"))
        split = {"kind": "stratified", "seed": opts.seed, "test_fraction": opts.test_fraction}
    if kind == "images-uint8":
        mean, std = image_channel_stats(x, tr)
        how = "per channel, on pixels scaled to [0, 1], over the training part"
    else:
        mean, std = float_stats(x[tr], axis=tuple(range(x.ndim - 1)))
        how = ("per channel" if x.ndim == 4 else "per feature") + ", over the training part"
    arrays = {"x_train": x[tr], "y_train": raw.y[tr], "x_test": x[te], "y_test": raw.y[te],
              "mean": mean, "std": std}
    k = len(raw.class_names)
    facts = {"input_shape": list(x.shape[1:]), "num_classes": k, "class_names": raw.class_names,
             "storage": kind, "split": split, "n_train": int(len(tr)), "n_test": int(len(te)),
             "train_per_class": np.bincount(raw.y[tr], minlength=k).tolist(),
             "test_per_class": np.bincount(raw.y[te], minlength=k).tolist(),
             "normalisation": {"mean": mean.tolist(), "std": std.tolist(), "how": how},
             "notes": list(raw.notes)}
    return arrays, facts


def content_id(arrays: Dict[str, np.ndarray], class_names: List[str]) -> str:
    """sha256 of the arrays (in sorted key order: name, dtype, shape, bytes) and the
    class names."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    h.update(json.dumps(class_names).encode())
    return h.hexdigest()


# -- the store ------------------------------------------------------------------------------------


def store_root(data_dir: Path) -> Path:
    return Path(data_dir) / STORE_DIR


def import_dataset(data_dir: Path, fmt: str, raw: RawData, opts: ImportOptions,
                   source_name: str) -> Tuple[Dict[str, Any], bool]:
    """Validate, split, normalise and store; ``(manifest, created)``, ``created`` False
    when the same content was already stored (its manifest is returned unchanged)."""
    opts.check()
    arrays, facts = prepare(raw, opts)
    ds_id = content_id(arrays, facts["class_names"])
    final = store_root(data_dir) / ds_id
    if (final / "manifest.json").is_file():
        return read_manifest(data_dir, ds_id), False
    manifest = {"id": ds_id, "name": opts.name, "format": fmt, "source": source_name[:200],
                "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **facts,
                "options": {k: v for k, v in opts.__dict__.items() if k != "name"}}
    root = store_root(data_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".import-", dir=str(root)))
    try:
        with open(tmp / "data.npz", "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        manifest["bytes"] = (tmp / "data.npz").stat().st_size
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1))
        try:
            os.rename(tmp, final)
        except OSError:  # a concurrent import of the same content won
            if not (final / "manifest.json").is_file():
                raise
            shutil.rmtree(tmp, ignore_errors=True)
            return read_manifest(data_dir, ds_id), False
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest, True


def _dir(data_dir: Path, ds_id: str) -> Path:
    if not DATASET_ID.match(str(ds_id)):
        raise UserDataError("dataset_id", f"got {str(ds_id)[:80]!r}; expected 64 hex digits")
    return store_root(data_dir) / ds_id


def read_manifest(data_dir: Path, ds_id: str) -> Dict[str, Any]:
    """The manifest of dataset ``ds_id``; :class:`UnknownUserDataset` when absent."""
    path = _dir(data_dir, ds_id) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UnknownUserDataset("dataset_id", f"got {ds_id!r}; no dataset has this id") from None


class UnknownUserDataset(UserDataError):
    """No stored dataset has this id."""


def list_datasets(data_dir: Path) -> List[Dict[str, Any]]:
    """Every stored dataset's manifest, newest first."""
    root = store_root(data_dir)
    out = []
    if root.is_dir():
        for d in root.iterdir():
            if DATASET_ID.match(d.name) and (d / "manifest.json").is_file():
                out.append(json.loads((d / "manifest.json").read_text()))
    return sorted(out, key=lambda m: (m.get("created_at", ""), m["id"]), reverse=True)


def delete_dataset(data_dir: Path, ds_id: str) -> None:
    """Remove a stored dataset (the caller checks no job uses it)."""
    d = _dir(data_dir, ds_id)
    read_manifest(data_dir, ds_id)
    trash = d.with_name(f".delete-{ds_id}")
    os.rename(d, trash)  # gone from listings at once, then removed
    shutil.rmtree(trash, ignore_errors=True)


def load_user_task(data_dir: Path, ds_id: str, default_model: str = "cnn-a") -> TaskData:
    """The stored dataset as a :class:`TaskData`: its train and test parts are the
    target splits (and stand in for the source splits, which a job starting from a
    given model never trains on), normalised with the stored statistics."""
    m = read_manifest(data_dir, ds_id)
    with np.load(_dir(data_dir, ds_id) / "data.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    mean, std = a["mean"], a["std"]
    if m["storage"] == "images-uint8":  # standardised per batch, as the built-in image tasks
        lut = lookup_table(mean, std)

        def norm(x: np.ndarray) -> np.ndarray:
            return StandardizedImages(x, np.arange(len(x)), lut)
    else:
        def norm(x: np.ndarray) -> np.ndarray:
            return standardize(x, mean, std)
    train = Split(norm(a["x_train"]), a["y_train"].astype(np.int64))
    test = Split(norm(a["x_test"]), a["y_test"].astype(np.int64))
    names = tuple(m["class_names"])
    ids = tuple(range(len(names)))
    spec = TaskSpec(name=f"dataset:{ds_id[:12]}", dataset=m["name"], source_classes=ids,
                    target_classes=ids, default_model="mlp" if len(m["input_shape"]) == 1
                    else default_model, input_shape=tuple(m["input_shape"]),
                    num_classes=len(names), batch_size=BATCH_SIZE,
                    description=f"user dataset {m['name']!r} ({m['format']})", needs_files=True,
                    source_domain="-", target_domain=m["name"], source_class_names=names,
                    target_class_names=names)
    notes = [f"user dataset {m['name']!r} ({ds_id[:12]}), {m['split']['kind']} split, "
             f"normalised {m['normalisation']['how']}"] + list(m.get("notes", []))
    return TaskData(spec, train, test, train, test, norm_mean=mean, norm_std=std, notes=notes,
                    seed=int(m["split"].get("seed", 0)), data_dir=Path(data_dir))


FORMAT_HELP = (".npz with x and y (or x_train, y_train, x_test, y_test); .csv with a header "
               "and a label column; .zip or folder of images, one subfolder per class")
