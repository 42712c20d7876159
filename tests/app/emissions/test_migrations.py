"""The emissions chain: its own version table, beside (or apart from) the app's tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.emissions import store
from app.emissions.models import metadata
from app.emissions.service import EmissionsService
from tests.app.conftest import both_backends, settings_for
from tests.app.migration_chains import (
    check_models_match_migrations,
    check_own_database_holds_only_its_tables,
)

pytestmark = both_backends


def test_models_match_migrations(empty_database_url: str) -> None:
    check_models_match_migrations(empty_database_url, store.CHAIN, metadata)


def test_own_database_holds_only_its_tables(empty_database_url: str) -> None:
    check_own_database_holds_only_its_tables(empty_database_url, store.CHAIN, metadata)


def test_stale_schema_refused(empty_database_url: str, tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path, emissions_database_url=empty_database_url, migrate_on_start=False
    )
    with pytest.raises(RuntimeError, match="not at the newest revision"):
        EmissionsService.build(settings, mobility=False)
