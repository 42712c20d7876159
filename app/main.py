"""FastAPI application factory.

``create_app()`` wires the core packages (``gtfs``, ``routing``, ``dispatch``) to HTTP. Each
resource has one router module in ``app/api``; services (database, event bus, feed registry,
dispatcher) live on ``app.state.services`` and are built in the lifespan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import APIRouter, FastAPI

from app.api import health
from app.errors import install_error_handlers
from app.logging import configure_logging
from app.settings import Settings, get_settings

API_PREFIX = "/api/v1"
log = structlog.get_logger("tsunagu.main")
#: glibc malloc arenas of a process (``M_ARENA_MAX``) unless ``MALLOC_ARENA_MAX`` is set.
MALLOC_ARENAS = 2
_M_ARENA_MAX = -8  # mallopt parameter number (malloc.h)


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas (True when set; False elsewhere or when the environment
    already chose, ``MALLOC_ARENA_MAX``).

    glibc gives each thread that allocates while another holds the lock an arena of its own,
    up to 8 per core, and keeps what they grew. Under bench.load a process's worker threads
    went from 13 to ~45 and its anonymous memory from ~210 MB to ~490 MB, most of it those
    arenas (#10). The threads take turns on the GIL anyway, so two arenas cost little
    contention.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        return bool(libc.mallopt(_M_ARENA_MAX, arenas))
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to cap
        return False


def shorten_gil_switch(interval_ms: float) -> None:
    """Let a thread waiting for the GIL have it after ``interval_ms`` (Python's default: 5).

    The event loop gives up the GIL at every socket read and write and must win it back from
    the worker threads computing plans; each time it waited out a whole switch interval, so a
    booking's dozens of round trips (HTTP, Redis, the zone owner's reply) took seconds under
    load (#10). A shorter interval costs the compute threads a few more switches.
    """
    sys.setswitchinterval(interval_ms / 1000.0)


def freeze_startup_heap() -> int:
    """Collect, then move every object alive now into the collector's permanent generation
    (:func:`gc.freeze`); returns how many were frozen.

    A started process holds ~670,000 long-lived objects (timetables' names, planners, the
    ORM's and the routers' graphs); each full collection walked them all, ~400 ms holding the
    GIL, and under load one came every few seconds: every request of the process waited
    (#10). Frozen objects are still freed by reference counting; only cycles among them stay.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the Tsunagu application for ``settings`` (environment settings by default)."""
    settings = settings or get_settings()
    configure_logging(settings)
    limit_malloc_arenas()  # before the worker threads start
    shorten_gil_switch(settings.gil_switch_interval_ms)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from app.services import Services

        services = await Services.start(settings)
        app.state.services = services
        if settings.gc_freeze_on_start:
            frozen = freeze_startup_heap()
            log.info("startup_heap_frozen", objects=frozen)
        try:
            yield
        finally:
            await services.stop()

    from app.openapi import operation_id

    app = FastAPI(
        title="Tsunagu",
        version="0.1.0",
        description="Mobility-as-a-Service: trip planning, on-demand dispatch, emissions, health.",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI from local assets: app.frontend.mount_api_docs
        openapi_url=f"{API_PREFIX}/openapi.json",
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    install_error_handlers(app)

    from app.idempotency import IdempotencyMiddleware, install_openapi

    # Added first, so innermost: inside the body limit and the request id.
    app.add_middleware(IdempotencyMiddleware, prefix=API_PREFIX)

    from app.middleware import install_middleware

    install_middleware(app, settings)

    app.include_router(health.router)
    from app.api.auth import well_known_router

    app.include_router(well_known_router)  # /.well-known/jwks.json, openid-configuration
    api = APIRouter(prefix=API_PREFIX)
    for module in _api_modules():
        api.include_router(module.router)
    from app.emissions.api import router as emissions_router

    api.include_router(emissions_router)  # the emissions service (also runs on its own)
    from app.health.api import router as health_router

    api.include_router(health_router)  # the health service (also runs on its own)
    from app.planning.api import router as planning_router

    api.include_router(planning_router)  # city planners' network analysis (#14)
    app.include_router(api)

    from app.frontend import mount_frontend

    mount_frontend(app, settings)
    install_openapi(app, API_PREFIX)
    from app.openapi import install_openapi as finish_openapi

    finish_openapi(app)  # last: sees what every other part added
    return app


def _api_modules() -> list:  # type: ignore[type-arg]
    """The routers under /api/v1, one module per resource."""
    import importlib

    names = [
        "auth",
        "users",
        "events",
        "feeds",
        "realtime",
        "network",
        "plan",
        "stops",
        "rides",
        "fleet",
        "dispatcher",
        "demo",
        "trips",
    ]
    return [importlib.import_module(f"app.api.{n}") for n in names]
