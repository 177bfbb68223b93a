"""Accounts and their balances: the names of the journal's accounts, a member's balance and what
they may still withdraw, a bank's stock, the entries an operation writes, and the row locks
under which an operation that lowers a balance or a stock checks it.

The balance rule lives here and only here: a member's balance is the sum of the journal entries
of their account (:func:`member_account`), what they may withdraw that balance minus their open
withdrawals (requested or approved). The API's balance read (:func:`member_account_summary`)
and every check before a withdrawal or a void use the same expressions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Select, bindparam, func, select
from sqlalchemy.orm import Session

from wastebank.formats import kg, rupiah
from wastebank.ledger.errors import InsufficientBalance, InsufficientStock
from wastebank.ledger.models import (
    OPEN_WITHDRAWALS,
    Bank,
    Category,
    Deposit,
    JournalEntry,
    Member,
    StockEntry,
    Withdrawal,
)


def member_account(member_no: str) -> str:
    return f"member:{member_no}"


def bank_purchase_account(bank_code: str) -> str:
    return f"bank:{bank_code}:waste_purchases"


def bank_funds_account(bank_code: str, method: str) -> str:
    """Where a bank's money is: ``cash``, or the account behind transfers and e-wallets."""
    return f"bank:{bank_code}:funds:{method}"


def bank_sales_account(bank_code: str) -> str:
    return f"bank:{bank_code}:sales"


def stock_account(bank_code: str) -> str:
    return f"stock:{bank_code}"


def stock_flow_account(kind: str, bank_code: str) -> str:
    """The other leg of a stock entry: ``intake``, ``sold``, ``residue``, ``burned``,
    ``shrinkage``."""
    return f"{kind}:{bank_code}"


def _balance(account: Any) -> Select[int]:
    """The balance of ``account`` (a name, or a bound parameter): the sum of its entries."""
    return select(func.coalesce(func.sum(JournalEntry.amount_idr), 0)).where(
        JournalEntry.account == account
    )


def _pending(member_id: Any) -> Select[int]:
    """Rupiah reserved by the open withdrawals of ``member_id`` (an id, or a column)."""
    return select(func.coalesce(func.sum(Withdrawal.amount_idr), 0)).where(
        Withdrawal.member_id == member_id, Withdrawal.status.in_(OPEN_WITHDRAWALS)
    )


def member_balance(session: Session, member_no: str) -> int:
    total = session.scalar(_balance(member_account(member_no)))
    return int(total or 0)


def member_balances(session: Session, member_nos: Iterable[str]) -> dict[str, int]:
    """The balances of several members (by member number) in one query; a member without
    entries is absent (their balance is 0)."""
    accounts = {member_account(no): no for no in member_nos}
    if not accounts:
        return {}
    rows = session.execute(
        select(JournalEntry.account, func.sum(JournalEntry.amount_idr))
        .where(JournalEntry.account.in_(list(accounts)))
        .group_by(JournalEntry.account)
    )
    return {accounts[account]: int(total) for account, total in rows}


class MemberAccount(NamedTuple):
    """A member's account as a balance read shows it: who and where, and the figures."""

    member_id: int
    name: str
    bank_id: int
    bank_code: str
    city_id: int
    balance_idr: int
    pending_idr: int
    deposits: int

    @property
    def available_idr(self) -> int:
        """What the member may still withdraw: balance minus open withdrawals."""
        return self.balance_idr - self.pending_idr


# A balance is the most frequent read (a nasabah's phone): the member, their bank and its
# city, and the figures (the balance and the open withdrawals as member_balance and
# member_pending compute them, and the member's deposits) in one statement built once, instead
# of the ORM loads and four queries that cost several times the SQL's own time.
_ACCOUNT = (
    select(
        Member.id,
        Member.name,
        Member.bank_id,
        Bank.code,
        Bank.city_id,
        _balance(bindparam("account")).scalar_subquery(),
        _pending(Member.id).scalar_subquery(),
        select(func.count())
        .select_from(Deposit)
        .where(Deposit.member_id == Member.id)
        .scalar_subquery(),
    )
    .join(Bank, Bank.id == Member.bank_id)
    .where(Member.member_no == bindparam("member_no"))
)


