"""The ledger: pricing at the deposit's time, exactly-once application, balanced journal."""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, create_mock_engine, delete, func, select
from sqlalchemy.orm import Session

from tests.conftest import WIT, LedgerFactory, deposit_event
from tests.ledger_helpers import add_dead_letter, apply_deposit, journal_is_balanced
from wastebank import ledger
from wastebank.ledger import deposits, summary
from wastebank.messages import DepositEvent
from wastebank.structs import replace


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


def test_amount_is_integer_rupiah_rounded_half_up() -> None:
    # 1,250 g of PET at Rp4,000/kg = Rp5,000 exactly.
    assert ledger.amount_for(1250, 4000) == 5000
    # 333 g at Rp1,500/kg = 499.5 -> Rp500 (half up); 332 g -> 498.0 -> Rp498.
    assert ledger.amount_for(333, 1500) == 500
    assert ledger.amount_for(332, 1500) == 498
    # 1 g at Rp499/kg = 0.499 -> Rp0.
    assert ledger.amount_for(1, 499) == 0


def test_deposit_credits_member_and_balances_journal(engine: Engine) -> None:
    with Session(engine) as s:
        out = apply_deposit(s, deposit_event(1, net_g=1250))
        assert out.outcome is ledger.Outcome.APPLIED
        assert (out.member_no, out.price_per_kg_idr, out.amount_idr) == ("AMB-0001", 4000, 5000)
        assert ledger.member_balance(s, "AMB-0001") == 5000
        assert ledger.member_balance(s, "AMB-0002") == 0
        assert journal_is_balanced(s)
        bank_total = s.scalar(
            select(func.sum(ledger.JournalEntry.amount_idr)).where(
                ledger.JournalEntry.account == ledger.bank_purchase_account("bs-batu-merah")
            )
        )
        assert bank_total == -5000


def test_same_event_twice_is_applied_once(engine: Engine) -> None:
    with Session(engine) as s:
        first = apply_deposit(s, deposit_event(7, net_g=2000))
        again = apply_deposit(s, deposit_event(7, net_g=2000))
        assert first.outcome is ledger.Outcome.APPLIED
        assert again.outcome is ledger.Outcome.DUPLICATE
        assert again.amount_idr == first.amount_idr == 8000
        assert ledger.member_balance(s, "AMB-0001") == 8000
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 1


def test_price_in_force_at_measurement_time_and_history_kept(engine: Engine) -> None:
    change = datetime(2026, 11, 20, 0, 0, tzinfo=WIT)
    with Session(engine) as s:
        bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == "bs-batu-merah"))
        pet = s.scalar(select(ledger.Category).where(ledger.Category.code == "pet"))
        assert bank
        assert pet
        s.add(
            ledger.Price(
                bank_id=bank.id, category_id=pet.id, price_per_kg_idr=4500, effective_from=change
            )
        )
        s.commit()
        before = apply_deposit(s, deposit_event(1, net_g=1000, at=change - timedelta(minutes=1)))
        after = apply_deposit(s, deposit_event(2, net_g=1000, at=change))
        assert (before.price_per_kg_idr, before.amount_idr) == (4000, 4000)
        assert (after.price_per_kg_idr, after.amount_idr) == (4500, 4500)
        # The earlier deposit keeps the price it was made at.
        row = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == "gw-01-1"))
        assert row is not None
        assert row.amount_idr == 4000


def test_each_bank_prices_with_its_own_list(engine: Engine) -> None:
    with Session(engine) as s:
        out = apply_deposit(
            s,
            deposit_event(1, card="04B1B2C3D1", bank="bs-nusaniwe", category="kardus", net_g=3000),
        )
        assert (out.member_no, out.price_per_kg_idr, out.amount_idr) == ("AMB-0101", 1200, 3600)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"card": "DEADBEEF00"}, "unknown card"),
        ({"category": "plutonium"}, "unknown category"),
        ({"bank": "bs-nowhere"}, "unknown bank"),
        ({"card": "04B1B2C3D1"}, "another bank"),  # a Nusaniwe card at Batu Merah
        ({"at": datetime(2025, 12, 31, 23, 59, tzinfo=WIT)}, "no price"),
    ],
)
def test_deposits_that_cannot_be_applied_are_rejected_and_change_nothing(
    engine: Engine, kwargs: dict[str, object], reason: str
) -> None:
    with Session(engine) as s:
        with pytest.raises(ledger.DepositRejected, match=reason):
            apply_deposit(s, deposit_event(1, **kwargs))  # type: ignore[arg-type]
        s.rollback()
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 0
        assert s.scalar(select(func.count()).select_from(ledger.JournalEntry)) == 0


