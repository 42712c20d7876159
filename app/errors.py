"""One error shape for every failure: ``{"error": {"code", "message", "details"}}``.

Clients never see a stack trace; unexpected exceptions are logged and answered with 500
``internal_error`` and ``Connection: close`` (the server closes the connection after it).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("tsunagu.errors")


class ApiError(Exception):
    """An error with a stable machine-readable code, raised anywhere in the app layer."""

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details
        if status_code == 503 and "Retry-After" not in (headers or {}):
            # Every 503 is a retriable outage or a busy zone: say when to retry.
            headers = {**(headers or {}), "Retry-After": str(RETRY_AFTER_S)}
        self.headers = headers


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    503: "unavailable",
}


RETRY_AFTER_S = 2
"""What a 503 for a backend outage tells clients to wait (Redis restarting, a dropped database
connection re-established by the pool's pre-ping)."""

_OUTAGE_WORDS = (
    "connection",
    "could not connect",
    "server closed",
    "terminating",
    "timeout",
    "timed out",
    "database is locked",
    "the database system is",
)


def backend_outage(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised from) is Redis or the database being away:
    answered 503 with ``Retry-After``, not 500. A database error that is not about the
    connection (a missing table, a constraint) stays a 500: it is a bug, not an outage."""
    import redis.exceptions as rx
    import sqlalchemy.exc as sx

    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, rx.ConnectionError | rx.TimeoutError | sx.TimeoutError):
            return True
        if isinstance(e, sx.DBAPIError) and e.connection_invalidated:
            return True
        if isinstance(e, sx.OperationalError | sx.InterfaceError):
            text = str(e.orig if e.orig is not None else e).lower()
            if any(w in text for w in _OUTAGE_WORDS):
                return True
        if isinstance(e, ConnectionError | TimeoutError):
            return True
        e = e.__cause__ or e.__context__
    return False


def outage_response() -> JSONResponse:
    return JSONResponse(
        error_body(
            "backend_unavailable",
            "A backend service is briefly unavailable; nothing was changed that you were not "
            "told of. Retry after a moment.",
        ),
        status_code=503,
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            # Starlette names the methods of the first route matching the path only.
            from app.frontend import method_not_allowed

            return await _api_error(request, method_not_allowed(request.app, request.url.path))
        code = _STATUS_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return JSONResponse(
            error_body(code, message), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [
            {
                "loc": list(e.get("loc", ())),
                "type": e.get("type"),
                "msg": e.get("msg"),
            }
            for e in exc.errors()
        ]
        malformed = any(d["type"] == "json_invalid" for d in details)
        return JSONResponse(
            error_body(
                "malformed_json" if malformed else "validation_error",
                "Request body is not valid JSON."
                if malformed
                else "Request does not match the expected schema.",
                details,
            ),
            status_code=400 if malformed else 422,
        )

    import redis.exceptions as rx
    import sqlalchemy.exc as sx

    async def _maybe_outage(request: Request, exc: Exception) -> JSONResponse:
        if backend_outage(exc):
            log.warning(
                "backend outage on %s %s: %s", request.method, request.url.path, type(exc).__name__
            )
            return outage_response()
        return _internal(request, exc)

    # Handled here, not by the catch-all below: Starlette re-raises what reaches that one.
    for kind in (rx.RedisError, sx.SQLAlchemyError, ConnectionError, TimeoutError):
        app.add_exception_handler(kind, _maybe_outage)  # type: ignore[arg-type]

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        return _internal(request, exc)

    def _internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        # Starlette re-raises after answering and uvicorn then drops the connection: say so,
        # so that a client does not reuse it.
        return JSONResponse(
            error_body("internal_error", "An internal error occurred; it has been logged."),
            status_code=500,
            headers={"Connection": "close"},
        )
