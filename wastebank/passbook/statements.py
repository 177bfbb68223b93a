"""The passbook's data: every money line of a member with its running balance, and a statement of
local dates (opening balance, the lines, closing balance, withdrawals in progress)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.formats import zone_label


class LineKind(StrEnum):
    DEPOSIT = "deposit"  # setoran
    VOID = "void"  # pembatalan: a deposit reversed
    CORRECTION = "correction"  # koreksi: a deposit reversed and replaced (see the replacement)
    WITHDRAWAL = "withdrawal"  # penarikan, paid


LINE_LABELS: dict[LineKind, tuple[str, str]] = {
    LineKind.DEPOSIT: ("Setoran", "Deposit"),
    LineKind.VOID: ("Pembatalan", "Reversal"),
    LineKind.CORRECTION: ("Koreksi", "Correction"),
    LineKind.WITHDRAWAL: ("Penarikan", "Withdrawal"),
}
METHOD_LABELS = {
    ledger.PayoutMethod.CASH: "tunai / cash",
    ledger.PayoutMethod.BANK_TRANSFER: "transfer bank / bank transfer",
    ledger.PayoutMethod.EWALLET: "dompet digital / e-wallet",
}
_ORDER = {LineKind.DEPOSIT: 0, LineKind.VOID: 1, LineKind.CORRECTION: 1, LineKind.WITHDRAWAL: 2}


class StatementLine(BaseModel):
    """One entry of the passbook. ``amount_idr`` is signed (credit > 0, debit < 0) and
    ``balance_idr`` is the balance after it."""

    at: AwareDatetime  # in the city's zone
    kind: LineKind
    label_id: str
    label_en: str
    reference: str  # the deposit's event id (also for its reversal), or withdrawal:<id>
    category_code: str | None = None
    category_name_id: str | None = None
    category_name_en: str | None = None
    unit: str | None = None  # kg, piece, litre
    net_g: int | None = None
    quantity: int | None = None  # pieces or millilitres for a piece or litre category
    price_idr: int | None = None  # per the category's unit
    amount_idr: int
    balance_idr: int
    manual: bool = False
    note: str = ""  # a manual deposit's or a void's reason; a withdrawal's payout method

    @property
    def credit_idr(self) -> int:
        return max(self.amount_idr, 0)

    @property
    def debit_idr(self) -> int:
        return max(-self.amount_idr, 0)


class OpenWithdrawal(BaseModel):
    """A requested or approved withdrawal: reserved from the balance, not paid yet."""

    id: int
    status: str
    amount_idr: int
    method: str
    requested_at: AwareDatetime


class Statement(BaseModel):
    member_no: str
    member_name: str
    bank_code: str
    bank_name: str
    city: str
    timezone: str  # IANA, e.g. Asia/Jayapura
    timezone_label: str  # WIB, WITA, WIT
    period_from: date | None  # local dates, both included; None: from the first entry
    period_to: date | None  # None: up to now
    opening_balance_idr: int
    closing_balance_idr: int
    credits_idr: int  # deposits in the period
    debits_idr: int  # reversals and withdrawals in the period
    deposited_g: int  # weight deposited in the period, less reversed deposits
    lines: list[StatementLine]
    open_withdrawals: list[OpenWithdrawal]  # as of generated_at
    available_idr: int  # balance now less open withdrawals, as of generated_at
    generated_at: AwareDatetime


def city_zone(member: ledger.Member) -> ZoneInfo:
    return ZoneInfo(member.bank.city.timezone)


def period_bounds(
    tz: ZoneInfo, date_from: date | None, date_to: date | None
) -> tuple[datetime | None, datetime | None]:
    """``[start, end)`` in UTC of the local dates ``date_from`` to ``date_to`` (both included)."""
    if date_from is not None and date_to is not None and date_to < date_from:
        raise ValueError(f"the period ends ({date_to}) before it starts ({date_from})")
    start = datetime.combine(date_from, time(0), tz).astimezone(UTC) if date_from else None
    end = (
        datetime.combine(date_to + timedelta(days=1), time(0), tz).astimezone(UTC)
        if date_to
        else None
    )
    return start, end


def member_lines(session: Session, member: ledger.Member, tz: ZoneInfo) -> list[StatementLine]:
    """Every money line of the member, in passbook order, with running balances."""
    unsorted: list[tuple[tuple[datetime, int, int], StatementLine]] = []
    rows = session.execute(
        select(ledger.Deposit, ledger.Category, ledger.DepositVoid)
        .join(ledger.Category, ledger.Deposit.category_id == ledger.Category.id)
        .outerjoin(ledger.DepositVoid, ledger.DepositVoid.deposit_id == ledger.Deposit.id)
        .where(ledger.Deposit.member_id == member.id)
    ).all()
    for d, cat, void in rows:
        details = {
            "reference": d.event_id,
            "category_code": cat.code,
            "category_name_id": cat.name_id,
            "category_name_en": cat.name_en,
            "unit": cat.unit,
            "net_g": d.net_g,
            "quantity": d.quantity,
            "price_idr": d.price_per_kg_idr,
        }
        deposit = StatementLine(
            at=d.measured_at.astimezone(tz),
            kind=LineKind.DEPOSIT,
            label_id=LINE_LABELS[LineKind.DEPOSIT][0],
            label_en=LINE_LABELS[LineKind.DEPOSIT][1],
            amount_idr=d.amount_idr,
            balance_idr=0,
            manual=d.manual,
            note=d.reason or "",
            **details,
        )
        unsorted.append(((d.measured_at, _ORDER[deposit.kind], d.id), deposit))
        if void is None:
            continue
        kind = LineKind.VOID if void.replacement_id is None else LineKind.CORRECTION
        # A gateway clock ahead of the server's could date a deposit after its own void.
        at = max(void.voided_at, d.measured_at)
        reversal = StatementLine(
            at=at.astimezone(tz),
            kind=kind,
            label_id=LINE_LABELS[kind][0],
            label_en=LINE_LABELS[kind][1],
            amount_idr=-d.amount_idr,
            balance_idr=0,
            note=void.reason,
            **details,
        )
        unsorted.append(((at, _ORDER[kind], void.id), reversal))
    for w in session.scalars(
        select(ledger.Withdrawal).where(
            ledger.Withdrawal.member_id == member.id,
            ledger.Withdrawal.status == ledger.WithdrawalStatus.PAID,
        )
    ):
        paid_at = w.paid_at or w.requested_at
        line = StatementLine(
            at=paid_at.astimezone(tz),
            kind=LineKind.WITHDRAWAL,
            label_id=LINE_LABELS[LineKind.WITHDRAWAL][0],
            label_en=LINE_LABELS[LineKind.WITHDRAWAL][1],
            reference=f"withdrawal:{w.id}",
            amount_idr=-w.amount_idr,
            balance_idr=0,
            note=METHOD_LABELS.get(ledger.PayoutMethod(w.method), w.method),
        )
        unsorted.append(((paid_at, _ORDER[LineKind.WITHDRAWAL], w.id), line))
    unsorted.sort(key=lambda pair: pair[0])
    balance = 0
    out = []
    for _, line in unsorted:
        balance += line.amount_idr
        out.append(line.model_copy(update={"balance_idr": balance}))
    return out


def statement(
    session: Session,
    member_no: str,
    date_from: date | None = None,
    date_to: date | None = None,
    *,
    now: datetime | None = None,
) -> Statement:
    """The member's passbook for the local dates ``date_from`` to ``date_to`` (both included;
    None: open-ended). Raises :class:`wastebank.ledger.NotFound` for an unknown member."""
    member = ledger.get_member(session, member_no)
    if member is None:
        raise ledger.NotFound(f"unknown member {member_no!r}")
    tz = city_zone(member)
    start, end = period_bounds(tz, date_from, date_to)
    now = now or ledger.utcnow()
    lines = member_lines(session, member, tz)
    before = [line for line in lines if start is not None and line.at < start]
    inside = [
        line
        for line in lines[len(before) :]
        if (start is None or line.at >= start) and (end is None or line.at < end)
    ]
    opening = before[-1].balance_idr if before else 0
    closing = inside[-1].balance_idr if inside else opening
    open_rows = session.scalars(
        select(ledger.Withdrawal)
        .where(
            ledger.Withdrawal.member_id == member.id,
            ledger.Withdrawal.status.in_(ledger.OPEN_WITHDRAWALS),
        )
        .order_by(ledger.Withdrawal.requested_at, ledger.Withdrawal.id)
    ).all()
    balance_now = lines[-1].balance_idr if lines else 0
    deposited = sum(
        (line.net_g or 0) * (1 if line.kind is LineKind.DEPOSIT else -1)
        for line in inside
        if line.kind is not LineKind.WITHDRAWAL
    )
    return Statement(
        member_no=member.member_no,
        member_name=member.name,
        bank_code=member.bank.code,
        bank_name=member.bank.name,
        city=member.bank.city.name,
        timezone=tz.key,
        timezone_label=zone_label(tz, now),
        period_from=date_from,
        period_to=date_to,
        opening_balance_idr=opening,
        closing_balance_idr=closing,
        credits_idr=sum(line.credit_idr for line in inside),
        debits_idr=sum(line.debit_idr for line in inside),
        deposited_g=deposited,
        lines=inside,
        open_withdrawals=[
            OpenWithdrawal(
                id=w.id,
                status=w.status,
                amount_idr=w.amount_idr,
                method=w.method,
                requested_at=w.requested_at.astimezone(tz),
            )
            for w in open_rows
        ],
        available_idr=balance_now - sum(w.amount_idr for w in open_rows),
        generated_at=now.astimezone(tz),
    )
