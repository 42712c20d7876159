"""The registry of every database table, so Alembic (and ``SQLModel.metadata``) sees them all.

How to add tables (one module per concept)
------------------------------------------
1. Write ``app/models/<concept>.py`` with ``class Thing(SQLModel, table=True)`` classes. Use
   ``__tablename__`` in snake_case plural, ``uuid.UUID`` primary keys (``default_factory=uuid4``),
   timezone-aware timestamps (``app.models.identity.utcnow`` and ``sa.DateTime(timezone=True)``),
   and ``sa.JSON`` for small documents.
2. Import the module below (the import is what registers the tables).
3. Generate the migration and review it::

       .venv/bin/alembic -c app/migrations/alembic.ini revision --autogenerate -m "add things"

   (uses a scratch SQLite database under ``var/`` unless ``DATABASE_URL`` is set). The test
   ``tests/app/test_persistence.py::test_models_match_migrations`` fails while a table has no
   migration.
4. Use the tables through ``app.db.SessionDep`` in routes, or ``app.db.session_scope(engine)``
   elsewhere; commit once per unit of work so nothing is ever half-written.
"""

from __future__ import annotations

from sqlmodel import SQLModel

from app.feeds import models as feeds
from app.models import audit, dispatch, idempotency, identity, planning, trip

# Every table module, imported for its side effect of registering tables on the metadata.
TABLE_MODULES = (identity, feeds, dispatch, trip, idempotency, audit, planning)

metadata = SQLModel.metadata

__all__ = ["TABLE_MODULES", "metadata"]
