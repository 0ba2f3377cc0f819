"""Small user datasets and models, made in memory, for the upload tests."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path
from typing import Dict, Tuple

import numpy as np


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def tabular(n_per_class: int = 30, classes: int = 3, features: int = 6, seed: int = 0
            ) -> Tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs, one per class, well apart: (N, features) float32, (N,) int64."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, size=(classes, features))
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + rng.normal(0, 1, size=(len(y), features))
    return x.astype(np.float32), y.astype(np.int64)


def csv_bytes(x: np.ndarray, y: np.ndarray, names=("low", "mid", "high")) -> bytes:
    cols = [f"f{i}" for i in range(x.shape[1])]
    rows = [",".join(cols + ["kind"])]
    rows += [",".join([f"{v:.5f}" for v in row] + [names[c]]) for row, c in zip(x, y)]
    return ("\n".join(rows) + "\n").encode()


def png(value: int, size: Tuple[int, int] = (32, 32), stripe: bool = False) -> bytes:
    from PIL import Image

    a = np.full(size, value, dtype=np.uint8)
    if stripe:
        a[:, ::4] = 255 - value
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def image_zip(per_class: int = 8, top: str = "photos/") -> bytes:
    """Two classes of 32x32 grey PNGs under ``photos/<class>/`` (plain / striped)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(per_class):
            z.writestr(f"{top}plain/{i}.png", png(40 + 5 * i))
            z.writestr(f"{top}striped/{i}.png", png(40 + 5 * i, stripe=True))
    return buf.getvalue()


def evil_zip(kind: str, unpacked: int = 2_000_000) -> bytes:
    """A zip that must be refused: ``dotdot``, ``absolute``, ``symlink`` or ``bomb``
    (one entry of ``unpacked`` zero bytes that compresses to a few KB)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/0.png", png(10))
        if kind == "dotdot":
            z.writestr("a/../../x.png", png(20))
        elif kind == "absolute":
            z.writestr("/etc/x.png", png(20))
        elif kind == "symlink":
            info = zipfile.ZipInfo("b/link.png")
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            z.writestr(info, "/etc/passwd")
        elif kind == "bomb":
            z.writestr("b/big.png", b"\0" * unpacked)
    return buf.getvalue()


def model_bytes(tmp: Path, arch: str, input_shape, num_classes: int, seed: int = 0,
                meta: Dict | None = None) -> bytes:
    """The engine's .npz model file of a He-initialised ``arch``."""
    from models.checkpoint import save_model
    from models.nets import build_network

    path = save_model(tmp / f"{arch}-{seed}.npz",
                      build_network(arch, input_shape, num_classes, seed=seed), meta or {})
    return path.read_bytes()
