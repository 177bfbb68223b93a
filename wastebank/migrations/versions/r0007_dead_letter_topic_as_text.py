"""dead_letter.topic: TEXT instead of VARCHAR(500).

Revision ID: 0007
Revises: 0006
Created: 2026-11-30 (written by hand)

An MQTT topic can be up to 65,535 bytes. PostgreSQL refused a dead letter whose topic was longer
than 500 characters (``DataError: value too long for type character varying(500)``), which the
ingester does not retry: one such message stopped it. TEXT keeps any topic whole, on both
backends (SQLite never enforced the length; its table is copied once by the batch operation so
that the declared type matches the models). On PostgreSQL VARCHAR -> TEXT is binary-compatible:
no table rewrite, existing rows unchanged.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.alter_column(
            "topic",
            existing_type=sa.String(length=500),
            type_=sa.Text(),
            existing_nullable=False,
        )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
