"""``halo-agent data fetch``: get a dataset, verified, from upstream or a mirror into the data dir.

This is the only code in halo-agent that touches the network, and it runs only when a
user asks for it. Two kinds of source:

* **upstream** (default): each dataset's canonical URLs (see ``catalogue.py``). Plain
  files are verified and stored as downloaded; archives (UCI zip, CIFAR tarball) are
  verified, the listed members copied out (each verified where a digest is known) and
  the archive deleted; HALO's thyroid ``.npy`` is verified, kept, and converted to the
  CSV the loader prefers (decoded with a restricted unpickler, never ``pickle.load``).
* **mirror** (``--mirror URL`` or ``$HALO_DATA_MIRROR``): a base URL (http, https,
  file, or a local folder) laid out like a data directory, e.g. a web server serving a
  copy of the project's shared data folder. Each file is tried under its accepted
  names (``NAME.gz`` then ``NAME``) and verified against the digest of that form.

Every download streams to a hidden temporary file in the destination folder, is
verified, then renamed into place (``os.replace``), so no partial file ever carries a
real name. A digest mismatch deletes the temporary file and raises ChecksumMismatch.
"""

from __future__ import annotations

import gzip
import tarfile
import urllib.parse
import zipfile
import zlib
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Dict, List, Tuple

from .catalogue import CATALOGUE, DatasetInfo, Download, FileSpec, get_dataset
from .download import Progress, copy_verified, download, install, new_temp, stderr_progress
from .errors import FetchError, RemoteNotFound
from .inventory import MISSING, PARTIAL, PRESENT, dataset_status, locate
from .paths import PathLike, resolve_data_dir, resolve_mirror
from .safe_npy import read_npy
from .thyroid import tdd_csv_text

EXIT_PRESENT, EXIT_ERROR, EXIT_PARTIAL = 0, 1, 3


@dataclass
class FetchReport:
    """What a fetch did. ``status``: present / partial / missing afterwards."""

    dataset: str
    folder: Path
    source: str
    installed: List[str] = field(default_factory=list)
    skipped: List[str] = field(default_factory=list)
    unavailable: List[str] = field(default_factory=list)
    status: str = MISSING

    @property
    def exit_code(self) -> int:
        """0 when the dataset is complete, 3 when usable but partial, 1 when missing."""
        return {PRESENT: EXIT_PRESENT, PARTIAL: EXIT_PARTIAL}.get(self.status, EXIT_ERROR)


def sources(info: DatasetInfo, mirror: str | None = None) -> List[str]:
    """Where ``data fetch`` would take the dataset from: the mirror folder URL, or the
    upstream URLs."""
    if mirror:
        return [mirror + urllib.parse.quote(info.subdir) + "/"]
    return [d.url for d in info.downloads]


def fetch_dataset(name: str, data_dir: PathLike | None = None, *,
                  mirror: str | None = None, force: bool = False, timeout_s: float = 60.0,
                  progress: Progress | None = None, auto_progress: bool = True,
                  catalogue: Dict[str, DatasetInfo] | None = None) -> FetchReport:
    """Fetch dataset ``name`` into ``data_dir`` (see :func:`resolve_data_dir`).

    Files already present are kept unless ``force``. ``mirror`` (else
    ``$HALO_DATA_MIRROR``) switches from upstream to a mirror. ``timeout_s``: seconds per
    connect/read. ``progress`` is called as ``(label, bytes_done, bytes_total or None)``;
    by default progress goes to stderr when it is a terminal. ``catalogue`` replaces the
    built-in catalogue (tests). Raises UnknownDataset, FetchError, ChecksumMismatch."""
    cat = CATALOGUE if catalogue is None else catalogue
    info = cat[name] if name in cat else get_dataset(name)
    root = resolve_data_dir(data_dir)
    mirror_url = resolve_mirror(mirror)
    if progress is None and auto_progress:
        progress = stderr_progress()
    folder = root / info.subdir
    report = FetchReport(info.name, folder, mirror_url or "upstream")
    before = dataset_status(info, root)
    if before.status == PRESENT and not force:
        report.skipped = [f.path.name for f in before.files if f.path is not None]
        report.status = PRESENT
        return report
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise FetchError(f"cannot create {folder}: {e}") from e
    if mirror_url:
        _from_mirror(info, folder, mirror_url, force, timeout_s, progress, report)
    else:
        _from_upstream(info, folder, force, timeout_s, progress, report)
    report.status = dataset_status(info, root).status
    return report


def _have(folder: Path, spec: FileSpec) -> bool:
    return locate(folder, spec)[1] == PRESENT