def member_account_summary(session: Session, member_no: str) -> MemberAccount | None:
    """The member's account (:class:`MemberAccount`) in one statement; None for no such
    member. Core rows on the session's connection, without the ORM's execution path."""
    row = (
        session.connection()
        .execute(_ACCOUNT, {"member_no": member_no, "account": member_account(member_no)})
        .one_or_none()
    )
    if row is None:
        return None
    member_id, name, bank_id, bank_code, city_id, balance, pending, deposits = row
    return MemberAccount(
        member_id, name, bank_id, bank_code, city_id, int(balance), int(pending), int(deposits)
    )


def lock_member(session: Session, member_id: int) -> None:
    """Hold the member's row until the transaction ends: every operation that lowers a member's
    available balance takes it first, so their check-then-write steps run one at a time.
    PostgreSQL: ``SELECT ... FOR UPDATE``. SQLite ignores FOR UPDATE, but a writer engine begins
    every transaction IMMEDIATE (see :func:`make_engine`): one writer at a time, whole ledger."""
    session.execute(select(Member.id).where(Member.id == member_id).with_for_update())


def lock_bank(session: Session, bank_id: int) -> None:
    """Hold the bank's row: every operation that lowers its stock (or sets its prices) takes it
    first. Lock order, to never deadlock: a member before a bank."""
    session.execute(select(Bank.id).where(Bank.id == bank_id).with_for_update())


def journal_rows(txn: str, legs: Sequence[tuple[str, int]], memo: str) -> list[JournalEntry]:
    return [JournalEntry(txn_ref=txn, account=a, amount_idr=v, memo=memo[:200]) for a, v in legs]


def stock_rows(
    txn: str, category_id: int, legs: Sequence[tuple[str, int]], memo: str
) -> list[StockEntry]:
    return [
        StockEntry(txn_ref=txn, account=a, category_id=category_id, grams=g, memo=memo[:200])
        for a, g in legs
    ]


def member_pending(session: Session, member_id: int) -> int:
    """Rupiah reserved by the member's open (requested or approved) withdrawals."""
    total = session.scalar(_pending(member_id))
    return int(total or 0)


def available(session: Session, member: Member) -> int:
    """What the member may still withdraw: the balance less the open withdrawals (the rule
    :attr:`MemberAccount.available_idr` reads in one statement)."""
    return member_balance(session, member.member_no) - member_pending(session, member.id)


def check_available(session: Session, member: Member, what: tuple[str, str]) -> None:
    """Refuse (:class:`InsufficientBalance`) when the member's available balance is below zero
    after ``what`` (its name in Bahasa Indonesia, then English) was written in this
    transaction."""
    available_idr = available(session, member)
    if available_idr < 0:
        balance = member_balance(session, member.member_no)
        left, held = rupiah(available_idr), rupiah(balance - available_idr)
        raise InsufficientBalance(
            f"{what[0]} akan menyisakan {left} yang dapat ditarik nasabah {member.member_no} "
            f"(saldo {rupiah(balance)}, penarikan terbuka {held}) / {what[1]} would leave member "
            f"{member.member_no} {left} available (balance {rupiah(balance)}, open withdrawals "
            f"{held})"
        )


def stock_of(session: Session, bank_code: str, category_id: int) -> int:
    """Grams of a category a bank holds: the sum of its stock entries."""
    total = session.scalar(
        select(func.coalesce(func.sum(StockEntry.grams), 0)).where(
            StockEntry.account == stock_account(bank_code), StockEntry.category_id == category_id
        )
    )
    return int(total or 0)


def bank_stock(session: Session, bank_code: str) -> dict[str, int]:
    """Grams per category code that a bank holds (categories it never held are absent)."""
    rows = session.execute(
        select(Category.code, func.sum(StockEntry.grams))
        .join(Category, StockEntry.category_id == Category.id)
        .where(StockEntry.account == stock_account(bank_code))
        .group_by(Category.code)
        .order_by(Category.code)
    )
    return {code: int(grams) for code, grams in rows}


def check_stock(session: Session, bank: Bank, category_id: int, what: tuple[str, str]) -> None:
    """Refuse what was written in this transaction if it left ``bank`` holding less than
    nothing of the category: ``what`` names it in Bahasa Indonesia, then English."""
    held = stock_of(session, bank.code, category_id)
    if held < 0:
        category = session.get(Category, category_id)
        id_name, en_name = (
            (category.name_id, category.name_en) if category else (category_id, category_id)
        )
        raise InsufficientStock(
            f"{what[0]} akan menyisakan stok {id_name} di {bank.name} {kg(held)} / {what[1]} "
            f"would leave {bank.name} with {kg(held)} of {en_name}"
        )
