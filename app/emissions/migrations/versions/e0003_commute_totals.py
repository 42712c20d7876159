"""Commute totals: consenting employees' commute trips by company, month and mode

Revision ID: e0003_commute_totals
Revises: e0002_companies
Create Date: 2026-12-14

``emissions_commute_totals`` is the running total the Category 7 report reads instead of
summing every trip-mode row. It is filled here for the trips already recorded: for each
company, the trip-mode rows of the employees consenting to it now with one end within 1 km
(north-south and east-west) of its site, summed by the database (rows without ends never
count). The rule is written out here as it stands at this revision.
"""

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "e0003_commute_totals"
down_revision: str | None = "e0002_companies"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RADIUS_M = 1000.0
_M_PER_DEG_LAT = 6371008.8 * math.pi / 180.0


def upgrade() -> None:
    totals = op.create_table(
        "emissions_commute_totals",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.String(length=128), nullable=False),
        sa.Column("month", sa.String(length=7), nullable=False),
        sa.Column("mode", sa.String(length=32), nullable=False),
        sa.Column("distance_m", sa.Float(), nullable=False),
        sa.Column("co2_g", sa.BigInteger(), nullable=False),
        sa.Column("trips", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "user_id", "month", "mode"),
    )
    _backfill(totals)


def _backfill(totals: sa.Table) -> None:
    conn = op.get_bind()
    tm = sa.table(
        "emissions_trip_modes",
        *(sa.column(c) for c in ("user_id", "month", "mode", "distance_m", "co2_g")),
        *(sa.column(c) for c in ("from_lat", "from_lon", "to_lat", "to_lon")),
    )
    cs = sa.table(
        "emissions_consents",
        sa.column("company_id", sa.Uuid()),
        sa.column("user_id", sa.String()),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    companies = sa.table(
        "emissions_companies",
        sa.column("id", sa.Uuid()),
        sa.column("site_lat", sa.Float()),
        sa.column("site_lon", sa.Float()),
    )
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SET LOCAL work_mem = '128MB'"))
    for cid, lat, lon in conn.execute(
        sa.select(companies.c.id, companies.c.site_lat, companies.c.site_lon)
    ).all():
        dlat = _RADIUS_M / _M_PER_DEG_LAT
        dlon = dlat / max(math.cos(math.radians(lat)), 1e-6)
        box = (lat - dlat, lat + dlat, lon - dlon, lon + dlon)
        query = (
            sa.select(
                sa.literal(cid, sa.Uuid()),
                tm.c.user_id,
                tm.c.month,
                tm.c.mode,
                sa.func.sum(tm.c.distance_m),
                sa.func.sum(tm.c.co2_g),
                sa.func.count(),
            )
            .select_from(
                tm.join(
                    cs,
                    sa.and_(
                        cs.c.user_id == tm.c.user_id,
                        cs.c.company_id == cid,
                        cs.c.revoked_at.is_(None),
                    ),
                )
            )
            .where(
                sa.or_(
                    _near(box, tm.c.from_lat, tm.c.from_lon), _near(box, tm.c.to_lat, tm.c.to_lon)
                )
            )
            .group_by(tm.c.user_id, tm.c.month, tm.c.mode)
        )
        conn.execute(
            totals.insert().from_select(
                ["company_id", "user_id", "month", "mode", "distance_m", "co2_g", "trips"], query
            )
        )


def _near(box: tuple[float, ...], lat: Any, lon: Any) -> Any:
    return sa.and_(lat.between(box[0], box[1]), lon.between(box[2], box[3]))


def downgrade() -> None:
    op.drop_table("emissions_commute_totals")
