"""Source specs (``ina3221``, ``um25c:/dev/rfcomm0``, ``estimate:jetson-tx2``, ...) -> meters."""

from __future__ import annotations

from pathlib import Path
from typing import Tuple

from power.base import Meter
from power.boards import fs_root
from power.errors import SourceUnavailable, SpecError

#: kind -> (argument, what it means); the order is the help text's order.
KINDS = {
    "ina3221": ("[RAIL+RAIL...]", "Jetson INA3221 rails via sysfs; optional total override"),
    "jtop": ("", "jetson-stats service (jtop.service must run)"),
    "um24c": ("PORT", "RuiDeng UM24C on a serial port, e.g. /dev/rfcomm0"),
    "um25c": ("PORT", "RuiDeng UM25C on a serial port"),
    "um34c": ("PORT", "RuiDeng UM34C on a serial port"),
    "fnb48": ("[HIDRAW]", "FNIRSI FNB48 via /dev/hidrawN (found in sysfs when omitted)"),
    "fnb58": ("[HIDRAW]", "FNIRSI FNB58 via /dev/hidrawN (found in sysfs when omitted)"),
    "rapl": ("[package|psys]", "Linux powercap/RAPL counters; total = package+dram or psys"),
    "estimate": ("[PROFILE][:process|machine]",
                 "CPU-utilisation estimate (always labelled estimated) of this process tree "
                 "(default) or the whole machine"),
    "replay": ("FILE", "replay a recorded CSV trace"),
}
_NEEDS_ARG = {"um24c", "um25c", "um34c", "replay"}


def parse_spec(spec: str) -> Tuple[str, str | None]:
    """Split ``kind[:arg]`` (the argument may itself contain ``:``); validate the kind."""
    if not isinstance(spec, str) or not spec.strip():
        raise SpecError(f"empty power source spec {spec!r}")
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in KINDS:
        raise SpecError(f"unknown power source {spec!r}; known: {', '.join(KINDS)}")
    if kind in _NEEDS_ARG and not arg:
        raise SpecError(f"power source {spec!r} needs an argument: {kind}:{KINDS[kind][0]}")
    return kind, (arg if sep and arg else None)


def open_source(spec: str, sysfs_root: Path = Path("/sys")) -> Meter:
    """Open the meter a spec names; ``SourceUnavailable`` (naming the spec) when it cannot.

    Paths outside sysfs (``/run/jtop.sock``, ``/dev/hidrawN`` found through sysfs) are
    taken under ``sysfs_root``'s parent, so a fake tree keeps everything together.
    """
    kind, arg = parse_spec(spec)
    root = Path(sysfs_root)
    try:
        meter = _open(kind, arg, root)
    except SourceUnavailable as e:
        raise SourceUnavailable(spec, e.reason) from e
    except SpecError:
        raise
    except Exception as e:  # a vendor library failing in a way we did not foresee
        raise SourceUnavailable(spec, f"{type(e).__name__}: {e}") from e
    return meter


def _open(kind: str, arg: str | None, root: Path) -> Meter:
    if kind == "ina3221":
        from power.ina3221 import Ina3221Meter

        rails = [r for r in (arg or "").split("+") if r]
        return Ina3221Meter(root, total_rails=rails or None)
    if kind == "jtop":
        from power.jtop_meter import JtopMeter

        return JtopMeter(socket_path=fs_root(root) / "run/jtop.sock")
    if kind in ("um24c", "um25c", "um34c"):
        from power.um_meter import UmMeter

        return UmMeter(arg, kind)
    if kind in ("fnb48", "fnb58"):
        from power.fnirsi_meter import FnirsiMeter

        return FnirsiMeter(arg, kind, sysfs_root=root)
    if kind == "rapl":
        from power.rapl import RaplMeter

        return RaplMeter(root, total=arg or "package")
    if kind == "estimate":
        from power.estimate import ATTRIBUTIONS, EstimateMeter

        parts = [x for x in (arg or "").split(":") if x]
        how = [x for x in parts if x in ATTRIBUTIONS]
        profile = [x for x in parts if x not in ATTRIBUTIONS]
        if len(how) > 1 or len(profile) > 1:
            raise SourceUnavailable("estimate", f"expected estimate[:PROFILE][:process|machine], "
                                    f"got estimate:{arg}")
        return EstimateMeter(profile[0] if profile else None, root,
                             attribution=how[0] if how else "process")
    from power.replay import ReplayMeter

    return ReplayMeter(Path(arg))
