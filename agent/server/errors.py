"""Domain errors of the API and the one place that maps every error to a JSON status."""

from __future__ import annotations

import logging
import re
from typing import Any, Dict, List, Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from agent.errors import ConfigError
from agent.server.runner import JobConflict

log = logging.getLogger("halo_agent.server")

_LOCATIONS = ("body", "query", "path", "header", "cookie")
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class ApiError(Exception):
    """An error with an HTTP status; ``detail`` names the field and the value."""

    status_code = 400

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class JobNotFound(ApiError):
    """No job has this id."""

    status_code = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"id: got {short(job_id)}; no job has this id")


class NotReady(ApiError):
    """The resource exists but is not there yet (e.g. the model of a running job)."""

    status_code = 409


class ItemNotFound(ApiError):
    """No upload (dataset or model) has this id."""

    status_code = 404


class UploadRefused(ApiError):
    """An upload that is not a usable dataset or model (nothing was stored)."""

    status_code = 422


class InUse(ApiError):
    """An upload a queued or running job needs."""

    status_code = 409


class QueueFull(ApiError):
    """Too many jobs are waiting."""

    status_code = 429


class Unavailable(ApiError):
    """The daemon is starting or stopping, or a sensor has no reading yet."""

    status_code = 503


def short(value: Any, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters (a client may send megabytes)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def field_name(loc: Sequence[Any]) -> str:
    """``("body", "budget", "steps")`` -> ``"budget.steps"``; a bare body -> ``"body"``."""
    parts = [str(p) for p in loc]
    if len(parts) > 1 and parts[0] in _LOCATIONS:
        parts = parts[1:]
    return ".".join(parts) or "body"


def describe_validation(errors: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Pydantic errors as ``{field, value, message}``, each message naming both."""
    out = []
    for e in errors:
        field = field_name(e.get("loc", ()))
        msg = str(e.get("msg", "invalid"))
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        kind = e.get("type", "")
        if kind == "missing":
            text = f"{field}: required, got nothing"
            value = None
        elif field == "body" and isinstance(e.get("input"), (bytes, str)):
            value = short(e.get("input"))
            text = (f"body: got {value}; expected a JSON object sent with "
                    "Content-Type: application/json")
        elif kind == "json_invalid":
            loc = tuple(e.get("loc", ()))
            where = f" at character {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
            field, value = "body", None
            text = f"body: not valid JSON{where} ({e.get('ctx', {}).get('error', msg)})"
        else:
            value = short(e.get("input"))
            text = f"{field}: {msg}" if msg.startswith("got ") else f"{field}: got {value}; {msg}"
        out.append({"field": field, "value": value, "message": text})
    return out


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = describe_validation(exc.errors())
    return JSONResponse({"detail": "; ".join(e["message"] for e in errors), "errors": errors},
                        status_code=422)


async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)


async def _config_error(request: Request, exc: ConfigError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "errors": [
        {"field": exc.field, "value": short(exc.value), "message": str(exc)}]}, status_code=422)


async def _conflict(request: Request, exc: JobConflict) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


PARSE_ERROR = "There was an error parsing the body"  # FastAPI's text for an unreadable body


def unparsable_body(request: Request) -> JSONResponse:
    """422 naming ``body`` for a body the framework could not decode (e.g. JSON that
    is not UTF-8), the same status and form as every other invalid body."""
    kind = request.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    if kind == "application/json":
        message = "body: not valid JSON (the bytes are not UTF-8 text)"
    else:
        message = f"body: could not be decoded as {kind}"
    return JSONResponse({"detail": message, "errors": [
        {"field": "body", "value": None, "message": message}]}, status_code=422)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
    if exc.status_code == 400 and detail == PARSE_ERROR:
        return unparsable_body(request)
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"path: got {short(request.url.path)}; no such endpoint (see /docs)"
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        allowed = allowed_methods(request)
        headers["Allow"] = ", ".join(allowed)
        detail = (f"method: got {request.method!r}; expected one of {', '.join(allowed)} "
                  f"on {short(request.url.path)}")
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=headers or None)


def allowed_methods(request: Request) -> List[str]:
    """Every method the API documents for this request's path (several routes may
    share a path, e.g. GET and POST ``/v1/adaptations``); read from the OpenAPI
    schema so it does not depend on how the framework stores its routes."""
    methods = set()
    for template, ops in request.app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, request.url.path):
            methods |= {m.upper() for m in ops if m.lower() in _HTTP_METHODS}
    return sorted(methods)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the daemon log"},
                        status_code=500)


def install_handlers(app: FastAPI) -> None:
    """Map validation, domain and unexpected errors to JSON ``{"detail": ...}``."""
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ConfigError, _config_error)
    app.add_exception_handler(JobConflict, _conflict)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
