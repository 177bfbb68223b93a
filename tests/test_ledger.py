"""The ledger: pricing at the deposit's time, exactly-once application, balanced journal."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.conftest import WIT, deposit_event
from wastebank import ledger
from wastebank.seed import load_city, seed


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    eng = ledger.make_engine(f"sqlite:///{tmp_path / 'ledger.db'}")
    seed(eng, load_city())
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
        out = ledger.apply_deposit(s, deposit_event(1, net_g=1250))
        assert out.outcome is ledger.Outcome.APPLIED
        assert (out.member_no, out.price_per_kg_idr, out.amount_idr) == ("AMB-0001", 4000, 5000)
        assert ledger.member_balance(s, "AMB-0001") == 5000
        assert ledger.member_balance(s, "AMB-0002") == 0
        assert ledger.journal_is_balanced(s)
        bank_total = s.scalar(
            select(func.sum(ledger.JournalEntry.amount_idr)).where(
                ledger.JournalEntry.account == ledger.bank_purchase_account("bs-batu-merah")
            )
        )
        assert bank_total == -5000


def test_same_event_twice_is_applied_once(engine: Engine) -> None:
    with Session(engine) as s:
        first = ledger.apply_deposit(s, deposit_event(7, net_g=2000))
        again = ledger.apply_deposit(s, deposit_event(7, net_g=2000))
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
        before = ledger.apply_deposit(
            s, deposit_event(1, net_g=1000, at=change - timedelta(minutes=1))
        )
        after = ledger.apply_deposit(s, deposit_event(2, net_g=1000, at=change))
        assert (before.price_per_kg_idr, before.amount_idr) == (4000, 4000)
        assert (after.price_per_kg_idr, after.amount_idr) == (4500, 4500)
        # The earlier deposit keeps the price it was made at.
        row = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == "gw-01-1"))
        assert row is not None
        assert row.amount_idr == 4000


def test_each_bank_prices_with_its_own_list(engine: Engine) -> None:
    with Session(engine) as s:
        out = ledger.apply_deposit(
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
            ledger.apply_deposit(s, deposit_event(1, **kwargs))  # type: ignore[arg-type]
        s.rollback()
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 0
        assert s.scalar(select(func.count()).select_from(ledger.JournalEntry)) == 0


def test_timestamps_come_back_aware_in_utc(engine: Engine) -> None:
    at = datetime(2026, 11, 1, 0, 30, tzinfo=WIT)  # 00:30 WIT = 15:30 UTC the day before
    with Session(engine) as s:
        ledger.apply_deposit(s, deposit_event(1, at=at))
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
        ledger.add_dead_letter(s, "wb/v1/x/gateway/y/deposit", b"\x00\xffnot json", "invalid")
        (row,) = ledger.dead_letters(s)
        assert row.payload == b"\x00\xffnot json"
        assert row.received_at.tzinfo is not None
