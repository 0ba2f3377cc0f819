"""HALO's validation level: one global learning-rate offset driven by a held-out loss.

A learned optimizer that sees only training losses cannot tell a task where longer
or larger steps keep paying (MNIST: the best tuned Adam rate is ~1e-2) from one where
they overfit within tens of steps (HALO's thyroid task: training loss keeps falling
while held-out accuracy drops; the best tuned rate is ~1e-4, 100x smaller).  The
trainer can hold out a few examples of the target's training split
(``models.train.validation_split``) and measure their loss every ``every`` steps
(``models.train.ValidationProbe``); this level turns that signal into a global
log learning-rate offset ``s``, the same for every tensor::

    s_0 = start
    s_0 = start + epochs_coef * clip(log E, -3, 6)   (E: planned epochs, when known)
              + skew_coef * clip(K, 0, 4)            (K: duplication skew)
    at each new probe with loss L, best B (lowest so far, before this probe):
        r = log(L / B)
        r <  0:  s <- min(s + up, s_max)                 (still improving: speed up)
        r >= 0:  s <- max(s - down * min(1, r / tol), s_min)   (worse: slow down, in proportion)
    lr_k <- lr_k * exp(s)

``s_min`` floors the slow-down (the default, -30, is no floor in practice): the rule
compares every probe with the best one, so on a task whose held-out loss plateaus a
little above an early best, each probe cuts again until the steps vanish; a floor keeps
the run learning at ``exp(s_min)`` of its rate.  A non-finite loss is not floored.

With ``rollback > 0`` the trainer also keeps the parameters of the best probe so far
(one float per parameter) and returns to them when a probe's loss is worse than the
best by more than that margin in log ratio (``log(L / B) > rollback``, or a non-finite
``L``): early stopping with the best weights restored, at any point of the run, so a
task that overfits within tens of steps ends near its best held-out point instead of
wherever the last step left it.  The offset still sees the worse ``L`` (and slows down).
With ``rollback_on_error = 1`` the criterion is the probe's class-balanced error
instead (margin ``rollback`` in absolute error, ties broken by the loss): the held-out
loss of a few distinct minority-class examples can fall while their accuracy drops.

``E`` is how many passes over the distinct training examples the step budget allows
(``StepInfo.planned_epochs``): the risk of overfitting a small split grows with it,
and it is known before the first step.
``K`` is the training split's duplication skew (``StepInfo.duplication_skew``,
``log(n sum c^2 / (sum c)^2)`` over the copy counts ``c`` of its ``n`` distinct
examples): 0 unless the split repeats some examples more than others (oversampled to
balance its classes), when the row a draw lands on has ``exp(K)`` times the mean copies
(robust to a stray duplicate: one repeated row among 30000 gives K ~ 3e-5).  ``skew_coef`` is 0
in every file before it was added (no change).
``start``, ``up``, ``down``, ``tol``, ``s_max``, ``epochs_coef`` and ``skew_coef`` are meta-learned
(``models.metatrain.space``: ``val.*``); ``fraction``, ``max_examples`` and ``every``
fix the probe.  Cost: a forward pass over the probe every ``every`` steps (counted
in the training energy) and O(1) arithmetic per step.  Weights without this level
(halo-v0..v2) run exactly as before.
"""

from __future__ import annotations

import math
from typing import Any, Dict, Mapping, NamedTuple


class ValidationLevel(NamedTuple):
    """The learned rule and its probe (see the module docstring)."""

    start: float = 0.0
    up: float = 0.0
    down: float = math.log(2.0)
    tol: float = 0.05
    s_max: float = 0.0
    fraction: float = 0.1
    max_examples: int = 512
    every: int = 25
    epochs_coef: float = 0.0
    rollback: float = 0.0
    s_min: float = -30.0
    rollback_on_error: float = 0.0
    skew_coef: float = 0.0

    def probe(self) -> Dict[str, Any]:
        """What the trainer needs: the probe's size and cadence and the rollback rule."""
        return {"fraction": self.fraction, "max_examples": self.max_examples,
                "every": self.every, "rollback": self.rollback,
                "rollback_on_error": self.rollback_on_error}