def _from_mirror(info: DatasetInfo, folder: Path, base: str, force: bool, timeout_s: float,
                 progress: Progress | None, report: FetchReport) -> None:
    for spec in info.files:
        if not force and _have(folder, spec):
            report.skipped.append(locate(folder, spec)[0].name)  # type: ignore[union-attr]
            continue
        tried = []
        for stored in spec.names + spec.partial_names:
            digest = spec.digests.get(stored)
            if digest is None:
                continue  # no known digest for this form: never install unverified bytes
            if not force and stored in spec.partial_names and (folder / stored).is_file():
                report.skipped.append(stored)  # the full file is not on the mirror either
                break
            url = base + urllib.parse.quote(f"{info.subdir}/{stored}")
            tried.append(stored)
            try:
                tmp = download(url, folder, stored, digest, timeout_s=timeout_s,
                               progress=progress)
            except RemoteNotFound:
                continue
            install(tmp, folder / stored)
            report.installed.append(stored)
            break
        else:
            why = f"not on the mirror (tried {', '.join(tried)})" if tried else \
                "no known checksum for any of its names, so it is not fetched from a mirror"
            report.unavailable.append(f"{spec.key}: {why}")


def _spec_for(info: DatasetInfo, stored: str) -> FileSpec | None:
    for spec in info.files:
        if stored in spec.names or stored in spec.partial_names:
            return spec
    return None


def _from_upstream(info: DatasetInfo, folder: Path, force: bool, timeout_s: float,
                   progress: Progress | None, report: FetchReport) -> None:
    for dl in info.downloads:
        outputs = [m[1] for m in dl.extract] or [_converted_name(dl) or dl.save_as or ""]
        specs = [_spec_for(info, o) for o in outputs]
        wanted = [o for o, s in zip(outputs, specs) if force or s is None or not _have(folder, s)]
        if not wanted:
            report.skipped.extend(outputs)
            continue
        if dl.digest is None:
            raise FetchError(f"{dl.url}: no known checksum; refusing to install it")
        label = PurePosixPath(urllib.parse.urlparse(dl.url).path).name or info.name
        tmp = download(dl.url, folder, label, dl.digest, timeout_s=timeout_s,
                       progress=progress)
        if dl.extract:
            try:
                if dl.inner:
                    tmp = _inner_archive(tmp, dl, folder)
                _extract(tmp, dl, wanted, folder, report)
            finally:
                tmp.unlink(missing_ok=True)
            continue
        saved = install(tmp, folder / (dl.save_as or label))
        report.installed.append(saved.name)
        if dl.convert == "tdd-npy-to-csv":
            report.installed.append(_npy_to_csv(saved, folder).name)


def _converted_name(dl: Download) -> str | None:
    if dl.convert == "tdd-npy-to-csv" and dl.save_as:
        return dl.save_as[: -len(".npy")] + ".csv.gz"
    return None


def _npy_to_csv(npy: Path, folder: Path) -> Path:
    """Write ``TDD-<Sex>.csv.gz`` from a verified HALO ``.npy`` (restricted unpickler)."""
    text = tdd_csv_text(read_npy(npy)).encode("utf-8")
    dest = folder / (npy.name[: -len(".npy")] + ".csv.gz")
    out, tmp = new_temp(folder, dest.name)
    try:
        with out, gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
            gz.write(text)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return install(tmp, dest)


_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError)


def _open_archive(archive: Path) -> Tuple[Any, Dict[str, Callable[[], IO[bytes]]]]:
    """Open a zip or tar archive; return it (to close) and basename -> opener for each
    regular-file member. Only named members are read: nothing is extracted by path."""
    with open(archive, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"
    try:
        if is_zip:
            z = zipfile.ZipFile(archive)
            return z, {PurePosixPath(i.filename).name: partial(z.open, i)
                       for i in z.infolist()
                       if not i.is_dir() and not i.filename.startswith("__MACOSX/")}
        t = tarfile.open(archive, mode="r:*")
        return t, {PurePosixPath(m.name).name: partial(t.extractfile, m)
                   for m in t.getmembers() if m.isfile()}
    except _ARCHIVE_ERRORS as e:
        raise FetchError(f"{archive.name}: cannot read archive ({e})") from e


def _inner_archive(outer: Path, dl: Download, folder: Path) -> Path:
    """The verified archive ``dl.inner`` names inside ``outer`` (deleted here)."""
    name, digest = dl.inner  # type: ignore[misc]
    label = f"{name} in {dl.url}"
    try:
        handle, members = _open_archive(outer)
        with handle:
            if name not in members:
                raise FetchError(f"{label}: not in the archive")
            with members[name]() as src:
                return copy_verified(src, folder, name, digest, label=label)
    except _ARCHIVE_ERRORS as e:
        raise FetchError(f"cannot extract {label}: {e}") from e
    finally:
        outer.unlink(missing_ok=True)


def _extract(archive: Path, dl: Download, wanted: List[str], folder: Path,
             report: FetchReport) -> None:
    handle, members = _open_archive(archive)
    with handle:
        for basename, stored, digest in dl.extract:
            if stored not in wanted:
                report.skipped.append(stored)
                continue
            if basename not in members:
                report.unavailable.append(f"{stored}: not in {dl.url}")
                continue
            label = f"{basename} in {dl.url}"
            dest = folder / stored  # may sit in a subfolder (har/train/X_train.txt)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with members[basename]() as src:
                    tmp = copy_verified(src, dest.parent, dest.name, digest, label=label)
            except _ARCHIVE_ERRORS as e:
                raise FetchError(f"cannot extract {label}: {e}") from e
            install(tmp, dest)
            report.installed.append(stored)