def test_timestamps_come_back_aware_in_utc(engine: Engine) -> None:
    at = datetime(2026, 11, 1, 0, 30, tzinfo=WIT)  # 00:30 WIT = 15:30 UTC the day before
    with Session(engine) as s:
        apply_deposit(s, deposit_event(1, at=at))
        row = s.scalar(select(ledger.Deposit))
        assert row is not None
        assert row.measured_at == at
        assert row.measured_at.tzinfo is not None
        assert row.measured_at.astimezone(UTC).hour == 15


def test_naive_datetimes_are_refused(engine: Engine) -> None:
    with Session(engine) as s:
        s.add(
            ledger.Price(
                bank_id=1,
                category_id=1,
                price_per_kg_idr=1,
                effective_from=datetime(2026, 1, 1),  # noqa: DTZ001 - the point of the test
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            s.commit()


def test_dead_letters_keep_raw_bytes(engine: Engine) -> None:
    with Session(engine) as s:
        add_dead_letter(s, "wb/v1/x/gateway/y/deposit", b"\x00\xffnot json", "invalid")
        (row,) = ledger.dead_letters(s)
        assert row.payload == b"\x00\xffnot json"
        assert row.received_at.tzinfo is not None


# ---- batches: apply_deposits -----------------------------------------------------------------


def _count(s: Session, model: type[ledger.Base]) -> int:
    return s.scalar(select(func.count()).select_from(model)) or 0


def _amounts_by_member(s: Session) -> dict[str, int]:
    rows = s.execute(
        select(ledger.Member.member_no, func.sum(ledger.Deposit.amount_idr))
        .join(ledger.Deposit, ledger.Deposit.member_id == ledger.Member.id)
        .group_by(ledger.Member.member_no)
    ).all()
    return {no: int(total) for no, total in rows}


def _assert_books_agree(s: Session) -> None:
    """Balanced journal, two legs per deposit (money and stock), each member's balance = Σ its
    deposits, each bank's stock = Σ its deposits' weights, and ``verify`` finds nothing."""
    assert journal_is_balanced(s)
    assert _count(s, ledger.JournalEntry) == 2 * _count(s, ledger.Deposit)
    assert _count(s, ledger.StockEntry) == 2 * _count(s, ledger.Deposit)
    for member_no, total in _amounts_by_member(s).items():
        assert ledger.member_balance(s, member_no) == total
    grams = s.execute(
        select(ledger.Bank.code, ledger.Deposit.category_id, func.sum(ledger.Deposit.net_g))
        .join(ledger.Bank, ledger.Deposit.bank_id == ledger.Bank.id)
        .group_by(ledger.Bank.code, ledger.Deposit.category_id)
    ).all()
    for bank_code, category_id, total in grams:
        assert ledger.stock_of(s, bank_code, category_id) == total
    assert ledger.verify(s) == []


def attendant_event(seq: int, member_no: str, **kwargs: object) -> DepositEvent:
    """A deposit the petugas made for ``member_no`` (no card)."""
    card_ev = deposit_event(seq, **kwargs)  # type: ignore[arg-type]
    return replace(card_ev, card_uid=None, member_no=member_no, flow="attendant")


def test_batch_duplicates_inside_the_batch_and_against_earlier_ones(engine: Engine) -> None:
    with Session(engine) as s:
        earlier = apply_deposit(s, deposit_event(1, net_g=1000))
        out = ledger.apply_deposits(
            s,
            [
                deposit_event(2, net_g=2000),
                deposit_event(1, net_g=1000),  # already in the ledger
                deposit_event(3, net_g=500),
                deposit_event(2, net_g=2000),  # again in this batch
                deposit_event(1, net_g=1000),
                deposit_event(2, net_g=9999),  # again, with another weight: a conflict
            ],
        )
        applied = [r for r in out if isinstance(r, ledger.AppliedDeposit)]
        assert [(r.event_id, r.outcome) for r in applied] == [
            ("gw-01-2", ledger.Outcome.APPLIED),
            ("gw-01-1", ledger.Outcome.DUPLICATE),
            ("gw-01-3", ledger.Outcome.APPLIED),
            ("gw-01-2", ledger.Outcome.DUPLICATE),
            ("gw-01-1", ledger.Outcome.DUPLICATE),
        ]
        conflict = out[-1]
        assert isinstance(conflict, ledger.DepositConflict)
        assert conflict.differences == ["net_g: 2000 -> 9999"]
        # A duplicate is described as it was applied: the first one's weight, amount, place.
        assert applied[1] == dataclasses.replace(earlier, outcome=ledger.Outcome.DUPLICATE)
        assert applied[3] == dataclasses.replace(applied[0], outcome=ledger.Outcome.DUPLICATE)
        assert (applied[3].net_g, applied[3].amount_idr, applied[3].kecamatan) == (
            2000,
            8000,
            "Sirimau",
        )
        assert conflict.existing == applied[3]
        assert _count(s, ledger.Deposit) == 3
        assert ledger.member_balance(s, "AMB-0001") == 4000 + 8000 + 2000
        _assert_books_agree(s)


def test_batch_rejections_leave_the_others_applied(engine: Engine) -> None:
    no_price = datetime(2025, 12, 31, 23, 59, tzinfo=WIT)
    batch = [
        deposit_event(1, net_g=1000),
        deposit_event(2, card="DEADBEEF00"),
        deposit_event(3, category="plutonium"),
        deposit_event(4, bank="bs-nowhere"),
        deposit_event(5, card="04B1B2C3D1"),  # a Nusaniwe card at Batu Merah
        deposit_event(6, at=no_price),
        attendant_event(7, "AMB-9999"),
        attendant_event(8, "AMB-0003", net_g=2000),
        deposit_event(9, card="04B1B2C3D1", bank="bs-nusaniwe", category="kardus", net_g=3000),
        deposit_event(2, net_g=500),  # the id of a rejected one, now valid: applied
    ]
    with Session(engine) as s:
        out = ledger.apply_deposits(s, batch)
        reasons = [
            str(r) if isinstance(r, ledger.DepositRejected | ledger.DepositConflict) else r.outcome
            for r in out
        ]
        assert reasons == [
            ledger.Outcome.APPLIED,
            "unknown card 'DEADBEEF00'",
            "unknown category 'plutonium'",
            "unknown bank 'bs-nowhere'",
            "card 04B1B2C3D1 belongs to member AMB-0101 of another bank",
            "Bank Sampah Batu Merah Bersih belum punya harga Botol PET bersih pada 31 Des 2025 "
            f"23.59.00 WIT / bank bs-batu-merah has no price for pet at {no_price.isoformat()}",
            "unknown member 'AMB-9999'",
            ledger.Outcome.APPLIED,
            ledger.Outcome.APPLIED,
            ledger.Outcome.APPLIED,
        ]
        assert _count(s, ledger.Deposit) == 4
        assert ledger.member_balance(s, "AMB-0001") == 4000 + 2000
        assert ledger.member_balance(s, "AMB-0003") == 8000
        assert ledger.member_balance(s, "AMB-0101") == 3600
        _assert_books_agree(s)
        bank_total = s.scalar(
            select(func.sum(ledger.JournalEntry.amount_idr)).where(
                ledger.JournalEntry.account == ledger.bank_purchase_account("bs-batu-merah")
            )
        )
        assert bank_total == -(4000 + 2000 + 8000)
        row = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == "gw-01-8"))
        assert row is not None
        assert (row.flow, row.raw_frames, row.measured_at.tzinfo) == (
            "attendant",
            '["ST,GS,+0001.25kg"]',
            UTC,
        )


