"""Jetson rails through the jetson-stats (jtop) service, when its socket answers."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Dict, Mapping

from power.base import Meter
from power.boards import total_rule
from power.errors import SensorReadError, SourceUnavailable
from power.sample import Availability, PowerSample

JTOP_SOCKET = Path("/run/jtop.sock")


def sample_from_jtop_power(power: Mapping[str, Any], t_s: float) -> PowerSample:
    """Convert jtop's ``jetson.power`` dict (values in mW) into a :class:`PowerSample`.

    The total is recomputed from the rails with :func:`power.boards.total_rule` rather
    than taken from jtop's ``tot``, which sums every rail on AGX Orin and so counts
    VDDQ_VDD2_1V8AO twice (docs/references.md §3.3). jtop's ``avg`` (an EMA with
    alpha 0.5, not a window mean) is ignored. Offline rails are left out.
    """
    rails_w: Dict[str, float] = {}
    for name, rail in dict(power.get("rail", {})).items():
        if name == "NC" or not rail.get("online", True) or "power" not in rail:
            continue
        rails_w[name] = float(rail["power"]) / 1e3
    if rails_w:
        total_w = sum(rails_w[r] for r in total_rule(list(rails_w)).rails)
    elif "power" in power.get("tot", {}):
        total_w = float(power["tot"]["power"]) / 1e3
    else:
        raise SensorReadError(f"jtop power has neither rails nor total: {dict(power)!r}")
    return PowerSample(t_s, total_w, rails_w, "jtop", False)


class JtopMeter(Meter):
    """Read power from a running ``jtop.service`` (needs the user in group ``jtop``).

    The service refreshes at its own interval (default 1 s, whichever client set it
    first), so polling faster returns repeated values; ``min_period_s`` is that interval.
    ``client`` lets tests pass an object with ``start()``, ``close()``, ``power`` and
    ``interval``.
    """

    source = "jtop"

    def __init__(self, interval_s: float = 0.5, socket_path: Path = JTOP_SOCKET,
                 client: Any | None = None) -> None:
        super().__init__()
        if client is None:
            client = self._connect(interval_s, Path(socket_path))
        self._client = client
        self.min_period_s = float(getattr(client, "interval", interval_s) or interval_s)

    @staticmethod
    def _connect(interval_s: float, socket_path: Path) -> Any:
        if not socket_path.exists():
            raise SourceUnavailable("jtop", f"{socket_path} not found: jtop.service is not running")
        try:
            from jtop import JtopException, jtop
        except ImportError as e:
            raise SourceUnavailable("jtop", f"jetson-stats is not installed ({e})") from e
        client = jtop(interval=interval_s)
        try:
            client.start()
        except JtopException as e:
            raise SourceUnavailable("jtop", f"jtop.service did not answer: {e}") from e
        except OSError as e:
            raise SourceUnavailable("jtop", f"cannot reach {socket_path}: {e}") from e
        return client

    @classmethod
    def is_available(cls, socket_path: Path = JTOP_SOCKET) -> Availability:
        """Whether the jtop service answers and reports power."""
        try:
            meter = cls(socket_path=socket_path)
        except SourceUnavailable as e:
            return Availability(False, e.reason)
        try:
            sample = meter.read()
        except Exception as e:
            return Availability(False, f"jtop answered but gave no power: {e}")
        finally:
            meter.close()
        return Availability(True, f"{len(sample.rails_w)} rails via jtop.service")

    def read(self) -> PowerSample:
        ok = getattr(self._client, "ok", None)
        try:
            if ok is not None and not ok(spin=True):
                raise SensorReadError("jtop client stopped (service gone?)")
            power = self._client.power
        except SensorReadError:
            raise
        except Exception as e:  # jtop re-raises its thread's errors here
            raise SensorReadError(f"jtop read failed: {e}") from e
        return sample_from_jtop_power(power, time.monotonic())

    def close(self) -> None:
        try:
            self._client.close()
        except Exception:  # closing a dead client must not mask the real error
            pass

    def describe(self) -> Dict[str, Any]:
        info = super().describe()
        info["service_interval_s"] = self.min_period_s
        return info
