"""Settings of one daemon process: where it listens, where it keeps data, job limits."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8321
DB_NAME = "jobs.sqlite3"
MODELS_DIR = "models"


@dataclass(frozen=True)
class Settings:
    """Everything the app factory needs; built by ``halo-agent serve`` or by tests.

    ``data_dir``: datasets, the checkpoint cache, the job database and the adapted
    models live under it.  ``token``: bearer token every request must carry (None:
    no token; allowed only on a loopback bind).  ``idle_seconds``: idle-power
    measurement before each job, seconds.  ``max_steps``: the largest step budget a
    job may ask for.  ``max_queued``: jobs waiting at most (more: 429).
    ``max_body_bytes``: request bodies above this get 413 before parsing.
    ``max_upload_bytes``: the same for uploads (``POST /v1/datasets``, ``/v1/models``).
    ``max_unpacked_bytes``: an uploaded zip that would unpack to more is refused.
    ``sample_period_s``: power sampler period, seconds.  ``threads``: BLAS threads
    per job.  ``allowed_hosts``: ``Host`` names accepted besides the loopback ones
    when there is no token (without a token every other ``Host`` is refused, which
    stops DNS-rebinding attacks from web pages).
    """

    data_dir: Path
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    power_source: str | None = None
    sysfs_root: Path = Path("/sys")
    idle_seconds: float = 1.0
    max_steps: int = 1_000_000
    max_queued: int = 100
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    max_unpacked_bytes: int = 512 * 1024 * 1024
    sample_period_s: float = 0.05
    threads: int = 1
    allowed_hosts: Tuple[str, ...] = ()

    @property
    def db_path(self) -> Path:
        """The SQLite job database."""
        return self.data_dir / DB_NAME

    @property
    def models_dir(self) -> Path:
        """Where adapted models are written (``adapted-<job id>.npz``)."""
        return self.data_dir / MODELS_DIR

    def model_path(self, job_id: str, suffix: str = ".npz") -> Path:
        """The adapted model file of job ``job_id`` (``.onnx`` for an imported ONNX model,
        which is written back as ONNX)."""
        return self.models_dir / f"adapted-{job_id}{suffix}"
