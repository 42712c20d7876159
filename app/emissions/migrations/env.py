"""Alembic environment of the emissions service: its own metadata and version table.

Run by :func:`app.emissions.store.upgrade` (the connection is handed over in
``config.attributes["connection"]``); there is no ini file and no offline mode.
"""

from __future__ import annotations

from alembic import context

from app.emissions.models import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise SystemExit("emissions migrations run through app.emissions.store.upgrade only")
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    compare_type=True,
    render_as_batch=connection.dialect.name == "sqlite",
    # The app's tables may share the database: only this service's are compared.
    include_name=lambda name, type_, parent: type_ != "table" or name in metadata.tables,
)
with context.begin_transaction():
    context.run_migrations()
