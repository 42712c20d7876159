"""planning_uploads, planning_scenarios: the city planners' uploads and scenarios (#14)

Revision ID: 0008_planning
Revises: 0007_dispatch_audit_phone
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString as _STR

revision: str = "0008_planning"
down_revision: str | None = "0007_dispatch_audit_phone"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "planning_uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", _STR(length=16), nullable=False),
        sa.Column("owner_id", _STR(length=128), nullable=False),
        sa.Column("owner_email", _STR(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_planning_uploads_created_at", "planning_uploads", ["created_at"])
    op.create_index("ix_planning_uploads_kind", "planning_uploads", ["kind"])
    op.create_table(
        "planning_scenarios",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", _STR(length=200), nullable=False),
        sa.Column("status", _STR(length=16), nullable=False),
        sa.Column("created_by", _STR(length=128), nullable=False),
        sa.Column("created_by_email", _STR(length=320), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error", _STR(length=1000), nullable=True),
        sa.Column("analysis_date", sa.Date(), nullable=True),
        sa.Column("destinations_id", sa.Uuid(), nullable=True),
        sa.Column("population_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(["destinations_id"], ["planning_uploads.id"]),
        sa.ForeignKeyConstraint(["population_id"], ["planning_uploads.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    for col in ("created_at", "created_by", "destinations_id", "population_id"):
        op.create_index(f"ix_planning_scenarios_{col}", "planning_scenarios", [col])


def downgrade() -> None:
    for col in ("population_id", "destinations_id", "created_by", "created_at"):
        op.drop_index(f"ix_planning_scenarios_{col}", table_name="planning_scenarios")
    op.drop_table("planning_scenarios")
    op.drop_index("ix_planning_uploads_kind", table_name="planning_uploads")
    op.drop_index("ix_planning_uploads_created_at", table_name="planning_uploads")
    op.drop_table("planning_uploads")
