"""argparse value types shared by the ``halo-agent`` commands; errors repeat the bad value."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def add_power_arguments(p: argparse.ArgumentParser) -> None:
    """``--power-source`` and ``--sysfs-root``, the same for every command that measures energy."""
    from pathlib import Path

    p.add_argument("--power-source", default=None,
                   help="power source spec, e.g. ina3221, rapl, um25c:/dev/ttyUSB0, "
                        "estimate[:PROFILE] (default: auto-detect)")
    p.add_argument("--sysfs-root", type=Path, default=Path("/sys"),
                   help="root of the sysfs tree for power meters (default: /sys)")
