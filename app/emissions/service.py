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
from app.secondary import core_engine, open_service_database
from app.settings import Settings

log = structlog.get_logger("tsunagu.emissions")


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
        url = settings.effective_emissions_database_url
        engine, closers = open_service_database(settings, url, store.CHAIN, "emissions", app_engine)
        try:
            records: MobilityRecords | None = None
            if mobility:
                core = core_engine(settings, url, engine, app_engine, closers)
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


def create_emissions_app(settings: Settings | None = None) -> FastAPI:
    """The emissions service on its own: its router, health checks, nothing else."""
    from app.emissions.api import router
    from app.secondary import create_standalone_app
    from app.settings import get_settings

    return create_standalone_app(
        settings or get_settings(),
        name="emissions",
        title="Tsunagu emissions",
        router=router,
        build=EmissionsService.build,
        started=lambda service: {"factors": service.table.name},
    )
