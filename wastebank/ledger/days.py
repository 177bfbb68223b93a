"""A bank's day: its totals from the ledger, bucketed by the local day of the bank's city (WIB,
WITA or WIT), and the day's close with the cash counted in the drawer.

**The day's totals** (:func:`day_totals`) are read from the ledger's documents, for the local
day ``[00:00, 24:00)`` in the city's zone: deposits by ``measured_at`` (voided ones apart: a
void, whenever made, takes its deposit out of its day's totals), withdrawals by ``paid_at``,
stock movements by ``occurred_at``.

**Cash expected** in a waste bank's drawer (kas tunai): the money a bank holds in cash moves only
when a withdrawal is paid out in cash (out) and when a pengepul pays a sale in cash (in);
deposits credit members' accounts and move no cash. The ledger's journal has both on the bank's
cash account (``bank:{bank}:funds:cash``), so::

    expected = opening + cash in - cash out

over the close's cash period ``[cash_from, cash_until)``, by the time each journal entry was
recorded: ``cash_from`` is the previous close's ``cash_until`` (so a day nobody closed, a Sunday,
is in the next close) or, at a bank's first close, the start of the local day; ``cash_until`` is
the moment of the close (the end of the day for a past day closed late). ``opening`` is the
previous close's counted cash, or at a first close the float the attendant enters (default 0):
money taken out of the drawer between closes (to the bank's account, say) is not in the ledger,
so it shows as a difference, to be explained in the close's note.

**The close** (:func:`close_day`) records the counted cash, the expected cash, their difference
(counted - expected: below zero is cash missing) and the figures behind it, by an attendant of
the bank (or its induk) or an admin. One close per bank and local day (409 again); not for a day
still to come, nor a day before the bank's latest close. Only an admin reopens a close
(:func:`reopen_day`), the bank's latest only, with a reason; the day may then be closed again
(the next ``revision``). Nothing is deleted. No function here commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from wastebank import errors
from wastebank.formats import rupiah, tanggal
from wastebank.ledger.balances import bank_funds_account, lock_bank
from wastebank.ledger.errors import LedgerError, NotAllowed, atomic
from wastebank.ledger.models import (
    Bank,
    Category,
    DayClose,
    Deposit,
    DepositVoid,
    JournalEntry,
    MovementKind,
    PayoutMethod,
    StockMovement,
    Withdrawal,
    WithdrawalStatus,
    utcnow,
)
from wastebank.ledger.registry import bank_by_code, is_admin_author, require_attendant

OPENING_PREVIOUS = "previous_close"
OPENING_ENTERED = "entered"


class DayAlreadyClosed(LedgerError, errors.Conflict):
    title = "hari sudah ditutup / the day is already closed"


class DayNotClosable(LedgerError, errors.Conflict):
    """A day before the bank's latest close."""

    title = "hari tidak dapat ditutup / the day cannot be closed"


class DayNotReopenable(LedgerError, errors.Conflict):
    """A reopen of a close that is not the bank's latest."""

    title = "hari tidak dapat dibuka kembali / the day cannot be reopened"


class DayInvalid(LedgerError, errors.Invalid):
    """A day still to come, or an opening float where the previous close gives it."""

    title = "tutup hari tidak sah / invalid day close"


def zone_of(bank: Bank) -> ZoneInfo:
    return ZoneInfo(bank.city.timezone)


def local_day(at: datetime, zone: ZoneInfo) -> date:
    return at.astimezone(zone).date()


FIRST_DAY: Final = date(2000, 1, 1)
LAST_DAY: Final = date(2199, 12, 31)
"""The days a bank's day may be asked for: every day a waste bank of ours can have worked, with
room either side; beyond them the day's bounds in UTC would overflow ``datetime`` (0001-01-01
east of Greenwich, 9999-12-31)."""


