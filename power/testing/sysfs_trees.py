"""Fake sysfs trees with the real file names and units: TX2 (iio), Orin (hwmon), powercap."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Mapping, Tuple

#: TX2 dev kit: bus 0, two INA3221 (docs/references.md §3.1), (mV, mA) per rail;
#: module rails near 19.1 V, WIFI/DDR near 4.8 V (leonardopsantos/jetsonTX2Power README).
TX2_RAILS: Dict[str, Tuple[Tuple[str, int, int], ...]] = {
    "0-0040": (("VDD_SYS_GPU", 19104, 8), ("VDD_SYS_SOC", 19104, 20), ("VDD_4V0_WIFI", 4800, 4)),
    "0-0041": (("VDD_IN", 19104, 98), ("VDD_SYS_CPU", 19104, 12), ("VDD_SYS_DDR", 4800, 28)),
}
#: AGX Orin (JetPack 5+, bus 1): 0x40 GPU_SOC/CPU_CV/VIN_SYS_5V0, 0x41 NC/VDDQ/NC.
AGX_ORIN_RAILS: Dict[str, Tuple[Tuple[str, int, int], ...]] = {
    "1-0040": (("VDD_GPU_SOC", 4960, 480), ("VDD_CPU_CV", 4960, 160), ("VIN_SYS_5V0", 4976, 560)),
    "1-0041": (("NC", 0, 0), ("VDDQ_VDD2_1V8AO", 4992, 120), ("NC", 0, 0)),
}
#: Orin NX / Orin Nano (bus 1, 0x40): VDD_IN, VDD_CPU_GPU_CV, VDD_SOC.
ORIN_NX_RAILS: Dict[str, Tuple[Tuple[str, int, int], ...]] = {
    "1-0040": (("VDD_IN", 5016, 1200), ("VDD_CPU_GPU_CV", 5008, 250), ("VDD_SOC", 5008, 300)),
}


def write_attr(path: Path, value: object) -> None:
    """Write a sysfs-style attribute atomically (temp file + rename), creating dirs.

    Atomic so that a reader never sees a half-written file: a real sysfs read is
    atomic too.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(f"{value}\n")
    os.replace(tmp, path)


def write_board_model(sysfs_root: Path, model: str) -> None:
    """The device-tree model string (NUL-terminated, as the kernel exposes it)."""
    path = Path(sysfs_root) / "firmware/devicetree/base/model"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.encode() + b"\x00")


@dataclass
class _Channel:
    node: Path
    index: int  # iio: 0..2, hwmon: 1..3
    voltage_mv: int
    current_ma: int


