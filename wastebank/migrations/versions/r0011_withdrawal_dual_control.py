"""withdrawal.dual_control: a withdrawal that needs three different people.

Revision ID: 0011
Revises: 0010
Created: 2026-12-06 (written by hand from the models)

- ``withdrawal.dual_control``: the withdrawal was above the second-approval amount of the money
  rules when it was requested (``[money] second_approval_above_idr``, wastebank/money_rules.py):
  the one who asked may not approve it, and who pays it out is neither of them. Fixed at the
  request, so a later change of the setting never changes the rule for an open withdrawal.

Existing withdrawals get ``false``: they were requested under the old rule and keep it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("withdrawal", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dual_control", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
