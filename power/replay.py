"""Replay of a recorded power trace (CSV) as a meter, for demos and tests.

Format (``write_trace`` produces it)::

    # source=ina3221
    # estimated=false
    # profile=
    t_s,total_w,VDD_IN_w,VDD_SYS_CPU_w
    0.000000,2.500000,2.500000,0.300000

``t_s`` must increase; rail columns end in ``_w``. Replay starts at the first
``read()`` and follows the meter's clock (``speed`` x real time), interpolating
linearly between rows, so a sampler integrating a replay gets the trace's trapezoid
energy. With ``loop`` it starts over after the last row; without, reads past the end
raise ``SensorReadError``. The samples say ``source="replay"``; ``estimated`` and
``profile`` come from the header (a replayed estimate stays an estimate).
"""

from __future__ import annotations

import bisect
import csv
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from power.base import Meter
from power.errors import SensorReadError, SourceUnavailable
from power.sample import Availability, PowerSample


def write_trace(path: Path, samples: Sequence[PowerSample]) -> None:
    """Write samples as a replayable CSV (times relative to the first sample)."""
    samples = list(samples)
    first = samples[0] if samples else PowerSample(0.0, 0.0)
    rails = list(first.rails_w)
    with open(path, "w", newline="") as fh:
        fh.write(f"# source={first.source}\n# estimated={str(first.estimated).lower()}\n")
        fh.write("# profile=\n")
        out = csv.writer(fh)
        out.writerow(["t_s", "total_w"] + [f"{r}_w" for r in rails])
        for s in samples:
            out.writerow([f"{s.t_s - first.t_s:.6f}", f"{s.total_w:.6f}"]
                         + [f"{s.rails_w.get(r, 0.0):.6f}" for r in rails])


def _read_rows(path: Path) -> tuple:
    header: Dict[str, str] = {}
    lines: List[str] = []
    try:
        with open(path, newline="") as fh:
            for line in fh:
                if line.startswith("#"):
                    key, _, value = line[1:].strip().partition("=")
                    header[key.strip()] = value.strip()
                elif line.strip():
                    lines.append(line)
    except OSError as e:
        raise SourceUnavailable("replay", f"cannot read {path}: {e.strerror or e}") from e
    rows = list(csv.reader(lines))
    if len(rows) < 2 or rows[0][:2] != ["t_s", "total_w"]:
        raise SourceUnavailable("replay", f"{path}: expected a 't_s,total_w,...' header and rows")
    rails = [c[:-2] if c.endswith("_w") else c for c in rows[0][2:]]
    times, totals, rail_values = [], [], []
    for n, row in enumerate(rows[1:], start=2):
        try:
            values = [float(v) for v in row]
        except ValueError as e:
            raise SourceUnavailable("replay", f"{path} data line {n}: {e}") from e
        if len(values) != 2 + len(rails):
            raise SourceUnavailable("replay", f"{path} data line {n}: {len(values)} columns, "
                                    f"expected {2 + len(rails)}")
        if times and values[0] <= times[-1]:
            raise SourceUnavailable("replay", f"{path} data line {n}: t_s {values[0]} is not "
                                    f"after {times[-1]}")
        times.append(values[0])
        totals.append(values[1])
        rail_values.append(values[2:])
    t0 = times[0]
    return header, rails, [t - t0 for t in times], totals, rail_values


class ReplayMeter(Meter):
    """Play a CSV trace back in (scaled) real time; see the module docstring."""

    source = "replay"
    attribution = "recorded"

    @property
    def covers(self) -> str:
        """Whatever the recorded source covered."""
        return f"what the recorded source ({self.recorded_source or 'unknown'}) covered"

    def __init__(self, path: Path, *, loop: bool = True, speed: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.path = Path(path)
        self.spec = f"replay:{self.path}"
        header, self.rails, self._t, self._total, self._rails = _read_rows(self.path)
        self.recorded_source = header.get("source") or None
        self.estimated = header.get("estimated", "false").lower() == "true"
        self.profile = header.get("profile") or None
        self.loop, self.speed, self._clock = loop, float(speed), clock
        self.duration_s = self._t[-1]
        self._start: float | None = None

    @classmethod
    def is_available(cls, path: Path) -> Availability:
        """Whether the file parses as a trace."""
        try:
            meter = cls(path)
        except SourceUnavailable as e:
            return Availability(False, e.reason)
        return Availability(True, f"{len(meter._t)} rows over {meter.duration_s:.3f} s")

    def _at(self, t: float) -> tuple:
        i = bisect.bisect_right(self._t, t) - 1
        if i >= len(self._t) - 1:
            return self._total[-1], self._rails[-1]
        i = max(i, 0)
        frac = (t - self._t[i]) / (self._t[i + 1] - self._t[i])
        total_w = self._total[i] + frac * (self._total[i + 1] - self._total[i])
        return total_w, [a + frac * (b - a) for a, b in zip(self._rails[i], self._rails[i + 1])]

    def read(self) -> PowerSample:
        now = self._clock()
        if self._start is None:
            self._start = now
        elapsed = (now - self._start) * self.speed
        if elapsed > self.duration_s:
            if not self.loop:
                raise SensorReadError(f"replay of {self.path} ended after {self.duration_s:.3f} s")
            elapsed = elapsed % self.duration_s if self.duration_s > 0 else 0.0
        total_w, rails = self._at(elapsed)
        return PowerSample(now, total_w, dict(zip(self.rails, rails)), self.source, self.estimated)

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info.update(path=str(self.path), recorded_source=self.recorded_source, rows=len(self._t),
                    duration_s=self.duration_s, loop=self.loop, speed=self.speed)
        return info

