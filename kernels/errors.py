"""The one base of every error halo-agent raises about its input, at the ground floor.

Every package's own errors derive from :class:`HaloError` (``power.errors.PowerError``,
``models.data.errors.DataError``, ``models.nets.ModelError``, ...), so the command
line and the daemon catch one class to turn a user's mistake into one clear line,
while a bug (any other exception) still shows its traceback.  :class:`ConfigError`
lives here too because every layer, meta-training included, checks settings with it.
"""

from __future__ import annotations

from typing import Any


class HaloError(Exception):
    """Base class of halo-agent's own errors: the message says what is wrong and with what."""


class ConfigError(HaloError, ValueError):
    """A setting of a job, config file or command is invalid; names the field and the value."""

    def __init__(self, field: str, value: Any, expected: str):
        self.field, self.value, self.expected = field, value, expected
        super().__init__(f"{field}: got {value!r}; expected {expected}")


__all__ = ["HaloError", "ConfigError"]