def test_batch_prices_each_deposit_at_its_own_time(engine: Engine) -> None:
    change = datetime(2026, 11, 20, 0, 0, tzinfo=WIT)
    with Session(engine) as s:
        bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == "bs-batu-merah"))
        pet = s.scalar(select(ledger.Category).where(ledger.Category.code == "pet"))
        assert bank
        assert pet
        s.add(
            ledger.Price(
                bank_id=bank.id, category_id=pet.id, price_per_kg_idr=4500, effective_from=change
            )
        )
        s.commit()
        out = ledger.apply_deposits(
            s,
            [
                deposit_event(1, net_g=1000, at=change - timedelta(microseconds=1)),
                deposit_event(2, net_g=1000, at=change),
                deposit_event(3, net_g=333, at=change - timedelta(days=1)),
                deposit_event(4, net_g=333, at=change + timedelta(days=1)),
            ],
        )
        prices = [
            (r.price_per_kg_idr, r.amount_idr) for r in out if isinstance(r, ledger.AppliedDeposit)
        ]
        assert prices == [(4000, 4000), (4500, 4500), (4000, 1332), (4500, 1499)]
        memos = s.scalars(
            select(ledger.JournalEntry.memo)
            .where(ledger.JournalEntry.account == ledger.member_account("AMB-0001"))
            .order_by(ledger.JournalEntry.id)
        ).all()
        assert memos == [
            "pet 1000 g @ Rp4000/kg",
            "pet 1000 g @ Rp4500/kg",
            "pet 333 g @ Rp4000/kg",
            "pet 333 g @ Rp4500/kg",
        ]
        assert ledger.member_balance(s, "AMB-0001") == 4000 + 4500 + 1332 + 1499
        _assert_books_agree(s)


