"""The Meter interface every power source implements."""

from __future__ import annotations

import abc
from typing import Any, Dict

from power.sample import PowerSample


class Meter(abc.ABC):
    """A power source: discovered once in ``__init__``, then read cheaply.

    Subclasses set ``source`` (a short name), ``estimated`` and ``profile``.
    ``read()`` returns a :class:`PowerSample` or raises ``SensorReadError``;
    meters are read from one thread at a time (the sampler's).
    """

    source: str = "meter"
    estimated: bool = False
    profile: str | None = None
    #: Fastest useful polling period in seconds (chip refresh, serial round trip).
    min_period_s: float = 0.0
    #: What the energy covers: ``board`` (a meter on the supply: every process and the
    #: idle power, as it must), ``machine``, or ``process`` (the estimate's default).
    attribution: str = "board"

    def __init__(self) -> None:
        self.spec = self.source

    @abc.abstractmethod
    def read(self) -> PowerSample:
        """Take one reading now; raise ``SensorReadError`` when it fails."""

    def close(self) -> None:  # noqa: B027 - optional hook, most meters hold nothing open
        """Release ports and handles; reading after close is an error."""

    @property
    def covers(self) -> str:
        """One line for reports: whose energy the readings are."""
        return ("the whole board as the meter measures it: every process and the idle power, "
                "not only the job")

    def describe(self) -> Dict[str, Any]:
        """Plain-data description for ``doctor`` and reports (paths, rails, total rule)."""
        return {"source": self.source, "spec": self.spec, "estimated": self.estimated,
                "profile": self.profile, "attribution": self.attribution, "covers": self.covers}

    def __enter__(self) -> Meter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} spec={self.spec!r}>"
