"""deposit_month: the monthly roll-up of the daily tonnage summary.

Revision ID: 0006
Revises: 0005
Created: 2026-11-30 (written by hand from the models; `ledger revision` gives the same table)

- ``deposit_month``: per city-local month (``month``: its first day), bank, category and basis,
  the grams and the count of the non-voided deposits; unique on those four. The ledger keeps it
  with the daily summary, in the same transaction (``wastebank.ledger.DepositMonth``); the DLH
  reports read it for whole months (bench/reports.py: the year by month over 2,000,000 deposits
  reads ~4,600 rows instead of ~120,000).
- Filled here from ``deposit_day`` (at 0005 it holds every non-voided deposit by local day, and
  a local month is a union of local days), in one ``INSERT ... SELECT`` on both backends.

A new table only: nothing existing changes. Plain SQL, not the models.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BACKFILL = """
INSERT INTO deposit_month (month, bank_id, category_id, manual, net_g, deposits)
SELECT {month}, bank_id, category_id, manual, sum(net_g), sum(deposits)
FROM deposit_day
GROUP BY 1, 2, 3, 4
"""
MONTH = {
    "postgresql": "CAST(date_trunc('month', local_date) AS date)",
    "sqlite": "substr(local_date, 1, 8) || '01'",  # SQLite keeps a date as its text
}


def upgrade() -> None:
    op.create_table(
        "deposit_month",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("net_g", sa.BigInteger(), nullable=False),
        sa.Column("deposits", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], name=op.f("deposit_month_bank_id_fkey")),
        sa.ForeignKeyConstraint(
            ["category_id"], ["category.id"], name=op.f("deposit_month_category_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("deposit_month_pkey")),
        sa.UniqueConstraint(
            "month",
            "bank_id",
            "category_id",
            "manual",
            name=op.f("deposit_month_month_bank_id_category_id_manual_key"),
        ),
    )
    op.execute(BACKFILL.format(month=MONTH[op.get_bind().dialect.name]))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