@pytest.mark.parametrize("on_conflict", [True, False], ids=["on-conflict", "savepoint-per-row"])
def test_a_deposit_another_writer_applied_first_is_a_duplicate(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, on_conflict: bool
) -> None:
    """The other ingester commits between our read of applied ids and our insert: its row
    stands, ours is reported DUPLICATE (as the winner applied it) and writes no entries."""
    if not on_conflict:  # a dialect without INSERT ... ON CONFLICT: one savepoint a row
        for name in list(summary.ON_CONFLICT_INSERTS):
            monkeypatch.delitem(summary.ON_CONFLICT_INSERTS, name)
    with Session(engine) as s:
        winner = apply_deposit(s, deposit_event(2, net_g=3000))
        same = apply_deposit(s, deposit_event(5, net_g=1000))
        s.commit()
    real_applied = deposits.References.applied
    calls = 0

    def stale_first_read(self: deposits.References, event_ids: Sequence[str]) -> object:
        nonlocal calls
        calls += 1
        return {} if calls == 1 else real_applied(self, event_ids)

    monkeypatch.setattr(deposits.References, "applied", stale_first_read)
    with Session(engine) as s:
        out = ledger.apply_deposits(
            s,
            [
                deposit_event(1, net_g=1000),
                deposit_event(2, net_g=1000),  # ours weighs 1000; the winner's 3000 stands
                deposit_event(3, net_g=1000),
                deposit_event(2, net_g=1000),
                deposit_event(5, net_g=1000),  # the same as the winner's: a duplicate
            ],
        )
        assert out[4] == dataclasses.replace(same, outcome=ledger.Outcome.DUPLICATE)
        assert calls == 2
        dup = dataclasses.replace(winner, outcome=ledger.Outcome.DUPLICATE)
        # Ours meant another deposit than the winner's: a conflict, told with what stands.
        for conflict in (out[1], out[3]):
            assert isinstance(conflict, ledger.DepositConflict)
            assert conflict.existing == dup
            assert conflict.differences == ["net_g: 3000 -> 1000"]
        assert [getattr(r, "outcome", None) for r in (out[0], out[2])] == [
            ledger.Outcome.APPLIED
        ] * 2
        assert _count(s, ledger.Deposit) == 4
        assert ledger.member_balance(s, "AMB-0001") == 12000 + 4000 + 4000 + 4000
        entries = s.scalar(
            select(func.count())
            .select_from(ledger.JournalEntry)
            .where(ledger.JournalEntry.txn_ref == "deposit:gw-01-2")
        )
        assert entries == 2
        _assert_books_agree(s)


