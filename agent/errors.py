"""Errors of the agent layer; each names the field and the value at fault."""

from __future__ import annotations

from kernels.errors import ConfigError, HaloError

AgentError = HaloError
"""The agent layer's errors share the project's one base (``kernels.errors``)."""

__all__ = ["AgentError", "ConfigError", "HaloError"]
