"""HTTP middleware: request ids, access log, request-body limits.

* Every response carries ``X-Request-ID`` (the client's, when it sent a sane one) and every log
  line of the request is bound to it.
* One structured access-log line per request (method, path, query, status, duration); the
  values of secret query parameters (``access_token``, ``token``, ``password``...) are
  replaced by ``***``.
* Bodies above ``settings.max_body_bytes`` (``max_upload_bytes`` for multipart, zip and other
  binary uploads) answer 413 ``payload_too_large`` in the error shape. The limit is enforced on
  the bytes actually received, not only on ``Content-Length``.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import Any
from urllib.parse import unquote_plus

import structlog
from fastapi import FastAPI
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import error_body
from app.settings import Settings

log = structlog.get_logger("tsunagu.access")

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_UPLOAD_TYPES = (
    "multipart/form-data",
    "application/zip",
    "application/x-zip-compressed",
    "application/octet-stream",
    "application/x-protobuf",
)


#: Query parameters whose values never reach the log (matched case-insensitively).
SECRET_QUERY_PARAMS = frozenset(
    {"access_token", "refresh_token", "id_token", "token", "password", "secret", "api_key", "code"}
)


def redacted_query(raw: bytes | str) -> str:
    """The query string for the log, with the values of secret parameters replaced by
    ``***``."""
    text = raw.decode("latin-1") if isinstance(raw, bytes) else raw
    out = []
    for part in re.split(r"([&;])", text):  # the rest kept as sent
        key, eq, _ = part.partition("=")
        secret = eq and unquote_plus(key).strip().lower() in SECRET_QUERY_PARAMS
        out.append(f"{key}=***" if secret else part)
    return "".join(out)


class BodyTooLargeError(HTTPException):
    """Raised while the app reads a body past the limit; an HTTPException so FastAPI passes it
    through to the error handler (413 in the error shape)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request body exceeds the limit of {limit} bytes.")
        self.limit = limit


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


class BodyLimitMiddleware:
    """Rejects request bodies larger than the limit for their content type."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def limit_for(self, content_type: str | None) -> int:
        ctype = (content_type or "").split(";")[0].strip().lower()
        return self.max_upload_bytes if ctype in _UPLOAD_TYPES else self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(_header(scope, b"content-type"))
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_413(send, limit)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLargeError:
            # Raised outside any FastAPI handler (e.g. a streaming endpoint): answer here.
            if not started:
                await _send_413(send, limit)
            else:
                raise


async def _send_413(send: Send, limit: int) -> None:
    body = json.dumps(
        error_body(
            "payload_too_large",
            f"Request body exceeds the limit of {limit} bytes.",
            {"limit_bytes": limit},
        )
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    """Assigns the request id, binds it to structlog, and writes the access log line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, REQUEST_ID_HEADER.encode())
        request_id = incoming if incoming and _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        with structlog.contextvars.bound_contextvars(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                fields: dict[str, Any] = {
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status,
                    "duration_ms": round((time.perf_counter() - start) * 1000, 2),
                }
                query = redacted_query(scope.get("query_string", b""))
                if query:
                    fields["query"] = query
                client = scope.get("client")
                if client:
                    fields["client"] = client[0]
                log.info("request", **fields)


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Add the middleware (outermost last: the request id wraps everything, even 413s)."""
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.add_middleware(RequestContextMiddleware)
