"""Errors raised by the datasets, tasks and fetch code: one base class, a subclass per failure."""

from __future__ import annotations

from kernels.errors import HaloError


class DataError(HaloError):
    """Base class of every error raised by ``models.data``."""


class UnknownTask(DataError):
    """A task name that is not in the registry; the message lists the known names."""


class UnknownDataset(DataError):
    """A dataset name that is not in the catalogue; the message lists the known names."""


class DatasetMissing(DataError):
    """A file a dataset needs is absent.

    The message names the missing file, shows the expected layout of the dataset
    folder and suggests ``halo-agent data fetch NAME``.
    """

    def __init__(self, message: str, *, dataset: str = "", path: str = "") -> None:
        super().__init__(message)
        self.dataset = dataset
        self.path = path


class DatasetCorrupt(DataError):
    """A dataset file exists but its content is not what the format requires."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class FetchError(DataError):
    """A download failed (network, HTTP status, archive content)."""


class ChecksumMismatch(FetchError):
    """Downloaded bytes do not have the expected digest; the message gives both digests."""

    def __init__(self, name: str, expected: str, actual: str) -> None:
        super().__init__(
            f"checksum mismatch for {name}: expected {expected}, got {actual}; "
            "the download was deleted"
        )
        self.name = name
        self.expected = expected
        self.actual = actual


class RemoteNotFound(FetchError):
    """The server has no such file (HTTP 404, or a missing file behind a file:// URL)."""
