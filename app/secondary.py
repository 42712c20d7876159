"""What the secondary services (emissions, health) share: a migration chain of their own and
the app that serves one of them alone.

A secondary service keeps its tables on a metadata of its own, migrated by an Alembic chain of
its own (:class:`MigrationChain`, with its own version table) into whichever database it is
given, beside the app's tables or apart from them. ``tsunagu serve --service NAME`` serves it
alone through :func:`create_standalone_app`: its router, ``/healthz`` and ``/readyz``, with the
identity store's access tokens checked through its JWKS only (:func:`jwks_verifier`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import structlog
from fastapi import APIRouter, FastAPI
from sqlalchemy.engine import Engine

from app import db
from app.settings import Settings

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class MigrationChain:
    """An Alembic chain of a secondary service (no ini file, no offline mode).

    Parameters
    ----------
    directory
        The chain's script location (``env.py``, ``versions/``); its ``env.py`` takes the
        connection from ``config.attributes["connection"]``.
    version_table
        The chain's version table (beside the app's ``alembic_version``).
    lock_name
        The start-up lock taken while migrating (several processes may start at once).
    """

    directory: Path
    version_table: str
    lock_name: str

    def config(self) -> Any:
        """The Alembic configuration of the chain."""
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(self.directory))
        return cfg

    def upgrade(self, engine: Engine, revision: str = "heads") -> None:
        """Apply the chain's pending migrations (safe with several processes at once)."""
        from alembic import command

        with db.ALEMBIC_LOCK, db.startup_lock(engine, self.lock_name):
            cfg = self.config()
            with engine.connect() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
                conn.commit()

    def current_revision(self, engine: Engine) -> str | None:
        """The chain's revision in ``engine``'s database (None: never migrated)."""
        from alembic.runtime.migration import MigrationContext

        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"version_table": self.version_table})
            return ctx.get_current_revision()

    def head_revision(self) -> str | None:
        """The newest revision of the chain."""
        from alembic.script import ScriptDirectory

        return ScriptDirectory.from_config(self.config()).get_current_head()


def open_service_database(
    settings: Settings,
    url: str,
    chain: MigrationChain,
    service: str,
    app_engine: Engine | None = None,
) -> tuple[Engine, list[Engine]]:
    """The engine of a secondary service's tables, migrated (or checked) at start.

    Parameters
    ----------
    settings
        ``migrate_on_start``, ``data_dir`` and the app's database URL.
    url
        The service's database URL (its own, or the app's).
    chain
        The service's migration chain.
    service
        The service's name, for the stale-schema message.
    app_engine
        The app's engine, reused when ``url`` is the app's database.

    Returns
    -------
    tuple
        The engine and the engines opened here (to dispose of when the service closes).

    Raises
    ------
    RuntimeError
        ``migrate_on_start`` is off and the tables are not at the chain's newest revision.
    """
    closers: list[Engine] = []
    if app_engine is not None and url == settings.effective_database_url:
        engine = app_engine
    else:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = db.create_db_engine(url)
        closers.append(engine)
    try:
        if settings.migrate_on_start:
            chain.upgrade(engine)
        elif chain.current_revision(engine) != chain.head_revision():
            raise RuntimeError(
                f"the {service} tables are not at the newest revision: run `tsunagu db "
                "upgrade` (or start once with TSUNAGU_MIGRATE_ON_START=true)"
            )
    except BaseException:
        for e in closers:
            e.dispose()
        raise
    return engine, closers


def service_chains(settings: Settings) -> list[tuple[str, MigrationChain, str]]:
    """Every secondary service's (name, migration chain, database URL)."""
    from app.emissions import store as emissions
    from app.health import store as health

    return [
        ("emissions", emissions.CHAIN, settings.effective_emissions_database_url),
        ("health", health.CHAIN, settings.effective_health_database_url),
    ]


@dataclass(frozen=True)
class ServiceTables:
    """A secondary service's tables as ``tsunagu backup`` sees them: its name, chain, metadata
    (the tables to dump) and database URL (its own, or the app's)."""

    name: str
    chain: MigrationChain
    metadata: Any
    url: str


def service_tables(settings: Settings) -> list[ServiceTables]:
    """Every secondary service's tables, in the order of :func:`service_chains`."""
    from app.emissions.models import metadata as emissions_metadata
    from app.health.models import metadata as health_metadata

    metadata = {"emissions": emissions_metadata, "health": health_metadata}
    return [
        ServiceTables(name, chain, metadata[name], url)
        for name, chain, url in service_chains(settings)
    ]


def upgrade_all(settings: Settings) -> list[tuple[str, str | None]]:
    """``tsunagu db upgrade``: the app's schema, then every secondary service's tables in
    its own database (the app's by default); (name, revision) of each, in that order."""
    engine = db.engine_for(settings)
    try:
        db.upgrade_database(engine)
        done: list[tuple[str, str | None]] = [("app", db.current_revision(engine))]
    finally:
        engine.dispose()
    for name, chain, url in service_chains(settings):
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        service_engine = db.create_db_engine(url)
        try:
            chain.upgrade(service_engine)
            done.append((name, chain.current_revision(service_engine)))
        finally:
            service_engine.dispose()
    return done


