"""Request and response bodies of the REST API (pydantic v2; Python 3.9-safe typing)."""

import math
from typing import Any, Dict, List, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from agent.server import catalog
from agent.server.tune_job import TuneSpec, check_tune

MAX_STEPS = 1_000_000
MAX_JOULES = 1e7            # J; about 2.8 kWh, far beyond any board job
MAX_SECONDS = 7 * 86400.0   # s; one week
MAX_SEED = 2**31 - 1
MAX_NAME = 64
SHA256 = r"^[0-9a-f]{64}$"

Status = Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted", "diverged"]

_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check_not_path(what: str, value: str) -> str:
    """Refuse anything path-like in a name field (``/``, ``\\``, ``..``, ``~``, NUL);
    ``what`` says what was expected (e.g. "a task name")."""
    if any(s in value for s in ("/", "\\", "..", "\x00")) or value.startswith("~"):
        raise ValueError(f"got {_short(value)}; expected {what}, not a path")
    if not value.strip() or value != value.strip():
        raise ValueError(f"got {_short(value)}; expected {what} without surrounding spaces")
    return value


def _known(field: str, value: str, known: List[str]) -> str:
    check_not_path(f"{'an' if field[0] in 'aeiou' else 'a'} {field} name", value)
    if value not in known:
        raise ValueError(f"got {_short(value)}; expected one of {', '.join(known)}")
    return value


class Budget(BaseModel):
    """Limits of one job; it stops at the first one reached.  At least one of
    ``steps``, ``seconds`` and ``joules`` is required."""

    model_config = _STRICT

    steps: Optional[int] = Field(None, ge=1, le=MAX_STEPS, description="training steps")
    joules: Optional[float] = Field(None, gt=0, le=MAX_JOULES,
                                    description="joules of training (J, from the power source)")
    seconds: Optional[float] = Field(None, gt=0, le=MAX_SECONDS, description="seconds of training")
    target_accuracy: Optional[float] = Field(
        None, gt=0, le=1, description="stop once the target test accuracy (fraction) reaches this")

    @model_validator(mode="after")
    def _one_limit(self) -> "Budget":
        if self.steps is None and self.joules is None and self.seconds is None:
            raise ValueError("got no limit; expected at least one of steps, seconds, joules")
        return self


class AdaptationRequest(BaseModel):
    """``POST /v1/adaptations``: adapt ``task``'s source model with ``optimizer``."""

    model_config = ConfigDict(
        extra="forbid", strict=True, allow_inf_nan=False,
        json_schema_extra={"examples": [{"task": "synthetic-a", "optimizer": "adam",
                                         "budget": {"steps": 200}, "eval_every": 20}]})

    dataset_id: Optional[str] = Field(None, pattern=SHA256, description=(
        "adapt on this uploaded dataset (GET /v1/datasets) instead of the task's target data"))
    model_id: Optional[str] = Field(None, pattern=SHA256, description=(
        "start from this uploaded model (GET /v1/models) instead of the task's source model"))
    task: Optional[str] = Field(None, min_length=1, max_length=MAX_NAME, validate_default=True,
                                description="task name (GET /v1/tasks); optional when both "
                                            "dataset_id and model_id are given")
    model: Optional[str] = Field(None, min_length=1, max_length=MAX_NAME,
                                 description="architecture; default: the task's")
    optimizer: str = Field(..., min_length=1, max_length=MAX_NAME,
                           description="optimizer name (GET /v1/optimizers)")
    lr: Optional[float] = Field(None, gt=0, le=10,
                                description="learning rate; default: the optimizer's")
    budget: Budget
    eval_every: int = Field(25, ge=1, le=MAX_STEPS, description="evaluate every N steps")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed of batch order and masks")
    sparsity: Optional[str] = Field(
        None, min_length=1, max_length=256,
        description="per-layer update probabilities in (0, 1], comma-separated, one per "
                    "trainable layer of the model; or 'halo', 'dense', 'thirds:P1,P2,P3'")

    @field_validator("task")
    @classmethod
    def _task(cls, v: Optional[str], info: ValidationInfo) -> Optional[str]:
        if v is None:
            if not (info.data.get("dataset_id") and info.data.get("model_id")):
                raise ValueError("required: a task name, or both dataset_id and model_id")
            return None
        return _known("task", v, catalog.task_names())

    @model_validator(mode="after")
    def _one_model(self) -> "AdaptationRequest":
        if self.model_id is not None and self.model is not None:
            raise ValueError(f"got model {self.model!r} and a model_id; expected one of them")
        return self

    @field_validator("model")
    @classmethod
    def _model(cls, v: Optional[str]) -> Optional[str]:
        return None if v is None else _known("model", v, catalog.architectures())

    @field_validator("optimizer")
    @classmethod
    def _optimizer(cls, v: str) -> str:
        return _known("optimizer", v, catalog.optimizer_names())

    @field_validator("sparsity")
    @classmethod
    def _sparsity(cls, v: Optional[str]) -> Optional[str]:
        if v is None:
            return None
        check_not_path("'halo', 'dense', 'thirds:P1,P2,P3' or probabilities", v)
        key = v.strip().lower()
        if key in ("halo", "dense"):
            return v
        parts = key[len("thirds:"):].split(",") if key.startswith("thirds:") else key.split(",")
        try:
            probs = [float(p) for p in parts]
        except ValueError:
            raise ValueError(f"got {_short(v)}; expected 'halo', 'dense', 'thirds:P1,P2,P3' or "
                             "comma-separated probabilities such as 0.1,0.3,0.5") from None
        # the engine's range (kernels.sparsity): a layer updated with probability 0
        # would never train, so 0 is refused here rather than failing the job later
        if len(probs) > 64 or not all(math.isfinite(p) and 0 < p <= 1 for p in probs):
            raise ValueError(f"got {_short(v)}; expected at most 64 probabilities in (0, 1]")
        if key.startswith("thirds:") and len(probs) != 3:
            raise ValueError(f"got {_short(v)}; expected 3 probabilities after 'thirds:'")
        return v

    # the tuning job kind (agent/server/tune_job.py); declared last: its check reads the fields above
    tune: Optional[TuneSpec] = Field(
        None, validate_default=True,
        description="present: a tuning job: a schedule of SGD with momentum tuned by "
                    "hypergradients on a validation split of the task's training data, then "
                    "adaptation with it; budget.steps is T, optimizer must be 'momentum'")

    @field_validator("tune")
    @classmethod
    def _tune(cls, v: Optional[TuneSpec], info: ValidationInfo) -> Optional[TuneSpec]:
        return check_tune(v, info.data)


