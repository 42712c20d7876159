"""Companies: trips by mode, companies, invitations, consents, surveys, energy use

Revision ID: e0002_companies
Revises: e0001_taken_trips
Create Date: 2026-12-12

``emissions_trip_modes`` is filled for the trips already recorded from their legs, without
the trips' ends (not kept before): those trips never count as commute trips.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "e0002_companies"
down_revision: str | None = "e0001_taken_trips"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    modes = op.create_table(
        "emissions_trip_modes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("trip_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("co2_g", sa.Integer(), nullable=False),
        sa.Column("from_lat", sa.Float(), nullable=True),
        sa.Column("from_lon", sa.Float(), nullable=True),
        sa.Column("to_lat", sa.Float(), nullable=True),
        sa.Column("to_lon", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_emissions_trip_modes_trip_id", "emissions_trip_modes", ["trip_id"])
    op.create_index(
        "ix_emissions_trip_modes_user_month", "emissions_trip_modes", ["user_id", "month"]
    )
    op.create_table(
        "emissions_companies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("admin_user_id", sa.String(length=128), nullable=False),
        sa.Column("site_lat", sa.Float(), nullable=False),
        sa.Column("site_lon", sa.Float(), nullable=False),
        sa.Column("headcount", sa.Integer(), nullable=True),
        sa.Column("electricity_supplier", sa.String(length=64), nullable=True),
        _ts("created_at"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_emissions_companies_admin_user_id", "emissions_companies", ["admin_user_id"]
    )
    op.create_table(
        "emissions_invitations",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        _ts("created_at"),
        sa.Column("accepted_by", sa.String(length=128), nullable=True),
        _ts("accepted_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("code", name="uq_emissions_invitations_code"),
    )
    op.create_index("ix_emissions_invitations_company_id", "emissions_invitations", ["company_id"])
    op.create_table(
        "emissions_consents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        _ts("granted_at"),
        _ts("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "user_id", name="uq_emissions_consents_company_user"),
    )
    op.create_index("ix_emissions_consents_company_id", "emissions_consents", ["company_id"])
    op.create_index("ix_emissions_consents_user_id", "emissions_consents", ["user_id"])
    op.create_table(
        "emissions_surveys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("ref", sa.String(length=240), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=True),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("one_way_km", sa.Float(), nullable=False),
        sa.Column("days_per_week", sa.Float(), nullable=False),
        sa.Column("home_lat", sa.Float(), nullable=True),
        sa.Column("home_lon", sa.Float(), nullable=True),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("company_id", "ref", name="uq_emissions_surveys_company_ref"),
    )
    op.create_index("ix_emissions_surveys_company_id", "emissions_surveys", ["company_id"])
    op.create_table(
        "emissions_energy_use",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("energy", sa.String(length=32), nullable=False),
        sa.Column("supplier", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Float(), nullable=False),
        sa.Column("unit", sa.String(length=8), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "company_id", "month", "energy", "supplier", name="uq_emissions_energy_use_key"
        ),
    )
    op.create_index("ix_emissions_energy_use_company_id", "emissions_energy_use", ["company_id"])
    _backfill(modes)


def _backfill(modes: sa.Table) -> None:
    """Trip-mode rows for the trips recorded so far (their ends unknown)."""
    conn = op.get_bind()
    trips = sa.table(
        "emissions_taken_trips",
        sa.column("id", sa.Uuid()),
        sa.column("user_id", sa.String()),
        sa.column("month", sa.String()),
        sa.column("legs", sa.JSON()),
    )
    rows: list[dict[str, Any]] = []
    for tid, uid, month, legs in conn.execute(
        sa.select(trips.c.id, trips.c.user_id, trips.c.month, trips.c.legs)
    ):
        by_mode: dict[str, list[float]] = {}
        for leg in legs or []:
            acc = by_mode.setdefault(str(leg.get("mode", "")), [0.0, 0.0])
            acc[0] += float(leg.get("distance") or 0.0)
            acc[1] += float(leg.get("co2") or 0)
        for mode, (dist, co2) in by_mode.items():
            rows.append(
                {
                    "trip_id": tid,
                    "user_id": uid,
                    "month": month,
                    "mode": mode,
                    "distance_m": dist,
                    "co2_g": int(co2),
                }
            )
    if rows:
        op.bulk_insert(modes, rows)


def downgrade() -> None:
    for table in (
        "emissions_energy_use",
        "emissions_surveys",
        "emissions_consents",
        "emissions_invitations",
        "emissions_companies",
        "emissions_trip_modes",
    ):
        op.drop_table(table)
