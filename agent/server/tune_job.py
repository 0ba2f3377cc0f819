"""The daemon's tuning job kind: an adaptation request with a ``tune`` object runs
``agent.tune`` (hypergradient tuning of a momentum schedule, then adaptation with it).

``tune`` fixes the tuning; the request's ``budget.steps`` is T, its ``optimizer``
must be ``momentum``, ``seed`` and ``sparsity`` apply to tuning and adaptation.  The
report is the adaptation's (its points are the job's curve) plus ``tuning`` (meta-steps,
their joules) and ``schedule``.
"""

from typing import Any, Dict, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field

MAX_TUNE_STEPS = 5000    # agent.tune.MAX_STEPS (checked equal in the tests)
MAX_META_STEPS = 500     # agent.tune.MAX_META_STEPS
SCHEDULE_OPTIMIZER = "momentum-schedule"


class TuneSpec(BaseModel):
    """``tune`` of ``POST /v1/adaptations``: tune a schedule by hypergradients, then adapt."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False,
        json_schema_extra={"examples": [{"method": "hypergrad", "meta_steps": 8}]})

    method: Literal["hypergrad"] = Field("hypergrad", description="tuning method")
    meta_steps: int = Field(..., ge=1, le=MAX_META_STEPS, description="K: hypergradient steps")
    blocks: int = Field(4, ge=1, le=64, description="time blocks of the schedule")
    lr: float = Field(0.01, ge=1e-6, le=1.0, description="start learning rate of every layer and block")
    momentum: float = Field(0.9, ge=0.5, le=0.99, description="start momentum of every block")
    meta_lr: float = Field(0.3, ge=1e-4, le=5.0, description="Adam step on the log learning rates")
    validation_fraction: float = Field(
        0.2, ge=0.01, le=0.5, description="fraction of the target training split held out")


def check_tune(tune: Optional[TuneSpec], data: Dict[str, Any]) -> Optional[TuneSpec]:
    """Cross-field checks of ``tune`` against the request's fields validated before it
    (``data``); a ``ValueError`` whose message starts with ``got`` and names the field."""
    optimizer = data.get("optimizer")
    if tune is None:
        if optimizer == SCHEDULE_OPTIMIZER:
            raise ValueError(f"got optimizer {SCHEDULE_OPTIMIZER!r} and no tune; expected a "
                             "tuning job: optimizer 'momentum' with tune {\"meta_steps\": K}")
        return None
    if optimizer is not None and optimizer != "momentum":
        raise ValueError(f"got tune with optimizer {optimizer!r}; expected optimizer 'momentum' "
                         "(hypergradients run through SGD with momentum)")
    budget = data.get("budget")
    steps = getattr(budget, "steps", None)
    if budget is not None and (steps is None or steps > MAX_TUNE_STEPS):
        raise ValueError(f"got tune with budget.steps {steps!r}; expected budget.steps in "
                         f"1..{MAX_TUNE_STEPS} (T, the steps unrolled and then adapted for)")
    for other in ("model_id", "dataset_id"):
        if data.get(other):
            raise ValueError(f"got tune with {other}; expected a task's source model and data "
                             "(tuning splits a validation set off the task's training data)")
    if data.get("task") is None and "task" in data:
        raise ValueError("got tune and no task; expected a task")
    return tune


def tune_config(request: Dict[str, Any], settings: Any, job_id: str) -> Any:
    """The ``agent.tune.TuneConfig`` of a validated tuning request (its ``tune`` holds
    every :class:`TuneSpec` field, defaults filled in, each a ``TuneConfig`` field)."""
    from agent.tune import TuneConfig

    return TuneConfig(
        task=request["task"], data_dir=settings.data_dir, model=request.get("model"),
        optimizer=request["optimizer"], steps=request["budget"]["steps"], **request["tune"],
        seed=request.get("seed") or 0, sparsity=request.get("sparsity"),
        eval_every=request.get("eval_every") or 25, power_source=settings.power_source,
        sysfs_root=settings.sysfs_root, idle_seconds=settings.idle_seconds,
        threads=settings.threads, output_model=settings.model_path(job_id))
