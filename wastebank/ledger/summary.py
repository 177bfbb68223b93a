"""The daily summary of deposits (:class:`~wastebank.ledger.models.DepositDay`) and its monthly
roll-up: kept by upserts in the transaction of every change to the deposits, and made again
from the deposits on demand."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Date, DateTime, Table, delete, func, insert, select, text, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session

from wastebank.ledger.errors import NotFound, atomic
from wastebank.ledger.models import Bank, City, Deposit, DepositDay, DepositMonth, DepositVoid

# INSERT ... ON CONFLICT (event_id) DO NOTHING ... RETURNING event_id, by dialect. Any other
# dialect (or an SQLite without RETURNING) inserts row by row, each in a savepoint: correct, slow.
ON_CONFLICT_INSERTS: dict[str, Callable[[Table], sqlite_dml.Insert | postgresql_dml.Insert]] = {
    "sqlite": sqlite_dml.insert,
    "postgresql": postgresql_dml.insert,
}


# ---- the daily summary (DepositDay) -------------------------------------------------------------

DayKey = tuple[date, int, int, bool]  # city-local date, bank id, category id, manual
_DAY = cast(Table, DepositDay.__table__)
_MONTH = cast(Table, DepositMonth.__table__)
_DAY_KEY = ("local_date", "bank_id", "category_id", "manual")
_MONTH_KEY = ("month", "bank_id", "category_id", "manual")


def local_day_key(
    at: datetime, zone: ZoneInfo, bank_id: int, category_id: int, manual: bool
) -> DayKey:
    return at.astimezone(zone).date(), bank_id, category_id, bool(manual)


def add_to_days(session: Session, days: dict[DayKey, list[int]]) -> None:
    """Add [grams, deposits] to each group of the daily summary and of its monthly roll-up
    (negative: take them away): one ``INSERT ... ON CONFLICT DO UPDATE`` row per group, in key
    order, so that concurrent writers lock the rows they share in the same order (days first,
    then months, in every writer). A row whose count falls to 0 is deleted."""
    if not days:
        return
    months: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for (day, bank_id, category_id, manual), (grams, count) in days.items():
        acc = months[day.replace(day=1), bank_id, category_id, manual]
        acc[0] += grams
        acc[1] += count
    _add_to_summary(session, _DAY, _DAY_KEY, days)
    _add_to_summary(session, _MONTH, _MONTH_KEY, months)


def _add_to_summary(
    session: Session, table: Table, names: tuple[str, ...], groups: Mapping[DayKey, list[int]]
) -> None:
    ordered = sorted((k, v) for k, v in groups.items() if v != [0, 0])
    if not ordered:
        return
    rows = [
        dict(zip(names, key, strict=True)) | {"net_g": grams, "deposits": count}
        for key, (grams, count) in ordered
    ]
    make_insert = ON_CONFLICT_INSERTS.get(session.get_bind().dialect.name)
    if make_insert is not None:
        stmt = make_insert(table)
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=[table.c[k] for k in names],
                set_={
                    "net_g": table.c.net_g + stmt.excluded.net_g,
                    "deposits": table.c.deposits + stmt.excluded.deposits,
                },
            ),
            rows,
        )
    else:  # any other dialect: update, else insert (one writer at a time)
        for row in rows:
            found = session.execute(
                update(table)
                .where(*(table.c[k] == row[k] for k in names))
                .values(
                    net_g=table.c.net_g + row["net_g"],
                    deposits=table.c.deposits + row["deposits"],
                )
            )
            if not isinstance(found, CursorResult) or found.rowcount == 0:
                session.execute(insert(table), row)
    for row, (_key, (_grams, count)) in zip(rows, ordered, strict=True):
        if count <= 0:
            session.execute(
                delete(table).where(*(table.c[k] == row[k] for k in names), table.c.deposits == 0)
            )


def zone_of_bank(session: Session, bank_id: int) -> ZoneInfo:
    bank = session.get(Bank, bank_id)
    if bank is None:
        raise NotFound(f"unknown bank id {bank_id}")
    return ZoneInfo(bank.city.timezone)


def _day_totals_query() -> Any:
    """PostgreSQL: local date, bank, category, manual, grams and count of non-voided deposits."""
    d = Deposit
    day = sql_cast(func.timezone(City.timezone, d.measured_at), Date)
    voided = select(DepositVoid.id).where(DepositVoid.deposit_id == d.id).exists()
    return (
        select(day, d.bank_id, d.category_id, d.manual, func.sum(d.net_g), func.count())
        .join(Bank, d.bank_id == Bank.id)
        .join(City, Bank.city_id == City.id)
        .where(~voided)
        .group_by(day, d.bank_id, d.category_id, d.manual)
    )


def day_totals(session: Session) -> dict[DayKey, tuple[int, int]]:
    """(grams, count) of the non-voided deposits per local day, bank, category and basis, from
    the deposits themselves: in SQL on PostgreSQL (``timezone(zone, measured_at)``), else
    deposit by deposit here (SQLite has no zones)."""
    if session.get_bind().dialect.name == "postgresql":
        return {
            (day, b, c, bool(m)): (int(g), int(n))
            for day, b, c, m, g, n in session.execute(_day_totals_query())
        }
    d = Deposit
    voided = select(DepositVoid.id).where(DepositVoid.deposit_id == d.id).exists()
    rows = session.execute(
        select(d.measured_at, d.bank_id, d.category_id, d.manual, d.net_g, City.timezone)
        .join(Bank, d.bank_id == Bank.id)
        .join(City, Bank.city_id == City.id)
        .where(~voided)
    )
    zones: dict[str, ZoneInfo] = {}
    totals: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for at, bank_id, category_id, manual, net_g, zone in rows:
        tz = zones.get(zone) or zones.setdefault(zone, ZoneInfo(zone))
        acc = totals[local_day_key(at, tz, bank_id, category_id, manual)]
        acc[0] += net_g
        acc[1] += 1
    return {k: (g, n) for k, (g, n) in totals.items()}


def month_of(day: Any, dialect: str) -> Any:
    """SQL for the first day of ``day``'s month (a ``Date`` column or expression)."""
    if dialect == "postgresql":
        return sql_cast(func.date_trunc("month", sql_cast(day, DateTime)), Date)
    return func.substr(day, 1, 8).concat("01")  # SQLite keeps a date as its text, 2026-10-31


