"""Routes of ``/v1/adaptations``: submit, list, show, curve, cancel, model."""

import time
import uuid
from typing import Annotated, Literal, Optional

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import FileResponse, JSONResponse

from agent.server import views
from agent.server.deps import RunnerDep, SettingsDep, StoreDep
from agent.server.errors import ApiError, JobNotFound, NotReady, QueueFull
from agent.server.jobcheck import USE_LOCK, check_request
from agent.server.schemas import (
    AdaptationRequest,
    CancelAnswer,
    CurveOut,
    ErrorOut,
    JobOut,
    JobPage,
    Status,
    Submitted,
)
from agent.server.store import JobRecord, JobStore

router = APIRouter(prefix="/v1/adaptations", tags=["adaptations"])

JOB_ID = r"^[0-9a-f]{32}$"
JobId = Annotated[str, Path(pattern=JOB_ID, min_length=32, max_length=32,
                            description="job id (32 hex digits)")]
ERRORS = {c: {"model": ErrorOut} for c in (401, 404, 409, 413, 422, 429, 503)}


class BudgetTooLarge(ApiError):
    """A step budget above this daemon's ``max_steps``."""

    status_code = 422


class ModelMissing(ApiError):
    """A finished job that left no model (it failed before training, or the file is gone)."""

    status_code = 404


def load(store: JobStore, job_id: str) -> JobRecord:
    """The job ``job_id`` or a 404 naming it."""
    rec = store.get(job_id)
    if rec is None:
        raise JobNotFound(job_id)
    return rec


@router.post("", status_code=202, response_model=Submitted, responses=ERRORS,
             summary="Validate and queue an adaptation job")
def submit(body: AdaptationRequest, store: StoreDep, runner: RunnerDep,
           settings: SettingsDep, response: Response) -> Submitted:
    steps = body.budget.steps
    if steps is not None and steps > settings.max_steps:
        raise BudgetTooLarge(f"budget.steps: got {steps}; expected an integer in "
                             f"1..{settings.max_steps} (this daemon's limit)")
    if store.count_queued() >= settings.max_queued:
        raise QueueFull(f"queue: {settings.max_queued} jobs are already waiting; "
                        "retry when one has started")
    job_id = uuid.uuid4().hex
    request = body.model_dump()
    with USE_LOCK:  # an upload is not deleted meanwhile
        check_request(request, settings.data_dir)  # 422 naming the field: cannot run
        store.create(job_id, request, time.time())
    runner.submit(job_id)
    response.headers["Location"] = f"/v1/adaptations/{job_id}"
    return Submitted(id=job_id, status="queued")


@router.get("", response_model=JobPage, responses=ERRORS, summary="List jobs, newest first")
async def list_jobs(store: StoreDep,
              limit: Annotated[int, Query(ge=1, le=500, description="jobs per page")] = 50,
              offset: Annotated[int, Query(ge=0, le=10**9, description="jobs to skip")] = 0,
              status: Annotated[Optional[Status], Query(description="only this status")] = None,
              ) -> JobPage:
    recs, total = store.list(limit, offset, status)
    nxt = offset + limit if offset + limit < total else None
    return JobPage(items=[views.summary(r) for r in recs], total=total, limit=limit,
                   offset=offset, next_offset=nxt)


@router.get("/{job_id}", response_model=JobOut, responses=ERRORS,
            summary="One job: status, progress, energy so far, and its report once finished")
async def get_job(job_id: JobId, store: StoreDep, settings: SettingsDep) -> JSONResponse:
    rec = load(store, job_id)
    points = store.points(job_id) if rec.report is not None else []
    return JSONResponse(views.full(rec, points, settings))


@router.get("/{job_id}/curve", response_model=CurveOut, summary="The accuracy-vs-energy curve",
            responses={**ERRORS, 200: {"content": {"text/csv": {}}}})
async def get_curve(job_id: JobId, store: StoreDep,
              format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
              ) -> Response:
    rec = load(store, job_id)
    points = store.points(job_id)
    if format == "csv":
        disposition = f'attachment; filename="curve-{job_id}.csv"'
        return Response(views.curve_csv(rec, points), media_type="text/csv",
                        headers={"Content-Disposition": disposition})
    return JSONResponse({"id": rec.id, "status": rec.status, "energy_source": rec.energy_source,
                         "estimated": rec.estimated, "points": points})


@router.post("/{job_id}/cancel", response_model=CancelAnswer, responses=ERRORS,
             summary="Cancel a job: a queued one at once, a running one before its next step")
def cancel(job_id: JobId, store: StoreDep, runner: RunnerDep, response: Response
           ) -> CancelAnswer:
    load(store, job_id)
    status = runner.cancel(job_id)  # JobConflict (409) when it has ended
    response.status_code = 200 if status == "cancelled" else 202
    return CancelAnswer(id=job_id, status=status, cancel_requested=True)


@router.get("/{job_id}/model", summary="The adapted model file (.npz)", responses={
    **ERRORS, 200: {"content": {"application/octet-stream": {}}}})
def get_model(job_id: JobId, store: StoreDep, settings: SettingsDep) -> FileResponse:
    rec = load(store, job_id)
    if not rec.finished:
        raise NotReady(f"id: job {job_id!r} is {rec.status}; its model is written when it ends")
    path = views.model_file(rec, settings)
    if path is None:
        raise ModelMissing(f"id: job {job_id!r} ended {rec.status} without an adapted model")
    return FileResponse(str(path), media_type="application/octet-stream", filename=path.name)
