"""The arms of a benchmark: an optimizer name with an optional structural-sparsity scheme.

An arm is written ``NAME`` or ``NAME:SPARSITY``; ``SPARSITY`` is ``dense``, ``halo`` or
the update probabilities of the first, middle and last third of the layers in percent,
dash-separated as in the HALO paper (``adam:10-30-50``, ``halo:50-30-10``).  The arm's
text is its key in a report.  Hand-designed optimizers (the keys of
``kernels.optimizers.OPTIMIZERS``) can be tuned over a learning-rate grid; learned
ones (e.g. ``halo``) never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from agent.errors import ConfigError
from kernels.optimizers import OPTIMIZERS
from kernels.sparsity import halo_thirds
from models.registry import optimizer_names


class BenchConfigError(ConfigError):
    """A bad benchmark setting; the message names the option and the value."""

    def __init__(self, field: str, value: object, expected: str, message: Optional[str] = None):
        super().__init__(field, value, expected)
        if message:
            self.args = (message,)


@dataclass(frozen=True)
class Arm:
    """One optimizer configuration: ``label`` (its key), ``optimizer``, and ``sparsity``:
    None (the optimizer's default), ``"dense"``, ``"halo"`` or per-third probabilities."""

    label: str
    optimizer: str
    sparsity: Optional[object] = None  # None | "dense" | "halo" | (p_first, p_middle, p_last)

    @property
    def hand_designed(self) -> bool:
        """Whether the optimizer is a hand-designed rule (tunable), not a learned one."""
        return self.optimizer in OPTIMIZERS

    def sparsity_spec(self, n_layers: int) -> Optional[str]:
        """The engine's ``sparsity`` setting for a network of ``n_layers`` layers."""
        if self.sparsity is None or isinstance(self.sparsity, str):
            return self.sparsity
        thirds = halo_thirds(n_layers)
        return ",".join(f"{self.sparsity[int(t)]:g}" for t in thirds)


def _thirds(text: str, arm_text: str) -> Tuple[float, float, float]:
    parts = text.split("-")
    expected = "dense, halo, or three percentages like 10-30-50"
    if len(parts) != 3:
        raise BenchConfigError("optimizers", arm_text, expected)
    try:
        values = tuple(float(p) / 100.0 for p in parts)
    except ValueError:
        raise BenchConfigError("optimizers", arm_text, expected) from None
    if not all(0.0 < v <= 1.0 for v in values):
        raise BenchConfigError("optimizers", arm_text, "percentages in (0, 100], like 10-30-50")
    return values  # type: ignore[return-value]


def parse_arm(text: str) -> Arm:
    """An :class:`Arm` from ``NAME[:SPARSITY]``; raises :class:`BenchConfigError`
    ("unknown optimizer ...") for a name that is not registered."""
    raw = text.strip()
    name, _, sp = raw.partition(":")
    name = name.strip().lower()
    known = optimizer_names() + ["hypergrad"]  # hypergrad: bench.hypergrad_arm
    if name not in known:
        raise BenchConfigError(
            "optimizers", name, f"one of {', '.join(known)}",
            f"unknown optimizer {name!r} in --optimizers; known optimizers: {', '.join(known)}")
    sp = sp.strip().lower()
    if not sp:
        return Arm(name, name, None)
    if sp in ("dense", "halo"):
        return Arm(f"{name}:{sp}", name, sp)
    values = _thirds(sp, raw)
    label = f"{name}:" + "-".join(f"{100 * v:g}" for v in values)
    return Arm(label, name, values)


def parse_arms(texts: Sequence[str]) -> List[Arm]:
    """Arms from their texts, in order; duplicates are an error."""
    if not texts:
        raise BenchConfigError("optimizers", "", "at least one optimizer")
    arms = [parse_arm(t) for t in texts]
    labels = [a.label for a in arms]
    for lab in labels:
        if labels.count(lab) > 1:
            raise BenchConfigError("optimizers", lab, "each optimizer once")
    return arms


def split_list(text: str) -> List[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped)."""
    return [s.strip() for s in text.split(",") if s.strip()]
