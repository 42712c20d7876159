"""Live events over HTTP: a Server-Sent Events stream and operators' service alerts.

``GET /api/v1/events/stream?topics=public.*,user.me.*`` streams every event on the topics the
caller may see (see :mod:`app.events.visibility`). The token comes from
``Authorization: Bearer`` or, because browsers' ``EventSource`` cannot set headers, from
``?access_token=``. Frames:

* first ``event: ready`` with ``{"topics": [...]}`` (the patterns after ``user.me`` expansion);
* then one default (``message``) frame per event: ``id:`` = event id, ``data:`` =
  ``{"id", "topic", "time", "data"}``;
* ``event: dropped`` with ``{"dropped": n}`` when the client read too slowly and the oldest
  ``n`` events (in total) were discarded;
* a ``: ping`` comment every ``settings.event_keepalive_s`` so proxies keep the connection;
* ``event: expired`` when the access token expires, then the stream ends: reconnect with a
  fresh token (a plain ``EventSource`` would retry the old URL and get 401).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal

import jwt
from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from redis.exceptions import RedisError
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from app.api.schemas import AUTHED, ErrorBody, error_responses
from app.errors import ApiError
from app.events import EventBus, EventBusClosedError, Subscription
from app.events.visibility import allowed_namespaces, forbidden_patterns, parse_topics
from app.identity.deps import CurrentPrincipal, Principal, principal_from_token, require_roles
from app.identity.roles import Role
from app.identity.tokens import unauthorized
from app.models.request_model import RequestModel
from app.services import Services, ServicesDep

router = APIRouter(prefix="/events", tags=["events"], responses=AUTHED)

ALERTS_TOPIC = "public.alerts"
DEFAULT_TOPICS = "public.*,user.me.*"


class AlertIn(RequestModel):
    """A service alert announced by an operator (disruption, detour, closure)."""

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "title": "Route 10 detour",
                "message": "Stops between Higashi-Muroran and Wanishi are not served today.",
                "severity": "warning",
                "route_ids": ["10"],
                "stop_ids": [],
            }
        }
    )

    title: str = Field(min_length=1, max_length=200)
    message: str = Field(default="", max_length=4000)
    severity: Literal["info", "warning", "severe"] = "warning"
    route_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=500
    )
    stop_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=500
    )
    active_until: datetime | None = None


class EventOut(BaseModel):
    id: str
    topic: str
    time: str
    data: dict[str, Any]


class TopicsOut(BaseModel):
    """Namespaces the caller may subscribe under; ``["*"]`` = everything (admin)."""

    namespaces: list[str]
    default: str = DEFAULT_TOPICS


def _bus(services: Services) -> EventBus:
    if services.bus is None:
        raise ApiError(503, "events_unavailable", "Live events are not available.")
    return services.bus  # type: ignore[no-any-return]


async def _stream_principal(
    request: Request, access_token: str | None
) -> tuple[Principal, float | None]:
    """The caller and the expiry (epoch seconds) of the token it presented."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("token_invalid", "Use 'Authorization: Bearer <token>'.")
    elif access_token is not None:
        token = access_token
    else:
        raise unauthorized(
            "token_missing", "An access token is required (Authorization or access_token)."
        )
    # Verification may read the database (revoked sessions): keep it off the event loop.
    principal = await run_in_threadpool(principal_from_token, token, request)
    return principal, token_expiry(token)


def token_expiry(token: str) -> float | None:
    """The ``exp`` claim of an already verified JWT, or ``None`` if it has none."""
    try:
        exp = jwt.decode(token.strip(), options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    return float(exp) if isinstance(exp, int | float) else None


async def _frames(
    sub: Subscription, expires_at: float | None = None
) -> AsyncIterator[dict[str, str]]:
    """SSE frames for ``sub``; the stream ends with ``event: expired`` when the token does,
    so a revoked or demoted user loses the stream within one token lifetime."""
    reported = 0
    try:
        yield {"event": "ready", "data": json.dumps({"topics": list(sub.patterns)})}
        while True:
            remaining = None if expires_at is None else expires_at - time.time()
            if remaining is not None and remaining <= 0:
                yield {"event": "expired", "data": json.dumps({"reason": "token_expired"})}
                return
            try:
                event = await sub.get(remaining)
            except TimeoutError:
                continue
            if event is None:  # bus closed: the server is stopping
                return
            if sub.dropped > reported:
                reported = sub.dropped
                yield {"event": "dropped", "data": json.dumps({"dropped": reported})}
            yield {"id": event.id, "data": json.dumps(event.to_dict(), ensure_ascii=False)}
    finally:
        sub.close()  # client gone or server stopping: unsubscribe


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {
                "text/event-stream": {
                    "schema": {
                        "type": "string",
                        "description": "Frames `event: ready`, then one per event "
                        '(`data: {"id", "topic", "time", "data"}`), `event: dropped`, '
                        "`event: expired`; `: ping` comments.",
                    }
                }
            },
            "description": "Server-Sent Events.",
        },
        400: {"model": ErrorBody, "description": "Malformed topics (`invalid_topics`)."},
        403: {"model": ErrorBody, "description": "A requested topic is not visible to the caller."},
    },
)
async def stream(
    request: Request,
    services: ServicesDep,
    topics: Annotated[
        str,
        Query(
            max_length=2000,
            description="Comma-separated topic patterns (``*`` = any characters); "
            "``user.me`` is the caller.",
        ),
    ] = DEFAULT_TOPICS,
    access_token: Annotated[
        str | None,
        Query(max_length=8000, description="For EventSource, which cannot send headers."),
    ] = None,
) -> EventSourceResponse:
    """Stream live events on ``topics`` as Server-Sent Events."""
    principal, expires_at = await _stream_principal(request, access_token)
    try:
        patterns = parse_topics(topics, principal.user_id)
    except ValueError as exc:
        raise ApiError(400, "invalid_topics", str(exc)) from None
    forbidden = forbidden_patterns(principal, patterns)
    if forbidden:
        raise ApiError(
            403,
            "forbidden",
            "You may not subscribe to: " + ", ".join(forbidden),
            {"forbidden_topics": forbidden, "allowed": allowed_namespaces(principal) or ["*"]},
        )
    # Subscribe before answering: once the client has the headers, no event is missed.
    try:
        sub = _bus(services).subscribe(patterns)
    except EventBusClosedError:
        raise ApiError(503, "events_unavailable", "Live events are not available.") from None
    return EventSourceResponse(
        _frames(sub, expires_at),
        ping=max(1, round(services.settings.event_keepalive_s)),
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(sub.close),
    )


@router.get("/topics")
async def topics(principal: CurrentPrincipal) -> TopicsOut:
    """Which topic namespaces the caller may subscribe to."""
    return TopicsOut(namespaces=allowed_namespaces(principal) or ["*"])


@router.post("/alerts", status_code=201, responses=error_responses(413))
async def publish_alert(
    body: AlertIn,
    services: ServicesDep,
    principal: Annotated[Principal, Depends(require_roles(Role.OPERATOR.value))],
) -> EventOut:
    """Announce a service alert to everyone (topic ``public.alerts``); operators and admin."""
    data = body.model_dump(mode="json") | {"published_by": principal.user_id}
    try:
        event = await _bus(services).publish(ALERTS_TOPIC, data)
    except (RedisError, OSError, EventBusClosedError) as exc:
        raise ApiError(
            503, "events_unavailable", "The alert could not be published; try again."
        ) from exc
    return EventOut(**event.to_dict())
