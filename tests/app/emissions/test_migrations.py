"""The emissions chain: its own version table, beside (or apart from) the app's tables."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from app import db
from app.emissions import store
from app.emissions.models import metadata
from app.emissions.service import EmissionsService
from tests.app.conftest import both_backends, settings_for

pytestmark = both_backends


def test_models_match_migrations(empty_database_url: str) -> None:
    engine = db.create_db_engine(empty_database_url)
    try:
        db.upgrade_database(engine)  # the app's tables in the same database
        store.upgrade(engine)
        store.upgrade(engine)  # idempotent
        assert store.current_revision(engine) == store.head_revision()
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


def test_stale_schema_refused(empty_database_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, emissions_database_url=empty_database_url, migrate_on_start=False
    )
    with pytest.raises(RuntimeError, match="not at the newest revision"):
        EmissionsService.build(settings, mobility=False)
