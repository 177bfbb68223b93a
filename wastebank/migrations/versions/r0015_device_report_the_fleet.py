"""device_report: each device's latest retained health report and status (the fleet page).

Revision ID: 0015
Revises: 0014
Created: 2026-12-06 (written by hand from the models)

- ``device_report``: one row per (device type, site, device id): the latest ``GatewayHealth``
  and ``GatewayStatus`` payloads the ingester heard, as received, each with the time it was
  first heard (wastebank/fleet/store.py says which report is the latest).

A new table: nothing existing changes. It fills as the ingester hears the retained reports
again (every one on its next subscription, then each new one).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    op.create_table(
        "device_report",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_type", sa.String(length=16), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("device_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Text(), nullable=True),
        sa.Column("status_received_at", UTC_DATETIME, nullable=True),
        sa.Column("health", sa.Text(), nullable=True),
        sa.Column("health_received_at", UTC_DATETIME, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("device_report_pkey")),
        sa.UniqueConstraint(
            "device_type",
            "site",
            "device_id",
            name=op.f("device_report_device_type_site_device_id_key"),
        ),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