def day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The local day ``[00:00, next 00:00)`` in ``zone``, as aware datetimes (the ledger
    compares them in UTC). Indonesia has no daylight saving; elsewhere a day may be 23 or 25 h.
    A day outside ``FIRST_DAY``..``LAST_DAY`` is :class:`DayInvalid` (422)."""
    if not FIRST_DAY <= day <= LAST_DAY:
        raise DayInvalid(
            f"tanggal di luar jangkauan ({FIRST_DAY.isoformat()} s.d. {LAST_DAY.isoformat()}) / "
            f"date out of range: {day.isoformat()}"
        )
    start = datetime.combine(day, time(), zone)
    end = datetime.combine(day + timedelta(days=1), time(), zone)
    return start, end


# ---- the day's totals -------------------------------------------------------------------------


@dataclass(frozen=True)
class CategoryTotal:
    """One category's figures on one day: how many records, grams, the count of a piece or
    litre category (pieces, millilitres; 0 for kg) and Rupiah (credited for deposits, revenue
    for sales, 0 otherwise); ``received_g`` for transfers (what the induk weighed)."""

    category_code: str
    category_name: str
    unit: str
    count: int
    grams: int
    quantity: int = 0
    amount_idr: int = 0
    received_g: int = 0


@dataclass(frozen=True)
class MethodTotal:
    """Money by how it moved: ``cash``, ``bank_transfer``, ``ewallet``."""

    method: str
    count: int
    amount_idr: int


@dataclass(frozen=True)
class DayTotals:
    bank_code: str
    local_date: date
    zone: str
    start: datetime
    end: datetime
    deposits: list[CategoryTotal]
    voided: CategoryTotal  # the day's deposits that were voided, all categories together
    withdrawals_paid: list[MethodTotal]
    sales: list[CategoryTotal]
    sales_by_method: list[MethodTotal]
    transfers_out: list[CategoryTotal]
    transfers_in: list[CategoryTotal]
    residue: list[CategoryTotal]
    burned: list[CategoryTotal]


def _category_totals(rows: object) -> list[CategoryTotal]:
    return [
        CategoryTotal(
            category_code=code,
            category_name=name,
            unit=unit,
            count=int(n),
            grams=int(g or 0),
            quantity=int(q or 0),
            amount_idr=int(idr or 0),
            received_g=int(r or 0),
        )
        for code, name, unit, n, g, q, idr, r in rows  # type: ignore[attr-defined]
    ]


def _deposits(session: Session, bank: Bank, start: datetime, end: datetime, voided: bool) -> object:
    is_voided = select(DepositVoid.id).where(DepositVoid.deposit_id == Deposit.id).exists()
    return session.execute(
        select(
            Category.code,
            Category.name_id,
            Category.unit,
            func.count(),
            func.sum(Deposit.net_g),
            func.sum(Deposit.quantity),
            func.sum(Deposit.amount_idr),
            func.sum(0),
        )
        .join(Category, Deposit.category_id == Category.id)
        .where(
            Deposit.bank_id == bank.id,
            Deposit.measured_at >= start,
            Deposit.measured_at < end,
            is_voided if voided else ~is_voided,
        )
        .group_by(Category.code, Category.name_id, Category.unit)
        .order_by(Category.code)
    )


def _movements(
    session: Session, kind: str, start: datetime, end: datetime, *where: object
) -> list[CategoryTotal]:
    m = StockMovement
    rows = session.execute(
        select(
            Category.code,
            Category.name_id,
            Category.unit,
            func.count(),
            func.sum(m.grams),
            func.sum(0),
            func.sum(func.coalesce(m.revenue_idr, 0)),
            func.sum(func.coalesce(m.received_g, m.grams))
            if kind == MovementKind.TRANSFER
            # sum(0), not 0: the other columns are aggregates
            else func.sum(0),
        )
        .join(Category, m.category_id == Category.id)
        .where(m.kind == kind, m.occurred_at >= start, m.occurred_at < end, *where)  # type: ignore[arg-type]
        .group_by(Category.code, Category.name_id, Category.unit)
        .order_by(Category.code)
    )
    return _category_totals(rows)


def _by_method(rows: object) -> list[MethodTotal]:
    return [
        MethodTotal(method=str(method or PayoutMethod.CASH), count=int(n), amount_idr=int(idr or 0))
        for method, n, idr in rows  # type: ignore[attr-defined]
    ]


def day_totals(session: Session, bank_code: str, day: date) -> DayTotals:
    """The bank's figures for the local ``day``, all from the ledger (see the module)."""
    bank = bank_by_code(session, bank_code)
    zone = zone_of(bank)
    start, end = day_window(day, zone)
    voided = _category_totals(_deposits(session, bank, start, end, voided=True))
    w = Withdrawal
    paid = session.execute(
        select(w.method, func.count(), func.sum(w.amount_idr))
        .where(
            w.bank_id == bank.id,
            w.status == WithdrawalStatus.PAID,
            w.paid_at >= start,
            w.paid_at < end,
        )
        .group_by(w.method)
        .order_by(w.method)
    )
    m = StockMovement
    sold_by = session.execute(
        select(m.payment_method, func.count(), func.sum(func.coalesce(m.revenue_idr, 0)))
        .where(
            m.bank_id == bank.id,
            m.kind == MovementKind.SALE,
            m.occurred_at >= start,
            m.occurred_at < end,
        )
        .group_by(m.payment_method)
        .order_by(m.payment_method)
    )
    return DayTotals(
        bank_code=bank.code,
        local_date=day,
        zone=zone.key,
        start=start,
        end=end,
        deposits=_category_totals(_deposits(session, bank, start, end, voided=False)),
        voided=CategoryTotal(
            category_code="",
            category_name="",
            unit="",
            count=sum(v.count for v in voided),
            grams=sum(v.grams for v in voided),
            amount_idr=sum(v.amount_idr for v in voided),
        ),
        withdrawals_paid=_by_method(paid),
        sales=_movements(session, MovementKind.SALE, start, end, m.bank_id == bank.id),
        sales_by_method=_by_method(sold_by),
        transfers_out=_movements(session, MovementKind.TRANSFER, start, end, m.bank_id == bank.id),
        transfers_in=_movements(
            session, MovementKind.TRANSFER, start, end, m.to_bank_id == bank.id
        ),
        residue=_movements(session, MovementKind.RESIDUE, start, end, m.bank_id == bank.id),
        burned=_movements(session, MovementKind.BURNED, start, end, m.bank_id == bank.id),
    )


