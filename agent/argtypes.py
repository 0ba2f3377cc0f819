"""argparse value types and argument groups shared by the ``halo-agent`` commands;
errors repeat the bad value."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Callable, Optional, Union

Number = Union[int, float]

DATA_DIR_HELP = "data directory (default: $HALO_DATA_DIR or ~/.local/share/halo-agent)"


def number_in(kind: Callable[[str], Number], lo: Number, hi: Optional[Number],
              what: str) -> Callable[[str], Number]:
    """An argparse type: ``kind(text)`` in ``[lo, hi]`` (``hi`` None: no upper bound)."""
    def parse(text: str) -> Number:
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            bounds = f">= {lo}" if hi is None else f"in {lo}..{hi}"
            raise argparse.ArgumentTypeError(f"expected {what} {bounds}, got {v}")
        return v
    parse.__name__ = what
    return parse


positive_int = number_in(int, 1, None, "an integer")
"""An integer >= 1."""


def add_power_arguments(p: argparse.ArgumentParser) -> None:
    """``--power-source`` and ``--sysfs-root``, the same for every command that measures energy."""
    p.add_argument("--power-source", default=None,
                   help="power source spec, e.g. ina3221, rapl, um25c:/dev/ttyUSB0, "
                        "estimate[:PROFILE] (default: auto-detect)")
    p.add_argument("--sysfs-root", type=Path, default=Path("/sys"),
                   help="root of the sysfs tree for power meters (default: /sys)")


def add_run_arguments(p: argparse.ArgumentParser, *, before: str = "the run",
                      data_dir_help: str = DATA_DIR_HELP) -> None:
    """``--data-dir``, the power arguments, ``--idle-seconds`` (0..60, as the engine
    accepts) and ``--threads``: the same for every command that trains and measures."""
    p.add_argument("--data-dir", default=None, help=data_dir_help)
    add_power_arguments(p)
    p.add_argument("--idle-seconds", type=number_in(float, 0, 60, "seconds"), default=1.0,
                   help=f"seconds of idle-power measurement before {before} (default: 1; 0: none)")
    p.add_argument("--threads", type=positive_int, default=1,
                   help="BLAS threads (default: 1, measured fastest for these small models)")
