"""The arms of a benchmark: an optimizer name with an optional structural-sparsity scheme.

An arm is written ``NAME`` or ``NAME:SPARSITY``; ``SPARSITY`` is ``dense``; ``halo``, the
update probabilities the HALO weights under test were trained with (``adam:halo``: Adam
with halo-v2's 25/93/92 when the comparison runs halo-v2); the update probabilities of
the first, middle and last third of the layers in percent, dash-separated as in the
HALO paper (``adam:10-30-50``, ``halo:50-30-10``); or the same as fractions,
``thirds:P1,P2,P3`` (``adam:thirds:0.25,0.93,0.92``, the engine's spelling).  The arm's
text is its key in a report.  Hand-designed optimizers (the keys of
``kernels.optimizers.OPTIMIZERS``) can be tuned over a learning-rate grid; learned
ones (e.g. ``halo``) never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from agent.errors import ConfigError
from kernels.optimizers import OPTIMIZERS
from kernels.sparsity import THIRDS_PREFIX as THIRDS
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

    @property
    def sparse(self) -> bool:
        """Whether the arm asks for structural sparsity (not its default, not dense)."""
        return self.sparsity is not None and self.sparsity != "dense"

    def sparsity_spec(self, n_layers: int) -> Optional[str]:
        """The engine's ``sparsity`` setting for a network of ``n_layers`` layers."""
        if self.sparsity is None or isinstance(self.sparsity, str):
            return self.sparsity
        thirds = halo_thirds(n_layers)
        return ",".join(f"{self.sparsity[int(t)]:g}" for t in thirds)


def _three(parts: Sequence[str], unit: float, arm_text: str, expected: str,
           out_of_range: str) -> Tuple[float, float, float]:
    """Three probabilities in (0, 1] from ``parts`` (each divided by ``unit``);
    :class:`BenchConfigError` saying ``expected`` (``out_of_range`` for a value outside)."""
    if len(parts) != 3:
        raise BenchConfigError("optimizers", arm_text, expected)
    try:
        values = tuple(float(p) / unit for p in parts)
    except ValueError:
        raise BenchConfigError("optimizers", arm_text, expected) from None
    if not all(0.0 < v <= 1.0 for v in values):
        raise BenchConfigError("optimizers", arm_text, out_of_range)
    return values  # type: ignore[return-value]


def _thirds(text: str, arm_text: str) -> Tuple[float, float, float]:
    return _three(text.split("-"), 100.0, arm_text, "dense, halo, or three percentages like 10-30-50",
                  "percentages in (0, 100], like 10-30-50")


def _fractions(text: str, arm_text: str) -> Tuple[float, float, float]:
    """``P1,P2,P3`` (fractions in (0, 1]) of a ``NAME:thirds:P1,P2,P3`` arm."""
    expected = "thirds:P1,P2,P3 with three probabilities in (0, 1], like thirds:0.25,0.93,0.92"
    return _three([p.strip() for p in text.split(",")], 1.0, arm_text, expected, expected)


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
    if sp.startswith(THIRDS):
        values = _fractions(sp[len(THIRDS):], raw)
        return Arm(f"{name}:{THIRDS}" + ",".join(f"{v:g}" for v in values), name, values)
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
    """``"a, b,c"`` -> ``["a", "b", "c"]`` (empty items dropped); the probabilities of a
    ``NAME:thirds:P1,P2,P3`` arm stay together (``"halo,adam:thirds:0.2,0.9,0.9"`` is two)."""
    out: List[str] = []
    for item in (s.strip() for s in text.split(",")):
        if not item:
            continue
        head = out[-1].rpartition(THIRDS)[2] if out and THIRDS in out[-1] else None
        if head is not None and head.count(",") < 2:
            out[-1] += "," + item
        else:
            out.append(item)
    return out
