"""Checks every secondary service's migration chain passes (health, emissions): shared by
tests/app/health/test_migrations.py and tests/app/emissions/test_migrations.py.

A service's chain keeps its own version table, so it can run beside the app's tables in one
database or alone in a database of its own.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app import db


def check_models_match_migrations(url: str, chain: Any, metadata: sa.MetaData) -> None:
    """Migrated beside the app's tables (twice: idempotent), the chain's head is the models'
    schema and the app's own chain is untouched."""
    engine = db.create_db_engine(url)
    try:
        db.upgrade_database(engine)  # the app's tables in the same database
        chain.upgrade(engine)
        chain.upgrade(engine)  # idempotent
        assert chain.current_revision(engine) == chain.head_revision()
        assert db.current_revision(engine) == db.head_revision()  # the app's chain untouched
        with engine.connect() as conn:
            ctx = MigrationContext.configure(
                conn,
                opts={
                    "compare_type": True,
                    "include_name": lambda n, t, p: t != "table" or n in metadata.tables,
                },
            )
            assert compare_metadata(ctx, metadata) == []
    finally:
        engine.dispose()


def check_own_database_holds_only_its_tables(url: str, chain: Any, metadata: sa.MetaData) -> None:
    """Migrated into a database of its own, the chain creates its tables and version table only."""
    engine = db.create_db_engine(url)
    try:
        chain.upgrade(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == set(metadata.tables) | {chain.version_table}
        assert db.current_revision(engine) is None  # the app's chain never ran here
    finally:
        engine.dispose()
