"""Who may talk to the daemon: loopback-only by default, a bearer token otherwise."""

from __future__ import annotations

import hmac
import ipaddress
import os
import stat
from pathlib import Path
from typing import Tuple

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from agent.errors import ConfigError

MIN_TOKEN_CHARS = 16
TOKEN_HINT = 'python3 -c "import secrets; print(secrets.token_urlsafe(32))" > FILE'


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine (127.0.0.0/8,
    ::1, ``localhost``); wildcard and other addresses or names are not loopback."""
    h = host.strip().strip("[]").lower()
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def check_bind(host: str, token: str | None) -> None:
    """Refuse (``ConfigError`` naming ``--host``) a non-loopback bind without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            "--host", host,
            "a loopback address (127.0.0.1, ::1, localhost) unless --token-file is given: "
            "a non-loopback bind needs a bearer token")


def load_token(path: Path) -> str:
    """The bearer token stored in ``path`` (surrounding whitespace removed).

    Raises ``ConfigError`` naming ``--token-file`` when the file cannot be read, is
    empty, shorter than 16 characters or holds characters that cannot go in an HTTP
    header.  A token file readable by group or others is accepted (the caller may
    warn: see :func:`token_file_is_private`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError("--token-file", str(path), f"a readable UTF-8 file ({e})") from e
    token = text.strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError("--token-file", str(path),
                          f"a file holding a token of at least {MIN_TOKEN_CHARS} characters, "
                          f"e.g. made with: {TOKEN_HINT}")
    if not all(33 <= ord(c) <= 126 for c in token):
        raise ConfigError("--token-file", str(path),
                          "a token of printable ASCII characters without spaces")
    return token


def token_file_is_private(path: Path) -> bool:
    """True when neither group nor others may read ``path``."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not (mode & (stat.S_IRGRP | stat.S_IROTH))


def token_matches(header_value: bytes | None, token: bytes) -> bool:
    """Whether an ``Authorization`` header value carries ``Bearer <token>``; the token
    is compared in constant time."""
    if not header_value or header_value[:7].lower() != b"bearer ":
        return False
    return hmac.compare_digest(header_value[7:].strip(), token)


def host_is_allowed(host_header: str, extra: Tuple[str, ...] = ()) -> bool:
    """Whether a ``Host`` header names this machine's loopback (``127.0.0.1:8321``,
    ``localhost``, ``[::1]:8321``) or one of the ``extra`` names (case-insensitive)."""
    h = host_header.strip().lower()
    if h.startswith("["):  # [v6]:port
        name = h[1:h.find("]")] if "]" in h else h
    else:
        name = h.rsplit(":", 1)[0] if h.count(":") == 1 else h
    return bool(name) and (is_loopback(name) or name in {e.lower() for e in extra})


class LoopbackHostOnly:
    """ASGI middleware for a daemon without a token: refuse (400) requests whose
    ``Host`` is not a loopback name, so a web page cannot reach the daemon through
    DNS rebinding (a name of its own that resolves to 127.0.0.1)."""

    def __init__(self, app: ASGIApp, extra_hosts: Tuple[str, ...] = ()) -> None:
        self.app = app
        self.extra_hosts = tuple(extra_hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope["headers"] if k == b"host"), b"")
        host = raw.decode("latin-1")
        if host_is_allowed(host, self.extra_hosts):
            await self.app(scope, receive, send)
            return
        shown = host if len(host) <= 80 else host[:77] + "..."
        response = JSONResponse(
            {"detail": f"Host header: got {shown!r}; expected a loopback name (127.0.0.1, "
                       "localhost, [::1]) or a name given with --allow-host"}, status_code=400)
        await response(scope, receive, send)


PUBLIC_PATHS = ("/",)
PUBLIC_PREFIXES = ("/static/",)


def is_public(scope: Scope) -> bool:
    """The dashboard page and its static files hold no data: a browser loads them
    without the token, and the page then asks for it."""
    path = scope.get("path", "")
    return scope.get("method") in ("GET", "HEAD") and (
        path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES))


class BearerAuth:
    """ASGI middleware: every HTTP request must carry ``Authorization: Bearer <token>``,
    else 401 (the token given is never echoed); only the dashboard's static files
    (:func:`is_public`) are served without it."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        value = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if token_matches(value, self._token) or is_public(scope):
            await self.app(scope, receive, send)
            return
        what = "missing" if value is None else "not the daemon's bearer token"
        response = JSONResponse(
            {"detail": f"Authorization header: {what}; expected 'Bearer <token>'"},
            status_code=401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)
