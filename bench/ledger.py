"""Ledger throughput: ``ledger.apply_deposits`` against the per-deposit-savepoint path it replaced.

Each path gets its own fresh SQLite ledger (a temporary file, the engine of ``make_engine``: WAL,
synchronous=FULL, BEGIN IMMEDIATE) seeded with the demo city, and applies the same N deposits by
member AMB-0001 at bs-batu-merah (as bench/ingest.py builds them) in batches of B, one transaction
and one commit per batch, as the ingester does. Timed: the calls only (events are built before).
Then the same N again, all duplicates now (a redelivery after a crash), through each path.

The baseline is the code apply_deposits had before: one SAVEPOINT and one ORM flush per deposit
(kept below, verbatim but for names). Both paths must return the same outcomes and leave the same
balances; the script checks that before it prints the figures.

    .venv/bin/python bench/ledger.py [--n 20000] [--batch 5000] [--quick]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from wastebank import ledger
from wastebank.ledger import (
    AppliedDeposit,
    Bank,
    Card,
    Category,
    Deposit,
    DepositConflict,
    DepositRejected,
    JournalEntry,
    Member,
    Outcome,
    Price,
)
from wastebank.messages import DepositEvent
from wastebank.seed import seed_demo

GATEWAYS = 10
GOAL_DEPOSITS_S = 2_000  # end to end; the ledger's share must leave room for MQTT and InfluxDB

Result = AppliedDeposit | DepositRejected | DepositConflict
# Sequence: the savepoint path's list holds no conflicts, and a list is invariant.
Apply = Callable[[Session, Sequence[DepositEvent]], Sequence[Result]]


def deposit_events(n: int, base: datetime) -> list[DepositEvent]:
    """``n`` valid deposits by member AMB-0001 (demo city) from GATEWAYS gateways."""
    out = []
    for i in range(n):
        gateway, seq = f"gw-b{i % GATEWAYS:02d}", i // GATEWAYS
        out.append(
            DepositEvent(
                event_id=f"{gateway}-{seq}",
                gateway_id=gateway,
                seq=seq,
                bank_code="bs-batu-merah",
                scale_id="scale-01",
                card_uid="04A1B2C3D4",
                category_code="pet",
                net_g=500 + i % 2000,
                stable=True,
                protocol="gs_nt",
                measured_at=base + timedelta(seconds=i),
                raw_frames=["ST,GS,+0001.25kg"],
            )
        )
    return out


# ---- the baseline: apply_deposits as it was, a savepoint and an ORM flush per deposit ---------


def apply_deposits_savepoints(
    session: Session, events: Sequence[DepositEvent]
) -> list[AppliedDeposit | DepositRejected]:
    ids = [ev.event_id for ev in events]
    known: dict[str, Deposit] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        known.update(
            (d.event_id, d)
            for d in session.scalars(select(Deposit).where(Deposit.event_id.in_(chunk)))
        )
    ref = _OldReferences(session)
    out: list[AppliedDeposit | DepositRejected] = []
    for ev in events:
        if ev.event_id in known:
            out.append(ref.describe(known[ev.event_id], Outcome.DUPLICATE))
            continue
        try:
            with session.begin_nested():
                deposit = ref.deposit(ev)
        except DepositRejected as rejected:
            out.append(rejected)
            continue
        except IntegrityError:
            winner = session.scalar(select(Deposit).where(Deposit.event_id == ev.event_id))
            if winner is None:
                raise
            known[ev.event_id] = winner
            out.append(ref.describe(winner, Outcome.DUPLICATE))
            continue
        known[ev.event_id] = deposit
        out.append(ref.describe(deposit, Outcome.APPLIED))
    return out


class _OldReferences:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.banks: dict[str, Bank | None] = {}
        self.cards: dict[str, Member | None] = {}
        self.members: dict[str, Member | None] = {}
        self.categories: dict[str, Category | None] = {}
        self.prices: dict[tuple[int, int], list[tuple[datetime, int]]] = {}
        self.member_nos: dict[int, str] = {}
        self.bank_rows: dict[int, Bank] = {}
        self.category_codes: dict[int, str] = {}

    def bank(self, code: str) -> Bank | None:
        if code not in self.banks:
            self.banks[code] = self.s.scalar(select(Bank).where(Bank.code == code))
        return self.banks[code]

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
            self.members[no] = ledger.get_member(self.s, no)
        found = self.members[no]
        if found is None:
            raise DepositRejected(f"unknown member {ev.member_no!r}")
        return found

    def price(self, bank: Bank, category: Category, at: datetime) -> int | None:
        key = (bank.id, category.id)
        if key not in self.prices:
            rows = self.s.execute(
                select(Price.effective_from, Price.price_per_kg_idr)
                .where(Price.bank_id == bank.id, Price.category_id == category.id)
                .order_by(Price.effective_from.desc())
            ).all()
            self.prices[key] = [(r[0], int(r[1])) for r in rows]
        return next((p for since, p in self.prices[key] if since <= at), None)

    def deposit(self, ev: DepositEvent) -> Deposit:
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
        price = self.price(bank, category, ev.measured_at)
        if price is None:
            raise DepositRejected(
                f"bank {bank.code} has no price for {category.code} at {ev.measured_at.isoformat()}"
            )
        amount = ledger.amount_for(ev.net_g, price)
        deposit = Deposit(
            event_id=ev.event_id,
            member_id=member.id,
            bank_id=bank.id,
            category_id=category.id,
            net_g=ev.net_g,
            tare_g=ev.tare_g,
            price_per_kg_idr=price,
            amount_idr=amount,
            measured_at=ev.measured_at,
            gateway_id=ev.gateway_id,
            scale_id=ev.scale_id,
            protocol=ev.protocol,
            stable=ev.stable,
            raw_frames=json.dumps(ev.raw_frames),
            flow=ev.flow,
            calibration_version=ev.calibration_version,
        )
        txn = f"deposit:{ev.event_id}"
        memo = f"{category.code} {ev.net_g} g @ Rp{price}/kg"
        self.s.add(deposit)
        self.s.add(
            JournalEntry(
                txn_ref=txn,
                account=ledger.member_account(member.member_no),
                amount_idr=amount,
                memo=memo,
            )
        )
        self.s.add(
            JournalEntry(
                txn_ref=txn,
                account=ledger.bank_purchase_account(bank.code),
                amount_idr=-amount,
                memo=memo,
            )
        )
        self.s.flush()
        self.member_nos[member.id] = member.member_no
        self.bank_rows[bank.id] = bank
        self.category_codes[category.id] = category.code
        return deposit

    def describe(self, d: Deposit, outcome: Outcome) -> AppliedDeposit:
        member_no = self.member_nos.get(d.member_id) or d.member.member_no
        bank = self.bank_rows.get(d.bank_id) or d.bank
        category = self.category_codes.get(d.category_id) or d.category.code
        self.member_nos[d.member_id], self.bank_rows[d.bank_id] = member_no, bank
        self.category_codes[d.category_id] = category
        return AppliedDeposit(
            outcome=outcome,
            event_id=d.event_id,
            member_no=member_no,
            bank_code=bank.code,
            kecamatan=bank.kecamatan,
            category_code=category,
            net_g=d.net_g,
            amount_idr=d.amount_idr,
            price_per_kg_idr=d.price_per_kg_idr,
            measured_at=d.measured_at,
            gateway_id=d.gateway_id,
        )


# ---- the run ----------------------------------------------------------------------------------


def timed_batches(
    engine: Engine, apply: Apply, events: list[DepositEvent], batch: int
) -> tuple[float, list[Result]]:
    """Seconds to apply ``events`` in batches of ``batch`` (a session each), and the results."""
    results: list[Result] = []
    elapsed = 0.0
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]
        with Session(engine) as session:
            t0 = time.perf_counter()
            results.extend(apply(session, chunk))
            session.commit()  # the caller's unit of work: the ledger commits nothing
            elapsed += time.perf_counter() - t0
    return elapsed, results


def ledger_state(engine: Engine) -> tuple[int, int, int, int, bool]:
    """(deposits, journal entries, Σ deposit amounts, AMB-0001's balance, journal balanced)."""
    with Session(engine) as s:
        return (
            s.scalar(select(func.count()).select_from(Deposit)) or 0,
            s.scalar(select(func.count()).select_from(JournalEntry)) or 0,
            s.scalar(select(func.coalesce(func.sum(Deposit.amount_idr), 0))) or 0,
            ledger.member_balance(s, "AMB-0001"),
            # the money check of ledger.verify (not the tests' helper: this script runs as a
            # file, and bench/before_after.py runs it against trees that have no such helper)
            not any(
                p.check == "unbalanced" and p.subject.startswith("money ") for p in ledger.verify(s)
            ),
        )


def run_path(
    name: str, apply: Apply, events: list[DepositEvent], batch: int, workdir: Path
) -> tuple[float, float, list[Result], tuple[int, int, int, int, bool]]:
    url = f"sqlite:///{workdir / f'{name}.db'}"
    seed_demo(url)
    engine = ledger.make_engine(url)
    try:
        fresh_s, results = timed_batches(engine, apply, events, batch)
        replay_s, replayed = timed_batches(engine, apply, events, batch)
        state = ledger_state(engine)
    finally:
        engine.dispose()
    n = len(events)
    applied = sum(isinstance(r, AppliedDeposit) and r.outcome is Outcome.APPLIED for r in results)
    duplicates = sum(
        isinstance(r, AppliedDeposit) and r.outcome is Outcome.DUPLICATE for r in replayed
    )
    if applied != n or duplicates != n:
        raise SystemExit(f"{name}: {applied} applied, {duplicates} duplicates on replay, of {n}")
    deposits, entries, total, balance, balanced = state
    if (deposits, entries, balance, balanced) != (n, 2 * n, total, True):
        raise SystemExit(f"{name}: ledger state {state} after {n} deposits")
    return n / fresh_s, n / replay_s, results, state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="deposits")
    parser.add_argument("--batch", type=int, default=5_000, help="deposits per transaction")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="--n 5000 --batch 1000 (options given win): a before/after comparison's short mode "
        "(bench/before_after.py)",
    )
    args = parser.parse_args()
    if args.quick:  # as defaults, so that an explicit --n or --batch still wins
        parser.set_defaults(n=5_000, batch=1_000)
        args = parser.parse_args()
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    events = deposit_events(args.n, base)
    with tempfile.TemporaryDirectory(prefix="wastebank-bench-ledger-") as tmp:
        workdir = Path(tmp)
        old, old_replay, old_results, old_state = run_path(
            "savepoints", apply_deposits_savepoints, events, args.batch, workdir
        )
        new, new_replay, new_results, new_state = run_path(
            "batch", ledger.apply_deposits, events, args.batch, workdir
        )
    if new_results != old_results or new_state != old_state:
        raise SystemExit("the two paths disagree (outcomes or ledger state)")
    print(f"ledger: {args.n:,} deposits in batches of {args.batch:,}, SQLite (WAL, sync FULL)")
    print(f"  {'path':<34} {'new deposits/s':>15} {'replayed (dup)/s':>17}")
    print(f"  {'savepoint + ORM flush per deposit':<34} {old:>15,.0f} {old_replay:>17,.0f}")
    print(f"  {'batch (multi-row INSERTs)':<34} {new:>15,.0f} {new_replay:>17,.0f}")
    print(
        f"  ratio batch / savepoints: {new / old:.1f}x new, {new_replay / old_replay:.1f}x replay"
    )
    print(f"  ledger time per deposit: {1e6 / old:.0f} µs -> {1e6 / new:.0f} µs")
    print(f"  (goal end to end: >= {GOAL_DEPOSITS_S:,} deposits/s, ledger + MQTT + InfluxDB)")


if __name__ == "__main__":
    main()
