"""``GET /v1/adaptations/{id}/events``: a job's progress as server-sent events."""

import json
import threading
from typing import Annotated, Any, AsyncIterator, Dict, Optional

from fastapi import APIRouter, Header, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from agent.errors import ConfigError
from agent.server import views
from agent.server.deps import NotifierDep, StoreDep
from agent.server.events import Notifier
from agent.server.routes.jobs import ERRORS, JobId, load
from agent.server.store import JobStore

router = APIRouter(prefix="/v1/adaptations", tags=["adaptations"])

HEARTBEAT_S = 15.0


def sse(event: str, data: Dict[str, Any], event_id: str = "") -> str:
    """One server-sent event: ``event:``, optional ``id:`` and one ``data:`` line of JSON."""
    head = f"event: {event}\n" + (f"id: {event_id}\n" if event_id else "")
    return head + "data: " + json.dumps(data, allow_nan=False, separators=(",", ":")) + "\n\n"


async def job_events(store: JobStore, notifier: Notifier, job_id: str,
                     heartbeat_s: float = HEARTBEAT_S,
                     closing: Optional[threading.Event] = None, after: int = -1
                     ) -> AsyncIterator[str]:
    """Events of one job: ``status`` (the job summary) now and at each change,
    ``point`` for every curve point (those already made first), and a last
    ``status`` once the job has ended, after which the stream closes.  A comment
    line every ``heartbeat_s`` seconds of silence keeps proxies from closing it.
    When ``closing`` is set (the daemon stops) the stream ends with a ``shutdown``
    event.  ``after``: the index of the last point the client already has (from
    ``Last-Event-ID``); points up to it are not sent again."""
    sent = after + 1
    last_status = None
    while True:
        seen = notifier.version
        rec = await run_in_threadpool(store.get, job_id)
        if rec is None:
            return
        points = await run_in_threadpool(store.points, job_id, sent)
        if rec.status != last_status and not rec.finished:
            last_status = rec.status
            yield sse("status", views.summary(rec))
        for p in points:
            yield sse("point", dict(p, id=job_id, index=sent), f"{job_id}:{sent}")
            sent += 1
        if rec.finished:
            yield sse("status", views.summary(rec))
            return
        if closing is not None and closing.is_set():
            yield sse("shutdown", {"id": job_id, "status": rec.status,
                                   "detail": "the daemon is stopping; the job will be "
                                             "interrupted and can be read after a restart"})
            return
        if not await notifier.wait(seen, heartbeat_s):
            yield ": keep-alive\n\n"


def resume_index(job_id: str, last_event_id: Optional[str]) -> int:
    """The point index a reconnecting client has already seen, from its
    ``Last-Event-ID`` (``JOB_ID:INDEX``); -1 without one.  Another job's id or a
    malformed value is a 422 naming the header."""
    if last_event_id is None or last_event_id == "":
        return -1
    head, _, index = last_event_id.strip().rpartition(":")
    if head != job_id or not index.isdigit() or len(index) > 9:
        raise ConfigError("Last-Event-ID", last_event_id,
                          f"an event id of this job's stream ({job_id}:INDEX)")
    return int(index)


@router.get("/{job_id}/events", summary="Progress as server-sent events, until the job ends",
            response_class=StreamingResponse,
            responses={**ERRORS, 200: {"content": {"text/event-stream": {}}}})
async def events(job_id: JobId, store: StoreDep, notifier: NotifierDep,
                 request: Request,
                 last_event_id: Annotated[Optional[str], Header(
                     max_length=80, description="resume after this event id "
                                                "(JOB_ID:INDEX, as sent in `id:`)")] = None,
                 ) -> StreamingResponse:
    await run_in_threadpool(load, store, job_id)  # 404 before the stream starts
    after = resume_index(job_id, last_event_id)
    closing = getattr(request.app.state, "closing", None)
    return StreamingResponse(job_events(store, notifier, job_id, closing=closing, after=after),
                             media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
