"""ASGI middleware that rejects request bodies over a size limit with 413 before parsing."""

from __future__ import annotations

from typing import List, Tuple

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodySizeLimit:
    """Read at most ``max_bytes`` of a request body, then hand it to the app.

    A ``Content-Length`` above the limit is refused at once; a chunked body is
    counted while it is read and refused as soon as it passes the limit.  Either
    way the app never sees the body and the client gets 413 JSON naming the size.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, upload_bytes: int = 0,
                 upload_paths: Tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = int(max_bytes)
        self.upload_bytes = int(upload_bytes)
        self.upload_paths = tuple(upload_paths)

    def limit(self, scope: Scope) -> int:
        """The limit of this request: ``upload_bytes`` for a POST to an upload path."""
        if scope["method"] == "POST" and scope["path"].rstrip("/") in self.upload_paths:
            return max(self.max_bytes, self.upload_bytes)
        return self.max_bytes

    async def _reject(self, scope: Scope, receive: Receive, send: Send, what: str,
                      limit: int) -> None:
        response = JSONResponse(
            {"detail": f"request body: {what}; expected at most {limit} bytes"},
            status_code=413)
        await response(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        length = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                response = JSONResponse(
                    {"detail": f"Content-Length header: got {length[:40]!r}; expected an integer"},
                    status_code=400)
                await response(scope, receive, send)
                return
            if n > limit:
                await self._reject(scope, receive, send, f"Content-Length {n} bytes", limit)
                return
        if scope["method"] in ("GET", "HEAD", "OPTIONS") and length is None:
            await self.app(scope, receive, send)
            return
        chunks: List[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # client went away
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await self._reject(scope, receive, send, f"more than {limit} bytes sent", limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
