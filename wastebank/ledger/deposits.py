"""Applying scale deposits: a batch in one transaction, each deposit exactly once by its event id,
priced at the price in force, with its journal and stock entries and the daily summary."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Insert, Table, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from wastebank.ledger.applied import AppliedDeposit, Outcome
from wastebank.ledger.balances import (
    bank_purchase_account,
    member_account,
    stock_account,
    stock_flow_account,
)
from wastebank.ledger.errors import DepositConflict, DepositOverLimit, DepositRejected
from wastebank.ledger.models import (
    Bank,
    Card,
    Category,
    Deposit,
    JournalEntry,
    Kecamatan,
    Kelurahan,
    Member,
    StockEntry,
    Unit,
)
from wastebank.ledger.pricing import PriceHistory, in_force, no_price, price_history
from wastebank.ledger.registry import get_member
from wastebank.ledger.summary import (
    ON_CONFLICT_INSERTS,
    DayKey,
    add_to_days,
    local_day_key,
    zone_of_bank,
)
from wastebank.messages import DepositEvent
from wastebank.money_rules import DEFAULT_RULES, CityRules, MoneyRules, amount_for


def apply_deposits(
    session: Session, events: Sequence[DepositEvent], *, rules: MoneyRules = DEFAULT_RULES
) -> list[AppliedDeposit | DepositRejected | DepositConflict]:
    """Apply a batch in the caller's transaction, each deposit exactly once by its event id.

    The result for each event, in order, is its outcome or its rejection; one that is rejected
    (unknown card, no price, ...) leaves the others applied. An event already in the ledger, or
    one seen earlier in the batch, is a DUPLICATE described as it was applied. Reference data
    (banks, cards, members, categories, prices) is read once per batch, the event ids already
    applied in one query per chunk; the deposits, their journal entries and their stock entries
    are then written with one multi-row INSERT each. A deposit another writer applied between
    our read and our write (the insert skips it on the unique event id) is reported DUPLICATE
    and gets no entries. A known id (in the ledger or earlier in the batch) is a DUPLICATE only
    when it means the same deposit (:func:`_differences`); with other content it is a
    :class:`DepositConflict`, and the ledger keeps what it had. A new deposit heavier than its
    scale's limit in ``rules`` (:mod:`wastebank.money_rules`) is a :class:`DepositOverLimit`
    (a :class:`DepositRejected`). The daily summary (:class:`DepositDay`) gets one upsert per
    local day, bank and category of the batch.
    """
    ref = References(session, rules)
    out, planned = _plan(ref, events)
    if planned:
        inserted = _write(session, ref, planned)
        lost = [event_id for event_id in planned if event_id not in inserted]
        if lost:
            out = _as_the_winners_applied(ref, events, out, lost)
    return out


Planned = dict[str, tuple[dict[str, Any], AppliedDeposit]]  # event id -> deposit row, outcome


def _plan(
    ref: References, events: Sequence[DepositEvent]
) -> tuple[list[AppliedDeposit | DepositRejected | DepositConflict], Planned]:
    """Each event's outcome as if the batch were written now, and the rows of the new ones: a
    known id is a DUPLICATE (the same deposit) or a conflict; a new one is planned or rejected."""
    known = ref.applied([ev.event_id for ev in events])
    out: list[AppliedDeposit | DepositRejected | DepositConflict] = []
    planned: Planned = {}
    for ev in events:
        done = known.get(ev.event_id)
        if done is None and (earlier := planned.get(ev.event_id)) is not None:
            done = replace(earlier[1], outcome=Outcome.DUPLICATE)
        if done is not None:
            differences = _differences(ref, ev, done)
            out.append(DepositConflict(ev.event_id, done, differences) if differences else done)
            continue
        try:
            planned[ev.event_id] = plan = ref.plan(ev)
        except DepositRejected as rejected:
            out.append(rejected)
            continue
        out.append(plan[1])
    return out, planned


def _write(session: Session, ref: References, planned: Planned) -> set[str]:
    """Insert the planned deposits (skipping any another writer inserted meanwhile) and the
    entries and summary rows of those inserted; return the event ids inserted."""
    # Rows go in in event-id order: two writers with overlapping batches then wait for each
    # other's uncommitted ids in one global order and cannot deadlock (PostgreSQL aborted
    # one of two ingesters given the same deposits in opposite orders).
    inserted = _insert_deposits(
        session, sorted((row for row, _ in planned.values()), key=lambda r: r["event_id"])
    )
    entries: list[dict[str, Any]] = []
    stock: list[dict[str, Any]] = []
    days: defaultdict[DayKey, list[int]] = defaultdict(lambda: [0, 0])
    for event_id, (row, applied) in planned.items():
        if event_id in inserted:
            entries.extend(_journal_entries(applied))
            stock.extend(_stock_entries(applied, row["category_id"]))
            day = days[ref.day_key(row)]
            day[0] += row["net_g"]
            day[1] += 1
    if entries:
        session.execute(insert(_JOURNAL), entries)
        session.execute(insert(_STOCK), stock)
        add_to_days(session, days)
    return inserted


def _as_the_winners_applied(
    ref: References,
    events: Sequence[DepositEvent],
    out: list[AppliedDeposit | DepositRejected | DepositConflict],
    lost: list[str],
) -> list[AppliedDeposit | DepositRejected | DepositConflict]:
    """``out`` with the deposits in ``lost`` described as the writer who inserted them first
    applied them: DUPLICATEs, or conflicts where theirs differs from ours."""
    # Another ingester applied these between our read and our write: its rows stand.
    winners = ref.applied(lost)
    if missing := [event_id for event_id in lost if event_id not in winners]:
        raise RuntimeError(f"deposits neither inserted nor found: {missing[:5]}")
    out = [winners.get(r.event_id, r) if isinstance(r, AppliedDeposit) else r for r in out]
    by_id = {ev.event_id: ev for ev in events}
    for i, r in enumerate(out):
        if isinstance(r, AppliedDeposit) and r.event_id in lost:
            if differences := _differences(ref, by_id[r.event_id], r):
                out[i] = DepositConflict(r.event_id, r, differences)
    return out


def _differences(ref: References, ev: DepositEvent, known: AppliedDeposit) -> list[str]:
    """How ``ev`` differs from the deposit the ledger knows by its id, in what makes a deposit
    (bank, gateway, member, category, grams, time); [] when it means the same deposit. A card
    is compared by the member it belongs to now."""
    try:
        member_no = ref.depositor(ev).member_no
    except DepositRejected:
        member_no = f"? ({ev.card_uid or ev.member_no}: unknown)"
    pairs = (
        ("bank", known.bank_code, ev.bank_code),
        ("gateway", known.gateway_id, ev.gateway_id),
        ("member", known.member_no, member_no),
        ("category", known.category_code, ev.category_code),
        ("net_g", known.net_g, ev.net_g),
        ("measured_at", known.measured_at, ev.measured_at),
    )
    return [f"{name}: {_shown(was)} -> {_shown(now)}" for name, was, now in pairs if was != now]


def _shown(value: object) -> str:
    return value.astimezone(UTC).isoformat() if isinstance(value, datetime) else str(value)


_DEPOSIT = cast(Table, Deposit.__table__)
_JOURNAL = cast(Table, JournalEntry.__table__)
_STOCK = cast(Table, StockEntry.__table__)


def _insert_skipping_applied(dialect: str) -> Insert | None:
    """``INSERT INTO deposit ... ON CONFLICT (event_id) DO NOTHING RETURNING event_id`` for
    ``dialect``, or None where it has no such statement."""
    make_insert = ON_CONFLICT_INSERTS.get(dialect)
    if make_insert is None:
        return None
    return (
        make_insert(_DEPOSIT)
        .on_conflict_do_nothing(index_elements=[_DEPOSIT.c.event_id])
        .returning(_DEPOSIT.c.event_id)
    )


def _insert_deposits(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert ``rows`` into ``deposit``, skipping each whose event id is already there (a
    concurrent writer's); return the event ids actually inserted."""
    dialect = session.get_bind().dialect
    stmt = _insert_skipping_applied(dialect.name)
    if stmt is not None and dialect.insert_executemany_returning:  # SQLite >= 3.35
        return set(session.execute(stmt, rows).scalars())
    inserted: set[str] = set()
    for row in rows:
        try:
            with session.begin_nested():
                session.execute(insert(_DEPOSIT), row)
        except IntegrityError:
            if session.scalar(select(Deposit.id).where(Deposit.event_id == row["event_id"])):
                continue  # another writer's: reported as a duplicate by the caller
            raise
        inserted.add(row["event_id"])
    return inserted


