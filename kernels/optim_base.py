"""The optimizer interface: an ``(init, update)`` pair over a flat float32 buffer."""

from __future__ import annotations

from typing import Any, Callable, Dict, NamedTuple, Tuple

import numpy as np


class StepInfo(NamedTuple):
    """What an optimizer may know about the step it is asked to take.

    ``step``: global step index, 0-based.  ``progress``: fraction of the budget
    used before this step, in [0, 1] (the largest of steps, joules and seconds
    fractions; 0 when the budget is open-ended).  ``count``: 1-based number of
    updates this segment has received, this one included (bias correction; with
    structural sparsity a layer's count lags the global step).  ``lo``/``hi``:
    the segment of the flat buffer being updated.  ``loss``: the training loss of
    the batch that produced the gradient.  ``val_loss``/``val_step``: the latest
    held-out validation loss the trainer measured for an optimizer that asked for one
    (``models.train.ValidationProbe``), and the step it was measured before (NaN and
    -1 when there is none); an optimizer reacts once per new ``val_step``.
    ``planned_epochs``: passes over the distinct training examples the step budget
    allows (budget steps x batch size / distinct examples; NaN when unknown).
    ``runs``: empty, or (only for an optimizer whose ``Optimizer.runs`` is True) the
    segment as adjacent runs ``(lo, hi, count)`` of whole layers at different update
    counts, in buffer coordinates like ``lo``/``hi`` (``count`` is then the first
    run's): one call does what one call per run would.
    ``duplication_skew``: how unevenly the distinct training examples are copied,
    ``log(n sum c^2 / (sum c)^2)`` over their copy counts ``c`` (the copies of the row a
    draw lands on, on average, over the mean copies; 0: all alike, e.g. no duplicates;
    > 0: a split oversampled unevenly, whose repeated rows are revisited more often than
    ``planned_epochs`` says).
    """

    step: int
    progress: float
    count: int
    lo: int
    hi: int
    loss: float
    val_loss: float = float("nan")
    val_step: int = -1
    planned_epochs: float = float("nan")
    runs: Tuple[Tuple[int, int, int], ...] = ()
    duplication_skew: float = 0.0


class Optimizer(NamedTuple):
    """A named optimizer.

    ``init(n) -> state``: a NamedTuple whose fields are flat float32 arrays of
    length ``n`` (or of length 0 when unused), so a segment of the state is
    ``slice_state(state, lo, hi)``, and, for an optimizer with per-tensor or global
    state (HALO's controller), :class:`TensorLevel` fields that every segment shares.
    All of a run's state is in ``state`` (as optax keeps it): one optimizer can drive
    several runs, each from its own ``init``.
    ``update(params, grads, state, info) -> None``: updates ``params`` and
    ``state`` **in place**; all three are the same segment ``[info.lo, info.hi)``.
    ``grads`` is read only.  ``runs``: the optimizer takes adjacent layers at different
    update counts in one call (``StepInfo.runs``); the Trainer then groups them.
    """

    name: str
    hyperparameters: Dict[str, Any]
    init: Callable[[int], Any]
    update: Callable[[np.ndarray, np.ndarray, Any, StepInfo], None]
    runs: bool = False


class TensorLevel:
    """Base of a state field that is not per element (O(tensors) numbers of a run):
    :func:`slice_state` passes it whole, ``copy()`` gives an independent copy."""

    def copy(self):
        import copy

        return copy.deepcopy(self)


def slice_state(state: Any, lo: int, hi: int) -> Any:
    """A view of every array field of ``state`` restricted to ``[lo, hi)``; a
    :class:`TensorLevel` field is passed whole."""
    return type(state)(*(a if isinstance(a, TensorLevel) else (a[lo:hi] if a.shape[0] else a)
                         for a in state))


def array_fields(state: Any):
    """``(name, array)`` for every per-element field of ``state``."""
    return [(f, a) for f, a in zip(state._fields, state) if not isinstance(a, TensorLevel)]
