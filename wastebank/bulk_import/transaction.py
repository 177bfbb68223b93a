"""The one database transaction every import runs in: each row in a savepoint of its own, the
whole committed or rolled back at the end by the mode and the rows' fate."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from wastebank.bulk_import.report import Mode, RowResult, RowStatus


@contextmanager
def import_session(engine: Engine) -> Iterator[Session]:
    """A session inside one outer transaction that the caller commits or rolls back
    (``.info["outer"]``). The session's own commits and rollbacks (those of ``set_price``)
    release or roll back a savepoint only."""
    with engine.connect() as conn:
        outer = conn.begin()
        session = Session(bind=conn, join_transaction_mode="create_savepoint")
        session.info["outer"] = outer
        try:
            yield session
        finally:
            session.close()
            if outer.is_active:
                outer.rollback()


def finish(session: Session, results: list[RowResult], mode: Mode, dry_run: bool) -> None:
    """Commit or roll back the outer transaction; set the valid rows' status to match."""
    refused = any(r.status is RowStatus.REFUSED for r in results)
    keep = not dry_run and not (refused and mode is Mode.ALL_OR_NOTHING)
    outer = session.info["outer"]
    session.commit()  # releases the session's savepoint
    if keep:
        outer.commit()
        valid = RowStatus.IMPORTED
    else:
        outer.rollback()
        valid = RowStatus.WOULD_IMPORT if dry_run else RowStatus.NOT_IMPORTED
    for r in results:
        if r.status is not RowStatus.REFUSED:
            r.status = valid