def test_two_writers_on_one_file_apply_each_deposit_once(ledger_url: str) -> None:
    """Two ingesters (own engines, own connections) race on overlapping batches of one ledger."""
    url = ledger_url
    events = [deposit_event(i, net_g=100 + i) for i in range(1200)]
    orders = [events, events[::-1]]
    results: list[list[ledger.AppliedDeposit | ledger.DepositRejected | ledger.DepositConflict]]
    results = [[], []]

    def writer(k: int) -> None:
        engine = ledger.make_engine(url)
        try:
            for start in range(0, len(events), 200):
                with Session(engine) as s:
                    results[k].extend(ledger.apply_deposits(s, orders[k][start : start + 200]))
                    s.commit()  # the ingester's batch
        finally:
            engine.dispose()

    threads = [threading.Thread(target=writer, args=(k,)) for k in (0, 1)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(r, ledger.AppliedDeposit) for rs in results for r in rs)
    applied = Counter(
        r.event_id
        for rs in results
        for r in rs
        if isinstance(r, ledger.AppliedDeposit) and r.outcome is ledger.Outcome.APPLIED
    )
    assert sorted(applied) == sorted(ev.event_id for ev in events)
    assert set(applied.values()) == {1}
    engine = ledger.make_engine(url)
    with Session(engine) as s:
        assert _count(s, ledger.Deposit) == 1200
        assert ledger.member_balance(s, "AMB-0001") == sum(
            ledger.amount_for(ev.net_g, 4000) for ev in events
        )
        _assert_books_agree(s)
    engine.dispose()


def test_the_insert_skips_a_conflicting_event_id_on_both_dialects() -> None:
    for name in ("sqlite", "postgresql"):
        stmt = deposits._insert_skipping_applied(name)
        assert stmt is not None
        dialect = create_mock_engine(f"{name}://", lambda *_a, **_k: None).dialect
        sql = " ".join(str(stmt.compile(dialect=dialect)).split())
        assert sql.startswith("INSERT INTO deposit "), name
        assert "ON CONFLICT (event_id) DO NOTHING RETURNING" in sql, name
        assert sql.endswith("event_id"), name
    assert deposits._insert_skipping_applied("mssql") is None


# ---- the batch path against applying one deposit at a time ----------------------------------

CHANGE = datetime(2026, 11, 20, 0, 0, tzinfo=WIT)  # bs-batu-merah's PET goes to Rp4,500/kg
CARDS = ["04A1B2C3D4", "04A1B2C3D5", "04B1B2C3D1", "DEADBEEF00"]
MEMBER_NOS = ["AMB-0003", "AMB-0102", "AMB-9999"]


@pytest.fixture(scope="module")
def twin_ledgers(ledger_factory: LedgerFactory) -> Iterator[tuple[Engine, Engine]]:
    """Two seeded ledgers with a price change: one for the batch path, one for one at a time."""
    engines = []
    for _ in ("batch", "single"):
        eng = ledger.make_engine(ledger_factory.new())
        with Session(eng) as s:
            bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == "bs-batu-merah"))
            pet = s.scalar(select(ledger.Category).where(ledger.Category.code == "pet"))
            assert bank
            assert pet
            s.add(
                ledger.Price(
                    bank_id=bank.id,
                    category_id=pet.id,
                    price_per_kg_idr=4500,
                    effective_from=CHANGE,
                )
            )
            s.commit()
        engines.append(eng)
    yield engines[0], engines[1]
    for eng in engines:
        eng.dispose()
        ledger_factory.drop(eng.url.render_as_string(hide_password=False))


@st.composite
def deposit_events(draw: st.DrawFn) -> DepositEvent:
    """Deposits from a small pool of ids (so duplicates are common) and of cards, members,
    banks, categories and times (so are rejections and both sides of a price change)."""
    seq = draw(st.integers(0, 6))
    gateway = draw(st.sampled_from(["gw-01", "gw-02"]))
    at = draw(
        st.sampled_from([CHANGE - timedelta(days=400)])  # before any price
        | st.integers(-3, 3).map(lambda s: CHANGE + timedelta(seconds=s))
    )
    ev = deposit_event(
        seq,
        gateway=gateway,
        card=draw(st.sampled_from(CARDS)),
        bank=draw(st.sampled_from(["bs-batu-merah", "bs-nusaniwe", "bs-nowhere"])),
        category=draw(st.sampled_from(["pet", "kardus", "plutonium"])),
        net_g=draw(st.integers(1, 50_000)),
        at=at,
    )
    if draw(st.booleans()):
        return ev
    member_no = draw(st.sampled_from(MEMBER_NOS))
    return replace(ev, card_uid=None, member_no=member_no, flow="attendant")


