"""Resident memory of this process, in MB (2^20 bytes), for reports and the memory benchmark."""

from __future__ import annotations

import resource
import sys


def peak_rss_mb() -> float:
    """The peak resident set size of this process since it started (``getrusage``'s
    ``ru_maxrss``: KiB on Linux, bytes on macOS), in MB, rounded to 0.1 MB.

    What ``/usr/bin/time -v`` reports as "Maximum resident set size" for the process.
    In the daemon it is the daemon's peak so far, not one job's.
    """
    raw = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(raw / (2**20 if sys.platform == "darwin" else 2**10), 1)
