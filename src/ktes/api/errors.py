"""The one place that maps errors to HTTP responses.

Every error body is JSON ``{"msg": "...", "field": "..."}`` (``field`` only when one field is at fault):
400 for bad input (including FastAPI's own request validation), 404 for an unknown task, 413 for a body
over the configured limit, 429 with ``Retry-After`` for a user at the per-user limit of tasks, 503 with
``Retry-After`` while the database cannot answer (clients retry).
Unexpected errors are 500 with a generic message and a log line.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from ktes.errors import InvalidTask, OverUserLimit, StoreUnavailable, TaskNotFound
from ktes.tes.validation import field_path

log = logging.getLogger(__name__)

#: Seconds a client is asked to wait after a 503 (a database restart or failover takes a few).
RETRY_AFTER_SECONDS = 5
#: Retry-After of a 429 (per-user limit): about the time a short task takes.
LIMIT_RETRY_AFTER_SECONDS = 30


class BodyTooLarge(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than this server accepts ({limit} bytes)")
        self.limit = limit


def error_response(status: int, msg: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"msg": msg}
    if field is not None:
        body["field"] = field
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


async def _invalid_task(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, InvalidTask)
    return error_response(400, str(exc), exc.field)


async def _not_found(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TaskNotFound)
    return error_response(404, str(exc), "id")


async def _too_large(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, BodyTooLarge)
    return error_response(413, str(exc), "body")


async def _over_limit(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OverUserLimit)
    response = error_response(429, str(exc))
    response.headers["Retry-After"] = str(LIMIT_RETRY_AFTER_SECONDS)
    return response


def store_unavailable_response(method: str, path: str, exc: StoreUnavailable) -> Response:
    """The 503 for a request the store could not answer (logged: the operator should know)."""
    log.warning("%s %s: %s", method, path, exc)
    response = error_response(503, "the task database is unavailable just now; try again shortly")
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def _store_unavailable(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StoreUnavailable)
    return store_unavailable_response(request.method, request.url.path, exc)


async def _request_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if not errors:
        return error_response(400, "invalid request")
    first = errors[0]
    loc = [part for part in first.get("loc", ()) if part not in ("query", "path", "body", "header")]
    field = field_path(loc)
    return error_response(400, f"{field}: {first.get('msg', 'is invalid')}", field)


async def _http(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    response = error_response(exc.status_code, str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal server error (see the server log)")


def install(app: FastAPI) -> None:
    app.add_exception_handler(InvalidTask, _invalid_task)
    app.add_exception_handler(TaskNotFound, _not_found)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(OverUserLimit, _over_limit)
    app.add_exception_handler(StoreUnavailable, _store_unavailable)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http)
    app.add_exception_handler(Exception, _unexpected)
