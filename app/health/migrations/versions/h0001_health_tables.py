"""health tables: observations, organisations, consents, audit, watch notices

Revision ID: h0001_health
Revises:
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "h0001_health"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_audit",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.String(length=128), nullable=False),
        sa.Column("actor_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("resource", sa.String(length=200), nullable=False),
        sa.Column("consent_id", sa.Uuid(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("health_audit", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_audit_resident_id"), ["resident_id"], unique=False
        )

    op.create_table(
        "health_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("resident_id", sa.String(length=128), nullable=False),
        sa.Column("recipient_type", sa.String(length=16), nullable=False),
        sa.Column("recipient_id", sa.String(length=128), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("health_consents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_consents_recipient", ["recipient_type", "recipient_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_health_consents_resident_id"), ["resident_id"], unique=False
        )

    op.create_table(
        "health_observations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("health_observations", schema=None) as batch_op:
        batch_op.create_index("ix_health_observations_user_kind", ["user_id", "kind"], unique=False)

    op.create_table(
        "health_organisations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "health_watch_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("watcher_id", sa.String(length=128), nullable=False),
        sa.Column("resident_id", sa.String(length=128), nullable=False),
        sa.Column("ride_id", sa.String(length=128), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("watcher_id", "ride_id", "event", name="uq_health_watch_notice"),
    )
    with op.batch_alter_table("health_watch_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_health_watch_notices_watcher_id"), ["watcher_id"], unique=False
        )

    op.create_table(
        "health_org_members",
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["health_organisations.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("organisation_id", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("health_org_members")
    with op.batch_alter_table("health_watch_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_watch_notices_watcher_id"))

    op.drop_table("health_watch_notices")
    op.drop_table("health_organisations")
    with op.batch_alter_table("health_observations", schema=None) as batch_op:
        batch_op.drop_index("ix_health_observations_user_kind")

    op.drop_table("health_observations")
    with op.batch_alter_table("health_consents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_consents_resident_id"))
        batch_op.drop_index("ix_health_consents_recipient")

    op.drop_table("health_consents")
    with op.batch_alter_table("health_audit", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_health_audit_resident_id"))

    op.drop_table("health_audit")