class FakeIna3221Tree:
    """A fake tree of INA3221 chips; change rails while a meter reads them.

    ``layout`` is ``"iio"`` (NVIDIA ``ina3221x``: mW power file computed as
    mV x mA / 1000, integer) or ``"hwmon"`` (upstream ``ina3221``: no power file).
    """

    def __init__(self, sysfs_root: Path, layout: str,
                 chips: Mapping[str, Tuple[Tuple[str, int, int], ...]],
                 model: str | None = None, class_links: bool = True) -> None:
        if layout not in ("iio", "hwmon"):
            raise ValueError(f"layout must be iio or hwmon, got {layout!r}")
        self.root, self.layout = Path(sysfs_root), layout
        self.channels: Dict[str, _Channel] = {}
        self.root.mkdir(parents=True, exist_ok=True)
        if model:
            write_board_model(self.root, model)
        for n, (device, rails) in enumerate(sorted(chips.items())):
            if layout == "iio":
                node = self.root / f"bus/i2c/drivers/ina3221x/{device}/iio:device{n}"
                write_attr(node / "name", "ina3221x")
                write_attr(node / "running_mode", 1)
            else:
                node = self.root / f"bus/i2c/drivers/ina3221/{device}/hwmon/hwmon{n + 2}"
                write_attr(node / "name", "ina3221")
                write_attr(node / "samples", 512)
                write_attr(node / "update_interval", 0)
                for k in (4, 5, 6):
                    write_attr(node / f"in{k}_input", 0)  # shunt voltages, uV
                write_attr(node / "in7_label", "sum of shunt voltages")
                write_attr(node / "in7_input", 0)
                write_attr(node / "curr4_input", 0)
                if class_links:
                    link = self.root / f"class/hwmon/hwmon{n + 2}"
                    link.parent.mkdir(parents=True, exist_ok=True)
                    os.symlink(os.path.relpath(node, link.parent), link)
            for k, (label, mv, ma) in enumerate(rails):
                index = k if layout == "iio" else k + 1
                label_file = f"rail_name_{index}" if layout == "iio" else f"in{index}_label"
                write_attr(node / label_file, label)
                channel = _Channel(node, index, mv, ma)
                if label != "NC":
                    self.channels[label] = channel
                self._write(channel)

    def _files(self, ch: _Channel) -> Dict[str, Path]:
        if self.layout == "iio":
            return {"power": ch.node / f"in_power{ch.index}_input",
                    "voltage": ch.node / f"in_voltage{ch.index}_input",
                    "current": ch.node / f"in_current{ch.index}_input"}
        return {"voltage": ch.node / f"in{ch.index}_input",
                "current": ch.node / f"curr{ch.index}_input"}

    def _write(self, ch: _Channel) -> None:
        files = self._files(ch)
        write_attr(files["voltage"], ch.voltage_mv)
        write_attr(files["current"], ch.current_ma)
        if "power" in files:
            write_attr(files["power"], ch.voltage_mv * ch.current_ma // 1000)

    @property
    def rails(self) -> List[str]:
        """Rail names (``NC`` channels excluded), in tree order."""
        return list(self.channels)

    def set_rail(self, name: str, voltage_mv: int | None = None,
                 current_ma: int | None = None) -> None:
        """Change a rail's bus voltage and/or current; files are rewritten atomically."""
        ch = self.channels[name]
        if voltage_mv is not None:
            ch.voltage_mv = int(voltage_mv)
        if current_ma is not None:
            ch.current_ma = int(current_ma)
        self._write(ch)

    def set_power_w(self, name: str, power_w: float) -> float:
        """Set a rail's current so its power is about ``power_w``; returns the exact W."""
        ch = self.channels[name]
        self.set_rail(name, current_ma=int(round(power_w * 1e6 / ch.voltage_mv)))
        return self.power_w(name)

    def power_w(self, name: str) -> float:
        """The watts a correct reader gets for ``name`` (integer mW on iio, V x I on hwmon)."""
        ch = self.channels[name]
        if self.layout == "iio":
            return (ch.voltage_mv * ch.current_ma // 1000) / 1e3
        return ch.voltage_mv * ch.current_ma / 1e6

    def remove_rail(self, name: str) -> List[Path]:
        """Delete a rail's files (a sensor that vanishes); ``restore_rail`` puts them back."""
        removed = []
        for path in self._files(self.channels[name]).values():
            if path.exists():
                path.unlink()
                removed.append(path)
        return removed

    def restore_rail(self, name: str) -> None:
        """Rewrite a removed rail's files with its current values."""
        self._write(self.channels[name])


def make_tx2_tree(sysfs_root: Path, model: str | None = "NVIDIA Jetson TX2") -> FakeIna3221Tree:
    """TX2 dev kit, old iio layout: ``0-0040`` and ``0-0041``, six rails."""
    return FakeIna3221Tree(sysfs_root, "iio", TX2_RAILS, model)


def make_orin_tree(sysfs_root: Path, variant: str = "agx",
                   model: str | None = None) -> FakeIna3221Tree:
    """Orin, hwmon layout: ``variant="agx"`` (AGX Orin rails) or ``"nx"`` (Orin NX/Nano)."""
    chips = {"agx": AGX_ORIN_RAILS, "nx": ORIN_NX_RAILS}[variant]
    default = {"agx": "NVIDIA Jetson AGX Orin Developer Kit",
               "nx": "NVIDIA Jetson Orin NX Engineering Reference Developer Kit"}[variant]
    return FakeIna3221Tree(sysfs_root, "hwmon", chips, model or default)


class FakePowercapTree:
    """``class/powercap/intel-rapl:*`` zones with ``energy_uj`` counters that wrap."""

    def __init__(self, sysfs_root: Path,
                 zones: Mapping[str, Tuple[str, int]] | None = None) -> None:
        self.root = Path(sysfs_root)
        self.zones = dict(zones or {
            "intel-rapl:0": ("package-0", 262143328850),
            "intel-rapl:0:0": ("core", 262143328850),
            "intel-rapl:0:2": ("dram", 65712999613),
            "intel-rapl:1": ("psys", 262143328850),
        })
        self.energy_uj: Dict[str, int] = {}
        for key, (name, max_uj) in self.zones.items():
            node = self.root / "class/powercap" / key
            write_attr(node / "name", name)
            write_attr(node / "max_energy_range_uj", max_uj)
            self.set_energy_uj(key, 0)

    def path(self, zone: str) -> Path:
        """The ``energy_uj`` file of ``zone`` (e.g. ``"intel-rapl:0"``)."""
        return self.root / "class/powercap" / zone / "energy_uj"

    def set_energy_uj(self, zone: str, value: int) -> None:
        """Set the raw counter (wrapped into ``[0, max_energy_range_uj)``)."""
        value = int(value) % self.zones[zone][1]
        self.energy_uj[zone] = value
        write_attr(self.path(zone), value)

    def add_energy_j(self, zone: str, joules: float) -> None:
        """Advance a counter by ``joules``, wrapping as the hardware does."""
        self.set_energy_uj(zone, self.energy_uj[zone] + int(round(joules * 1e6)))


class PowerDriver:
    """A thread that sets a value through ``setter(watts)`` every ``period_s`` from
    ``power_fn(t)`` (t = seconds since start) and logs what it wrote, so a test knows the
    true energy: :meth:`energy_j` integrates the logged piecewise-constant power.

    ``setter`` returns the watts actually written (e.g. after quantisation).
    """

    def __init__(self, setter: Callable[[float], float], power_fn: Callable[[float], float],
                 period_s: float = 0.005) -> None:
        self._setter, self._fn, self.period_s = setter, power_fn, period_s
        self.log: List[Tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-power-driver", daemon=True)

    def _run(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            watts = self._setter(self._fn(time.monotonic() - t0))
            self.log.append((time.monotonic(), watts))
            self._stop.wait(self.period_s)

    def start(self) -> PowerDriver:
        self._thread.start()
        while not self.log:
            time.sleep(0.001)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def __enter__(self) -> PowerDriver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def energy_j(self, t0_s: float, t1_s: float) -> float:
        """True joules between two monotonic instants (value held until the next write)."""
        total = 0.0
        for (ta, wa), (tb, _) in zip(self.log, self.log[1:] + [(float("inf"), 0.0)]):
            lo, hi = max(ta, t0_s), min(tb, t1_s)
            if hi > lo:
                total += wa * (hi - lo)
        return total
