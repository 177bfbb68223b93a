"""member.sms_opt_in; sms_message and sms_inbound: receipts and balance replies by SMS.

Revision ID: 0013
Revises: 0012
Created: 2026-12-06 (written by hand from the models)

- ``member.sms_opt_in``: the member asked for SMS (wastebank/sms/); existing members get
  ``false``: nobody is sent a paid message they did not ask for.
- ``sms_message``: one text to one member's phone, queued in the transaction that applied the
  deposit or paid the withdrawal, unique per (kind, reference), with its status as Gammu SMSD
  reports it (queued, outbox, sent, failed) and the name of its SMSD file.
- ``sms_inbound``: each message the modem received (unique by SMSD's file name), with what was
  done with it and the reply it got.

New tables and a column with a default: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sms_opt_in", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.create_table(
        "sms_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=120), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        sa.Column("gammu_id", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("sms_message_member_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("sms_message_pkey")),
        sa.UniqueConstraint("kind", "reference", name=op.f("sms_message_kind_reference_key")),
    )
    op.create_index(op.f("ix_sms_message_member_id"), "sms_message", ["member_id"])
    op.create_index("ix_sms_message_status_id", "sms_message", ["status", "id"])
    op.create_table(
        "sms_inbound",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("gammu_id", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("read_at", UTC_DATETIME, nullable=False),
        sa.Column("outcome", sa.String(length=24), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("reply_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("sms_inbound_member_id_fkey")
        ),
        sa.ForeignKeyConstraint(
            ["reply_id"], ["sms_message.id"], name=op.f("sms_inbound_reply_id_fkey")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("sms_inbound_pkey")),
        sa.UniqueConstraint("gammu_id", name=op.f("sms_inbound_gammu_id_key")),
    )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