class Submitted(BaseModel):
    """Answer of ``POST /v1/adaptations`` (202)."""

    id: str
    status: Status


class CancelAnswer(BaseModel):
    """Answer of ``POST /v1/adaptations/{id}/cancel``: ``status`` is ``cancelled`` for a
    job that had not started, ``running`` for one that stops before its next step."""

    id: str
    status: Status
    cancel_requested: bool


class PointOut(BaseModel):
    """One curve point: ``seconds`` (s) and ``joules`` (J) of training so far, mean
    training ``loss`` (nats) since the previous point, ``accuracy`` (fraction) and
    ``test_loss`` on the target test split, ``joules_above_idle`` (J) when known."""

    step: int
    seconds: Optional[float]
    joules: Optional[float]
    loss: Optional[float]
    accuracy: Optional[float]
    test_loss: Optional[float] = None
    joules_above_idle: Optional[float] = None


class JobErrorOut(BaseModel):
    """Why a job failed or was interrupted (never a stack trace)."""

    model_config = ConfigDict(extra="allow")

    message: str
    field: Optional[str] = None
    value: Optional[str] = None


class JobSummary(BaseModel):
    """One job in a list.  ``joules`` (J) and ``seconds`` (s): training so far, at the
    latest point, measured by ``energy_source`` (``estimated``: a model, not a meter).
    Times are ISO 8601 UTC labels."""

    id: str
    status: Status
    task: Optional[str] = None
    dataset_id: Optional[str] = None
    model_id: Optional[str] = None
    optimizer: str
    created_at: str
    started_at: Optional[str] = None
    finished_at: Optional[str] = None
    progress: float = Field(description="fraction 0..1 of the budget used")
    points: int = Field(description="curve points so far")
    latest_point: Optional[PointOut] = None
    joules: Optional[float] = None
    seconds: Optional[float] = None
    energy_source: Optional[str] = None
    estimated: Optional[bool] = None
    cancel_requested: bool = False
    error: Optional[JobErrorOut] = None


class JobOut(JobSummary):
    """One job in full: its request, and once finished the engine's report (the same
    fields as ``halo-agent adapt --json``, points included)."""

    request: Dict[str, Any]
    report: Optional[Dict[str, Any]] = None
    model_available: bool = False


class JobPage(BaseModel):
    """A page of jobs, newest first; ``next_offset`` is None on the last page."""

    items: List[JobSummary]
    total: int
    limit: int
    offset: int
    next_offset: Optional[int] = None


class CurveOut(BaseModel):
    """The accuracy-vs-energy curve of a job, with the source of its joules."""

    id: str
    status: Status
    energy_source: Optional[str] = None
    estimated: Optional[bool] = None
    points: List[PointOut]


class HealthOut(BaseModel):
    """``GET /v1/health``; ``uptime_s`` in seconds."""

    status: Literal["ok"]
    version: str
    power_source: Optional[str]
    estimated: Optional[bool]
    uptime_s: float
    queued: int
    running: Optional[str] = None


class PowerOut(BaseModel):
    """The latest power reading: watts per rail and board total, ``age_s`` seconds
    since it was taken; ``estimated`` True when the figures come from a model;
    ``attribution``/``covers``: what the watts belong to (``board`` for a real meter;
    ``process`` for the default estimate, which counts the daemon and its jobs only,
    so an idle daemon reads about 0 W)."""

    source: str
    estimated: bool
    profile: Optional[str] = None
    total_w: Optional[float]
    rails_w: Dict[str, Optional[float]]
    age_s: Optional[float]
    attribution: Optional[str] = None
    covers: Optional[str] = None


class OptimizerOut(BaseModel):
    """An optimizer and its default learning rate (None when it has none)."""

    name: str
    default_lr: Optional[float] = None


class OptimizersOut(BaseModel):
    """``GET /v1/optimizers``."""

    optimizers: List[OptimizerOut]


class TasksOut(BaseModel):
    """``GET /v1/tasks``: the task specs and the architectures a job may name."""

    tasks: List[Dict[str, Any]]
    models: List[str]


class ErrorOut(BaseModel):
    """Every error: ``detail`` names the field and the value at fault."""

    detail: str
    errors: Optional[List[Dict[str, Any]]] = None
