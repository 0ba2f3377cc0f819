"""The daemon's information endpoints: health, power, optimizers, tasks."""

import math
import time
from typing import Any, Optional

from fastapi import APIRouter, Request

from agent import __version__
from agent.server import catalog
from agent.server.deps import RunnerDep, SamplerDep, StoreDep
from agent.server.errors import Unavailable
from agent.server.routes.jobs import ERRORS
from agent.server.schemas import HealthOut, OptimizersOut, PowerOut, TasksOut

router = APIRouter(prefix="/v1", tags=["daemon"])


def _finite(x: Any) -> Optional[float]:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def meter_of(sampler: Any) -> Any:
    """The meter behind a sampler (None when unknown)."""
    return getattr(sampler, "meter", None)


@router.get("/health", response_model=HealthOut, responses=ERRORS, summary="Liveness")
async def health(request: Request, store: StoreDep, runner: RunnerDep,
                 sampler: SamplerDep) -> HealthOut:
    meter = meter_of(sampler)
    started = getattr(request.app.state, "started_monotonic", time.monotonic())
    return HealthOut(status="ok", version=__version__,
                     power_source=getattr(meter, "source", None),
                     estimated=None if meter is None else bool(getattr(meter, "estimated", False)),
                     uptime_s=round(time.monotonic() - started, 3),
                     queued=store.count_queued(), running=runner.current)


@router.get("/power", response_model=PowerOut, responses=ERRORS,
            summary="Latest power reading per rail and total, with its source")
async def power(sampler: SamplerDep) -> PowerOut:
    meter = meter_of(sampler)
    sample = sampler.latest()
    source = getattr(sample, "source", None) or getattr(meter, "source", "unknown")
    if sample is None:
        raise Unavailable(f"power: no reading from {source!r} yet; retry in a moment")
    estimated = bool(getattr(sample, "estimated", False) or getattr(meter, "estimated", False))
    return PowerOut(source=source, estimated=estimated, profile=getattr(meter, "profile", None),
                    total_w=_finite(sample.total_w),
                    rails_w={str(k): _finite(v) for k, v in dict(sample.rails_w).items()},
                    age_s=_finite(round(time.monotonic() - sample.t_s, 3)),
                    attribution=getattr(meter, "attribution", None),
                    covers=getattr(meter, "covers", None))


@router.get("/optimizers", response_model=OptimizersOut, responses=ERRORS,
            summary="Optimizers a job may use, with their default learning rates")
def optimizers() -> OptimizersOut:
    return OptimizersOut(optimizers=catalog.optimizers())


@router.get("/tasks", response_model=TasksOut, responses=ERRORS,
            summary="Adaptation tasks and model architectures a job may name")
def tasks() -> TasksOut:
    return TasksOut(tasks=catalog.tasks(), models=catalog.architectures())
