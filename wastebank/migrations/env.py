"""Alembic's environment for the ledger: run by :func:`wastebank.migrations.upgrade` on the
connection it holds (in a transaction, under the migration lock), never by the ``alembic``
command (there is no alembic.ini)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from wastebank.tables import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection) or context.is_offline_mode():
    raise RuntimeError("run migrations with `wastebank ledger migrate`, not the alembic command")

context.configure(
    connection=connection,
    target_metadata=metadata(),  # the ledger's tables and those of the packages built on it
    # SQLite alters a table by copying it ("batch" mode); PostgreSQL runs the plain ALTERs.
    render_as_batch=True,
    compare_type=True,
    # Inside the caller's transaction; SQLite's DDL is transactional too (the driver begins
    # nothing of its own: wastebank.ledger.engine._sqlite_pragmas).
    transactional_ddl=True,
)
with context.begin_transaction():  # the caller's transaction: this begins nothing
    context.run_migrations()
