"""``Idempotency-Key`` on every state-changing call under ``/api/v1``: a retry gets the first
attempt's answer, in one process and across processes (the record is in the database).

What it covers
--------------
``POST``, ``PUT``, ``PATCH`` and ``DELETE`` under ``/api/v1`` sent with an ``Idempotency-Key``
header by a signed-in caller, except:

* ``/api/v1/auth/*`` (signup, login, refresh, logout, password change): their answers are
  fresh tokens, which must never be stored, and replaying a rotated refresh token would be
  wrong; a client retries them as they are (a refresh token's reuse is detected there);
* ``POST /api/v1/trips``, which has its own key handling on the trips table
  (``app.trips.service``: a retry answers the trip as it is now);
* requests without a valid bearer token (passed on as they are: the route answers 401).

Keys are per principal: ``(user id, method, path, key)`` names one record, so a user can never
replay (or block) another user's answer.

Behaviour
---------
* The key is 1-255 visible ASCII characters (else 400 ``invalid_idempotency_key``).
* The request body is read whole before the route runs (to fingerprint it): bounded by the
  body limits of ``app.middleware``, which run outside this one.
* First request with a key: a row is inserted (the insert is the lock, across processes), the
  route runs, and before the last byte of the answer is sent its status, the headers that
  matter (content type, location, retry-after...) and its body are written to the row, kept
  ``idempotency_ttl_s`` (24 h). Answers of 5xx are not kept (the row is deleted: a retry may
  succeed), nor streams (``text/event-stream``) or bodies over ``MAX_RECORDED_BODY`` bytes.
* A retry with the same key and the same request (query string, content type and body; JSON
  compared by value, not spelling) answers the recorded status, headers and body with
  ``Idempotent-Replayed: true``, without running the route again.
* The same key with another request: 422 ``idempotency_key_reused``.
* A retry while the first attempt still runs waits up to ``idempotency_wait_s`` for it and
  replays its answer, else 409 ``request_in_progress`` with ``Retry-After``. An attempt holds
  its row for ``LEASE_S``, renewed while it runs: a row left by a crashed process is taken
  over by the next retry after that.
* The database unreachable: 503 ``unavailable`` with ``Retry-After`` (nothing run).
* Expired rows are ignored at once and deleted by a sweeper in every process
  (``idempotency_sweep_interval_s``).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import as_utc
from app.errors import ApiError, error_body
from app.models.idempotency import IdempotencyRecord
from app.models.identity import utcnow

if TYPE_CHECKING:
    from app.services import Services

log = structlog.get_logger("tsunagu.idempotency")

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
#: Path prefixes under the API left alone (see the module docstring).
EXCLUDED_PREFIXES = ("/auth/",)
#: (method, path) under the API with their own key handling.
EXCLUDED_ROUTES = frozenset({("POST", "/trips")})
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
#: Response headers recorded and replayed (others are per response: date, request id...).
REPLAYED_HEADERS = frozenset(
    {
        "content-type",
        "content-language",
        "content-disposition",
        "location",
        "retry-after",
        "etag",
        "last-modified",
        "cache-control",
        "link",
        "www-authenticate",
    }
)
#: Answers larger than this are passed on without being recorded.
MAX_RECORDED_BODY = 2_000_000
#: How long an attempt holds its row without renewing it (renewed every third of it).
LEASE_S = 30.0
#: A waiting retry looks again after POLL_S, then less and less often (MAX_POLL_S).
POLL_S = 0.05
MAX_POLL_S = 0.25

_TABLE = IdempotencyRecord.__table__  # type: ignore[attr-defined]


# --- the table ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim`: ``kind`` is ``claimed`` (run the request as ``owner``),
    ``replay`` (``record`` holds the answer), ``mismatch`` (another request used the key) or
    ``busy`` (an attempt holds the row)."""

    kind: str
    owner: str = ""
    record: dict[str, Any] | None = None


def record_id(principal: str, method: str, path: str, key: str) -> str:
    return hashlib.sha256(json.dumps([principal, method, path, key]).encode()).hexdigest()


def request_fingerprint(query: bytes, content_type: str, body: bytes) -> str:
    """SHA-256 of what makes two requests the same: the query string, the content type and
    the body (a JSON body by value, so a client's re-serialisation is the same request)."""
    payload: Any = None  # not JSON: the raw bytes are hashed after the header
    if content_type.split(";")[0].strip().lower() == "application/json":
        with contextlib.suppress(ValueError):
            payload = ["json", json.loads(body)]
    head = json.dumps(
        [query.decode("latin-1"), content_type, payload], sort_keys=True, separators=(",", ":")
    )
    digest = hashlib.sha256(head.encode() + b"\n")
    if payload is None:
        digest.update(body)
    return digest.hexdigest()


