"""The emissions service: built in the main process by a start-up hook, or run on its own.

In the main process (the default) :func:`start_emissions` (listed in
``app.services.startup_hooks``) migrates the service's tables and puts an
:class:`EmissionsService` on ``services.emissions``; ``app.main`` mounts the router.

On its own, ``tsunagu serve --service emissions`` serves :func:`create_emissions_app`: only the
emissions router (and ``/healthz``, ``/readyz``). It trusts the identity store's access tokens
through its JWKS alone (``TSUNAGU_IDENTITY_JWKS_URL``, checked with ``TSUNAGU_JWT_ISSUER`` and
``TSUNAGU_JWT_AUDIENCE`` by :class:`app.identity.tokens.OidcTokens`): no session table, no
shared state. A token signed by another key, for another issuer or audience, or expired is a
401; a session ended by logout stays usable here until its token expires (at most
``TSUNAGU_ACCESS_TOKEN_TTL_S``), the price of sharing no session state.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from app import db
from app.emissions import store
from app.emissions.factors import FactorTable, city_factors
from app.emissions.ledger import Ledger
from app.emissions.sources import DatabaseMobility, MobilityRecords, has_mobility_tables
from app.settings import Settings

log = structlog.get_logger("tsunagu.emissions")

API_PREFIX = "/api/v1"


@dataclass
class EmissionsService:
    """Everything the emissions routes need.

    Extension points (company features): ``engine`` holds the service's tables (add yours on
    :class:`app.emissions.models.EmissionsModel` with a revision in its chain); ``table`` prices
    fuel, electricity and modes with provenance; ``ledger.entries(user, month)`` gives a
    person's priced trips; ``mobility`` reads the core's records.
    """

    settings: Settings
    engine: Engine
    table: FactorTable
    ledger: Ledger
    mobility: MobilityRecords | None
    _closers: list[Engine] = field(default_factory=list)

    @classmethod
    def build(
        cls, settings: Settings, app_engine: Engine | None = None, *, mobility: bool = True
    ) -> EmissionsService:
        """Open (and migrate) the service's database; blocking, call it from a thread.

        ``app_engine``: the app's engine, reused when the service's database is the app's and
        read for the mobility records. Without it (run on its own) the mobility records are
        read from ``DATABASE_URL`` when that database holds them.
        """
        table = city_factors(settings)  # a broken factor file fails at start, not mid-request
        closers: list[Engine] = []
        url = settings.effective_emissions_database_url
        if app_engine is not None and url == settings.effective_database_url:
            engine = app_engine
        else:
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            engine = db.create_db_engine(url)
            closers.append(engine)
        try:
            if settings.migrate_on_start:
                store.upgrade(engine)
            elif store.current_revision(engine) != store.head_revision():
                raise RuntimeError(
                    "the emissions tables are not at the newest revision: start once with "
                    "TSUNAGU_MIGRATE_ON_START=true"
                )
            records: MobilityRecords | None = None
            if mobility:
                core = app_engine
                if core is None:
                    core = engine if url == settings.effective_database_url else None
                    if core is None:
                        core = db.create_db_engine(settings.effective_database_url)
                        closers.append(core)
                if has_mobility_tables(core):
                    records = DatabaseMobility(core)
                else:
                    log.warning("emissions_without_mobility_records")
        except BaseException:
            for e in closers:
                e.dispose()
            raise
        ledger = Ledger(table, engine, records)
        return cls(settings, engine, table, ledger, records, closers)

    def close(self) -> None:
        for e in self._closers:
            e.dispose()
        self._closers.clear()

    def ping(self) -> dict[str, Any]:
        return db.ping(self.engine)


async def start_emissions(services: Any) -> None:
    """Start-up hook of the main process: ``services.emissions``."""
    service = await asyncio.to_thread(EmissionsService.build, services.settings, services.engine)
    services.emissions = service

    async def stop() -> None:
        service.close()

    async def ready() -> dict[str, Any]:
        return await asyncio.to_thread(service.ping)

    services.on_stop.append(stop)
    services.readiness["emissions"] = ready
    log.info("emissions_started", factors=service.table.name, own_database=bool(service._closers))


@dataclass
class StandaloneServices:
    """``app.state.services`` of the emissions service run on its own: what the identity
    dependencies (``verifier``) and the emissions routes (``emissions``) read."""

    settings: Settings
    verifier: Any
    emissions: EmissionsService


def jwks_verifier(settings: Settings) -> Any:
    """The identity store's tokens, checked through its JWKS only."""
    from app.identity.tokens import OidcTokens

    if not settings.identity_jwks_url:
        raise RuntimeError(
            "tsunagu serve --service emissions needs TSUNAGU_IDENTITY_JWKS_URL (the identity "
            "store's /.well-known/jwks.json)"
        )
    return OidcTokens(
        issuer=settings.oidc_issuer or settings.jwt_issuer,
        jwks_url=settings.identity_jwks_url,
        audience=settings.oidc_audience or settings.jwt_audience,
        roles_claim=settings.oidc_roles_claim,
    )


def create_emissions_app(settings: Settings | None = None) -> FastAPI:
    """The emissions service on its own: its router, health checks, nothing else."""
    from app.emissions.api import router
    from app.errors import install_error_handlers
    from app.logging import configure_logging
    from app.middleware import install_middleware
    from app.settings import get_settings

    settings = settings or get_settings()
    configure_logging(settings)
    verifier = jwks_verifier(settings)  # fails before serving when the JWKS URL is missing

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await asyncio.to_thread(EmissionsService.build, settings)
        app.state.services = StandaloneServices(settings, verifier, service)
        log.info("emissions_service_started", factors=service.table.name)
        try:
            yield
        finally:
            service.close()

    app = FastAPI(
        title="Tsunagu emissions",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=f"{API_PREFIX}/docs",
        openapi_url=f"{API_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_middleware(app, settings)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Any:
        from fastapi.responses import JSONResponse

        services = getattr(app.state, "services", None)
        check = (
            await asyncio.to_thread(services.emissions.ping)
            if services is not None
            else {"ok": False}
        )
        return JSONResponse({"ready": check["ok"], "database": check}, 200 if check["ok"] else 503)

    app.include_router(router, prefix=API_PREFIX)
    return app