Outcome = ledger.AppliedDeposit | ledger.DepositRejected | ledger.DepositConflict


def _one_at_a_time(s: Session, events: Sequence[DepositEvent]) -> list[Outcome]:
    out: list[Outcome] = []
    for ev in events:
        try:
            out.append(apply_deposit(s, ev))
        except (ledger.DepositRejected, ledger.DepositConflict) as refused:
            out.append(refused)
    return out


def _comparable(results: Sequence[Outcome]) -> list[ledger.AppliedDeposit | str]:
    return [
        r if isinstance(r, ledger.AppliedDeposit) else f"{type(r).__name__}: {r}" for r in results
    ]


def _ledger_rows(s: Session) -> tuple[list[tuple[object, ...]], ...]:
    d = ledger.Deposit
    deposits = s.execute(
        select(
            d.event_id,
            d.member_id,
            d.bank_id,
            d.category_id,
            d.net_g,
            d.tare_g,
            d.price_per_kg_idr,
            d.amount_idr,
            d.measured_at,
            d.gateway_id,
            d.scale_id,
            d.protocol,
            d.stable,
            d.raw_frames,
            d.flow,
            d.calibration_version,
        ).order_by(d.event_id)  # not by id: a batch inserts in event-id order (no deadlocks)
    ).all()
    j = ledger.JournalEntry
    entries = s.execute(
        select(j.txn_ref, j.account, j.amount_idr, j.memo).order_by(
            j.txn_ref, j.account, j.amount_idr
        )
    ).all()
    dd = ledger.DepositDay
    days = s.execute(
        select(
            dd.local_date, dd.bank_id, dd.category_id, dd.manual, dd.net_g, dd.deposits
        ).order_by(dd.local_date, dd.bank_id, dd.category_id, dd.manual)
    ).all()
    dm = ledger.DepositMonth
    months = s.execute(
        select(dm.month, dm.bank_id, dm.category_id, dm.manual, dm.net_g, dm.deposits).order_by(
            dm.month, dm.bank_id, dm.category_id, dm.manual
        )
    ).all()
    return (
        [tuple(r) for r in deposits],
        [tuple(r) for r in entries],
        [tuple(r) for r in days],
        [tuple(r) for r in months],
    )


@settings(max_examples=60, deadline=None)
@given(
    earlier=st.lists(deposit_events(), max_size=6),
    batch=st.lists(deposit_events(), max_size=25),
)
def test_batch_path_matches_applying_one_at_a_time(
    twin_ledgers: tuple[Engine, Engine], earlier: list[DepositEvent], batch: list[DepositEvent]
) -> None:
    batch_engine, single_engine = twin_ledgers
    for eng in twin_ledgers:
        with Session(eng) as s:
            s.execute(delete(ledger.JournalEntry))
            s.execute(delete(ledger.StockEntry))
            s.execute(delete(ledger.DepositDay))
            s.execute(delete(ledger.DepositMonth))
            s.execute(delete(ledger.Deposit))
            s.commit()
    with Session(batch_engine) as s:
        ledger.apply_deposits(s, earlier)
        got = ledger.apply_deposits(s, batch)
        got_rows = _ledger_rows(s)
        _assert_books_agree(s)
        got_balances = {no: ledger.member_balance(s, no) for no in _amounts_by_member(s)}
    with Session(single_engine) as s:
        _one_at_a_time(s, earlier)
        want = _one_at_a_time(s, batch)
        want_rows = _ledger_rows(s)
        want_balances = {no: ledger.member_balance(s, no) for no in _amounts_by_member(s)}
    assert _comparable(got) == _comparable(want)
    assert got_rows == want_rows
    assert got_balances == want_balances