def claim(
    engine: Engine,
    *,
    rid: str,
    principal: str,
    method: str,
    path: str,
    key: str,
    fingerprint: str,
    ttl_s: float,
) -> Claim:
    """Take the key for a new attempt, or say why not (synchronous: call it in a thread)."""
    owner = secrets.token_hex(16)
    for _ in range(10):
        now = utcnow()
        row = {
            "id": rid,
            "principal": principal,
            "method": method,
            "path": path,
            "key": key,
            "request_hash": fingerprint,
            "status": None,
            "headers": None,
            "body": None,
            "owner": owner,
            "locked_until": now + dt.timedelta(seconds=LEASE_S),
            "created_at": now,
            "expires_at": now + dt.timedelta(seconds=ttl_s),
        }
        if _insert_new(engine, row):
            return Claim("claimed", owner)
        with engine.begin() as conn:
            found = conn.execute(sa.select(_TABLE).where(_TABLE.c.id == rid)).mappings().first()
            if found is None:
                continue  # swept meanwhile: insert again
            if as_utc(found["expires_at"]) <= now:  # expired, not swept yet: start afresh
                conn.execute(
                    _TABLE.delete().where(_TABLE.c.id == rid, _TABLE.c.owner == found["owner"])
                )
                continue
            if found["request_hash"] != fingerprint:
                return Claim("mismatch")
            if found["status"] is not None:
                return Claim("replay", record=dict(found))
            if as_utc(found["locked_until"]) > now:
                return Claim("busy")
            # The attempt holding it stopped renewing (its process died): take it over.
            taken = conn.execute(
                _TABLE.update()
                .where(
                    _TABLE.c.id == rid,
                    _TABLE.c.owner == found["owner"],
                    _TABLE.c.status.is_(None),
                )
                .values(owner=owner, locked_until=now + dt.timedelta(seconds=LEASE_S))
            )
            if taken.rowcount == 1:
                log.info("idempotency_key_taken_over", path=path)
                return Claim("claimed", owner)
    return Claim("busy")


def _insert_new(engine: Engine, row: dict[str, Any]) -> bool:
    """Insert ``row`` unless its id is taken (no error logged by the server for a taken one
    on PostgreSQL and SQLite: ``ON CONFLICT DO NOTHING``)."""
    name = engine.dialect.name
    if name in ("postgresql", "sqlite"):
        dialect_insert = pg_insert if name == "postgresql" else sqlite_insert
        with engine.begin() as conn:
            stmt = dialect_insert(_TABLE).values(**row).on_conflict_do_nothing()
            return conn.execute(stmt.returning(_TABLE.c.id)).first() is not None
    try:
        with engine.begin() as conn:
            conn.execute(_TABLE.insert().values(**row))
    except IntegrityError:
        return False
    return True


def finish(
    engine: Engine, rid: str, owner: str, status: int, headers: list[list[str]], body: bytes
) -> bool:
    """Record the answer of the attempt ``owner`` (False: it lost the row meanwhile)."""
    with engine.begin() as conn:
        done = conn.execute(
            _TABLE.update()
            .where(_TABLE.c.id == rid, _TABLE.c.owner == owner, _TABLE.c.status.is_(None))
            .values(status=status, headers=headers, body=body)
        )
    return done.rowcount == 1


def release(engine: Engine, rid: str, owner: str) -> None:
    """Forget the attempt ``owner`` (a 5xx, an unrecordable answer): a retry runs again."""
    with engine.begin() as conn:
        conn.execute(
            _TABLE.delete().where(
                _TABLE.c.id == rid, _TABLE.c.owner == owner, _TABLE.c.status.is_(None)
            )
        )


def renew(engine: Engine, rid: str, owner: str) -> None:
    """Extend the attempt's hold on its row (it is still running)."""
    until = utcnow() + dt.timedelta(seconds=LEASE_S)
    with engine.begin() as conn:
        conn.execute(
            _TABLE.update()
            .where(_TABLE.c.id == rid, _TABLE.c.owner == owner, _TABLE.c.status.is_(None))
            .values(locked_until=until)
        )


def sweep_expired(engine: Engine, now: dt.datetime | None = None) -> int:
    """Delete the rows expired at ``now``; the number deleted."""
    with engine.begin() as conn:
        gone = conn.execute(_TABLE.delete().where(_TABLE.c.expires_at <= (now or utcnow())))
    return int(gone.rowcount or 0)