def rebuild_deposit_days(session: Session, *, progress: Callable[[str], None] | None = None) -> int:
    """Make the daily summary and its monthly roll-up again from the deposits (voided ones left
    out); return the daily rows. ``progress`` is told each step as it begins.

    For a ledger whose deposits were written around :func:`apply_deposits` (a bulk COPY) or
    whose city changed its zone, or after :func:`verify` found the summary wrong. On
    PostgreSQL the deposits, voids and the summaries are locked against writers meanwhile (they
    wait, then add to the new rows) until the caller commits."""
    step = progress or (lambda _what: None)
    with atomic(session):
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            step("mengunci / locking deposits, voids and summaries against writers")
            session.execute(
                text(
                    "LOCK TABLE deposit, deposit_void, deposit_day, deposit_month "
                    "IN SHARE ROW EXCLUSIVE MODE"
                )
            )
            session.execute(delete(DepositDay))
            step("menjumlahkan setoran per hari lokal / summing the deposits by local day")
            session.execute(
                insert(_DAY).from_select([*_DAY_KEY, "net_g", "deposits"], _day_totals_query())
            )
        else:
            session.execute(delete(DepositDay))
            step("menjumlahkan setoran per hari lokal / summing the deposits by local day")
            rows = [
                dict(zip(_DAY_KEY, key, strict=True)) | {"net_g": g, "deposits": n}
                for key, (g, n) in sorted(day_totals(session).items())
            ]
            step(f"menulis ringkasan harian / writing the daily summary ({len(rows):,} rows)")
            if rows:
                session.execute(insert(_DAY), rows)
        step("menulis ringkasan bulanan / writing the monthly roll-up")
        session.execute(delete(DepositMonth))
        session.execute(
            insert(_MONTH).from_select([*_MONTH_KEY, "net_g", "deposits"], _months(dialect))
        )
        count = session.scalar(select(func.count()).select_from(DepositDay)) or 0
    return count


def _months(dialect: str) -> Any:
    """The monthly roll-up of the daily summary, as a query."""
    dd = DepositDay
    month = month_of(dd.local_date, dialect)
    return select(
        month, dd.bank_id, dd.category_id, dd.manual, func.sum(dd.net_g), func.sum(dd.deposits)
    ).group_by(month, dd.bank_id, dd.category_id, dd.manual)
