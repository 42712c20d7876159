"""Alembic environment of the emissions service: its own metadata and version table.

Run by :func:`app.emissions.store.upgrade` (the connection is handed over in
``config.attributes["connection"]``); there is no ini file and no offline mode.
"""

from __future__ import annotations

from app.emissions.models import VERSION_TABLE, metadata
from app.secondary import run_chain_env

run_chain_env(metadata, VERSION_TABLE, "emissions")
