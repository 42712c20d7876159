"""Alembic environment: Tsunagu's metadata, and the connection from ``app.db`` or the settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import app.models  # noqa: F401  (registers every table on the metadata)

target_metadata = SQLModel.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        # SQLite cannot ALTER most things: batch mode rebuilds tables instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = context.config.attributes.get("engine")
    if engine is None:
        from app.db import engine_for
        from app.settings import get_settings

        engine = engine_for(get_settings())
    from app.db import startup_lock

    # Run straight from the alembic CLI: take the lock `app.db.upgrade_database` holds, so this
    # never interleaves with workers migrating the same database at start.
    with startup_lock(engine, "migrate"), engine.connect() as conn:
        _run(conn)
        conn.commit()


if context.is_offline_mode():
    raise SystemExit("Tsunagu migrations run online only (tsunagu db upgrade).")
run_online()
