"""Model weights on disk: ``.npz`` of named tensors plus a JSON header, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Dict, Tuple

import numpy as np

from models.nets import ModelError, Network

HEADER_KEY = "__header__"
FORMAT = "halo-agent-model/1"


def save_model(path: Path, net: Network, meta: Dict[str, Any]) -> Path:
    """Write ``net``'s weights and a JSON header to ``path`` (.npz), atomically.

    The header holds the architecture (``Network.describe()``) plus ``meta``
    (task, accuracy, provenance...).  The file appears complete or not at all: it
    is written to a temporary file in the same folder and renamed over ``path``.
    """
    header = {"format": FORMAT, **net.describe(), **meta}
    arrays = {name: v for name, v in net.params.views.items()}
    arrays[HEADER_KEY] = np.frombuffer(json.dumps(header, sort_keys=True).encode(), dtype=np.uint8)
    return write_atomically(path, lambda f: np.savez(f, **arrays))


def write_atomically(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create ``path`` (and its folder) with ``write(file)``: into a temporary file in the
    same folder, fsynced, then renamed over ``path``, so it appears complete or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=str(path.parent))
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def read_header(path: Path) -> Dict[str, Any]:
    """The JSON header of a model file, without loading the weights."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if HEADER_KEY not in z.files:
                raise ModelError(f"model file {path}: no {HEADER_KEY} entry; not a halo-agent model")
            return json.loads(bytes(z[HEADER_KEY]).decode())
    except FileNotFoundError as e:
        raise ModelError(f"model file not found: {path}") from e
    except (OSError, ValueError) as e:
        if isinstance(e, ModelError):
            raise
        raise ModelError(f"model file {path} is not a readable .npz: {e}") from e


def load_model(path: Path) -> Tuple[Network, Dict[str, Any]]:
    """A :class:`Network` with the weights of ``path`` and the file's header."""
    header = read_header(path)
    if header.get("format") != FORMAT:
        raise ModelError(f"model file {path}: format {header.get('format')!r}, expected {FORMAT!r}")
    net = Network(header["arch"], header["input_shape"], header["num_classes"])
    with np.load(path, allow_pickle=False) as z:
        tensors = {k: z[k] for k in z.files if k != HEADER_KEY}
    try:
        net.params.load_state_dict(tensors)
    except ValueError as e:
        raise ModelError(f"model file {path}: {e}") from e
    return net, header
