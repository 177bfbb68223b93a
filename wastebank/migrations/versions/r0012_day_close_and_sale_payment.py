"""day_close; stock_movement.payment_method and idempotency_key.

Revision ID: 0012
Revises: 0011
Created: 2026-12-06 (written by hand from the models)

- ``day_close``: a bank's day closed by an attendant, the cash counted against the cash the
  ledger expects in the drawer, the difference, who and when; an admin's reopening
  (wastebank/ledger/days.py). Unique per bank, local day and revision: one live close a day.
- ``stock_movement.payment_method``: how a sale was paid (``cash`` into the drawer a day close
  counts, or ``bank_transfer``/``ewallet``); sales before this were all paid into cash, so
  existing sales get ``cash``, other movements None.
- ``stock_movement.idempotency_key``: a client's retry key, unique with ``author``, so that a
  sale queued offline at a gateway and sent again is recorded once.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    op.create_table(
        "day_close",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bank_id", sa.Integer(), nullable=False),
        sa.Column("local_date", sa.Date(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("cash_from", UTC_DATETIME, nullable=False),
        sa.Column("cash_until", UTC_DATETIME, nullable=False),
        sa.Column("opening_cash_idr", sa.BigInteger(), nullable=False),
        sa.Column("opening_source", sa.String(length=16), nullable=False),
        sa.Column("cash_in_idr", sa.BigInteger(), nullable=False),
        sa.Column("cash_out_idr", sa.BigInteger(), nullable=False),
        sa.Column("expected_cash_idr", sa.BigInteger(), nullable=False),
        sa.Column("counted_cash_idr", sa.BigInteger(), nullable=False),
        sa.Column("difference_idr", sa.BigInteger(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("closed_by", sa.String(length=64), nullable=False),
        sa.Column("closed_at", UTC_DATETIME, nullable=False),
        sa.Column("reopened_at", UTC_DATETIME, nullable=True),
        sa.Column("reopened_by", sa.String(length=64), nullable=True),
        sa.Column("reopen_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("counted_cash_idr >= 0", name="ck_day_close_counted"),
        sa.ForeignKeyConstraint(["bank_id"], ["bank.id"], name=op.f("day_close_bank_id_fkey")),
        sa.PrimaryKeyConstraint("id", name=op.f("day_close_pkey")),
        sa.UniqueConstraint(
            "bank_id",
            "local_date",
            "revision",
            name=op.f("day_close_bank_id_local_date_revision_key"),
        ),
    )
    op.create_index(op.f("ix_day_close_bank_id"), "day_close", ["bank_id"])
    with op.batch_alter_table("stock_movement", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_method", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(
            op.f("stock_movement_author_idempotency_key_key"), ["author", "idempotency_key"]
        )
    op.execute("UPDATE stock_movement SET payment_method = 'cash' WHERE kind = 'sale'")


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