FIELDS = ValidationLevel._fields
MIN_FIELDS = FIELDS.index("rollback")
"""Stored levels may omit the trailing fields added later (their defaults: off)."""


def level_from_mapping(d: Mapping[str, Any], where: str) -> ValidationLevel:
    """A checked :class:`ValidationLevel`; ``ValueError`` naming ``where`` and the field."""
    unknown = sorted(set(d) - set(FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown validation field {unknown[0]!r}; known: {', '.join(FIELDS)}")
    lv = ValidationLevel(**{k: d[k] for k in FIELDS if k in d})
    vals = {k: float(getattr(lv, k)) for k in FIELDS}
    if not all(math.isfinite(v) for v in vals.values()):
        raise ValueError(f"{where}: validation fields must be finite, got {vals}")
    checks = (("up", lv.up >= 0), ("down", lv.down >= 0), ("tol", lv.tol > 0),
              ("rollback", lv.rollback >= 0), ("rollback_on_error", lv.rollback_on_error in (0, 1)),
              ("fraction", 0 < lv.fraction <= 0.5), ("max_examples", int(lv.max_examples) >= 1),
              ("every", int(lv.every) >= 1))
    for name, ok in checks:
        if not ok:
            raise ValueError(f"{where}: validation {name} = {getattr(lv, name)!r} is out of range")
    return lv._replace(start=float(lv.start), up=float(lv.up), down=float(lv.down),
                       epochs_coef=float(lv.epochs_coef), tol=float(lv.tol),
                       rollback=float(lv.rollback), s_min=float(lv.s_min),
                       rollback_on_error=float(lv.rollback_on_error),
                       skew_coef=float(lv.skew_coef),
                       s_max=float(lv.s_max), fraction=float(lv.fraction),
                       max_examples=int(lv.max_examples), every=int(lv.every))


class ValidationSchedule:
    """The running offset ``s`` of one run; :meth:`observe` once per step, :attr:`factor`."""

    def __init__(self, level: ValidationLevel):
        self.level = level
        self.s = float(level.start)
        self.best = math.inf
        self.seen = -1
        self.probes = 0
        self.started = False

    def begin(self, planned_epochs: float, duplication_skew: float = 0.0) -> None:
        """Once, at the first step: the offset's dependence on the planned epochs and the
        duplication skew."""
        if self.started:
            return
        self.started = True
        if self.level.epochs_coef != 0.0 and math.isfinite(planned_epochs) and planned_epochs > 0:
            self.s += self.level.epochs_coef * min(6.0, max(-3.0, math.log(planned_epochs)))
        if self.level.skew_coef != 0.0 and math.isfinite(duplication_skew):
            self.s += self.level.skew_coef * min(4.0, max(0.0, duplication_skew))

    @property
    def factor(self) -> float:
        """``exp(s)``: the multiplier of every tensor's learning rate."""
        return math.exp(self.s)

    def observe(self, val_loss: float, val_step: int) -> None:
        """React to a probe measured before step ``val_step`` (once per new probe)."""
        if val_step < 0 or val_step == self.seen:
            return
        self.seen = val_step
        self.probes += 1
        lv = self.level
        if not math.isfinite(val_loss):
            self.s -= lv.down  # a non-finite held-out loss is the worst news
            return
        if math.isfinite(self.best) and self.best > 0.0:
            r = math.log(max(val_loss, 1e-30) / self.best)
            if r < 0.0:
                self.s = min(self.s + lv.up, lv.s_max)
            else:
                # floored at s_min; an offset already below the floor is left where it is
                self.s = min(self.s, max(self.s - lv.down * min(1.0, r / lv.tol), lv.s_min))
        self.best = min(self.best, val_loss)

    def state(self) -> Dict[str, float]:
        return {"log_lr_offset": self.s, "best_val_loss": self.best, "probes": self.probes}
