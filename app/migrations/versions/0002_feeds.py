"""feeds: feed_versions (GTFS uploads, validation outcome, lifecycle status)

Revision ID: 0002_feeds
Revises: 0001
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002_feeds"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "feed_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("uploaded_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
        sa.Column("filename", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("error_count", sa.Integer(), nullable=False),
        sa.Column("warning_count", sa.Integer(), nullable=False),
        sa.Column("info_count", sa.Integer(), nullable=False),
        sa.Column("failure", sa.JSON(), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("service_start", sa.Date(), nullable=True),
        sa.Column("service_end", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feed_versions_feed_id", "feed_versions", ["feed_id"], unique=False)
    op.create_index("ix_feed_versions_sha256", "feed_versions", ["sha256"], unique=False)
    op.create_index("ix_feed_versions_status", "feed_versions", ["status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_feed_versions_status", table_name="feed_versions")
    op.drop_index("ix_feed_versions_sha256", table_name="feed_versions")
    op.drop_index("ix_feed_versions_feed_id", table_name="feed_versions")
    op.drop_table("feed_versions")
