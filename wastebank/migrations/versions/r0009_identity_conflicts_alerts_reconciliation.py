"""Identity and one truth: dead-letter reasons and resolutions, manual-deposit retry keys, system
alerts, reconciliation runs.

Revision ID: 0009
Revises: 0008
Created: 2026-12-05 (written by hand from the models)

- ``dead_letter``: ``reason`` (a code: invalid, oversized, rejected, conflict, influx_refused),
  ``event_id`` (indexed: the deposit a conflict is about), and ``resolved_at`` / ``resolved_by`` /
  ``resolution`` (``wastebank deadletter resolve``). Existing rows get their reason from their
  error's text: "deposit rejected..." -> rejected, "InfluxDB refused..." -> influx_refused, the
  rest invalid.
- ``deposit.idempotency_key``, unique with ``author``: a manual deposit's retry key. Manual ids
  are now issued by the server (``M-XXXX-XXXX``); the ``manual-<hex>`` ids already in the ledger
  stay as they are (no id is ever rewritten).
- ``system_alert``: the admins' alerts (wastebank/alerts.py), one active row per (code, subject).
- ``reconciliation_run``: each comparison of the ledger with InfluxDB (wastebank/reconcile/).

New columns are nullable or have a server default, and new tables are empty: nothing existing
changes meaning.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reason", sa.String(length=32), server_default="invalid", nullable=False)
        )
        batch_op.add_column(sa.Column("event_id", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("resolved_at", UTC_DATETIME, nullable=True))
        batch_op.add_column(sa.Column("resolved_by", sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column("resolution", sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f("ix_dead_letter_event_id"), ["event_id"], unique=False)
    op.execute("UPDATE dead_letter SET reason = 'rejected' WHERE error LIKE 'deposit rejected%'")
    op.execute(
        "UPDATE dead_letter SET reason = 'influx_refused' WHERE error LIKE 'InfluxDB refused%'"
    )
    with op.batch_alter_table("deposit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=100), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("deposit_author_idempotency_key_key"), ["author", "idempotency_key"]
        )
    op.create_table(
        "system_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("raised_at", UTC_DATETIME, nullable=False),
        sa.Column("cleared_at", UTC_DATETIME, nullable=True),
        sa.Column("cleared_by", sa.String(length=80), nullable=True),
        sa.Column("clear_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("system_alert_pkey")),
    )
    with op.batch_alter_table("system_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_alert_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(
            "uq_system_alert_active",
            ["code", "subject"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )
    op.create_table(
        "reconciliation_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ran_at", UTC_DATETIME, nullable=False),
        sa.Column("date_from", sa.Date(), nullable=False),
        sa.Column("date_to", sa.Date(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("drifts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("ran_by", sa.String(length=80), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("reconciliation_run_pkey")),
    )
    with op.batch_alter_table("reconciliation_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_reconciliation_run_ran_at"), ["ran_at"], unique=False)


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
