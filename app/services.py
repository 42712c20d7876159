"""The long-lived services of one app process, built in the lifespan by ``Services.start``.

``request.app.state.services`` holds them; routes get them with ``ServicesDep``.

Extending (other engineers): put your service on one of the marked attributes (``feeds``,
``planner``, ``dispatcher``) from a start-up hook listed in ``startup_hooks()``. Hooks run in
order after the database, identity and event bus are up; a hook may append async closers to
``services.on_stop`` (run in reverse order at shutdown) and async checks to
``services.readiness`` (shown by ``/readyz``).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import structlog
from fastapi import Depends, Request
from sqlalchemy.engine import Engine

from app import db
from app.errors import ApiError
from app.identity.service import Identity
from app.settings import Settings

if TYPE_CHECKING:
    from app.identity.keys import KeyStore
    from app.identity.tokens import TokenVerifier

log = structlog.get_logger("tsunagu.services")

StartHook = Callable[["Services"], Awaitable[None]]
StopHook = Callable[[], Awaitable[None]]
ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]


def startup_hooks() -> list[str]:
    """Start-up hooks, ``"module:function"`` each taking ``Services`` — run in this order.

    Add yours here (one line), e.g. ``"app.feeds_startup:start_feeds"``.
    """
    return [
        "app.services:bootstrap_admin",
        "app.identity.token_cache:start_revocation_feed",
        "app.dispatch.store:start_catalog_feed",  # before any zone is read or written
        "app.feeds.startup:start_feeds",
        "app.demo:load_demo",
        "app.dispatch.service:start_dispatcher",
        "app.feeds.dispatch_zones:start_flex_zones",
        "app.dispatch.demo_fleet:start_demo_fleet",
        "app.trips.sweeper:start_trip_sweeper",
        "app.trips.transfer_guard:start_transfer_guard",
        "app.idempotency:start_idempotency_sweeper",
        "app.emissions.service:start_emissions",
        "app.health.service:start_health",
        "app.warm_up:warm_kernels",  # last: /readyz only once the numba kernels are compiled
    ]


@dataclass
class Services:
    """Everything a request may need, shared by the whole process."""

    settings: Settings
    engine: Engine
    identity: Identity
    bus: Any = None  # app.events.EventBus once the events package is present
    # --- extension points: set by start-up hooks of the feed / routing / dispatch work ---
    feeds: Any = None
    planner: Any = None
    dispatcher: Any = None  # this process's Dispatcher (cluster mode: the zones it owns)
    dispatch: Any = None  # app.dispatch.gateway.DispatchGateway: what the API routes call
    demo_city: Any = None  # app.dispatch.demo_fleet.DemoCity while the demo zone and riders run
    emissions: Any = None  # app.emissions.service.EmissionsService
    health: Any = None  # app.health.service.HealthService
    #: Bounds the trip plans computed at once (``settings.plan_threads``). Each runs in a
    #: worker thread; unbounded, a process under load ran ~30 of them, and the event loop
    #: (the zone owner's commands, every reply) waited behind all of them for the GIL (#10).
    plan_limiter: anyio.CapacityLimiter | None = None
    # --------------------------------------------------------------------------------------
    on_stop: list[StopHook] = field(default_factory=list)
    readiness: dict[str, ReadinessCheck] = field(default_factory=dict)

    @property
    def keys(self) -> KeyStore:
        """The identity key store (signing keys, JWKS)."""
        return self.identity.keys

    @property
    def verifier(self) -> TokenVerifier:
        return self.identity.verifier

    @classmethod
    async def start(cls, settings: Settings) -> Services:
        """Open the database (migrating it when ``migrate_on_start``), identity, the event
        bus, then run the start-up hooks."""
        engine = db.engine_for(settings)
        try:
            if settings.migrate_on_start:
                await asyncio.to_thread(db.upgrade_database, engine)
            else:
                await asyncio.to_thread(db.require_current_schema, engine)
            identity = await asyncio.to_thread(Identity.build, settings, engine)
        except BaseException:
            engine.dispose()
            raise
        services = cls(
            settings=settings,
            engine=engine,
            identity=identity,
            plan_limiter=anyio.CapacityLimiter(settings.plan_threads),
        )
        try:
            services.bus = await _start_bus(settings)
            for spec in startup_hooks():
                module, _, name = spec.partition(":")
                hook: StartHook = getattr(importlib.import_module(module), name)
                await hook(services)
        except BaseException:
            await services.stop()
            raise
        log.info("services_started", database=engine.dialect.name, bus=type(services.bus).__name__)
        return services

    async def check(self) -> dict[str, dict[str, Any]]:
        """Readiness of each dependency: ``{"database": {"ok": ...}, "events": {...}, ...}``."""
        checks: dict[str, dict[str, Any]] = {
            "database": await asyncio.to_thread(db.ping, self.engine)
        }
        if self.bus is None:
            checks["events"] = {"ok": True, "backend": "none"}
        else:
            try:
                ok = bool(await asyncio.wait_for(self.bus.ping(), timeout=2))
            except Exception as exc:  # a broken bus is "not ready", never a crash
                ok = False
                log.warning("events_ping_failed", error=type(exc).__name__)
            checks["events"] = {"ok": ok, "backend": type(self.bus).__name__}
        for name, check in self.readiness.items():
            try:
                checks[name] = await check()
            except Exception as exc:
                checks[name] = {"ok": False, "error": type(exc).__name__}
        return checks

    async def stop(self) -> None:
        """Close everything opened by ``start`` (hooks' closers first, in reverse order)."""
        for closer in reversed(self.on_stop):
            try:
                await closer()
            except Exception:
                log.exception("stop_hook_failed")
        self.on_stop.clear()
        if self.bus is not None:
            try:
                await self.bus.close()
            except Exception:
                log.exception("event_bus_close_failed")
            self.bus = None
        self.identity.close()
        self.engine.dispose()


async def _start_bus(settings: Settings) -> Any:
    try:
        events = importlib.import_module("app.events")
    except ImportError:  # the events package is built separately; run without it meanwhile
        log.warning("events_package_missing")
        return None
    bus = events.create_event_bus(settings)
    await bus.start()
    return bus


async def bootstrap_admin(services: Services) -> None:
    """Create the admin of ``settings.admin_email`` / ``admin_password`` if absent."""
    s = services.settings
    password = s.admin_password.get_secret_value()
    if not (s.admin_email and password):
        return
    from app.identity.accounts import ensure_admin

    user, created = await asyncio.to_thread(
        ensure_admin,
        services.engine,
        services.identity.passwords,
        s.admin_email,
        password,
        reset_password=False,
    )
    if created:
        log.info("admin_created", email=user.email)


def get_services(request: Request) -> Services:
    """FastAPI dependency: this process's Services (503 while starting)."""
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise ApiError(503, "unavailable", "The service is starting.")
    return services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]