# ---- cash -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cash:
    """The cash drawer over ``[cash_from, cash_until)``: the opening and where it came from
    (``previous_close`` or ``entered``), cash in (sales paid in cash), cash out (withdrawals
    paid in cash), and what should be in the drawer at ``cash_until``."""

    cash_from: datetime
    cash_until: datetime
    opening_idr: int
    opening_source: str
    in_idr: int
    out_idr: int

    @property
    def expected_idr(self) -> int:
        return self.opening_idr + self.in_idr - self.out_idr


def cash_moved(session: Session, bank: Bank, since: datetime, until: datetime) -> tuple[int, int]:
    """(in, out): the entries on the bank's cash account recorded in ``[since, until)``. A sale's
    revenue debits it (in), a withdrawal paid in cash credits it (out)."""
    j = JournalEntry
    got, paid = session.execute(
        select(
            func.coalesce(func.sum(case((j.amount_idr < 0, -j.amount_idr), else_=0)), 0),
            func.coalesce(func.sum(case((j.amount_idr > 0, j.amount_idr), else_=0)), 0),
        ).where(
            j.account == bank_funds_account(bank.code, PayoutMethod.CASH),
            j.created_at >= since,
            j.created_at < until,
        )
    ).one()
    return int(got), int(paid)


def latest_close(session: Session, bank: Bank) -> DayClose | None:
    """The bank's latest close still in force (not reopened), if any."""
    return session.scalar(
        select(DayClose)
        .where(DayClose.bank_id == bank.id, DayClose.reopened_at.is_(None))
        .order_by(DayClose.local_date.desc(), DayClose.revision.desc())
        .limit(1)
    )


def closes_of(session: Session, bank: Bank, day: date) -> list[DayClose]:
    """Every close of the bank's ``day``, the reopened ones too, oldest first."""
    return list(
        session.scalars(
            select(DayClose)
            .where(DayClose.bank_id == bank.id, DayClose.local_date == day)
            .order_by(DayClose.revision)
        )
    )


