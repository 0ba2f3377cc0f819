"""``halo-agent serve``: run the daemon under uvicorn (``add_commands`` wires it in)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any, Callable

from agent.argtypes import add_run_arguments, number_in, positive_int
from agent.errors import ConfigError
from agent.server.settings import DEFAULT_HOST, DEFAULT_PORT, Settings

log = logging.getLogger("halo_agent.server")

GRACEFUL_SHUTDOWN_S = 5


def add_commands(subparsers: Any) -> None:
    """Add the ``serve`` command to a ``halo-agent`` subparsers object."""
    p = subparsers.add_parser(
        "serve", help="run the adaptation daemon (REST API)",
        description="Run the halo-agent daemon: a REST API that queues adaptation jobs, runs "
                    "them one at a time and reports accuracy against energy. Binds "
                    "127.0.0.1 unless told otherwise; any other address needs --token-file.")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to bind (default: {DEFAULT_HOST}; a non-loopback address "
                        "needs --token-file)")
    p.add_argument("--port", type=number_in(int, 0, 65535, "a port number"), default=DEFAULT_PORT,
                   help=f"TCP port (default: {DEFAULT_PORT})")
    p.add_argument("--token-file", type=Path, default=None,
                   help="file holding the bearer token every request must send "
                        "(Authorization: Bearer TOKEN)")
    add_run_arguments(p, before="each job",
                      data_dir_help="data directory: datasets, checkpoints, job database, adapted "
                                    "models (default: $HALO_DATA_DIR or ~/.local/share/halo-agent)")
    p.add_argument("--max-steps", type=positive_int, default=1_000_000,
                   help="largest step budget a job may ask for (default: 1000000)")
    p.add_argument("--max-queued", type=positive_int, default=100,
                   help="jobs that may wait in the queue (default: 100)")
    p.add_argument("--max-upload-mb", type=positive_int, default=64,
                   help="largest dataset or model upload, MiB (default: 64)")
    p.add_argument("--max-unpacked-mb", type=positive_int, default=512,
                   help="largest unpacked size of an uploaded zip of images, MiB (default: 512)")
    p.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                   help="also accept requests whose Host header is NAME when no token is set "
                        "(default: only 127.0.0.1, localhost, [::1]); repeatable")
    p.add_argument("--log-level", default="info",
                   choices=["critical", "error", "warning", "info", "debug"],
                   help="log level (default: info)")
    p.set_defaults(func=cmd_serve)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Build and check the settings; ``ConfigError`` naming the option at fault."""
    from agent.server.security import check_bind, load_token, token_file_is_private
    from models.data.paths import resolve_data_dir

    token = None
    if args.token_file is not None:
        token = load_token(args.token_file)
        if not token_file_is_private(args.token_file):
            log.warning("token file %s is readable by other users; chmod 600 it",
                        args.token_file)
    check_bind(args.host, token)
    data_dir = resolve_data_dir(args.data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError("--data-dir", str(data_dir),
                          f"a directory this user can create ({e})") from e
    return Settings(data_dir=data_dir, host=args.host, port=args.port, token=token,
                    power_source=args.power_source, sysfs_root=args.sysfs_root,
                    idle_seconds=args.idle_seconds, threads=args.threads,
                    max_steps=args.max_steps, max_queued=args.max_queued,
                    max_upload_bytes=args.max_upload_mb * 1024 * 1024,
                    max_unpacked_bytes=args.max_unpacked_mb * 1024 * 1024,
                    allowed_hosts=tuple(args.allow_host))


def _check_power(settings: Settings) -> None:
    """Fail early (``PowerError``) when the asked power source cannot be opened."""
    from power import detect

    meter, _ = detect(spec=settings.power_source, sysfs_root=settings.sysfs_root)
    close = getattr(meter, "close", None)
    if callable(close):
        close()


def _check_store(settings: Settings) -> None:
    """Fail early (``ConfigError`` naming ``--data-dir``) when the job database
    cannot be opened or created."""
    import sqlite3

    from agent.server.store import JobStore

    try:
        JobStore(settings.db_path).open().close()
    except (sqlite3.Error, OSError) as e:
        raise ConfigError("--data-dir", str(settings.data_dir),
                          f"a folder where {settings.db_path.name} is a usable SQLite "
                          f"database ({e})") from e


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM/SIGINT; the exit code (2: bad settings)."""
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from agent.server.lock import DataDirLock

    lock = None
    try:
        settings = settings_from_args(args)
        lock = DataDirLock(settings.data_dir).acquire()  # before the database is touched
        _check_store(settings)
        _check_power(settings)
    except Exception as e:
        if lock is not None:
            lock.release()
        if not _is_settings_error(e):
            raise
        print(f"halo-agent serve: error: {e}", file=sys.stderr)
        return 2
    from agent.server.app import create_app, stop_streams

    try:
        app = create_app(settings)
        return run_server(app, settings, args.log_level, on_stop=lambda: stop_streams(app))
    finally:
        lock.release()


def _is_settings_error(e: Exception) -> bool:
    names = {c.__name__ for c in type(e).__mro__}
    return bool(names & {"AgentError", "PowerError", "DataError", "ValueError"})


def run_server(app: Any, settings: Settings, log_level: str = "info",
               on_stop: Callable[[], None] | None = None) -> int:
    """Serve ``app`` with uvicorn on ``settings.host:port``; tell systemd when ready."""
    import uvicorn

    from agent.server.sdnotify import notify

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                notify(f"READY=1\nSTATUS=serving on {settings.host}:{settings.port}")

        async def shutdown(self, sockets: Any = None) -> None:
            notify("STOPPING=1")
            if on_stop is not None:
                on_stop()
            await super().shutdown(sockets=sockets)

    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=log_level,
                            lifespan="on", proxy_headers=False, server_header=False,
                            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S)
    server = _Server(config)
    server.run()
    return 0 if server.started else 1
