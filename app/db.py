"""Database engine, sessions and migrations.

SQLite (a file in ``data_dir``) by default, PostgreSQL when ``DATABASE_URL`` is set. The schema
is owned by Alembic (``app/migrations``): ``upgrade_database`` applies it on start and from
``tsunagu db upgrade``.

Transactions: one ``Session`` per unit of work; call ``session.commit()`` once at the end. A
session closed without commit rolls back, so an error half-way leaves nothing written.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request
from sqlalchemy.engine import Engine
from sqlmodel import Session

if TYPE_CHECKING:
    from app.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ALEMBIC_INI = MIGRATIONS_DIR / "alembic.ini"


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url`` with pooling suited to the backend.

    SQLite: WAL journal (readers never block the writer), foreign keys on, a busy timeout
    instead of immediate "database is locked" errors. PostgreSQL: a small pool with
    pre-ping so connections dropped by the server are replaced transparently.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[1] if "///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(
            url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30}
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=5,
        max_overflow=10,
        pool_pre_ping=True,
        pool_recycle=1800,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def engine_for(settings: Settings) -> Engine:
    """The engine for the configured database (creates ``data_dir`` for SQLite)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return create_db_engine(settings.effective_database_url)


def alembic_config(engine: Engine | None = None) -> Any:
    """The Alembic configuration of ``app/migrations`` (bound to ``engine`` when given)."""
    from alembic.config import Config

    cfg = Config(str(ALEMBIC_INI))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


ALEMBIC_LOCK = threading.RLock()
"""Held around every Alembic run in this process: Alembic's ``context`` (what each chain's
``env.py`` reads) is one module-level object, so two chains migrating in two threads at once
(the app's and a secondary service's, workers starting together) read each other's
configuration (``KeyError: 'config'``)."""


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration (idempotent; safe with several processes at once)."""
    from alembic import command

    with ALEMBIC_LOCK, startup_lock(engine, "migrate"):
        cfg = alembic_config()
        with engine.connect() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
            conn.commit()


def advisory_key(name: str) -> int:
    """The signed 64-bit PostgreSQL advisory-lock key of ``name`` (stable across processes)."""
    digest = hashlib.blake2b(f"tsunagu:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def startup_lock(engine: Engine, name: str) -> Iterator[None]:
    """Hold the cluster-wide lock ``name`` on ``engine``'s database for the ``with`` block.

    Serialises the "read, then create if missing" steps that every worker runs at start
    (migrations, the first signing key, the admin bootstrap): without it, two processes
    starting together on a fresh database both see nothing and both insert, and one of them
    dies on a unique constraint. PostgreSQL: a session-level advisory lock held by a
    connection of its own (released with it, even if this process is killed). SQLite: an
    exclusive ``flock`` on a file beside the database (SQLite has no named locks, and a
    deferred transaction cannot be upgraded to a writer once another process has committed).
    An in-memory SQLite database belongs to one connection: nothing to serialise.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            key = advisory_key(name)
            conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:":
        yield
        return
    import fcntl

    # flock belongs to the open file description: threads of one process exclude each other too.
    with open(f"{path}.{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def current_revision(engine: Engine) -> str | None:
    """The Alembic revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def require_current_schema(engine: Engine) -> None:
    """Raise ``RuntimeError`` unless the database is at the newest revision (used when
    ``migrate_on_start`` is off, so a stale schema fails clearly at start, not mid-request)."""
    current, head = current_revision(engine), head_revision()
    if current != head:
        raise RuntimeError(
            f"database schema is at revision {current or '(empty)'}, this code needs {head}: "
            "run `tsunagu db upgrade`"
        )


def head_revision() -> str | None:
    """The newest revision shipped in ``app/migrations/versions``."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """A session for one unit of work outside a request; commits on success, rolls back on
    error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> dict[str, Any]:
    """A cheap round trip to the database, for readiness checks."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return {"ok": True, "backend": engine.dialect.name}
    except Exception as exc:  # any driver error means "not ready", never a crash
        return {"ok": False, "backend": engine.dialect.name, "error": type(exc).__name__}


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime (SQLite hands back naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def get_session(request: Request) -> Iterator[Session]:
    """FastAPI dependency: a session on the app's engine, closed (rolled back if uncommitted)
    after the request."""
    engine: Engine = request.app.state.services.engine
    with Session(engine, expire_on_commit=False) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
