"""What a reader needs to reproduce a measurement on a board: the run record of a report.

Read from the files the board itself keeps, under ``sysfs_root`` (``/sys``) and the
root it hangs from (``/``; a fake tree with the same names in tests), every field None
when its file is missing or unreadable (no root needed, nothing is run):

- board model: :func:`power.boards.read_board_model` (device tree, else DMI);
- L4T release: the first line of ``etc/nv_tegra_release``
  (``# R35 (release), REVISION: 4.1, ...`` -> ``R35.4.1``); JetPack: the version of the
  ``nvidia-jetpack`` package in ``var/lib/dpkg/status`` when it is installed;
- nvpmodel mode: ``var/lib/nvpmodel/status`` (``pmode:0002``, what nvpmodel writes),
  named from ``etc/nvpmodel.conf`` (``< POWER_MODEL ID=2 NAME=MAXN_SUPER >``);
- jetson_clocks: ``jetson_clocks --show`` needs root, so the record gives what it
  leaves behind and says so: whether every CPU's ``scaling_min_freq`` equals its
  ``scaling_max_freq`` (jetson_clocks pins the minimum to the maximum);
- CPU frequency governor per CPU: ``sys/devices/system/cpu/cpuN/cpufreq/scaling_governor``;
- temperatures at start: ``sys/class/thermal/thermal_zoneN/{type,temp}`` (millidegrees C);
- Python, NumPy, the BLAS libraries and their threads (threadpoolctl).
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

from power.boards import fs_root, read_board_model

_L4T = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*([0-9.]+)")
_PMODE = re.compile(r"pmode:\s*0*(\d+)")
_POWER_MODEL = re.compile(r"<\s*POWER_MODEL\s+ID=(\d+)\s+NAME=([^\s>]+)")


def _read(path: Path) -> Optional[str]:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except OSError:
        return None


def l4t_release(root: Path) -> Dict[str, Optional[str]]:
    """``{"l4t": "R35.4.1", "l4t_line": first line, "jetpack": "5.1.2-b104"}`` (None: absent)."""
    text = _read(root / "etc/nv_tegra_release")
    line = text.splitlines()[0].strip() if text and text.strip() else None
    m = _L4T.search(line or "")
    jetpack = None
    status = _read(root / "var/lib/dpkg/status")
    if status:
        for block in status.split("\n\n"):
            if re.search(r"^Package: nvidia-jetpack$", block, re.M):
                v = re.search(r"^Version: (\S+)$", block, re.M)
                jetpack = v.group(1) if v else None
                break
    return {"l4t": f"R{m.group(1)}.{m.group(2)}" if m else None, "l4t_line": line,
            "jetpack": jetpack}


def nvpmodel_mode(root: Path) -> Optional[Dict[str, Any]]:
    """``{"id": 2, "name": "MAXN_SUPER"}`` from nvpmodel's status file and config."""
    m = _PMODE.search(_read(root / "var/lib/nvpmodel/status") or "")
    if not m:
        return None
    mode = int(m.group(1))
    names = dict((int(i), n) for i, n in _POWER_MODEL.findall(_read(root / "etc/nvpmodel.conf") or ""))
    return {"id": mode, "name": names.get(mode)}


def _cpus(sysfs: Path) -> List[Path]:
    base = sysfs / "devices/system/cpu"
    try:
        found = [p for p in base.iterdir() if re.fullmatch(r"cpu\d+", p.name)]
    except OSError:
        return []
    return sorted(found, key=lambda p: int(p.name[3:]))


def cpufreq(sysfs: Path) -> Dict[str, Any]:
    """Governor per CPU and whether the clocks look pinned (jetson_clocks' trace)."""
    governors: Dict[str, str] = {}
    pinned: List[bool] = []
    for cpu in _cpus(sysfs):
        gov = _read(cpu / "cpufreq/scaling_governor")
        if gov:
            governors[cpu.name] = gov.strip()
        lo, hi = _read(cpu / "cpufreq/scaling_min_freq"), _read(cpu / "cpufreq/scaling_max_freq")
        if lo and hi and lo.strip().isdigit() and hi.strip().isdigit():
            pinned.append(int(lo) == int(hi))
    return {
        "governors": governors or None,
        "clocks_pinned": (all(pinned) if pinned else None),
        "clocks_pinned_means": "every CPU's scaling_min_freq == scaling_max_freq, as after "
                               "jetson_clocks (its own --show needs root)",
    }


def temperatures(sysfs: Path) -> Optional[Dict[str, float]]:
    """Each thermal zone's temperature in degrees C, by zone type (``cpu-thermal``...)."""
    base = sysfs / "class/thermal"
    try:
        zones = sorted(p for p in base.iterdir() if p.name.startswith("thermal_zone"))
    except OSError:
        return None
    out: Dict[str, float] = {}
    for z in zones:
        kind, temp = _read(z / "type"), _read(z / "temp")
        try:
            value = int(temp.strip()) / 1000.0 if temp else None
        except ValueError:
            value = None
        if value is not None:
            out[(kind or z.name).strip() or z.name] = value
    return out or None


def software() -> Dict[str, Any]:
    """Python, NumPy and the BLAS libraries NumPy loaded, with their thread counts."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        blas = [{"library": i.get("internal_api"), "version": i.get("version"),
                 "threads": i.get("num_threads"), "architecture": i.get("architecture")}
                for i in threadpool_info() if i.get("user_api") == "blas"]
    except Exception:  # threadpoolctl failing on an exotic BLAS must not stop a run
        blas = []
    return {"python": platform.python_version(), "numpy": np.__version__, "blas": blas}


def run_record(sysfs_root: Path = Path("/sys"), threads: Optional[int] = None) -> Dict[str, Any]:
    """The run record of a report (see the module docstring); ``threads``: the BLAS
    threads the run asked for."""
    sysfs, root = Path(sysfs_root), fs_root(Path(sysfs_root))
    return {"board_model": read_board_model(sysfs), **l4t_release(root),
            "nvpmodel": nvpmodel_mode(root), **cpufreq(sysfs),
            "temperatures_c_at_start": temperatures(sysfs),
            "machine": platform.machine(), **software(), "threads": threads}


def record_line(rec: Dict[str, Any]) -> str:
    """One line for a Markdown report."""
    parts = [rec.get("board_model") or f"{rec.get('machine')} (board model not readable)"]
    if rec.get("l4t"):
        parts.append(f"L4T {rec['l4t']}" + (f", JetPack {rec['jetpack']}" if rec.get("jetpack") else ""))
    if rec.get("nvpmodel"):
        nv = rec["nvpmodel"]
        parts.append(f"nvpmodel {nv['id']}" + (f" ({nv['name']})" if nv.get("name") else ""))
    if rec.get("clocks_pinned") is not None:
        parts.append("clocks pinned (as jetson_clocks)" if rec["clocks_pinned"] else "clocks not pinned")
    govs = sorted(set((rec.get("governors") or {}).values()))
    parts.append(f"governor {'/'.join(govs)}" if govs else "governor not readable")
    temps = rec.get("temperatures_c_at_start")
    if temps:
        parts.append("at start " + ", ".join(f"{k} {v:.1f} C" for k, v in temps.items()))
    blas = ", ".join(f"{b['library']} {b['version']} ({b['threads']} threads)" for b in rec.get("blas") or [])
    parts.append(f"Python {rec.get('python')}, NumPy {rec.get('numpy')}" + (f", {blas}" if blas else ""))
    return "; ".join(parts)
