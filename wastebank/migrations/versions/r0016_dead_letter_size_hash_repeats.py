"""dead_letter: the message's size and hash, a truncated payload, and repeats counted

Revision ID: 0016
Revises: 0015
Created: 2026-12-07 (written by hand from the models)

- ``payload_size``, ``payload_sha256`` (indexed): the whole message's size in bytes and its
  SHA-256, hex. A message over the payload limit keeps only its first bytes in ``payload``
  (``wastebank.ledger.deadletters.OVERSIZED_KEPT_BYTES``): a device could otherwise fill the
  ledger's disk with one message (fourth review, finding 4).
- ``times_received``, ``last_received_at``: the same message (topic, bytes, error) again while
  its row is unsettled is counted on that row, not stored again (a retained message at each
  ingester start).

Rows from before have a null size and hash (their payload is whole) and are never matched as
a repeat; ``times_received`` is 1 for them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payload_size", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("payload_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("times_received", sa.Integer(), server_default="1", nullable=False)
        )
        batch_op.add_column(sa.Column("last_received_at", UTC_DATETIME, nullable=True))
        batch_op.create_index(
            batch_op.f("ix_dead_letter_payload_sha256"), ["payload_sha256"], unique=False
        )


def downgrade() -> None:
    # Truncated payloads stay truncated: their size and hash go with these columns.
    with op.batch_alter_table("dead_letter", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dead_letter_payload_sha256"))
        batch_op.drop_column("last_received_at")
        batch_op.drop_column("times_received")
        batch_op.drop_column("payload_sha256")
        batch_op.drop_column("payload_size")