def cash_for_close(
    session: Session,
    bank: Bank,
    day: date,
    *,
    opening_cash_idr: int | None = None,
    now: datetime | None = None,
) -> Cash:
    """The cash a close of the bank's ``day`` would record now (the preview a page shows before
    the attendant confirms, and what :func:`close_day` records). Refused when the day cannot be
    closed: :class:`DayInvalid`, :class:`DayAlreadyClosed`, :class:`DayNotClosable`."""
    zone = zone_of(bank)
    now = now or utcnow()
    start, end = day_window(day, zone)  # first: a day out of range is said so (not "to come")
    if day > local_day(now, zone):
        raise DayInvalid(f"{tanggal(day)} belum tiba / {tanggal(day, 'en')} is still to come")
    if opening_cash_idr is not None and opening_cash_idr < 0:
        raise DayInvalid("saldo awal tidak boleh negatif / the opening float is not negative")
    previous = latest_close(session, bank)
    if previous is not None and previous.local_date == day:
        raise DayAlreadyClosed(
            f"{bank.name} {tanggal(day)} ditutup oleh {previous.closed_by} / closed by "
            f"{previous.closed_by}"
        )
    if previous is not None and previous.local_date > day:
        last = previous.local_date
        raise DayNotClosable(
            f"{bank.name} sudah ditutup sampai {tanggal(last)} / {bank.name} is closed up to "
            f"{tanggal(last, 'en')}"
        )
    if previous is not None and opening_cash_idr is not None:
        last, counted = previous.local_date, rupiah(previous.counted_cash_idr)
        raise DayInvalid(
            f"saldo awal adalah uang terhitung saat tutup {tanggal(last)} ({counted}) / the "
            f"opening float is the cash counted at the close of {tanggal(last, 'en')} ({counted})"
        )
    since = previous.cash_until if previous is not None else start
    until = min(now, end)
    got, paid = cash_moved(session, bank, since, until)
    return Cash(
        cash_from=since,
        cash_until=until,
        opening_idr=previous.counted_cash_idr if previous is not None else opening_cash_idr or 0,
        opening_source=OPENING_PREVIOUS if previous is not None else OPENING_ENTERED,
        in_idr=got,
        out_idr=paid,
    )


def _lock_cash(session: Session, bank: Bank) -> None:
    """Hold what moves the bank's cash until the close commits: its approved cash withdrawals
    (a payout under way holds its row: the close waits for it, then reads it), then the bank
    (every sale takes it first). On SQLite a writer runs alone anyway."""
    session.execute(
        select(Withdrawal.id)
        .where(
            Withdrawal.bank_id == bank.id,
            Withdrawal.status == WithdrawalStatus.APPROVED,
            Withdrawal.method == PayoutMethod.CASH,
        )
        .with_for_update()
    )
    lock_bank(session, bank.id)


def close_day(
    session: Session,
    bank_code: str,
    day: date,
    *,
    counted_cash_idr: int,
    author: str,
    note: str = "",
    opening_cash_idr: int | None = None,
) -> DayClose:
    """Close the bank's local ``day`` with the cash counted in the drawer: the expected cash
    (:func:`cash_for_close`) and the difference are recorded with it. By an attendant of the
    bank or its induk, or an admin. The caller commits."""
    if counted_cash_idr < 0:
        raise DayInvalid("uang terhitung tidak boleh negatif / counted cash is not negative")
    with atomic(session):
        bank = bank_by_code(session, bank_code)
        require_attendant(session, bank, author)
        _lock_cash(session, bank)
        cash = cash_for_close(session, bank, day, opening_cash_idr=opening_cash_idr)
        revision = 1 + len(closes_of(session, bank, day))
        row = DayClose(
            bank_id=bank.id,
            local_date=day,
            revision=revision,
            cash_from=cash.cash_from,
            cash_until=cash.cash_until,
            opening_cash_idr=cash.opening_idr,
            opening_source=cash.opening_source,
            cash_in_idr=cash.in_idr,
            cash_out_idr=cash.out_idr,
            expected_cash_idr=cash.expected_idr,
            counted_cash_idr=counted_cash_idr,
            difference_idr=counted_cash_idr - cash.expected_idr,
            note=note,
            closed_by=author,
            closed_at=utcnow(),
        )
        session.add(row)
        session.flush()
    return row


def reopen_day(
    session: Session, bank_code: str, day: date, *, author: str, reason: str
) -> DayClose:
    """An admin reopens the bank's close of ``day`` (its latest close only), with a reason: the
    close stays, marked reopened, and the day may be closed again. The caller commits."""
    if not reason.strip():
        raise DayInvalid("pembukaan kembali perlu alasan / a reopening needs a reason")
    with atomic(session):
        if not is_admin_author(session, author):
            raise NotAllowed("hanya admin yang membuka kembali hari / only an admin reopens a day")
        bank = bank_by_code(session, bank_code)
        lock_bank(session, bank.id)
        latest = latest_close(session, bank)
        if latest is None or latest.local_date != day:
            last = latest.local_date if latest is not None else None
            raise DayNotReopenable(
                f"hanya tutup hari terakhir {bank.name} yang dapat dibuka kembali "
                f"({tanggal(last) if last else 'belum ada'}) / only {bank.name}'s latest close "
                f"can be reopened ({tanggal(last, 'en') if last else 'none yet'})"
            )
        latest.reopened_at = utcnow()
        latest.reopened_by = author
        latest.reopen_reason = reason
        session.flush()
    return latest