# --- the middleware -------------------------------------------------------------------------
def _headers(scope: Scope, name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers", []) if k.lower() == name]


def covered(method: str, path: str, prefix: str) -> bool:
    """Whether a request may carry an ``Idempotency-Key`` (the module docstring)."""
    if method not in UNSAFE_METHODS or not path.startswith(prefix + "/"):
        return False
    rest = path[len(prefix) :]
    if rest.startswith(EXCLUDED_PREFIXES):
        return False
    return (method, rest.rstrip("/") or "/") not in EXCLUDED_ROUTES


async def _send_json(
    send: Send, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(payload).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    await _send_json(send, status, error_body(code, message), headers)


class IdempotencyMiddleware:
    """The ASGI middleware (module docstring). ``prefix`` is the API's path prefix."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/api/v1") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not covered(scope["method"], scope["path"], self.prefix):
            await self.app(scope, receive, send)
            return
        keys = _headers(scope, b"idempotency-key")
        if not keys:
            await self.app(scope, receive, send)
            return
        key = keys[0].strip()
        if len(keys) > 1 or not _VALID_KEY.match(key):
            await _send_error(
                send,
                400,
                "invalid_idempotency_key",
                f"{HEADER} must be one value of 1-255 visible ASCII characters.",
            )
            return
        services = getattr(scope["app"].state, "services", None)
        principal = await self._principal(scope, services)
        if services is None or principal is None:
            await self.app(scope, receive, send)  # not signed in: the route answers 401
            return
        body, more = await self._read_body(receive)
        if more is not None:  # the client went away before sending its body
            return
        settings = services.settings
        ctypes = _headers(scope, b"content-type")
        fingerprint = request_fingerprint(
            scope.get("query_string", b""), ctypes[0] if ctypes else "", body
        )
        rid = record_id(principal, scope["method"], scope["path"], key)
        engine: Engine = services.engine
        deadline = time.monotonic() + float(settings.idempotency_wait_s)
        poll_s = POLL_S
        while True:
            try:
                got = await asyncio.to_thread(
                    claim,
                    engine,
                    rid=rid,
                    principal=principal,
                    method=scope["method"],
                    path=scope["path"],
                    key=key,
                    fingerprint=fingerprint,
                    ttl_s=float(settings.idempotency_ttl_s),
                )
            except SQLAlchemyError:
                log.warning("idempotency_store_unavailable", exc_info=True)
                await _send_error(
                    send,
                    503,
                    "unavailable",
                    "The idempotency store cannot be reached; retry.",
                    {"Retry-After": "1"},
                )
                return
            if got.kind == "claimed":
                await self._run(scope, receive, send, body, engine, rid, got.owner)
                return
            if got.kind == "replay":
                assert got.record is not None
                await self._replay(send, got.record)
                return
            if got.kind == "mismatch":
                await _send_error(
                    send,
                    422,
                    "idempotency_key_reused",
                    f"This {HEADER} was used with a different request.",
                )
                return
            if time.monotonic() >= deadline:
                await _send_error(
                    send,
                    409,
                    "request_in_progress",
                    f"A request with this {HEADER} is still being handled; retry later.",
                    {"Retry-After": "1"},
                )
                return
            await asyncio.sleep(poll_s)
            poll_s = min(poll_s * 1.5, MAX_POLL_S)

    @staticmethod
    async def _principal(scope: Scope, services: Services | None) -> str | None:
        """The caller's user id from a valid bearer token, else None."""
        if services is None:
            return None
        auth = _headers(scope, b"authorization")
        scheme, _, token = (auth[0] if auth else "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        try:
            principal = await asyncio.to_thread(services.verifier.verify, token.strip())
        except ApiError:
            return None
        except Exception:  # e.g. the database away: the route itself answers
            log.warning("idempotency_principal_unverified", exc_info=True)
            return None
        return str(principal.user_id)

    @staticmethod
    async def _read_body(receive: Receive) -> tuple[bytes, Message | None]:
        """The whole request body; the second item is the message that ended the read
        early (a disconnect), else None."""
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"", message
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(chunks), None

    async def _run(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        body: bytes,
        engine: Engine,
        rid: str,
        owner: str,
    ) -> None:
        """Run the route as the key's attempt ``owner``; record its answer before its last
        byte goes out."""
        replayed = False

        async def replay_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        status = 0
        headers: list[list[str]] = []
        chunks: list[bytes] = []
        size = 0
        recordable = True
        settled = False

        async def settle(record: bool) -> None:
            nonlocal settled
            if settled:
                return
            settled = True
            try:
                if record:
                    ok = await asyncio.to_thread(
                        finish, engine, rid, owner, status, headers, b"".join(chunks)
                    )
                    if not ok:
                        log.warning("idempotency_record_lost", path=scope["path"])
                else:
                    await asyncio.to_thread(release, engine, rid, owner)
            except SQLAlchemyError:  # the row then ends at its lease (a retry runs again)
                log.warning("idempotency_record_failed", path=scope["path"], exc_info=True)

        async def recording_send(message: Message) -> None:
            nonlocal status, size, recordable
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for k, v in message.get("headers", []):
                    name = k.decode("latin-1").lower()
                    if name in REPLAYED_HEADERS:
                        headers.append([name, v.decode("latin-1")])
                ctype = dict(headers).get("content-type", "")
                if status >= 500 or ctype.startswith("text/event-stream"):
                    recordable = False
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if recordable and size <= MAX_RECORDED_BODY:
                    chunks.append(chunk)
                else:
                    recordable = False
                if not message.get("more_body", False):
                    await settle(recordable)
            await send(message)

        keeper = asyncio.create_task(_keep_alive(engine, rid, owner), name="idempotency-lease")
        try:
            await self.app(scope, replay_receive, recording_send)
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
            await settle(False)  # no complete answer went out (an exception, a stream...)

    @staticmethod
    async def _replay(send: Send, record: dict[str, Any]) -> None:
        body = bytes(record["body"] or b"")
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"] or []]
        raw += [
            (b"content-length", str(len(body)).encode()),
            (REPLAYED_HEADER.lower().encode(), b"true"),
        ]
        await send({"type": "http.response.start", "status": record["status"], "headers": raw})
        await send({"type": "http.response.body", "body": body})


async def _keep_alive(engine: Engine, rid: str, owner: str) -> None:
    """Renew the attempt's hold every third of ``LEASE_S`` while it runs."""
    while True:
        await asyncio.sleep(LEASE_S / 3)
        try:
            await asyncio.to_thread(renew, engine, rid, owner)
        except SQLAlchemyError:
            log.warning("idempotency_renew_failed", exc_info=True)


# --- the sweeper ----------------------------------------------------------------------------
async def run_sweeper(engine: Engine, interval_s: float) -> None:
    """Delete expired keys every ``interval_s`` until cancelled (a failed pass is logged)."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            gone = await asyncio.to_thread(sweep_expired, engine)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("idempotency_sweep_failed")
        else:
            if gone:
                log.info("idempotency_keys_swept", keys=gone)


async def start_idempotency_sweeper(services: Services) -> None:
    """Start-up hook: sweep expired keys for as long as the app runs."""
    task = asyncio.create_task(
        run_sweeper(services.engine, float(services.settings.idempotency_sweep_interval_s)),
        name="idempotency-sweeper",
    )

    async def stop() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    services.on_stop.append(stop)


# --- OpenAPI --------------------------------------------------------------------------------
PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: a request repeated with the same key (same user, method and "
        "path) and the same body answers the first attempt's status and body again "
        f"(`{REPLAYED_HEADER}: true`) without acting twice, for 24 h. The same key with "
        "another body: 422 `idempotency_key_reused`; while the first attempt still runs: "
        "409 `request_in_progress`; 5xx answers are not kept."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$"},
}
_ERROR_RESPONSES = {
    "400": "Invalid Idempotency-Key (`invalid_idempotency_key`).",
    "409": "Conflict (`request_in_progress` for an Idempotency-Key still being handled).",
}


def install_openapi(app: FastAPI, prefix: str) -> None:
    """Document the header on every covered operation (a reusable header parameter) and the
    answers it adds."""
    build: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        params = schema.setdefault("components", {}).setdefault("parameters", {})
        params["IdempotencyKey"] = PARAMETER
        ref = {"$ref": "#/components/parameters/IdempotencyKey"}
        for path, item in schema.get("paths", {}).items():
            for method, op in item.items():
                if not covered(method.upper(), path, prefix) or not isinstance(op, dict):
                    continue
                op.setdefault("parameters", []).append(ref)
                responses = op.setdefault("responses", {})
                for code, text in _ERROR_RESPONSES.items():
                    responses.setdefault(
                        code,
                        {"description": text, "content": {"application/json": {"schema": {}}}},
                    )
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
