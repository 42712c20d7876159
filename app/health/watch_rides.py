"""Watch-over rides across processes: a watcher books, moves or cancels a resident's ride.

Design (the health service run as its own process, ``tsunagu serve --service health``)
-------------------------------------------------------------------------------------
The rides live in the mobility core; the watch-over consent lives in the health service. The
core acts on a resident's ride for someone else only when *it* has checked both who is asking
and that the resident consented:

1. The watcher calls the health service (``POST /api/v1/health/watch/{resident}/rides`` ...)
   with their own access token. The health service checks the token (JWKS) and the consent
   ``watch_over`` in its own tables (403 ``no_consent`` without calling the core).
2. It forwards the call to the core's on-behalf routes (``/api/v1/rides/on-behalf/
   {resident}[/{ride}]``, :class:`CoreRides`) with the **watcher's own access token** — no
   service secret that could act for anyone: the core verifies the token itself (signature,
   session not ended, account not disabled), so the actor it records is the watcher.
3. The core asks the health service whether that watcher's consent is in force
   (:func:`watch_consent`: ``GET /api/v1/health/watch/{resident}/consent`` with the same
   token, on the URL the core is configured with, ``TSUNAGU_HEALTH_SERVICE_URL``), never
   trusting a claim of the caller; a revoked consent therefore stops the next call at once.
   In the main process (no URL set) the core reads the consent from the embedded service.
4. Both sides write an audit entry naming the watcher: the core in ``dispatch_audit``
   (``watch_book_ride`` / ``watch_change_ride`` / ``watch_cancel_ride``, refusals too), the
   health service in the resident's own audit log (``book_ride`` / ``change_ride`` /
   ``cancel_ride``), which the resident reads on their health page.

Bookings are never lost nor doubled: the forwarded call carries an ``Idempotency-Key`` (the
watcher's own, else one the health service makes and returns in its answer), which the core's
idempotency layer keys per watcher and path; the health service repeats a call that failed in
transit once with the same key, and a client retrying with the same key after a 503 gets the
first booking back. The core unreachable or failing answers 503 ``core_unavailable`` with
``Retry-After``, never 500.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import structlog

from app.errors import ApiError
from app.idempotency import HEADER as IDEMPOTENCY_HEADER
from app.idempotency import REPLAYED_HEADER
from app.identity.principal import Principal
from app.settings import Settings

log = structlog.get_logger("tsunagu.health.watch")

#: The core's on-behalf routes (under /api/v1).
ON_BEHALF = "/api/v1/rides/on-behalf"
#: The health service's consent check the core calls (under /api/v1).
CONSENT_CHECK = "/api/v1/health/watch/{resident}/consent"
#: How long a failed call waits before its one repetition (same key: books at most once).
REPEAT_AFTER_S = 0.5


@dataclass(frozen=True)
class CoreAnswer:
    """The core's answer to a forwarded call: status, body, and whether it was a replay of an
    earlier attempt with the same key (then the act was audited already)."""

    status_code: int
    body: dict[str, Any]
    replayed: bool
    idempotency_key: str


def _retry_after(settings: Settings, response: httpx.Response | None = None) -> str:
    got = response.headers.get("retry-after") if response is not None else None
    return got if got and got.isdigit() else str(settings.service_retry_after_s)


def _passed_on(response: httpx.Response, settings: Settings, service: str) -> ApiError:
    """The error of a 4xx answer, as the other service gave it (code, message, details)."""
    try:
        error = response.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") or {}
    except (ValueError, KeyError, TypeError):
        code, message, details = "refused", f"the {service} refused the call", {}
    headers = {}
    for name in ("retry-after", "www-authenticate"):
        if name in response.headers:
            headers[name.title()] = response.headers[name]
    return ApiError(response.status_code, code, message, details, headers=headers or None)


def unavailable(
    settings: Settings,
    service: str,
    response: httpx.Response | None = None,
    details: dict[str, Any] | None = None,
) -> ApiError:
    """503 with Retry-After: the other service cannot be reached or failed."""
    return ApiError(
        503,
        f"{service}_unavailable",
        f"The {service} service cannot be reached; try again shortly.",
        details,
        headers={"Retry-After": _retry_after(settings, response)},
    )


def _path(*segments: str) -> str:
    """An on-behalf path; each id quoted whole, so none can reach another route."""
    return "/".join([ON_BEHALF, *(quote(s, safe="") for s in segments)])


class CoreRides:
    """The health service's client of the core's on-behalf ride routes (service to service,
    with the watcher's own token)."""

    def __init__(self, settings: Settings, transport: httpx.AsyncBaseTransport | None = None):
        self.settings = settings
        self.base = settings.core_url.rstrip("/")
        self._transport = transport

    async def _call(
        self,
        method: str,
        path: str,
        token: str,
        key: str | None,
        json: dict[str, Any] | None = None,
    ) -> CoreAnswer:
        key = key or uuid.uuid4().hex
        headers = {"Authorization": f"Bearer {token}", IDEMPOTENCY_HEADER: key}
        timeout = httpx.Timeout(self.settings.service_call_timeout_s)
        last: httpx.Response | None = None
        async with httpx.AsyncClient(
            base_url=self.base, timeout=timeout, transport=self._transport
        ) as client:
            for attempt in (1, 2):
                try:
                    r = await client.request(method, path, json=json, headers=headers)
                except httpx.TransportError as exc:
                    # The call may have reached the core: the repetition carries the same key.
                    log.warning(
                        "health_core_call_failed", error=type(exc).__name__, attempt=attempt
                    )
                    last = None
                else:
                    if r.status_code < 500:
                        break
                    log.warning("health_core_call_failed", status=r.status_code, attempt=attempt)
                    last = r
                if attempt == 1:
                    await asyncio.sleep(REPEAT_AFTER_S)
            else:
                # Retrying with this key later books at most once.
                raise unavailable(self.settings, "core", last, {"idempotencyKey": key})
        if r.status_code >= 400:
            raise _passed_on(r, self.settings, "core")
        try:
            body = r.json()
        except ValueError as exc:
            raise unavailable(self.settings, "core") from exc
        replayed = r.headers.get(REPLAYED_HEADER, "").lower() == "true"
        return CoreAnswer(r.status_code, dict(body), replayed, key)

    async def book(
        self, token: str, resident_id: str, request: dict[str, Any], key: str | None
    ) -> CoreAnswer:
        """Book a ride in the resident's account (the body of ``POST /api/v1/rides``'s
        ``request``)."""
        return await self._call("POST", _path(resident_id), token, key, request)

    async def change(
        self, token: str, resident_id: str, ride_id: str, earliest_pickup: float, key: str | None
    ) -> CoreAnswer:
        """Move the pick-up of the resident's ride."""
        body = {"earliest_pickup": earliest_pickup}
        return await self._call("PATCH", _path(resident_id, ride_id), token, key, body)

    async def cancel(
        self, token: str, resident_id: str, ride_id: str, key: str | None
    ) -> CoreAnswer:
        """Cancel the resident's ride."""
        return await self._call("DELETE", _path(resident_id, ride_id), token, key)


# --- the core's side -------------------------------------------------------------------------
async def watch_consent(services: Any, token: str, who: Principal, resident_id: str) -> str:
    """The id of the resident's ``watch_over`` consent in force to ``who`` (the core's check
    before acting on the resident's ride for them).

    Asks the health service at ``health_service_url`` (with the watcher's token: it checks the
    token against the JWKS and the consent in its tables), else reads the health service of
    this process.

    Raises
    ------
    ApiError
        403 ``no_consent`` (also when ``who`` is the resident: they book as themselves); 503
        ``health_unavailable`` with Retry-After when the health service cannot answer; 501
        ``on_behalf_not_configured`` when no health service is known to this process.
    """
    settings: Settings = services.settings
    refused = ApiError(
        403,
        "no_consent",
        "No watch-over consent in force from this resident.",
        {"purpose": "watch_over"},
    )
    if resident_id == who.user_id:
        raise refused
    if settings.health_service_url:
        check = CONSENT_CHECK.format(resident=quote(resident_id, safe=""))
        url = settings.health_service_url.rstrip("/") + check
        try:
            async with httpx.AsyncClient(timeout=settings.service_call_timeout_s) as client:
                r = await client.get(url, headers={"Authorization": f"Bearer {token}"})
        except httpx.TransportError as exc:
            log.warning("core_health_check_failed", error=type(exc).__name__)
            raise unavailable(settings, "health") from exc
        if r.status_code == 200:
            try:
                return str(r.json()["consentId"])
            except (ValueError, KeyError, TypeError) as exc:
                raise unavailable(settings, "health") from exc
        if r.status_code == 403:
            raise refused
        if r.status_code < 500:
            raise _passed_on(r, settings, "health")
        raise unavailable(settings, "health", r)
    health = getattr(services, "health", None)
    if health is None:
        raise ApiError(
            501,
            "on_behalf_not_configured",
            "No health service is known to this process (TSUNAGU_HEALTH_SERVICE_URL).",
        )
    from app.health import store

    consent = await asyncio.to_thread(
        store.active_consent, health.engine, resident_id, "watch_over", [("user", who.user_id)]
    )
    if consent is None:
        raise refused
    return str(consent.id)
