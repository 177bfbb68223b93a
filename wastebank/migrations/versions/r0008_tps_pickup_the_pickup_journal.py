"""tps_pickup: the journal of pickups detected from the TPS fill readings.

Revision ID: 0008
Revises: 0007
Created: 2026-11-30 (written by hand from the models; `ledger revision` gives the same table)

- ``tps_pickup``: one row per pickup the TPS watcher (``wastebank tps watch``) detected in a
  sensor's readings: TPS, sensor, ``at`` (the first low reading), the fill ratio before and
  after the drop, when it was detected; unique on (TPS, sensor, ``at``), so inserting a pickup
  again is a no-op; an index on (TPS, ``at``) for the TPA-bound tonnage of a period. No mass:
  it is computed when read, from the TPS's current volume and density
  (``wastebank.ledger.TpsPickup``).
- Not filled here: the readings are in InfluxDB, not in the ledger. After upgrading, fill it
  for the past with ``wastebank tps rebuild-pickups --from ... --to ...``.

A new table only: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    op.create_table(
        "tps_pickup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tps_id", sa.Integer(), nullable=False),
        sa.Column("sensor_id", sa.String(length=64), nullable=False),
        sa.Column("at", UTC_DATETIME, nullable=False),
        sa.Column("fill_before", sa.Float(), nullable=False),
        sa.Column("fill_after", sa.Float(), nullable=False),
        sa.Column("detected_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["tps_id"], ["tps.id"], name=op.f("tps_pickup_tps_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("tps_pickup_pkey")),
        sa.UniqueConstraint(
            "tps_id", "sensor_id", "at", name=op.f("tps_pickup_tps_id_sensor_id_at_key")
        ),
    )
    with op.batch_alter_table("tps_pickup", schema=None) as batch_op:
        batch_op.create_index("ix_tps_pickup_tps_id_at", ["tps_id", "at"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
