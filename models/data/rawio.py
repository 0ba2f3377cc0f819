"""Read a dataset file whole, gzip-compressed or plain, translating I/O errors into DataErrors."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Tuple

from .errors import DatasetCorrupt, DatasetMissing

GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20
"""Bytes decompressed per ``readinto`` call (``_compression.DecompressReader.readinto``
decompresses into a new bytes object of the requested size and copies it over)."""


def read_bytes(path: Path) -> bytes:
    """Return the content of ``path``, decompressed when it is gzip (detected from the
    first two bytes, whatever the file name). Raises :class:`DatasetCorrupt` naming the
    file for a truncated or damaged gzip stream and :class:`DatasetMissing` if absent."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == GZIP_MAGIC:
                return _gunzip(f)
            return f.read()
    except FileNotFoundError as e:
        raise DatasetMissing(f"missing file {path}", path=str(path)) from e
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DatasetCorrupt(f"{path}: damaged or truncated gzip data ({e})",
                             path=str(path)) from e
    except OSError as e:
        raise DatasetCorrupt(f"{path}: cannot read ({e})", path=str(path)) from e


def _gunzip(f) -> bytes:
    """Decompress the gzip file ``f`` into one buffer of the size its trailer states
    (``GzipFile.read()`` joins chunks: twice the data at its peak); falls back to a
    plain read when the trailer's size is not the content's (multi-member, >4 GiB)."""
    f.seek(-4, 2)
    size = int.from_bytes(f.read(4), "little")
    f.seek(0)
    with gzip.GzipFile(fileobj=f, mode="rb") as g:
        buf = bytearray(size)
        view = memoryview(buf)
        got = 0
        while got < size:  # a bounded slice per call: readinto of the whole rest made a
            n = g.readinto(view[got:got + _CHUNK])  # bytes object of the rest, then copied
            if n == 0:
                break
            got += n
        if got == size and not g.read(1):
            return bytes(buf) if size < (1 << 16) else buf  # type: ignore[return-value]
    f.seek(0)
    with gzip.GzipFile(fileobj=f, mode="rb") as g:
        return g.read()


def cache_key(path: Path) -> Tuple[str, int, int]:
    """A key for per-process caches: resolved path, size in bytes and mtime in ns, so that
    a replaced file is read again."""
    path = Path(path).resolve()
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)
