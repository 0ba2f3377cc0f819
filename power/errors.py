"""Exceptions of the power package: one base, a few precise subclasses."""

from __future__ import annotations

from kernels.errors import HaloError


class PowerError(HaloError):
    """Base class of every error the power package raises on purpose."""


class SpecError(PowerError, ValueError):
    """A source spec such as ``um25c:/dev/rfcomm0`` could not be understood."""


class SourceUnavailable(PowerError):
    """A power source cannot be used here; ``reason`` says why, in words."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"power source {source!r} unavailable: {reason}")
        self.source = source
        self.reason = reason


class SensorReadError(PowerError):
    """One reading failed (a file vanished, a meter did not answer, ...)."""


class FrameError(PowerError, ValueError):
    """Bytes from a meter do not form a valid frame or report."""
