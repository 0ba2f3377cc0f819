"""The job runner: one worker thread running adaptation jobs one at a time, FIFO."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from typing import Any, Callable, Dict, Set

from agent.server.events import Notifier
from agent.server.jobconfig import budget_fraction, build_config
from agent.server.settings import Settings
from agent.server.store import TERMINAL, JobStore

log = logging.getLogger("halo_agent.server")

AdaptFn = Callable[..., Dict[str, Any]]
ConfigFactory = Callable[[Dict[str, Any], Settings, str], Any]


class JobConflict(Exception):
    """A job is not in a state that allows the action (e.g. cancelling a finished job)."""

    def __init__(self, job_id: str, status: str, action: str) -> None:
        self.job_id, self.status, self.action = job_id, status, action
        super().__init__(f"id: job {job_id!r} is {status}; cannot {action} it")


def describe_error(e: BaseException) -> Dict[str, Any]:
    """What a client may see of a failure: the message (and field/value for a
    ``ConfigError``), never a stack trace."""
    from agent.errors import ConfigError

    if isinstance(e, ConfigError):
        return {"message": str(e), "field": e.field, "value": repr(e.value)[:200]}
    text = str(e)[:500]
    return {"message": text if text else type(e).__name__, "type": type(e).__name__}


def _default_adapt(cfg: Any, **kwargs: Any) -> Dict[str, Any]:
    from agent.engine import run_adaptation
    from agent.tune import TuneConfig, run_tune

    if isinstance(cfg, TuneConfig):  # the tuning job kind (agent/server/tune_job.py)
        return run_tune(cfg, **kwargs)
    return run_adaptation(cfg, **kwargs)


class Runner:
    """Runs queued jobs from the store in submission order on one thread.

    ``adapt`` is called as ``adapt(cfg, sampler=..., on_point=..., should_stop=...,
    log=...)`` and returns the engine's report dict (default:
    ``agent.engine.run_adaptation``).  Every point is written to the store as it is
    made; cancelling is seen by the engine before its next step.  Stopping the
    runner stops the running job the same way and records it ``interrupted``.
    """

    def __init__(self, store: JobStore, settings: Settings, *, adapt: AdaptFn | None = None,
                 sampler: Any = None, notifier: Notifier | None = None,
                 config_factory: ConfigFactory = build_config,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.settings = settings
        self.sampler = sampler
        self.notifier = notifier or Notifier()
        self._adapt = adapt or _default_adapt
        self._config_factory = config_factory
        self._clock = clock
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._lock = threading.Lock()
        self._cancelled: Set[str] = set()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.current: str | None = None

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Queue the jobs the store holds as ``queued`` and start the worker thread."""
        if self._thread is not None:
            return
        for job_id in self.store.queued_ids():
            self._queue.put(job_id)
        self._thread = threading.Thread(target=self._loop, name="halo-agent-runner", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> bool:
        """Stop the running job (recorded ``interrupted``) and the thread; waits up to
        ``timeout_s`` seconds; True when the thread has ended.  Queued jobs stay
        queued in the store and run after the next start."""
        self._stopping.set()
        self._queue.put(None)
        if self._thread is None:
            return True
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread is not None and self._thread.is_alive()

    # -- requests from the API -------------------------------------------------------

    def submit(self, job_id: str) -> None:
        """Queue a job the store already holds as ``queued``."""
        self._queue.put(job_id)
        self.notifier.notify()

    def cancel(self, job_id: str) -> str:
        """Cancel a job: a queued one at once (returns ``"cancelled"``), a running one
        before its next step (returns ``"running"``).  ``JobConflict`` when the job
        has already ended; ``KeyError`` when there is no such job."""
        with self._lock:
            if self.store.cancel_queued(job_id, self._clock()):
                self.notifier.notify()
                return "cancelled"
            if self.store.request_cancel(job_id):
                self._cancelled.add(job_id)
                self.notifier.notify()
                return "running"
        rec = self.store.get(job_id)
        if rec is None:
            raise KeyError(job_id)
        raise JobConflict(job_id, rec.status, "cancel")

    # -- the worker --------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                job_id = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            if job_id is None or self._stopping.is_set():
                break
            try:
                self._run_job(job_id)
            except Exception:  # the store itself failed: log it, keep serving
                log.exception("job %s: runner error", job_id)
            finally:
                self.current = None

    def _should_stop(self, job_id: str) -> bool:
        return self._stopping.is_set() or job_id in self._cancelled

    def _run_job(self, job_id: str) -> None:
        rec = self.store.get(job_id)
        if rec is None or rec.status != "queued":
            return
        meter = getattr(self.sampler, "meter", None)
        source = getattr(meter, "source", None) or self.settings.power_source or "auto"
        estimated = bool(getattr(meter, "estimated", False))
        self.current = job_id
        if not self.store.mark_running(job_id, source, estimated, self._clock()):
            return
        self.notifier.notify()
        log.info("job %s: running %s", job_id, rec.request)
        budget = dict(rec.request.get("budget") or {})
        if not budget.get("steps"):
            budget["steps"] = self.settings.max_steps

        def on_point(pt: Any) -> None:
            p = dataclasses.asdict(pt) if dataclasses.is_dataclass(pt) else dict(pt)
            frac = budget_fraction(budget, p["step"], p["seconds"], p["joules"])
            self.store.add_point(job_id, p, frac)
            self.notifier.notify()

        report: Dict[str, Any] | None = None
        error: Dict[str, Any] | None = None
        try:
            cfg = self._config_factory(rec.request, self.settings, job_id)
            report = self._adapt(cfg, sampler=self.sampler, on_point=on_point,
                                 should_stop=lambda: self._should_stop(job_id),
                                 log=lambda msg: log.info("job %s: %s", job_id, msg))
            status = str(report.get("status", "succeeded"))
        except Exception as e:
            status, error = "failed", describe_error(e)
            if _is_user_error(e):
                log.warning("job %s failed: %s", job_id, e)
            else:
                log.exception("job %s failed", job_id)
        if status == "cancelled" and job_id not in self._cancelled:
            status = "interrupted"  # stopped by a daemon shutdown, not by a client
            error = {"message": "the daemon stopped while the job was running; "
                                "the points and the model so far are kept"}
        if status not in TERMINAL:
            status, error = "failed", {"message": f"the engine returned status {status!r}"}
        model_path = None if report is None else report.get("model_path")
        self.store.finish(job_id, status, self._clock(), report=report, error=error,
                          model_path=model_path)
        with self._lock:
            self._cancelled.discard(job_id)
        self.notifier.notify()
        log.info("job %s: %s", job_id, status)


def _is_user_error(e: BaseException) -> bool:
    """Errors that describe a bad job or a missing dataset, not a daemon bug."""
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"AgentError", "DataError", "ModelError", "PowerError", "ValueError"})
