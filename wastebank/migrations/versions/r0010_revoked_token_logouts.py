"""revoked_token: tokens ended by a logout before their expiry.

Revision ID: 0010
Revises: 0009
Created: 2026-12-06 (written by hand from the models)

- ``revoked_token``: one row per token (bearer or page session) a logout ended, by the token's
  ``jti``, with its user and the time it would have expired; every API process refuses a
  token found here (``wastebank.access.principal``). Rows of tokens that have expired since are
  purged at the next logout.
- Tokens issued before this release carry no ``jti`` and are no longer accepted: after the
  upgrade everyone signs in again once (bearer tokens live an hour, page sessions 12 h).

A new table only: nothing existing changes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)  # wastebank.ledger.UtcDateTime's storage


def upgrade() -> None:
    op.create_table(
        "revoked_token",
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTC_DATETIME, nullable=False),
        sa.Column("revoked_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("revoked_token_user_id_fkey"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("revoked_token_pkey")),
    )
    op.create_index(op.f("ix_revoked_token_expires_at"), "revoked_token", ["expires_at"])


def downgrade() -> None:
    raise NotImplementedError("the ledger is never downgraded: restore a backup instead")
