"""Alembic environment of the health service: its own metadata and version table.

Run by :data:`app.health.store.CHAIN` (the connection is handed over in
``config.attributes["connection"]``); there is no ini file and no offline mode.
"""

from __future__ import annotations

from app.health.models import VERSION_TABLE, metadata
from app.secondary import run_chain_env

run_chain_env(metadata, VERSION_TABLE, "health")
