"""Diverted grams and deposit counts per local period, bank, category and basis, summed in SQL from
the ledger's daily summary and its monthly roll-up."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Date, DateTime, cast, func, select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.reports.scope import Scope


@dataclass(frozen=True)
class Cell:
    """Non-voided deposits of one local day, bank, category and basis."""

    day: date
    bank_id: int
    category_id: int
    manual: bool
    net_g: int
    deposits: int


def cells(
    session: Session, scope: Scope, start: date, end: date, period: str = "day"
) -> list[Cell]:
    """Diverted grams and deposit counts per local ``period`` (its first day) x bank x category
    x manual, voided deposits left out; ``start``..``end`` are local days, both included.

    Read from the ledger's summaries, never from the deposits themselves: by month, year or in
    total, the whole local months of the range from the monthly roll-up
    (``ledger.DepositMonth``) and the days before and after them from the daily summary
    (``ledger.DepositDay``); by day or week, the daily summary. Both are kept with every
    deposit and void, and every period is a union of local days, so the sums are exact. The
    database buckets the rows by the period, so a year by month is a few thousand rows however
    many deposits it holds."""
    if not scope.banks or end < start:
        return []
    acc: dict[tuple[date, int, int, bool], list[int]] = defaultdict(lambda: [0, 0])
    for column, lo, hi in _parts(start, end, period):
        for day, bank_id, category_id, manual, net_g, count in summary_rows(
            session, scope, column, lo, hi, period, start
        ):
            a = acc[day, bank_id, category_id, manual]
            a[0] += net_g
            a[1] += count
    return sorted(
        (Cell(day, b, c, m, g, n) for (day, b, c, m), (g, n) in acc.items() if n),
        key=lambda c: (c.day, c.bank_id, c.category_id, c.manual),
    )


def _parts(start: date, end: date, period: str) -> list[tuple[Any, date, date]]:
    """(date column, first, last) of each summary table read for ``start``..``end``."""
    dd, dm = ledger.DepositDay, ledger.DepositMonth
    if period in ("day", "week") or date.max.year in (start.year, end.year):
        return [(dd.local_date, start, end)]
    # the whole local months of the range: from first_whole up to (not including) past_whole
    first_whole = start if start.day == 1 else _next_month(start)
    last_of_month = _next_month(end) - timedelta(days=1)
    past_whole = _next_month(end) if end == last_of_month else end.replace(day=1)
    if first_whole >= past_whole:
        return [(dd.local_date, start, end)]
    parts: list[tuple[Any, date, date]] = []
    if start < first_whole:
        parts.append((dd.local_date, start, first_whole - timedelta(days=1)))
    parts.append((dm.month, first_whole, past_whole - timedelta(days=1)))
    if past_whole <= end:
        parts.append((dd.local_date, past_whole, end))
    return parts


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def summary_rows(
    session: Session, scope: Scope, column: Any, lo: date, hi: date, period: str, first: date
) -> Iterator[tuple[date, int, int, bool, int, int]]:
    """(period start, bank, category, manual, grams, count) from the summary table of
    ``column`` (``DepositDay.local_date`` or ``DepositMonth.month``) for ``lo``..``hi``,
    bucketed by ``period`` in SQL (``total``: all at ``first``)."""
    table = column.table
    bucket = _bucket(session, column, period)
    keys: list[Any] = [table.c.bank_id, table.c.category_id, table.c.manual]
    if bucket is not None:
        keys.insert(0, bucket.label("bucket"))
    q = (
        select(*keys, func.sum(table.c.net_g), func.sum(table.c.deposits))
        .where(column >= lo, column <= hi, table.c.bank_id.in_(sorted(scope.banks)))
        .group_by(*keys)
    )
    for row in session.execute(q):
        values: list[Any] = list(row)
        if bucket is None:
            day = first
            bank_id, category_id, manual, net_g, count = values
        else:
            when, bank_id, category_id, manual, net_g, count = values
            day = _as_date(when)
        yield day, bank_id, category_id, bool(manual), int(net_g or 0), int(count or 0)


def _bucket(session: Session, column: Any, period: str) -> Any:
    """The SQL expression of the first day of ``column``'s ``period`` (None: ``total``, one
    bucket), in the ledger's dialect."""
    if period == "total":
        return None
    if period == "day" or (period == "month" and column.key == "month"):
        return column
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.date_trunc(period, cast(column, DateTime)), Date)  # ISO weeks
    if period == "week":  # the Monday on or before the day
        return func.date(column, "-6 days", "weekday 1")
    if period == "month":  # SQLite keeps a date as its text, 2026-10-31
        return func.substr(column, 1, 8).concat("01")
    return func.substr(column, 1, 5).concat("01-01")


def _as_date(when: object) -> date:
    """A bucket as the database gives it back: a datetime (PostgreSQL's date_trunc), a date, or
    SQLite's text."""
    if isinstance(when, datetime):
        return when.date()
    if isinstance(when, date):
        return when
    return date.fromisoformat(str(when))
