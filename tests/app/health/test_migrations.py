"""The health chain: its own version table, beside (or apart from) the app's tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app import db
from app.health import store
from app.health.models import metadata
from app.health.service import HealthService
from tests.app.conftest import both_backends, settings_for

pytestmark = both_backends


def test_models_match_migrations(empty_database_url: str) -> None:
    engine = db.create_db_engine(empty_database_url)
    try:
        db.upgrade_database(engine)  # the app's tables in the same database
        store.CHAIN.upgrade(engine)
        store.CHAIN.upgrade(engine)  # idempotent
        assert store.CHAIN.current_revision(engine) == store.CHAIN.head_revision()
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


def test_own_database_holds_only_its_tables(empty_database_url: str) -> None:
    """Migrated into a database of its own, the chain creates its tables and version table only."""
    import sqlalchemy as sa

    engine = db.create_db_engine(empty_database_url)
    try:
        store.CHAIN.upgrade(engine)
        tables = set(sa.inspect(engine).get_table_names())
        assert tables == set(metadata.tables) | {store.CHAIN.version_table}
        assert db.current_revision(engine) is None  # the app's chain never ran here
    finally:
        engine.dispose()


def test_stale_schema_refused(empty_database_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, health_database_url=empty_database_url, migrate_on_start=False
    )
    with pytest.raises(RuntimeError, match="not at the newest revision"):
        HealthService.build(settings, mobility=False)