def core_engine(
    settings: Settings,
    url: str,
    engine: Engine,
    app_engine: Engine | None,
    closers: list[Engine],
) -> Engine:
    """The engine of the mobility core's tables (trips, rides), read only by a secondary
    service: the app's engine in the main process; run alone, the service's own engine when
    its database is ``DATABASE_URL``, else a new engine on ``DATABASE_URL`` (appended to
    ``closers``)."""
    if app_engine is not None:
        return app_engine
    if url == settings.effective_database_url:
        return engine
    core = db.create_db_engine(settings.effective_database_url)
    closers.append(core)
    return core


def run_chain_env(metadata: Any, version_table: str, service: str) -> None:
    """The body of a chain's ``env.py``: run its migrations on the connection handed over in
    ``config.attributes["connection"]`` (by :meth:`MigrationChain.upgrade`), comparing only
    the service's own tables (the app's may share the database)."""
    from alembic import context

    connection = context.config.attributes.get("connection")
    if connection is None:
        raise SystemExit(f"{service} migrations run through MigrationChain.upgrade only")
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=version_table,
        compare_type=True,
        render_as_batch=connection.dialect.name == "sqlite",
        include_name=lambda name, type_, parent: type_ != "table" or name in metadata.tables,
    )
    with context.begin_transaction():
        context.run_migrations()


def jwks_verifier(settings: Settings, service: str) -> Any:
    """The identity store's tokens, checked through its JWKS only.

    Raises
    ------
    RuntimeError
        ``TSUNAGU_IDENTITY_JWKS_URL`` is not set.
    """
    from app.identity.tokens import OidcTokens

    if not settings.identity_jwks_url:
        raise RuntimeError(
            f"tsunagu serve --service {service} needs TSUNAGU_IDENTITY_JWKS_URL (the identity "
            "store's /.well-known/jwks.json)"
        )
    return OidcTokens(
        issuer=settings.oidc_issuer or settings.jwt_issuer,
        jwks_url=settings.identity_jwks_url,
        audience=settings.oidc_audience or settings.jwt_audience,
        roles_claim=settings.oidc_roles_claim,
    )


class StandaloneService(Protocol):
    """What :func:`create_standalone_app` needs of a service object."""

    def ping(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


@dataclass
class StandaloneServices:
    """``app.state.services`` of a secondary service run on its own: what the identity
    dependencies read (``verifier``) and the service under its name (``getattr(services,
    name)``, e.g. ``services.emissions``)."""

    settings: Settings
    verifier: Any


def create_standalone_app(
    settings: Settings,
    *,
    name: str,
    title: str,
    router: APIRouter,
    build: Callable[[Settings], StandaloneService],
    started: Callable[[Any], dict[str, Any]] | None = None,
    on_start: Callable[[Any, Settings], Awaitable[Callable[[], Awaitable[None]]]] | None = None,
) -> FastAPI:
    """A secondary service on its own: its router under ``/api/v1``, health checks, nothing else.

    Parameters
    ----------
    settings
        The process's settings (logging, limits, JWKS URL).
    name
        The service's name: the ``--service`` choice and the attribute of
        ``app.state.services`` the service is put on.
    title
        The OpenAPI title.
    router
        The service's router (mounted under ``/api/v1``).
    build
        Opens (and migrates) the service; blocking, run in a thread at start.
    started
        Fields of the ``<name>_service_started`` log line (no personal data).
    on_start
        Starts what the service runs beside its routes (the health service's watch relay on
        the Redis event bus) once it is built; returns the coroutine function that stops it.
    """
    from app.errors import install_error_handlers
    from app.frontend import mount_api_docs
    from app.logging import configure_logging
    from app.middleware import install_middleware

    configure_logging(settings)
    verifier = jwks_verifier(settings, name)  # fails before serving when the URL is missing
    log = structlog.get_logger(f"tsunagu.{name}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await asyncio.to_thread(build, settings)
        services = StandaloneServices(settings, verifier)
        setattr(services, name, service)
        app.state.services = services
        stop = await on_start(service, settings) if on_start is not None else None
        log.info(f"{name}_service_started", **(started(service) if started else {}))
        try:
            yield
        finally:
            if stop is not None:
                await stop()
            service.close()

    app = FastAPI(
        title=title,
        version="0.1.0",
        lifespan=lifespan,
        # Swagger UI from the built frontend's local copy, as the core serves it (FastAPI's
        # own page loads it from a CDN: blank without internet).
        docs_url=None,
        openapi_url=f"{API_PREFIX}/openapi.json",
        redoc_url=None,
    )
    app.state.settings = settings
    mount_api_docs(app)
    install_error_handlers(app)
    install_middleware(app, settings)

    @app.get("/healthz", include_in_schema=False)
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def readyz() -> Any:
        from fastapi.responses import JSONResponse

        services = getattr(app.state, "services", None)
        service = getattr(services, name, None)
        check = await asyncio.to_thread(service.ping) if service is not None else {"ok": False}
        return JSONResponse({"ready": check["ok"], "database": check}, 200 if check["ok"] else 503)

    app.include_router(router, prefix=API_PREFIX)
    return app
