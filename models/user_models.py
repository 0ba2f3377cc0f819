"""A user's own models: load any model file the engine can adapt, and keep uploaded
ones by sha256, never overwritten::

    DATA_DIR/user-models/<sha256>.npz|.onnx   the file exactly as uploaded
    DATA_DIR/user-models/<sha256>.json        its manifest (name, format, input, classes)

A file is checked to load (and its input shape, class count and trainable layers
read) before it is kept; one that does not load is refused and nothing stays.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any, Dict, List, Tuple

from models.nets import ModelError

STORE_DIR = "user-models"
MODEL_ID = re.compile(r"^[0-9a-f]{64}$")
SUFFIXES = (".npz", ".onnx")


class UserModelError(ModelError):
    """An uploaded model is refused; ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class UnknownUserModel(UserModelError):
    """No stored model has this id."""


def load_model_file(path: Path) -> Tuple[Any, Dict[str, Any]]:
    """``(network, header)`` of a model file: the engine's ``.npz`` (header from the
    file) or, when the ONNX importer is installed, an ``.onnx`` classifier (header
    ``{"format": "onnx"}``).  A file that does not load raises a ``ValueError``
    subclass naming it."""
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        try:
            from models.onnx import load_onnx_model
        except ImportError as e:  # the importer is not part of this install
            raise UserModelError("file", f"{path.name}: ONNX import is not available here ({e}); "
                                         "send the engine's .npz model file") from None
        return load_onnx_model(path), {"format": "onnx"}
    from models.checkpoint import load_model

    return load_model(path)


def store_root(data_dir: Path) -> Path:
    return Path(data_dir) / STORE_DIR


def _suffix(filename: str) -> str:
    for s in SUFFIXES:
        if filename.lower().endswith(s):
            return s
    raise UserModelError("file", f"got {filename[:120]!r}; expected an .onnx file or the "
                                 "engine's .npz model file")


def store_model(data_dir: Path, data: bytes, filename: str, name: str = ""
                ) -> Tuple[Dict[str, Any], bool]:
    """Check that ``data`` loads as a model and keep it; ``(manifest, created)``
    (``created`` False when the same bytes are already stored)."""
    suffix = _suffix(filename)
    model_id = hashlib.sha256(data).hexdigest()
    root = store_root(data_dir)
    if (root / f"{model_id}.json").is_file():
        return read_manifest(data_dir, model_id), False
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".upload-", suffix=suffix, dir=str(root))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        try:
            net, header = load_model_file(Path(tmp))
        except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile) as e:
            # ModelError and OnnxModelError are ValueErrors; a broken .npz is a BadZipFile
            text = str(e).replace(tmp, filename[:120])
            raise UserModelError("file", f"{filename[:120]!r} does not load as a model: {text}"
                                 ) from None
        manifest = {"id": model_id, "name": name or Path(filename).stem[:64],
                    "format": suffix[1:], "filename": filename[:200], "bytes": len(data),
                    "arch": getattr(net, "arch", None),
                    "input_shape": [int(v) for v in net.input_shape],
                    "num_classes": int(net.num_classes), "n_layers": int(net.n_layers),
                    "n_params": int(net.params.size), "task": header.get("task"),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        final = root / f"{model_id}{suffix}"
        if not final.exists():  # never over a kept file
            os.link(tmp, final)
        with open(root / f".{model_id}.json.tmp", "w") as f:
            json.dump(manifest, f, indent=1)
        os.replace(root / f".{model_id}.json.tmp", root / f"{model_id}.json")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return manifest, True


def read_manifest(data_dir: Path, model_id: str) -> Dict[str, Any]:
    """The manifest of stored model ``model_id``; :class:`UnknownUserModel` when absent."""
    if not MODEL_ID.match(str(model_id)):
        raise UserModelError("model_id", f"got {str(model_id)[:80]!r}; expected 64 hex digits")
    try:
        return json.loads((store_root(data_dir) / f"{model_id}.json").read_text())
    except FileNotFoundError:
        raise UnknownUserModel("model_id", f"got {model_id!r}; no model has this id") from None


def model_path(data_dir: Path, model_id: str) -> Path:
    """The stored file of model ``model_id`` (which must exist)."""
    m = read_manifest(data_dir, model_id)
    return store_root(data_dir) / f"{model_id}.{m['format']}"


def list_models(data_dir: Path) -> List[Dict[str, Any]]:
    """Every stored model's manifest, newest first."""
    root = store_root(data_dir)
    out = []
    if root.is_dir():
        for p in root.glob("*.json"):
            if MODEL_ID.match(p.stem):
                out.append(json.loads(p.read_text()))
    return sorted(out, key=lambda m: (m.get("created_at", ""), m["id"]), reverse=True)