def _journal_entries(d: AppliedDeposit) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two legs of an applied deposit: the member is credited, the bank's purchases debited."""
    txn = f"deposit:{d.event_id}"
    memo = f"{d.category_code} {d.net_g} g @ Rp{d.price_per_kg_idr}/kg"
    return (
        {
            "txn_ref": txn,
            "account": member_account(d.member_no),
            "amount_idr": d.amount_idr,
            "memo": memo,
        },
        {
            "txn_ref": txn,
            "account": bank_purchase_account(d.bank_code),
            "amount_idr": -d.amount_idr,
            "memo": memo,
        },
    )


def _stock_entries(d: AppliedDeposit, category_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The two stock legs of an applied deposit: into the bank's stock, out of members' intake."""
    txn = f"deposit:{d.event_id}"
    return (
        {
            "txn_ref": txn,
            "account": stock_account(d.bank_code),
            "category_id": category_id,
            "grams": d.net_g,
            "memo": d.member_no,
        },
        {
            "txn_ref": txn,
            "account": stock_flow_account("intake", d.bank_code),
            "category_id": category_id,
            "grams": -d.net_g,
            "memo": d.member_no,
        },
    )


_CHUNK = 500  # event ids per IN (...) query


class References:
    """The reference rows one batch needs, each read once, and the money rules it is held to."""

    def __init__(self, session: Session, rules: MoneyRules = DEFAULT_RULES) -> None:
        self.s = session
        self.rules = rules
        self.banks: dict[str, Bank | None] = {}
        self.cards: dict[str, Member | None] = {}
        self.members: dict[str, Member | None] = {}
        self.categories: dict[str, Category | None] = {}
        self.prices: dict[tuple[int, int], PriceHistory] = {}
        self.zones: dict[int, ZoneInfo] = {}  # bank id -> its city's zone

    def applied(self, event_ids: Sequence[str]) -> dict[str, AppliedDeposit]:
        """The deposits among ``event_ids`` already in the ledger, described as DUPLICATEs."""
        ids = list(dict.fromkeys(event_ids))
        found: dict[str, AppliedDeposit] = {}
        for start in range(0, len(ids), _CHUNK):
            stmt = (
                select(
                    Deposit.event_id,
                    Member.member_no,
                    Bank.code,
                    Kecamatan.name,
                    Category.code,
                    Deposit.net_g,
                    Deposit.amount_idr,
                    Deposit.price_per_kg_idr,
                    Deposit.measured_at,
                    Deposit.gateway_id,
                    Deposit.clock_synced,
                )
                .select_from(Deposit)
                .join(Member, Deposit.member_id == Member.id)
                .join(Bank, Deposit.bank_id == Bank.id)
                .join(Kelurahan, Bank.kelurahan_id == Kelurahan.id)
                .join(Kecamatan, Kelurahan.kecamatan_id == Kecamatan.id)
                .join(Category, Deposit.category_id == Category.id)
                .where(Deposit.event_id.in_(ids[start : start + _CHUNK]))
            )
            for row in self.s.execute(stmt):
                found[row[0]] = AppliedDeposit(
                    Outcome.DUPLICATE,
                    *row[:8],
                    measured_at=row[8],
                    gateway_id=row[9],
                    clock_synced=row[10],
                )
        return found

    def bank(self, code: str) -> Bank | None:
        """The bank, with its kelurahan and kecamatan (the InfluxDB tag) and its city (the zone
        of its local days) in the same query."""
        if code not in self.banks:
            bank = self.s.scalar(
                select(Bank)
                .options(
                    joinedload(Bank.kelurahan).joinedload(Kelurahan.kecamatan),
                    joinedload(Bank.city),
                )
                .where(Bank.code == code)
            )
            self.banks[code] = bank
            if bank is not None:
                self.zones[bank.id] = ZoneInfo(bank.city.timezone)
        return self.banks[code]

    def limits(self, bank: Bank) -> CityRules:
        """The money rules in force in ``bank``'s city (its city is loaded with it)."""
        return self.rules.city(bank.city.code)

    def day_key(self, row: dict[str, Any]) -> DayKey:
        """The daily-summary group of a planned ``deposit`` row (its bank was planned here)."""
        return local_day_key(
            row["measured_at"],
            self.zones[row["bank_id"]],
            row["bank_id"],
            row["category_id"],
            row.get("manual", False),
        )

    def category(self, code: str) -> Category | None:
        if code not in self.categories:
            self.categories[code] = self.s.scalar(select(Category).where(Category.code == code))
        return self.categories[code]

    def depositor(self, ev: DepositEvent) -> Member:
        if ev.card_uid is not None:
            if ev.card_uid not in self.cards:
                card = self.s.get(Card, ev.card_uid)
                self.cards[ev.card_uid] = card.member if card else None
            member = self.cards[ev.card_uid]
            if member is None:
                raise DepositRejected(f"unknown card {ev.card_uid!r}")
            return member
        no = ev.member_no or ""
        if no not in self.members:
            self.members[no] = get_member(self.s, no)
        found = self.members[no]
        if found is None:
            raise DepositRejected(f"unknown member {ev.member_no!r}")
        return found

    def price(self, bank: Bank, category: Category, at: datetime) -> int | None:
        """The price in force at ``at`` on the list ``bank`` buys at (its induk's, if it uses
        its induk's prices)."""
        key = (bank.price_bank_id, category.id)
        if key not in self.prices:
            self.prices[key] = price_history(self.s, *key)
        return in_force(self.prices[key], at)

    def plan(
        self, ev: DepositEvent, *, check_limits: bool = True, event_id: str | None = None
    ) -> tuple[dict[str, Any], AppliedDeposit]:
        """The ``deposit`` row for ``ev`` and its APPLIED outcome, or :class:`DepositRejected`
        (:class:`DepositOverLimit` beyond its scale's limit, unless ``check_limits`` is off: an
        operator resolving such a dead letter). ``event_id``: the row's id when it is not the
        event's (a resolved conflict's server-issued ``R-...``, which no device event may carry)."""
        event_id = ev.event_id if event_id is None else event_id
        bank = self.bank(ev.bank_code)
        if bank is None:
            raise DepositRejected(f"unknown bank {ev.bank_code!r}")
        member = self.depositor(ev)
        if member.bank_id != bank.id:
            who = f"card {ev.card_uid}" if ev.card_uid else f"member {ev.member_no}"
            raise DepositRejected(f"{who} belongs to member {member.member_no} of another bank")
        category = self.category(ev.category_code)
        if category is None:
            raise DepositRejected(f"unknown category {ev.category_code!r}")
        if category.unit != Unit.KG:
            raise DepositRejected(
                f"category {category.code} is counted per {category.unit}, not weighed: "
                "an attendant enters it with its count"
            )
        price = self.price(bank, category, ev.measured_at)
        if price is None:
            raise DepositRejected(no_price(bank, category, ev.measured_at))
        if check_limits and (
            breach := self.limits(bank).scale_breach(ev.gateway_id, ev.scale_id, ev.net_g)
        ):
            raise DepositOverLimit(breach)
        amount = amount_for(ev.net_g, price)
        row = {
            "event_id": event_id,
            "member_id": member.id,
            "bank_id": bank.id,
            "category_id": category.id,
            "net_g": ev.net_g,
            "tare_g": ev.tare_g,
            "price_per_kg_idr": price,
            "amount_idr": amount,
            "measured_at": ev.measured_at,
            "gateway_id": ev.gateway_id,
            "scale_id": ev.scale_id,
            "protocol": ev.protocol,
            "stable": ev.stable,
            "raw_frames": json.dumps(ev.raw_frames),
            "flow": ev.flow,
            "calibration_version": ev.calibration_version,
            "clock_synced": ev.clock_synced,
        }
        applied = AppliedDeposit(
            outcome=Outcome.APPLIED,
            event_id=event_id,
            member_no=member.member_no,
            bank_code=bank.code,
            kecamatan=bank.kecamatan,
            category_code=category.code,
            net_g=ev.net_g,
            amount_idr=amount,
            price_per_kg_idr=price,
            measured_at=ev.measured_at,
            gateway_id=ev.gateway_id,
            clock_synced=ev.clock_synced,
        )
        return row, applied


def member_deposits(session: Session, member_no: str, limit: int = 100) -> list[Deposit]:
    stmt = (
        select(Deposit)
        .join(Member)
        .where(Member.member_no == member_no)
        .order_by(Deposit.measured_at.desc(), Deposit.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def write_deposit(session: Session, row: dict[str, Any], applied: AppliedDeposit) -> Deposit:
    deposit = Deposit(**row)
    session.add(deposit)
    session.flush()
    session.execute(insert(_JOURNAL), list(_journal_entries(applied)))
    session.execute(insert(_STOCK), list(_stock_entries(applied, row["category_id"])))
    zone = zone_of_bank(session, row["bank_id"])
    key = local_day_key(row["measured_at"], zone, row["bank_id"], row["category_id"], row["manual"])
    add_to_days(session, {key: [row["net_g"], 1]})
    return deposit
