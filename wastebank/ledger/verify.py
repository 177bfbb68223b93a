"""Checking the books: every entry recomputed from the documents, nothing unbalanced or negative,
amounts, the bank hierarchy and the summaries."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from wastebank.formats import thousands
from wastebank.ledger.balances import (
    bank_funds_account,
    bank_purchase_account,
    member_account,
    stock_account,
    stock_flow_account,
)
from wastebank.ledger.models import (
    OPEN_WITHDRAWALS,
    Bank,
    Category,
    Deposit,
    DepositDay,
    DepositMonth,
    DepositVoid,
    JournalEntry,
    Member,
    MovementKind,
    StockEntry,
    StockMovement,
    Unit,
    Withdrawal,
    WithdrawalStatus,
)
from wastebank.ledger.pricing import amount_for_quantity
from wastebank.ledger.registry import hierarchy_problem
from wastebank.ledger.stock import movement_legs, sale_legs
from wastebank.ledger.summary import DayKey, day_totals
from wastebank.messages import CLOCK_AHEAD_TOLERANCE


@dataclass(frozen=True)
class Problem:
    """Something :func:`verify` found wrong: which check, about what, and how."""

    check: str  # unbalanced | entries | negative | amount | hierarchy | summary
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check}: {self.subject}: {self.detail}"


def verify(session: Session) -> list[Problem]:
    """Check the books; an empty list means they hold.

    - every money transaction's legs sum to zero (debits = credits), and every stock
      transaction's grams per category;
    - the journal and the stock journal hold exactly the entries the documents imply
      (deposits, voids, paid withdrawals, stock movements): an entry added, changed or removed
      behind the ledger's back shows up here, so balances and stock (sums of entries) are what
      the documents say;
    - no member balance below zero or below their open withdrawals, no stock below zero;
    - each deposit's amount is its count at its frozen price;
    - every bank's place in the induk/unit hierarchy is valid;
    - the daily summary (:class:`DepositDay`) holds, per local day, bank, category and basis,
      the sum and the count of the non-voided deposits, and its monthly roll-up
      (:class:`DepositMonth`) the same per local month (:func:`rebuild_deposit_days` mends
      both).

    Reads everything once (it is an audit, not a hot path).
    """
    problems: list[Problem] = []
    problems += _unbalanced(session)
    problems += _entries_match_documents(session)
    problems += _nothing_negative(session)
    problems += _deposit_amounts(session)
    problems += _hierarchy(session)
    problems += _deposit_days(session)
    return problems


def unsynced_clock_deposits(session: Session) -> dict[str, int]:
    """Device deposits whose gateway had not synchronized its clock since it booted when it
    stamped them (``clock_synced`` false: their times may be hours off), by gateway; voided ones
    included. Not a problem of the books: a fact for whoever reads a report by time."""
    rows = session.execute(
        select(Deposit.gateway_id, func.count())
        .where(Deposit.clock_synced.is_(False))
        .group_by(Deposit.gateway_id)
        .order_by(Deposit.gateway_id)
    )
    return {str(gateway): int(n) for gateway, n in rows}


def clock_note(n: int, *, ahead: bool = False) -> str:
    """``n`` deposits of :func:`unsynced_clock_deposits` or :func:`clock_ahead_deposits` in
    words, for ``ledger verify`` and the monthly report: ``1 setoran ... / 1 deposit ...``."""
    deposits = "deposit" if n == 1 else "deposits"
    if not ahead:
        return (
            f"{thousands(n)} setoran dicatat sebelum jam gateway tersinkron / {thousands(n)} "
            f"{deposits} stamped before the gateway's clock was synchronized"
        )
    return (
        f"{thousands(n)} setoran dicap waktu di depan saat diterima / {thousands(n)} {deposits} "
        "stamped ahead of when the ledger received them"
    )


def clock_ahead_deposits(session: Session) -> dict[str, int]:
    """Device deposits stamped later than the ledger received them by more than
    :data:`~wastebank.messages.CLOCK_AHEAD_TOLERANCE` (``measured_at`` against ``recorded_at``:
    the gateway's clock was ahead, whatever its ``clock_synced`` said), by gateway; voided ones
    included. Kept as stamped (the money is real): a fact, as :func:`unsynced_clock_deposits`."""
    rows = session.execute(
        select(Deposit.gateway_id, Deposit.measured_at, Deposit.recorded_at)
        .where(Deposit.measured_at > Deposit.recorded_at)
        .order_by(Deposit.gateway_id)
    )
    counts: dict[str, int] = {}
    for gateway, measured, recorded in rows:
        if measured - recorded > CLOCK_AHEAD_TOLERANCE:
            counts[str(gateway)] = counts.get(str(gateway), 0) + 1
    return counts


def _unbalanced(session: Session) -> list[Problem]:
    money = session.execute(
        select(JournalEntry.txn_ref, func.sum(JournalEntry.amount_idr))
        .group_by(JournalEntry.txn_ref)
        .having(func.sum(JournalEntry.amount_idr) != 0)
    )
    out = [Problem("unbalanced", f"money {t}", f"legs sum to Rp{int(v)}") for t, v in money]
    stock = session.execute(
        select(StockEntry.txn_ref, StockEntry.category_id, func.sum(StockEntry.grams))
        .group_by(StockEntry.txn_ref, StockEntry.category_id)
        .having(func.sum(StockEntry.grams) != 0)
    )
    out += [
        Problem("unbalanced", f"stock {t} category {c}", f"legs sum to {int(g)} g")
        for t, c, g in stock
    ]
    return out


class _Expected:
    """The entries the documents imply: money per (txn, account), grams per (txn, account,
    category)."""

    def __init__(self) -> None:
        self.money: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.stock: defaultdict[tuple[str, str, int], int] = defaultdict(int)

    def add(
        self, txn: str, category_id: int, legs: list[tuple[str, int]], grams: list[tuple[str, int]]
    ) -> None:
        for account, v in legs:
            self.money[txn, account] += v
        for account, g in grams:
            self.stock[txn, account, category_id] += g


def _entries_match_documents(session: Session) -> list[Problem]:
    expected = _Expected()
    _expect_deposits(session, expected)
    _expect_withdrawals(session, expected)
    _expect_movements(session, expected)
    return _money_differences(session, expected.money) + _stock_differences(session, expected.stock)


def _expect_deposits(session: Session, expected: _Expected) -> None:
    """A deposit's entries (``deposit:{id}``) and, when it was voided, their reversal."""
    deposits = session.execute(
        select(
            Deposit.event_id,
            Member.member_no,
            Bank.code,
            Deposit.amount_idr,
            Deposit.category_id,
            Deposit.net_g,
            DepositVoid.id,
        )
        .join(Member, Deposit.member_id == Member.id)
        .join(Bank, Deposit.bank_id == Bank.id)
        .outerjoin(DepositVoid, DepositVoid.deposit_id == Deposit.id)
    )
    for event_id, member_no, bank_code, amount, category_id, net_g, void_id in deposits:
        sign_txns = [(1, f"deposit:{event_id}")]
        if void_id is not None:
            sign_txns.append((-1, f"void:{event_id}"))
        for sign, txn in sign_txns:
            expected.add(
                txn,
                category_id,
                [
                    (member_account(member_no), sign * amount),
                    (bank_purchase_account(bank_code), -sign * amount),
                ],
                [
                    (stock_account(bank_code), sign * net_g),
                    (stock_flow_account("intake", bank_code), -sign * net_g),
                ],
            )


def _expect_withdrawals(session: Session, expected: _Expected) -> None:
    """A paid withdrawal's entries; an unpaid one has none."""
    paid = session.execute(
        select(Withdrawal.id, Member.member_no, Bank.code, Withdrawal.method, Withdrawal.amount_idr)
        .join(Member, Withdrawal.member_id == Member.id)
        .join(Bank, Withdrawal.bank_id == Bank.id)
        .where(Withdrawal.status == WithdrawalStatus.PAID)
    )
    for wid, member_no, bank_code, method, amount in paid:
        legs = [
            (member_account(member_no), -amount),
            (bank_funds_account(bank_code, method), amount),
        ]
        expected.add(f"withdrawal:{wid}", 0, legs, [])


def _expect_movements(session: Session, expected: _Expected) -> None:
    """A stock movement's stock legs, and a sale's money."""
    codes: dict[int, str] = {i: c for i, c in session.execute(select(Bank.id, Bank.code))}
    for m in session.scalars(select(StockMovement)):
        bank_code = codes[m.bank_id]
        to_code = codes.get(m.to_bank_id) if m.to_bank_id is not None else None
        expected.add(
            f"{m.kind}:{m.id}",
            m.category_id,
            sale_legs(bank_code, m.revenue_idr, m.payment_method)
            if m.kind == MovementKind.SALE
            else [],
            movement_legs(m.kind, bank_code, m.grams, to_code, m.received_g),
        )


def _money_differences(session: Session, money: dict[tuple[str, str], int]) -> list[Problem]:
    out: list[Problem] = []
    found_money = {
        (t, a): int(v)
        for t, a, v in session.execute(
            select(
                JournalEntry.txn_ref, JournalEntry.account, func.sum(JournalEntry.amount_idr)
            ).group_by(JournalEntry.txn_ref, JournalEntry.account)
        )
    }
    for key in sorted(set(money) | set(found_money)):
        want, got = money.get(key, 0), found_money.get(key, 0)
        if want != got:
            out.append(
                Problem("entries", f"money {key[0]} {key[1]}", f"expected Rp{want}, found Rp{got}")
            )
    return out


def _stock_differences(session: Session, stock: dict[tuple[str, str, int], int]) -> list[Problem]:
    out: list[Problem] = []
    found_stock = {
        (t, a, c): int(g)
        for t, a, c, g in session.execute(
            select(
                StockEntry.txn_ref,
                StockEntry.account,
                StockEntry.category_id,
                func.sum(StockEntry.grams),
            ).group_by(StockEntry.txn_ref, StockEntry.account, StockEntry.category_id)
        )
    }
    for skey in sorted(set(stock) | set(found_stock)):
        want, got = stock.get(skey, 0), found_stock.get(skey, 0)
        if want != got:
            out.append(
                Problem(
                    "entries",
                    f"stock {skey[0]} {skey[1]} category {skey[2]}",
                    f"expected {want} g, found {got} g",
                )
            )
    return out


def _nothing_negative(session: Session) -> list[Problem]:
    out: list[Problem] = []
    balances: dict[str, int] = {
        account: int(total)
        for account, total in session.execute(
            select(JournalEntry.account, func.sum(JournalEntry.amount_idr))
            .where(JournalEntry.account.startswith("member:", autoescape=True))
            .group_by(JournalEntry.account)
        )
    }
    pending = session.execute(
        select(Member.member_no, func.sum(Withdrawal.amount_idr))
        .join(Member, Withdrawal.member_id == Member.id)
        .where(Withdrawal.status.in_(OPEN_WITHDRAWALS))
        .group_by(Member.member_no)
    )
    reserved = {member_account(no): int(v) for no, v in pending}
    for account in sorted(set(balances) | set(reserved)):
        balance = int(balances.get(account, 0))
        if balance < 0 or balance < reserved.get(account, 0):
            out.append(
                Problem(
                    "negative",
                    account,
                    f"balance Rp{balance}, open withdrawals Rp{reserved.get(account, 0)}",
                )
            )
    stock = session.execute(
        select(StockEntry.account, StockEntry.category_id, func.sum(StockEntry.grams))
        .where(StockEntry.account.startswith("stock:", autoescape=True))
        .group_by(StockEntry.account, StockEntry.category_id)
        .having(func.sum(StockEntry.grams) < 0)
    )
    out += [Problem("negative", f"{a} category {c}", f"{int(g)} g") for a, c, g in stock]
    return out


def _deposit_amounts(session: Session) -> list[Problem]:
    rows = session.execute(
        select(
            Deposit.event_id,
            Category.unit,
            Deposit.net_g,
            Deposit.quantity,
            Deposit.price_per_kg_idr,
            Deposit.amount_idr,
        ).join(Category, Deposit.category_id == Category.id)
    )
    out = []
    for event_id, unit, net_g, quantity, price, amount in rows:
        count = net_g if unit == Unit.KG or quantity is None else quantity
        want = amount_for_quantity(unit, count, price)
        if amount != want:
            out.append(
                Problem(
                    "amount", f"deposit {event_id}", f"Rp{amount}, its count prices at Rp{want}"
                )
            )
    return out


def _hierarchy(session: Session) -> list[Problem]:
    kinds: dict[int, str] = {i: k for i, k in session.execute(select(Bank.id, Bank.kind))}
    out = []
    for bank in session.scalars(select(Bank).order_by(Bank.code)):
        parent_kind = kinds.get(bank.parent_id) if bank.parent_id is not None else None
        problem = hierarchy_problem(bank.kind, parent_kind, bank.use_parent_price)
        if problem is not None:
            out.append(Problem("hierarchy", f"bank {bank.code}", problem))
    return out


def verify_summaries(session: Session) -> list[Problem]:
    """The summary part of :func:`verify` alone: the daily summary and its monthly roll-up
    against the deposits (what :func:`rebuild_deposit_days` makes)."""
    return _deposit_days(session)


def _deposit_days(session: Session) -> list[Problem]:
    want = day_totals(session)
    want_months: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for (day, bank_id, category_id, manual), (grams, count) in want.items():
        acc = want_months[day.replace(day=1), bank_id, category_id, manual]
        acc[0] += grams
        acc[1] += count
    banks: dict[int, str] = {i: c for i, c in session.execute(select(Bank.id, Bank.code))}
    categories: dict[int, str] = {
        i: c for i, c in session.execute(select(Category.id, Category.code))
    }
    out = []
    for table, name, wanted, label in (
        (DepositDay, "local_date", want, date.isoformat),
        (
            DepositMonth,
            "month",
            {k: (g, n) for k, (g, n) in want_months.items()},
            lambda d: d.isoformat()[:7],
        ),
    ):
        cols = cast(Table, table.__table__).c
        found = {
            (_as_date(day), b, c, bool(m)): (int(g), int(n))
            for day, b, c, m, g, n in session.execute(
                select(
                    cols[name],
                    cols.bank_id,
                    cols.category_id,
                    cols.manual,
                    cols.net_g,
                    cols.deposits,
                )
            )
        }
        for key in sorted(set(wanted) | set(found)):
            (want_g, want_n), (got_g, got_n) = wanted.get(key, (0, 0)), found.get(key, (0, 0))
            if (want_g, want_n) != (got_g, got_n):
                day, bank_id, category_id, manual = key
                out.append(
                    Problem(
                        "summary",
                        f"{table.__tablename__} {label(day)} {banks.get(bank_id, bank_id)} "
                        f"{categories.get(category_id, category_id)} "
                        f"{'estimated' if manual else 'measured'}",
                        f"expected {want_g} g in {want_n} deposits, found {got_g} g in {got_n}",
                    )
                )
    return out


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))
