"""The IDX format of MNIST and Fashion-MNIST: parse and validate magic number, dtype and sizes."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .errors import DatasetCorrupt
from .rawio import read_bytes

IDX_UBYTE = 0x08
MAGIC_IMAGES = 0x00000803
MAGIC_LABELS = 0x00000801


def parse_idx(data: bytes, expect_magic: int, source: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes of unsigned bytes (type code 0x08).

    Returns a read-only uint8 array of shape ``(N, rows, cols)`` for magic 0x00000803 or
    ``(N,)`` for 0x00000801. Raises :class:`DatasetCorrupt` naming ``source`` when the
    magic number, the type code or the byte count does not match the header."""
    if len(data) < 4:
        raise DatasetCorrupt(f"{source}: {len(data)} bytes, too short for an IDX header",
                             path=source)
    (magic,) = struct.unpack(">I", data[:4])
    if magic != expect_magic:
        raise DatasetCorrupt(
            f"{source}: bad IDX magic number 0x{magic:08x}, expected 0x{expect_magic:08x} "
            f"(is it the right file, or a compressed file with a wrong name?)", path=source)
    ndim = magic & 0xFF
    if (magic >> 8) & 0xFF != IDX_UBYTE:
        raise DatasetCorrupt(f"{source}: IDX type code is not unsigned byte", path=source)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetCorrupt(f"{source}: truncated IDX header", path=source)
    dims = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(dims, dtype=np.int64))
    if len(data) != expected:
        raise DatasetCorrupt(
            f"{source}: {len(data)} bytes, but its IDX header dims {tuple(dims)} need "
            f"{expected} bytes (truncated or padded file)", path=source)
    arr = np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)
    arr.flags.writeable = False  # also when ``data`` is a (writable) bytearray
    return arr


def read_idx(path: Path, expect_magic: int) -> np.ndarray:
    """Read an IDX file (plain or gzip) and validate it; see :func:`parse_idx`."""
    return parse_idx(read_bytes(path), expect_magic, source=str(path))
