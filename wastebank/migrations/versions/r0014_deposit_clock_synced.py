"""deposit.clock_synced: was the gateway's clock synchronized when it stamped the deposit?

Revision ID: 0014
Revises: 0013
Created: 2026-12-06 (written by hand from the models)

- ``deposit.clock_synced``: the gateway's ``clock_synced`` (issue 16): false when the deposit
  was stamped before the gateway's clock was first synchronized after it booted (a Pi without a
  real-time clock after a power cut without network: the time may be hours or days off); true
  when it was; null when not said (manual deposits, gateways from before 0014, deposits already
  in the ledger). ``wastebank ledger verify`` counts the false ones.

A nullable column: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("deposit", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clock_synced", sa.Boolean(), nullable=True))


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
