"""The app factory: a FastAPI app whose lifespan opens the store, the sampler and the runner."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import ExitStack, asynccontextmanager, contextmanager
from typing import Any, AsyncIterator, Callable, ContextManager, Dict, Iterator

import anyio
from fastapi import FastAPI

from agent import __version__
from agent.server.bodylimit import BodySizeLimit
from agent.server.errors import install_handlers
from agent.server.events import Notifier
from agent.server.jobconfig import build_config
from agent.server.routes import datasets, events, info, jobs, metrics, ui, usermodels
from agent.server.runner import AdaptFn, ConfigFactory, Runner
from agent.server.security import BearerAuth, LoopbackHostOnly
from agent.server.settings import Settings
from agent.server.store import JobStore

log = logging.getLogger("halo_agent.server")

SamplerFactory = Callable[[Settings], ContextManager[Any]]


@contextmanager
def power_sampler(settings: Settings) -> Iterator[Any]:
    """Detect the power meter and run one sampler for the daemon's lifetime."""
    from power import Sampler, detect

    meter, skipped = detect(spec=settings.power_source, sysfs_root=settings.sysfs_root)
    for source, reason in skipped:
        log.info("power source %s skipped: %s", source, reason)
    log.info("power source: %s%s", meter.source, " (estimated)" if meter.estimated else "")
    try:
        with Sampler(meter, period_s=settings.sample_period_s) as sampler:
            yield sampler
    finally:
        close = getattr(meter, "close", None)
        if callable(close):
            close()


def create_app(settings: Settings, *, adapt: AdaptFn | None = None,
               sampler_factory: SamplerFactory = power_sampler,
               config_factory: ConfigFactory = build_config,
               start_runner: bool = True) -> FastAPI:
    """Build the daemon's app; nothing is opened until its lifespan starts.

    ``adapt``: the adaptation function the runner calls (default: the engine's
    ``run_adaptation``).  ``sampler_factory(settings)``: a context manager giving
    the power sampler.  ``start_runner=False`` keeps submitted jobs queued (for
    schema fuzzing).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with ExitStack() as stack:
            settings.models_dir.mkdir(parents=True, exist_ok=True)
            store = stack.enter_context(JobStore(settings.db_path))
            for job_id in store.interrupt_running(time.time()):
                log.warning("job %s was running when the daemon stopped: now interrupted", job_id)
            sampler = stack.enter_context(sampler_factory(settings))
            notifier = Notifier()
            runner = Runner(store, settings, adapt=adapt, sampler=sampler, notifier=notifier,
                            config_factory=config_factory)
            app.state.settings, app.state.store, app.state.runner = settings, store, runner
            app.state.sampler, app.state.notifier = sampler, notifier
            app.state.started_monotonic = time.monotonic()
            app.state.started_at = time.time()
            opener = getattr(sampler, "open_window", None)  # the board's joules since start
            app.state.energy_window = opener("daemon") if callable(opener) else None
            if start_runner:
                runner.start()
            try:
                yield
            finally:
                app.state.runner = None
                await anyio.to_thread.run_sync(runner.stop)
                app.state.store = app.state.sampler = None

    app = FastAPI(title="halo-agent", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None,  # /docs is served offline by routes.ui
                  description="On-device adaptation with a learned optimizer, measured in "
                              "joules per accuracy point.")
    for name in ("settings", "store", "runner", "sampler", "notifier"):
        setattr(app.state, name, None)
    app.state.closing = threading.Event()
    install_handlers(app)
    _add_registry_enums(app)
    for module in (info, jobs, events, metrics, datasets, usermodels):
        app.include_router(module.router)
    ui.install(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes,
                       upload_bytes=settings.max_upload_bytes,
                       upload_paths=("/v1/datasets", "/v1/models"))
    if settings.token:
        app.add_middleware(BearerAuth, token=settings.token)
    else:
        app.add_middleware(LoopbackHostOnly, extra_hosts=settings.allowed_hosts)
    return app


def stop_streams(app: FastAPI) -> None:
    """Tell open event streams that the daemon is stopping, so they end now rather
    than hold the shutdown until the job ends."""
    app.state.closing.set()
    notifier = getattr(app.state, "notifier", None)
    if notifier is not None:
        notifier.notify()


def _add_registry_enums(app: FastAPI) -> None:
    """List the registered tasks, models and optimizers as ``enum`` in the OpenAPI
    schema of a job request (read from the registries when the schema is first asked
    for, not at import)."""
    base = app.openapi

    def openapi() -> Dict[str, Any]:
        if app.openapi_schema is None:
            from agent.server import catalog

            schema = base()
            props = (schema.get("components", {}).get("schemas", {})
                     .get("AdaptationRequest", {}).get("properties", {}))
            for name, values in (("task", catalog.task_names()),
                                 ("optimizer", catalog.optimizer_names())):
                if name in props:
                    props[name]["enum"] = list(values)
            for option in props.get("model", {}).get("anyOf", []):
                if option.get("type") == "string":
                    option["enum"] = catalog.architectures()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
