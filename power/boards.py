"""Board identification and the per-board rule for the INA3221 "total" figure.

Facts from docs/references.md §3.1 (energymon JetsonPowerRails.md, L4T 32.6.1;
jtop logs for AGX Orin; NVIDIA R36.4.4 guide on VIN_SYS_5V0).
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Dict, NamedTuple, Sequence

from power.errors import PowerError
from power.sysfs import read_optional

#: Rails that are already included in another rail's reading (child -> parent).
#: AGX Orin: VIN_SYS_5V0 includes VDDQ_VDD2_1V8AO (NVIDIA R36.4.4 guide, power.md §1.2).
CONTAINED_IN: Dict[str, str] = {"VDDQ_VDD2_1V8AO": "VIN_SYS_5V0"}


class TotalRule(NamedTuple):
    """Which rails add up to the board total, and why (shown by ``doctor``)."""

    rails: tuple
    rule: str


def fs_root(sysfs_root: Path) -> Path:
    """The filesystem root that ``sysfs_root`` hangs from (``/sys`` -> ``/``).

    Paths outside sysfs (``/proc/device-tree``, ``/run/jtop.sock``, ``/dev``) are
    looked up under it, so a fake tree at ``tmp/sys`` keeps them under ``tmp``.
    """
    return Path(sysfs_root).parent


def read_board_model(sysfs_root: Path = Path("/sys")) -> str | None:
    """The board's model string, or None.

    Order: the device tree under sysfs (``firmware/devicetree/base/model``, which is
    what ``/proc/device-tree`` links to), ``<root>/proc/device-tree/model``, then the
    DMI product name (x86). The device-tree string ends in a NUL byte, removed here.
    """
    root = Path(sysfs_root)
    candidates = (
        root / "firmware/devicetree/base/model",
        fs_root(root) / "proc/device-tree/model",
    )
    for path in candidates:
        text = read_optional(path)
        if text:
            return text.replace("\x00", "").strip() or None
    vendor = read_optional(root / "class/dmi/id/sys_vendor") or ""
    product = read_optional(root / "class/dmi/id/product_name") or ""
    dmi = f"{vendor} {product}".strip()
    return dmi or None


def machine_arch() -> str:
    """``platform.machine()`` lower-cased (``x86_64``, ``aarch64``, ``armv7l``)."""
    return platform.machine().lower()


def total_rule(rails: Sequence[str], override: Sequence[str] | None = None) -> TotalRule:
    """Pick the rails whose sum is the board total.

    - ``override`` (e.g. ``("VDD_IN", "VDD_MUX")`` for a TX2 dev kit with its carrier)
      wins; every rail named must exist.
    - Nano: ``POM_5V_IN``. TX1/TX2/Xavier NX/Orin NX/Orin Nano: ``VDD_IN`` (module input;
      on TX1/TX2 the carrier board's ``VDD_MUX`` is left out unless overridden).
    - Thor: ``VIN`` when present.
    - AGX Orin (``VIN_SYS_5V0`` and no ``VDD_IN``): every rail except those contained in
      another (``VDDQ_VDD2_1V8AO`` is inside ``VIN_SYS_5V0``), so nothing counts twice.
    - AGX Xavier and unknown layouts: the sum of all rails (no parent rail exists).
    """
    names = list(rails)
    if override:
        missing = [r for r in override if r not in names]
        if missing:
            raise PowerError(
                f"total rail(s) {', '.join(missing)} not found; rails present: {', '.join(names)}")
        return TotalRule(tuple(override), "configured: " + " + ".join(override))
    if "POM_5V_IN" in names:
        return TotalRule(("POM_5V_IN",), "POM_5V_IN (Jetson Nano module input)")
    if "VDD_IN" in names:
        note = " ; carrier VDD_MUX left out (use ina3221:VDD_IN+VDD_MUX)" if "VDD_MUX" in names \
            else ""
        return TotalRule(("VDD_IN",), "VDD_IN (module input)" + note)
    if "VIN" in names:
        return TotalRule(("VIN",), "VIN (Thor board input)")
    if "VIN_SYS_5V0" in names:
        kept = tuple(r for r in names if CONTAINED_IN.get(r) not in names)
        left = [r for r in names if r not in kept]
        note = f" (without {', '.join(left)}, already inside its parent rail)" if left else ""
        return TotalRule(kept, "AGX Orin: sum of rails" + note)
    return TotalRule(tuple(names), "sum of all rails (no parent rail: AGX Xavier or unknown)")
