"""feed_versions.network: the region (network) a feed belongs to (#13)

Feeds of one region are merged into one network; feeds of different regions are served as
separate networks. Null means the feed's own id (a region of its own).

Revision ID: 0009_feed_network
Revises: 0008_planning
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString as _STR

revision: str = "0009_feed_network"
down_revision: str | None = "0008_planning"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("feed_versions", sa.Column("network", _STR(length=64), nullable=True))
    op.create_index("ix_feed_versions_network", "feed_versions", ["network"])


def downgrade() -> None:
    op.drop_index("ix_feed_versions_network", table_name="feed_versions")
    op.drop_column("feed_versions", "network")
