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
    """A session whose one transaction :func:`finish` commits or rolls back (closed unfinished,
    it rolls back). The ledger's functions never commit; a refused ``set_price`` undoes only its
    own savepoint."""
    with Session(engine) as session:
        yield session


def finish(session: Session, results: list[RowResult], mode: Mode, dry_run: bool) -> None:
    """Commit or roll back the import's transaction; set the valid rows' status to match."""
    refused = any(r.status is RowStatus.REFUSED for r in results)
    keep = not dry_run and not (refused and mode is Mode.ALL_OR_NOTHING)
    if keep:
        session.commit()
        valid = RowStatus.IMPORTED
    else:
        session.rollback()
        valid = RowStatus.WOULD_IMPORT if dry_run else RowStatus.NOT_IMPORTED
    for r in results:
        if r.status is not RowStatus.REFUSED:
            r.status = valid
