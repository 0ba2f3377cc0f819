"""Linux powercap / Intel RAPL energy counters (Intel and AMD x86), wraparound handled.

Tree (``torvalds/linux:Documentation/power/powercap/powercap.rst``)::

    <sysfs>/class/powercap/intel-rapl:N[:M]/
        name  (package-N, core, uncore, dram, psys)   energy_uj   max_energy_range_uj

There is no power file: power is the counter difference over time. A counter that
drops has wrapped and ``max_energy_range_uj`` is added (one wrap per read at most;
at 50 W a 262 kJ range wraps every ~87 min, far above any sampling period). Since
Linux 5.10 ``energy_uj`` is readable by root only (CVE-2020-8694); that case is reported
as a permission problem, not as "no RAPL".

Total: the sum of the ``package-N`` zones and their ``dram`` subzones (CPU + memory,
not the whole board), or the ``psys`` zone with ``rapl:psys``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List

from power.base import Meter
from power.errors import SensorReadError, SourceUnavailable
from power.sample import Availability, PowerSample
from power.sysfs import read_int, read_optional

ZONE_GLOBS = ("class/powercap/intel-rapl:*", "devices/virtual/powercap/intel-rapl/intel-rapl:*")
PERMISSION_HINT = ("energy_uj is root-only since Linux 5.10 (CVE-2020-8694): run as root, or "
                   "`sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj` (lost at reboot)")


@dataclass(frozen=True)
class RaplZone:
    """One powercap zone: rail name (``package-0``, ``package-0/dram``), counter path, range."""

    rail: str
    energy_uj_path: str
    max_energy_range_uj: int
    in_total: bool


def discover_zones(sysfs_root: Path = Path("/sys"), total: str = "package") -> List[RaplZone]:
    """Zones under ``sysfs_root``; ``total`` is ``"package"`` (package + dram) or ``"psys"``."""
    root = Path(sysfs_root)
    nodes: Dict[str, Path] = {}
    for pattern in ZONE_GLOBS:
        for node in sorted(root.glob(pattern)):
            nodes.setdefault(node.name, node)
    names = {key: read_optional(node / "name") or key for key, node in nodes.items()}
    zones = []
    for key in sorted(nodes):
        node = nodes[key]
        parts = key.split(":")
        name = names[key]
        rail = name if len(parts) == 2 else f"{names.get(':'.join(parts[:2]), parts[1])}/{name}"
        range_text = read_optional(node / "max_energy_range_uj")
        if range_text is None or not range_text.isdigit():
            continue
        if total == "psys":
            in_total = name == "psys"
        else:
            in_total = (len(parts) == 2 and name.startswith("package")) or name == "dram"
        zones.append(RaplZone(rail, str(node / "energy_uj"), int(range_text), in_total))
    return zones


class RaplMeter(Meter):
    """Energy counters turned into power; samples carry ``energy_counter_j``.

    ``total="psys"`` uses the platform zone (laptops) as the total instead of package+DRAM.
    """

    source = "rapl"
    attribution = "machine"

    @property
    def covers(self) -> str:
        """RAPL counts the CPU package (and DRAM, or the platform), whoever runs on it."""
        return "the machine's RAPL domains: every process's energy and the idle power, not only the job"

    def __init__(self, sysfs_root: Path = Path("/sys"), total: str = "package") -> None:
        super().__init__()
        if total not in ("package", "psys"):
            raise SourceUnavailable("rapl", f"unknown RAPL total {total!r}; use package or psys")
        self.sysfs_root = Path(sysfs_root)
        self.total = total
        if total == "psys":
            self.spec = "rapl:psys"
        self.zones = discover_zones(self.sysfs_root, total)
        where = f"{self.sysfs_root}/class/powercap"
        if not self.zones:
            raise SourceUnavailable("rapl", f"no intel-rapl zones under {where}")
        if not any(z.in_total for z in self.zones):
            raise SourceUnavailable("rapl", f"no {total} zone under {where}")
        self._raw_uj: Dict[str, int] = {}
        self._cum_j: Dict[str, float] = {z.rail: 0.0 for z in self.zones}
        self._last_t: float | None = None
        self._last_w: Dict[str, float] = {}
        self.wraps = 0
        try:
            self._read_counters()
        except SensorReadError as e:
            reason = str(e)
            if reason.startswith("permission denied"):
                reason += "; " + PERMISSION_HINT
            raise SourceUnavailable("rapl", reason) from e
        self._last_t = time.monotonic()

    @classmethod
    def is_available(cls, sysfs_root: Path = Path("/sys"), total: str = "package") -> Availability:
        """Whether counters exist and are readable by this user (reason says which)."""
        try:
            meter = cls(sysfs_root, total)
        except SourceUnavailable as e:
            return Availability(False, e.reason)
        names = ", ".join(z.rail for z in meter.zones)
        return Availability(True, f"{len(meter.zones)} zones: {names}")

    def _read_counters(self) -> Dict[str, float]:
        """Read every zone, advance the wrap-corrected totals; joules since the last read."""
        delta_j = {}
        for zone in self.zones:
            raw = read_int(zone.energy_uj_path)
            prev = self._raw_uj.get(zone.rail)
            step_uj = 0 if prev is None else raw - prev
            if step_uj < 0:
                step_uj += zone.max_energy_range_uj
                self.wraps += 1
            self._raw_uj[zone.rail] = raw
            self._cum_j[zone.rail] += step_uj / 1e6
            delta_j[zone.rail] = step_uj / 1e6
        return delta_j

    def read(self) -> PowerSample:
        t0 = time.monotonic()
        delta_j = self._read_counters()
        t1 = time.monotonic()
        t_s = 0.5 * (t0 + t1)
        dt = t_s - self._last_t if self._last_t is not None else 0.0
        if dt > 1e-4:
            self._last_w = {rail: j / dt for rail, j in delta_j.items()}
        rails_w = {z.rail: self._last_w.get(z.rail, 0.0) for z in self.zones}
        self._last_t = t_s
        total_w = sum(rails_w[z.rail] for z in self.zones if z.in_total)
        counter_j = sum(self._cum_j[z.rail] for z in self.zones if z.in_total)
        return PowerSample(t_s, total_w, rails_w, self.source, False, energy_counter_j=counter_j)

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(total=self.total, wraps=self.wraps,
                    zones={z.rail: {"path": z.energy_uj_path, "max_energy_range_uj":
                                    z.max_energy_range_uj, "in_total": z.in_total}
                           for z in self.zones})
        return info
