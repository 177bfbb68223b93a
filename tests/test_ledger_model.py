"""The ledger's model: areas, induk/unit banks, members, prices over time, manual deposits,
voids and corrections, withdrawals, stock, and ``verify``.

Every test runs on the ``ledger_url`` fixture (the demo city, seeded), so the same tests cover
each database the fixture provides.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.conftest import WIT, LedgerFactory, deposit_event
from tests.ledger_helpers import apply_deposit, bank_units, is_voided, member_available
from wastebank import ledger, migrations, tables
from wastebank.ledger import manual, registry
from wastebank.messages import EVENT_ID_PATTERN
from wastebank.seed import load_city, seed

BM = "bs-batu-merah"  # induk; petugas-bm-01
RIJALI = "bs-rijali"  # unit under bs-batu-merah, buys at its prices; petugas-rjl-01
NUSANIWE = "bs-nusaniwe"  # unit on its own; petugas-nsw-01
STAFF_BM = "petugas-bm-01"
STAFF_RIJALI = "petugas-rjl-01"
RIJALI_CARD = "04C1B2C3D1"  # AMB-0201
NOV = datetime(2026, 11, 1, tzinfo=WIT)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


def _verified(s: Session) -> None:
    assert ledger.verify(s) == []


def _bank(s: Session, code: str) -> ledger.Bank:
    bank = s.scalar(select(ledger.Bank).where(ledger.Bank.code == code))
    assert bank is not None
    return bank


def _deposit(s: Session, seq: int, **kwargs: object) -> ledger.AppliedDeposit:
    out = apply_deposit(s, deposit_event(seq, **kwargs))  # type: ignore[arg-type]
    assert out.outcome is ledger.Outcome.APPLIED
    return out


# ---- areas and the induk/unit hierarchy ------------------------------------------------------


def test_demo_city_has_areas_an_induk_and_a_unit_using_its_prices(engine: Engine) -> None:
    with Session(engine) as s:
        induk, unit, alone = _bank(s, BM), _bank(s, RIJALI), _bank(s, NUSANIWE)
        assert (induk.kind, induk.parent_id, induk.kecamatan) == ("induk", None, "Sirimau")
        assert (induk.kelurahan.name, induk.kelurahan.kind) == ("Batu Merah", "desa")
        assert (unit.kind, unit.parent_id, unit.use_parent_price) == ("unit", induk.id, True)
        assert (unit.kelurahan.name, unit.kecamatan) == ("Rijali", "Sirimau")
        assert (alone.kind, alone.parent_id, alone.kecamatan) == ("unit", None, "Nusaniwe")
        assert [b.code for b in bank_units(s, BM)] == [RIJALI]
        assert (induk.min_withdrawal_idr, alone.min_withdrawal_idr) == (10_000, 25_000)
        member = ledger.get_member(s, "AMB-0003")
        assert member is not None
        assert (member.kind, member.rt, member.rw) == ("group", "002", "003")
        pet = s.scalar(select(ledger.Category).where(ledger.Category.code == "pet"))
        assert pet is not None
        assert (pet.unit, pet.sipsn_class, pet.material_class) == ("kg", "plastik", "pet")
        _verified(s)


def test_seeding_again_changes_nothing(engine: Engine) -> None:
    tables = [ledger.Kecamatan, ledger.Kelurahan, ledger.Bank, ledger.Attendant, ledger.Member]
    with Session(engine) as s:
        before = [s.scalar(select(func.count()).select_from(t)) for t in tables]
    seed(engine, load_city())
    with Session(engine) as s:
        assert [s.scalar(select(func.count()).select_from(t)) for t in tables] == before


@pytest.mark.parametrize(
    ("kind", "parent", "use_parent_price", "problem"),
    [
        ("induk", BM, False, "an induk has no parent"),
        ("unit", RIJALI, False, "a unit's parent must be an induk"),
        ("unit", None, True, "uses its induk's prices but has no induk"),
        ("pusat", None, False, "neither induk nor unit"),
    ],
)
def test_invalid_hierarchies_are_refused(
    engine: Engine, kind: str, parent: str | None, use_parent_price: bool, problem: str
) -> None:
    with Session(engine) as s:
        with pytest.raises(ledger.NotAllowed, match=problem):
            ledger.create_bank(
                s,
                code="bs-new",
                name="New",
                kelurahan=_bank(s, BM).kelurahan,
                kind=kind,
                parent=_bank(s, parent) if parent else None,
                use_parent_price=use_parent_price,
            )


def test_a_unit_deposit_is_priced_by_its_induk_and_tagged_with_its_kecamatan(
    engine: Engine,
) -> None:
    with Session(engine) as s:
        out = _deposit(s, 1, card=RIJALI_CARD, bank=RIJALI, net_g=2000, at=NOV + timedelta(3))
        assert (out.member_no, out.bank_code, out.kecamatan) == ("AMB-0201", RIJALI, "Sirimau")
        assert (out.price_per_kg_idr, out.amount_idr) == (4000, 8000)  # bs-batu-merah's PET
        at = NOV + timedelta(days=5)
        assert ledger.price_in_force(s, _bank(s, RIJALI).id, 1, at) == ledger.price_in_force(
            s, _bank(s, BM).id, 1, at
        )
        # The induk's new price reaches the unit; the unit has no list of its own to change.
        ledger.set_price(s, BM, "pet", 4200, NOV + timedelta(days=10), author=STAFF_BM)
        later = _deposit(s, 2, card=RIJALI_CARD, bank=RIJALI, net_g=1000, at=NOV + timedelta(11))
        assert later.price_per_kg_idr == 4200
        with pytest.raises(ledger.NotAllowed, match="induk's prices"):
            ledger.set_price(s, RIJALI, "pet", 9999, NOV + timedelta(days=20), author=STAFF_BM)
        # A unit's deposit already priced from the induk's list locks that part of its history.
        with pytest.raises(ledger.PriceHistoryLocked, match="gw-01-2"):
            ledger.set_price(s, BM, "pet", 5000, NOV + timedelta(days=11), author=STAFF_BM)
        _verified(s)


# ---- prices over time ------------------------------------------------------------------------


def test_a_price_changed_mid_month_prices_each_deposit_at_its_own_time(engine: Engine) -> None:
    mid = NOV + timedelta(days=14)  # 15 November 00:00 WIT
    with Session(engine) as s:
        ledger.set_price(s, BM, "pet", 4500, mid, author=STAFF_BM)
        before = _deposit(s, 1, net_g=1000, at=NOV + timedelta(days=9))
        edge = _deposit(s, 2, net_g=1000, at=mid - timedelta(microseconds=1))
        after = _deposit(s, 3, net_g=1000, at=mid)
        late = _deposit(s, 4, net_g=1000, at=NOV + timedelta(days=19))
        assert [d.price_per_kg_idr for d in (before, edge, after, late)] == [
            4000,
            4000,
            4500,
            4500,
        ]
        assert ledger.member_balance(s, "AMB-0001") == 4000 + 4000 + 4500 + 4500
        _verified(s)


def test_the_list_in_force_is_each_categorys_price_in_force(engine: Engine) -> None:
    """The API's price list and a deposit's price follow one rule: the newest price at or
    before the time, on the induk's list for a unit."""
    mid = NOV + timedelta(days=14)
    with Session(engine) as s:
        ledger.set_price(s, BM, "pet", 4500, mid, author=STAFF_BM)
        for bank in (_bank(s, BM), _bank(s, RIJALI)):
            for at in (NOV, mid - timedelta(microseconds=1), mid, NOV + timedelta(days=40)):
                listed = {c.id: p.price_per_kg_idr for c, p in ledger.list_in_force(s, bank, at)}
                assert listed
                for category_id, price in listed.items():
                    assert price == ledger.price_in_force(s, bank.id, category_id, at)
        unit_list = ledger.list_in_force(s, _bank(s, RIJALI), mid)
        assert {c.code: p.price_per_kg_idr for c, p in unit_list}["pet"] == 4500


def test_a_price_change_never_reprices_deposits_already_priced(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=1000, at=NOV + timedelta(days=9))
        _deposit(s, 2, net_g=1000, at=NOV + timedelta(days=19))
        for start in (NOV, NOV + timedelta(days=9), NOV + timedelta(days=15)):
            with pytest.raises(ledger.PriceHistoryLocked, match="may start after"):
                ledger.set_price(s, BM, "pet", 9000, start, author=STAFF_BM)
        # Indonesian first, in the city's own time, to the second (Ambon: WIT)
        last = NOV + timedelta(days=19)  # NOV is in WIT
        shown = f"{last.day} Nov 2026 {last:%H.%M.%S} WIT"
        with pytest.raises(ledger.PriceHistoryLocked) as refused:
            ledger.set_price(s, BM, "pet", 9000, NOV, author=STAFF_BM)
        assert str(refused.value).startswith(
            f"setoran gw-01-2 ({shown}) sudah dihargai dengan daftar harga Bank Sampah Batu Merah "
            f"Bersih untuk Botol PET bersih; harga baru berlaku paling cepat setelah {shown} / "
        )
        # After the last deposit it would reprice: accepted, and deposits keep their prices.
        ledger.set_price(s, BM, "pet", 4800, NOV + timedelta(days=19, seconds=1), author=STAFF_BM)
        amounts = s.scalars(select(ledger.Deposit.amount_idr).order_by(ledger.Deposit.id)).all()
        assert amounts == [4000, 4000]
        # Other categories and other banks are not locked by these deposits.
        ledger.set_price(s, BM, "kardus", 1700, NOV, author=STAFF_BM)
        ledger.set_price(s, NUSANIWE, "pet", 3600, NOV, author="petugas-nsw-01")
        # A future price not yet used can be set again for the same instant (it priced nothing).
        future = NOV + timedelta(days=60)
        ledger.set_price(s, BM, "pet", 5000, future, author=STAFF_BM)
        row = ledger.set_price(s, BM, "pet", 5100, future, author=STAFF_BM)
        assert (row.price_per_kg_idr, row.created_by) == (5100, STAFF_BM)
        with pytest.raises(ledger.NotAllowed, match="not an attendant"):
            ledger.set_price(s, BM, "pet", 1, future, author="petugas-nsw-01")
        _verified(s)


# ---- manual deposits, voids, corrections -----------------------------------------------------


def test_a_manual_deposit_is_flagged_with_its_reason_and_author(engine: Engine) -> None:
    at = NOV + timedelta(days=3, hours=2)
    with Session(engine) as s:
        out = ledger.record_manual_deposit(
            s,
            bank_code=BM,
            member_no="AMB-0002",
            category_code="kardus",
            net_g=2500,
            measured_at=at,
            author=STAFF_BM,
            reason="timbangan rusak / scale broken, weighed on the hanging scale",
            idempotency_key="hp-nurlela-0001",
        )
        assert (out.outcome, out.price_per_kg_idr, out.amount_idr) == ("applied", 1500, 3750)
        assert re.fullmatch(ledger.MANUAL_ID_PATTERN, out.event_id), out.event_id
        row = s.scalar(select(ledger.Deposit).where(ledger.Deposit.event_id == out.event_id))
        assert row is not None
        assert (row.manual, row.flow, row.author, row.measured_at) == (True, "manual", STAFF_BM, at)
        assert row.idempotency_key == "hp-nurlela-0001"
        assert row.reason is not None
        assert "scale broken" in row.reason
        # Retrying the same entry (the attendant's app resends it) is a duplicate: the deposit
        # first recorded, under its id, whatever the reason says this time.
        again = ledger.record_manual_deposit(
            s,
            bank_code=BM,
            member_no="AMB-0002",
            category_code="kardus",
            net_g=2500,
            measured_at=at,
            author=STAFF_BM,
            reason="resent",
            idempotency_key="hp-nurlela-0001",
        )
        assert (again.outcome, again.event_id) == (ledger.Outcome.DUPLICATE, out.event_id)
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 1
        assert ledger.member_balance(s, "AMB-0002") == 3750
        assert ledger.bank_stock(s, BM) == {"kardus": 2500}
        _verified(s)


def test_manual_ids_are_issued_by_the_server_in_their_own_namespace(engine: Engine) -> None:
    ids = {ledger.new_manual_id() for _ in range(2000)}
    assert len(ids) == 2000
    for event_id in ids:
        assert re.fullmatch(ledger.MANUAL_ID_PATTERN, event_id), event_id
        # never a device's id, of this release or before 0.2
        assert not re.fullmatch(EVENT_ID_PATTERN, event_id), event_id
    used = set("".join(i[2:6] + i[7:] for i in ids))
    assert used == set(ledger.MANUAL_ID_ALPHABET)  # every one of the 32, no I, L, O or U
    with Session(engine) as s:
        _deposit(s, 1, net_g=1250, at=NOV + timedelta(days=2))
        # A correction's replacement is a manual deposit too.
        _, fixed = ledger.correct_deposit(s, "gw-01-1", author=STAFF_BM, reason="x", net_g=1200)
        assert re.fullmatch(ledger.MANUAL_ID_PATTERN, fixed.event_id), fixed.event_id
        _verified(s)


def test_a_manual_id_already_taken_is_drawn_again(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    args: dict[str, Any] = {
        "bank_code": BM,
        "member_no": "AMB-0001",
        "category_code": "pet",
        "net_g": 1000,
        "measured_at": NOV + timedelta(days=1),
        "author": STAFF_BM,
        "reason": "scale down",
    }
    with Session(engine) as s:
        first = ledger.record_manual_deposit(s, **args).event_id
        _deposit(s, 1, at=NOV + timedelta(days=2))
        draws = iter([first, "M-0000-0001", first, "M-0000-0002"])
        monkeypatch.setattr(manual, "new_manual_id", lambda: next(draws))
        second = ledger.record_manual_deposit(s, **args)
        assert (second.outcome, second.event_id) == (ledger.Outcome.APPLIED, "M-0000-0001")
        _, fixed = ledger.correct_deposit(s, "gw-01-1", author=STAFF_BM, reason="x", net_g=900)
        assert fixed.event_id == "M-0000-0002"
        assert ledger.member_balance(s, "AMB-0001") == 2 * 4000 + 3600
        _verified(s)
        # Taken every time (not a collision but a fault): refused after a few draws, nothing kept.
        monkeypatch.setattr(manual, "new_manual_id", lambda: first)
        with pytest.raises(IntegrityError):
            ledger.record_manual_deposit(s, **args)
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 4
        _verified(s)


@pytest.mark.parametrize(
    "change",
    [
        {"member_no": "AMB-0002"},
        {"category_code": "kardus"},
        {"net_g": 1001},
        {"quantity": 5},
        {"measured_at": NOV + timedelta(days=1, microseconds=1)},
        {"bank_code": RIJALI, "member_no": "AMB-0201"},  # STAFF_BM is the induk's: allowed there
    ],
)
def test_an_idempotency_key_names_one_deposit_of_its_author(
    engine: Engine, change: dict[str, object]
) -> None:
    args: dict[str, Any] = {
        "bank_code": BM,
        "member_no": "AMB-0001",
        "category_code": "pet",
        "net_g": 1000,
        "measured_at": NOV + timedelta(days=1),
        "author": STAFF_BM,
        "reason": "scale down",
        "idempotency_key": "tablet-3:0042",
    }
    with Session(engine) as s:
        first = ledger.record_manual_deposit(s, **args)
        # The same again (another reason, no time: "now" is whenever the first was) is the same.
        for retry in ({"reason": "resent"}, {"measured_at": None}, {"quantity": 1000}):
            again = ledger.record_manual_deposit(s, **(args | retry))
            assert (again.outcome, again.event_id) == (ledger.Outcome.DUPLICATE, first.event_id)
        # The same key with another deposit: refused, and nothing written.
        with pytest.raises(ledger.IdempotencyKeyReused, match=first.event_id):
            ledger.record_manual_deposit(s, **(args | change))
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 1
        # The key is the author's own: another attendant's same key is another deposit.
        other = ledger.record_manual_deposit(
            s, **(args | {"author": STAFF_RIJALI, "bank_code": RIJALI, "member_no": "AMB-0201"})
        )
        assert other.outcome is ledger.Outcome.APPLIED
        assert other.event_id != first.event_id
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 2
        _verified(s)


def test_a_scale_deposit_keeps_its_id_whatever_a_manual_entry_tried(engine: Engine) -> None:
    """A manual deposit cannot take a device's id: the scale deposit that later arrives with it
    is applied, not dropped as a duplicate."""
    with Session(engine) as s:
        manual = ledger.record_manual_deposit(
            s,
            bank_code=BM,
            member_no="AMB-0001",
            category_code="pet",
            net_g=1000,
            measured_at=NOV + timedelta(days=1),
            author=STAFF_BM,
            reason="scale down",
            idempotency_key="gw-01-7",  # a key, however it looks; never an id
        )
        assert manual.event_id != "gw-01-7"
        scale = deposit_event(7, at=NOV + timedelta(days=2))
        assert scale.event_id == "gw-01-7"
        (applied,) = ledger.apply_deposits(s, [scale])
        s.commit()
        assert isinstance(applied, ledger.AppliedDeposit), applied
        assert applied.outcome is ledger.Outcome.APPLIED
        assert ledger.member_balance(s, "AMB-0001") == 4000 + 5000
        _verified(s)


def test_concurrent_retries_with_one_key_record_one_deposit(ledger_url: str) -> None:
    """Ten sends of one entry at once, from threads with their own connections: one deposit,
    and every answer names it (the losers of the race find it on their next try)."""
    setup = ledger.make_engine(ledger_url)
    engines = [ledger.make_engine(ledger_url) for _ in range(5)]
    start = threading.Barrier(10)
    outcomes: list[str] = [""] * 10

    def send(k: int) -> None:
        with Session(engines[k % len(engines)]) as session:
            start.wait()
            try:
                out = ledger.record_manual_deposit(
                    session,
                    bank_code=BM,
                    member_no="AMB-0001",
                    category_code="pet",
                    net_g=1000,
                    measured_at=NOV + timedelta(days=1),
                    author=STAFF_BM,
                    reason="scale down",
                    idempotency_key="hp-nurlela-0007",
                )
                session.commit()
                outcomes[k] = f"{out.outcome} {out.event_id}"
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes[k] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=send, args=(k,)) for k in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for eng in engines:
        eng.dispose()
    with Session(setup) as s:
        (event_id,) = s.scalars(select(ledger.Deposit.event_id)).all()
        assert Counter(outcomes) == {f"applied {event_id}": 1, f"duplicate {event_id}": 9}
        assert ledger.verify(s) == []
    setup.dispose()


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"reason": " "}, ledger.DepositRejected, "needs a reason"),
        ({"author": "petugas-nsw-01"}, ledger.NotAllowed, "not an attendant"),
        ({"author": ""}, ledger.NotAllowed, "not an attendant"),
        ({"member_no": "AMB-0101"}, ledger.DepositRejected, "another bank"),
        ({"net_g": 0}, ledger.DepositRejected, "more than 0 g"),
        ({"quantity": 7}, ledger.DepositRejected, "is weighed"),
        ({"measured_at": datetime(2025, 6, 1, tzinfo=WIT)}, ledger.DepositRejected, "no price"),
    ],
)
def test_manual_deposits_that_cannot_be_applied_change_nothing(
    engine: Engine, change: dict[str, object], error: type[Exception], match: str
) -> None:
    args: dict[str, object] = {
        "bank_code": BM,
        "member_no": "AMB-0001",
        "category_code": "pet",
        "net_g": 1000,
        "measured_at": NOV,
        "author": STAFF_BM,
        "reason": "scale down",
    }
    with Session(engine) as s:
        with pytest.raises(error, match=match):
            ledger.record_manual_deposit(s, **(args | change))  # type: ignore[arg-type]
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 0
        assert s.scalar(select(func.count()).select_from(ledger.JournalEntry)) == 0


def test_litre_and_piece_categories_are_priced_by_their_count(engine: Engine) -> None:
    with Session(engine) as s:
        for code, unit, material in (
            ("jelantah", ledger.Unit.LITRE, ledger.MaterialClass.COOKING_OIL),
            ("galon", ledger.Unit.PIECE, ledger.MaterialClass.PP),
        ):
            s.add(
                ledger.Category(
                    code=code,
                    name_id=code,
                    name_en=code,
                    unit=unit,
                    sipsn_class=ledger.SipsnClass.LAINNYA,
                    material_class=material,
                )
            )
        s.commit()
        ledger.set_price(s, BM, "jelantah", 4000, NOV, author=STAFF_BM)  # Rp/litre
        ledger.set_price(s, BM, "galon", 1500, NOV, author=STAFF_BM)  # Rp/piece
        oil = ledger.record_manual_deposit(
            s,
            bank_code=BM,
            member_no="AMB-0001",
            category_code="jelantah",
            net_g=1380,
            quantity=1500,  # millilitres
            measured_at=NOV + timedelta(days=1),
            author=STAFF_BM,
            reason="jerrycan, measured in litres",
        )
        gallons = ledger.record_manual_deposit(
            s,
            bank_code=BM,
            member_no="AMB-0001",
            category_code="galon",
            net_g=2100,
            quantity=3,
            measured_at=NOV + timedelta(days=1),
            author=STAFF_BM,
            reason="counted",
        )
        assert (oil.amount_idr, gallons.amount_idr) == (6000, 4500)
        with pytest.raises(ledger.DepositRejected, match="give its millilitres"):
            ledger.record_manual_deposit(
                s,
                bank_code=BM,
                member_no="AMB-0001",
                category_code="jelantah",
                net_g=900,
                measured_at=NOV + timedelta(days=1),
                author=STAFF_BM,
                reason="no count",
            )
        # A scale weighs; a litre category cannot come from one.
        with pytest.raises(ledger.DepositRejected, match="counted per litre"):
            apply_deposit(s, deposit_event(9, category="jelantah"))
        assert ledger.bank_stock(s, BM) == {"galon": 2100, "jelantah": 1380}
        _verified(s)


def test_void_reverses_a_deposit_and_a_second_void_is_refused(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=1250)
        kept = _deposit(s, 2, net_g=500)
        void = ledger.void_deposit(s, "gw-01-1", author=STAFF_BM, reason="wrong member's card")
        assert (void.author, void.replacement_id) == (STAFF_BM, None)
        assert ledger.member_balance(s, "AMB-0001") == kept.amount_idr
        assert ledger.bank_stock(s, BM) == {"pet": 500}
        assert is_voided(s, "gw-01-1")
        assert not is_voided(s, "gw-01-2")
        # Nothing was edited: the deposit row and its entries are still there.
        assert s.scalar(select(func.count()).select_from(ledger.Deposit)) == 2
        legs = s.execute(
            select(ledger.JournalEntry.txn_ref, ledger.JournalEntry.amount_idr)
            .where(ledger.JournalEntry.account == ledger.member_account("AMB-0001"))
            .order_by(ledger.JournalEntry.id)
        ).all()
        assert [tuple(r) for r in legs] == [
            ("deposit:gw-01-1", 5000),
            ("deposit:gw-01-2", 2000),
            ("void:gw-01-1", -5000),
        ]
        with pytest.raises(ledger.AlreadyVoided):
            ledger.void_deposit(s, "gw-01-1", author=STAFF_BM, reason="again")
        with pytest.raises(ledger.NotFound):
            ledger.void_deposit(s, "gw-01-99", author=STAFF_BM, reason="no such")
        with pytest.raises(ledger.NotAllowed):
            ledger.void_deposit(s, "gw-01-2", author="petugas-nsw-01", reason="not mine")
        assert ledger.member_balance(s, "AMB-0001") == kept.amount_idr
        _verified(s)


def test_correct_is_a_void_plus_a_new_manual_deposit(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=1250, category="pet", at=NOV + timedelta(days=2))
        void, fixed = ledger.correct_deposit(
            s,
            "gw-01-1",
            author=STAFF_BM,
            reason="it was aluminium",
            category_code="aluminium",
            net_g=1200,
        )
        assert (fixed.category_code, fixed.net_g, fixed.amount_idr) == ("aluminium", 1200, 7200)
        replacement = s.get(ledger.Deposit, void.replacement_id)
        assert replacement is not None
        assert replacement.manual
        assert replacement.measured_at == NOV + timedelta(days=2)
        assert replacement.reason == "correction of gw-01-1: it was aluminium"
        assert ledger.member_balance(s, "AMB-0001") == 7200
        assert ledger.bank_stock(s, BM) == {"aluminium": 1200, "pet": 0}
        with pytest.raises(ledger.AlreadyVoided):
            ledger.correct_deposit(s, "gw-01-1", author=STAFF_BM, reason="again", net_g=1)
        # A correction of the correction is allowed: it is a deposit like any other.
        ledger.correct_deposit(
            s, replacement.event_id, author=STAFF_BM, reason="re-weighed", net_g=1100
        )
        assert ledger.member_balance(s, "AMB-0001") == 6600
        _verified(s)


def test_a_void_may_not_take_back_money_withdrawn_or_waste_sold(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=5000)  # Rp20,000
        w = ledger.request_withdrawal(s, "AMB-0001", 15_000, "cash", requested_by="AMB-0001")
        with pytest.raises(ledger.InsufficientBalance, match="-Rp15.000 available"):
            ledger.void_deposit(s, "gw-01-1", author=STAFF_BM, reason="oops")
        ledger.cancel_withdrawal(s, w.id, author="AMB-0001", reason="changed my mind")
        ledger.sell_stock(
            s,
            BM,
            "pet",
            4000,
            collector_code="ud-galala-plastik",
            revenue_idr=36_000,
            author=STAFF_BM,
        )
        with pytest.raises(ledger.InsufficientStock) as refused:
            ledger.void_deposit(s, "gw-01-1", author=STAFF_BM, reason="oops")
        # the fifth review: it was English only, in grams ("-4000 g of pet")
        assert str(refused.value) == (
            "pembatalan gw-01-1 akan menyisakan stok Botol PET bersih di Bank Sampah Batu Merah "
            "Bersih -4,00 kg / voiding gw-01-1 would leave Bank Sampah Batu Merah Bersih with "
            "-4,00 kg of Clean PET bottles"
        )
        assert not is_voided(s, "gw-01-1")
        assert ledger.member_balance(s, "AMB-0001") == 20_000
        _verified(s)


# ---- withdrawals ------------------------------------------------------------------------------


def test_withdrawal_request_approve_pay(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=12_500)  # Rp50,000
        w = ledger.request_withdrawal(
            s,
            "AMB-0001",
            30_000,
            "ewallet",
            destination="081200000001",
            requested_by="AMB-0001",
        )
        assert w.status == "requested"
        assert ledger.member_balance(s, "AMB-0001") == 50_000  # reserved, not yet paid
        assert member_available(s, "AMB-0001") == 20_000
        with pytest.raises(ledger.InvalidTransition, match="is requested"):
            ledger.pay_withdrawal(s, w.id, author=STAFF_BM)
        w = ledger.approve_withdrawal(s, w.id, author=STAFF_BM)
        assert (w.status, w.decided_by) == ("approved", STAFF_BM)
        w = ledger.pay_withdrawal(s, w.id, author=STAFF_BM, payout_ref="DANA-123")
        assert (w.status, w.paid_by, w.payout_ref) == ("paid", STAFF_BM, "DANA-123")
        assert ledger.member_balance(s, "AMB-0001") == 20_000
        assert member_available(s, "AMB-0001") == 20_000
        funds = s.scalar(
            select(func.sum(ledger.JournalEntry.amount_idr)).where(
                ledger.JournalEntry.account == ledger.bank_funds_account(BM, "ewallet")
            )
        )
        assert funds == 30_000  # a credit: money left the bank's e-wallet account
        for move in (ledger.pay_withdrawal, ledger.approve_withdrawal):
            with pytest.raises(ledger.InvalidTransition, match="is paid"):
                move(s, w.id, author=STAFF_BM)
        with pytest.raises(ledger.InvalidTransition, match="is paid"):
            ledger.cancel_withdrawal(s, w.id, author="AMB-0001", reason="too late")
        _verified(s)


def test_rejected_and_cancelled_withdrawals_release_the_reservation(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=10_000)  # Rp40,000
        a = ledger.request_withdrawal(s, "AMB-0001", 25_000, "cash", requested_by=STAFF_BM)
        with pytest.raises(ledger.InsufficientBalance, match="Rp15.000 available"):
            ledger.request_withdrawal(s, "AMB-0001", 25_000, "cash", requested_by=STAFF_BM)
        with pytest.raises(ledger.NotAllowed, match="needs a reason"):
            ledger.reject_withdrawal(s, a.id, author=STAFF_BM, reason="")
        with pytest.raises(ledger.NotAllowed, match="not an attendant"):
            ledger.reject_withdrawal(s, a.id, author=STAFF_RIJALI, reason="not my bank's")
        a = ledger.reject_withdrawal(s, a.id, author=STAFF_BM, reason="ID not shown")
        assert (a.status, a.reason) == ("rejected", "ID not shown")
        with pytest.raises(ledger.InvalidTransition, match="is rejected"):
            ledger.approve_withdrawal(s, a.id, author=STAFF_BM)
        b = ledger.request_withdrawal(s, "AMB-0001", 40_000, "cash", requested_by=STAFF_BM)
        ledger.approve_withdrawal(s, b.id, author=STAFF_BM)
        assert member_available(s, "AMB-0001") == 0
        b = ledger.cancel_withdrawal(s, b.id, author="AMB-0001", reason="will save for Lebaran")
        assert b.status == "cancelled"
        assert member_available(s, "AMB-0001") == 40_000
        assert s.scalar(select(func.count()).where(ledger.JournalEntry.txn_ref.like("withd%"))) == 0
        _verified(s)


@pytest.mark.parametrize(
    ("member_no", "amount", "method", "destination", "error", "match"),
    [
        ("AMB-0001", 9_999, "cash", None, ledger.BelowMinimum, "minimum withdrawal"),
        ("AMB-0101", 20_000, "cash", None, ledger.BelowMinimum, "Rp25.000"),
        ("AMB-0001", 0, "cash", None, ledger.BelowMinimum, "minimum"),
        ("AMB-0001", 10_000, "bank_transfer", None, ledger.NotAllowed, "account or e-wallet"),
        ("AMB-0001", 10_000, "gold", None, ledger.NotAllowed, "payout method"),
        ("AMB-0001", 10_001, "cash", None, ledger.InsufficientBalance, "Rp10.000 available"),
        ("AMB-9999", 10_000, "cash", None, ledger.NotFound, "unknown member"),
    ],
)
def test_withdrawal_requests_that_are_refused(
    engine: Engine,
    member_no: str,
    amount: int,
    method: str,
    destination: str | None,
    error: type[Exception],
    match: str,
) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=2_500)  # AMB-0001: Rp10,000
        _deposit(s, 2, net_g=100_000, card="04B1B2C3D1", bank=NUSANIWE)  # AMB-0101: Rp350,000
        with pytest.raises(error, match=match):
            ledger.request_withdrawal(
                s, member_no, amount, method, destination=destination, requested_by="x"
            )
        assert s.scalar(select(func.count()).select_from(ledger.Withdrawal)) == 0


def test_concurrent_withdrawal_requests_never_overdraw(ledger_url: str) -> None:
    """200 requests at once for one member, from threads with their own sessions on five
    engines (their own connections): exactly as many succeed as the balance covers."""
    setup = ledger.make_engine(ledger_url)
    with Session(setup) as s:
        ledger.apply_deposits(s, [deposit_event(i, net_g=10_000 + i) for i in range(31)])
        s.commit()
        balance = ledger.member_balance(s, "AMB-0001")
    amount = 10_000  # bs-batu-merah's minimum
    assert balance // amount == 124  # the rest of the 200 must be refused
    engines = [ledger.make_engine(ledger_url) for _ in range(5)]
    start = threading.Barrier(200)
    outcomes: list[str] = [""] * 200

    def request(k: int) -> None:
        with Session(engines[k % len(engines)]) as session:
            start.wait()
            try:
                ledger.request_withdrawal(
                    session, "AMB-0001", amount, "cash", requested_by=f"kiosk-{k}"
                )
                session.commit()
                outcomes[k] = "requested"
            except ledger.InsufficientBalance:
                outcomes[k] = "refused"
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes[k] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=request, args=(k,)) for k in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for eng in engines:
        eng.dispose()
    assert Counter(outcomes) == {"requested": 124, "refused": 76}
    with Session(setup) as s:
        pending = ledger.member_pending(s, registry.member_by_no(s, "AMB-0001").id)
        assert pending == 124 * amount <= balance
        assert 0 <= member_available(s, "AMB-0001") < amount
        assert ledger.verify(s) == []
        # Paying every one of them leaves the balance at zero or above.
        for wid in s.scalars(select(ledger.Withdrawal.id).order_by(ledger.Withdrawal.id)).all():
            ledger.approve_withdrawal(s, wid, author=STAFF_BM)
            ledger.pay_withdrawal(s, wid, author=STAFF_BM)
        assert ledger.member_balance(s, "AMB-0001") == balance - 124 * amount >= 0
        assert ledger.verify(s) == []
    setup.dispose()


# ---- stock ------------------------------------------------------------------------------------


def test_stock_in_out_transfer_sale_residue(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=8_000, card=RIJALI_CARD, bank=RIJALI)
        _deposit(s, 2, net_g=3_000, card=RIJALI_CARD, bank=RIJALI, category="kardus")
        _deposit(s, 3, net_g=2_000)  # at the induk itself
        assert ledger.bank_stock(s, RIJALI) == {"kardus": 3_000, "pet": 8_000}
        # The unit delivers PET to its induk, which weighs 7,950 g on arrival.
        move = ledger.transfer_stock(s, RIJALI, "pet", 8_000, received_g=7_950, author=STAFF_RIJALI)
        assert (move.kind, move.to_bank_id) == ("transfer", _bank(s, BM).id)
        assert ledger.bank_stock(s, RIJALI) == {"kardus": 3_000, "pet": 0}
        assert ledger.bank_stock(s, BM) == {"pet": 9_950}
        # The induk sells to a pengepul; revenue goes into its cash.
        sale = ledger.sell_stock(
            s,
            BM,
            "pet",
            9_000,
            collector_code="ud-galala-plastik",
            revenue_idr=81_000,
            author=STAFF_BM,
            note="monthly sale",
        )
        assert (sale.revenue_idr, sale.collector is not None) == (81_000, True)
        # What cannot be sold leaves as residue or is burned, recorded as such.
        ledger.dispose_stock(s, BM, "pet", 450, ledger.MovementKind.RESIDUE, author=STAFF_BM)
        ledger.dispose_stock(s, RIJALI, "kardus", 500, ledger.MovementKind.BURNED, author=STAFF_BM)
        assert ledger.bank_stock(s, BM) == {"pet": 500}
        assert ledger.bank_stock(s, RIJALI) == {"kardus": 2_500, "pet": 0}
        flows = {
            account: int(grams)
            for account, grams in s.execute(
                select(ledger.StockEntry.account, func.sum(ledger.StockEntry.grams))
                .where(~ledger.StockEntry.account.startswith("stock:"))
                .group_by(ledger.StockEntry.account)
            )
        }
        assert flows == {
            f"intake:{RIJALI}": -11_000,
            f"intake:{BM}": -2_000,
            f"shrinkage:{RIJALI}": 50,
            f"sold:{BM}": 9_000,
            f"residue:{BM}": 450,
            f"burned:{RIJALI}": 500,
        }
        cash = s.scalar(
            select(func.sum(ledger.JournalEntry.amount_idr)).where(
                ledger.JournalEntry.account == ledger.bank_funds_account(BM, "cash")
            )
        )
        assert cash == -81_000  # a debit: cash came in
        _verified(s)


@pytest.mark.parametrize(
    "take",
    [
        lambda s: ledger.sell_stock(
            s, BM, "pet", 2_001, collector_code="ud-galala-plastik", revenue_idr=1, author=STAFF_BM
        ),
        lambda s: ledger.dispose_stock(s, BM, "pet", 2_001, "burned", author=STAFF_BM),  # type: ignore[arg-type]
        lambda s: ledger.dispose_stock(s, BM, "kardus", 1, "residue", author=STAFF_BM),  # type: ignore[arg-type]
        lambda s: ledger.transfer_stock(s, RIJALI, "pet", 1, author=STAFF_RIJALI),
    ],
    ids=["sale", "burned", "residue-never-held", "transfer"],
)
def test_stock_never_goes_negative(engine: Engine, take: object) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=2_000)
        with pytest.raises(ledger.InsufficientStock):
            take(s)  # type: ignore[operator]
        assert ledger.bank_stock(s, BM) == {"pet": 2_000}
        assert s.scalar(select(func.count()).select_from(ledger.StockMovement)) == 0
        _verified(s)


def test_only_a_unit_with_an_induk_transfers(engine: Engine) -> None:
    with Session(engine) as s:
        _deposit(s, 1, net_g=2_000, card="04B1B2C3D1", bank=NUSANIWE)
        with pytest.raises(ledger.NotAllowed, match="no induk"):
            ledger.transfer_stock(s, NUSANIWE, "pet", 1_000, author="petugas-nsw-01")
        with pytest.raises(ledger.NotAllowed, match="residue or burned"):
            ledger.dispose_stock(
                s, NUSANIWE, "pet", 1, ledger.MovementKind.SALE, author="petugas-nsw-01"
            )


# ---- members and NIK --------------------------------------------------------------------------

KEY = b"k" * 32


def test_nik_is_stored_only_as_a_keyed_hash_and_finds_duplicates(engine: Engine) -> None:
    nik = "8171014506900001"
    with Session(engine) as s:
        bank = _bank(s, BM)
        first = ledger.create_member(
            s, bank=bank, member_no="AMB-0009", name="Ina", nik=nik, nik_key=KEY, rt="7", rw=1
        )
        assert first.nik_hash == ledger.hash_nik(nik, KEY) != ledger.hash_nik(nik, b"x" * 32)
        assert (first.rt, first.rw) == ("007", "001")
        s.commit()
        # The same person, written with spaces, at another bank: found before registering.
        dupes = ledger.members_with_nik(s, "8171 0145 0690 0001", KEY)
        assert [m.member_no for m in dupes] == ["AMB-0009"]
        assert ledger.members_with_nik(s, nik, b"another key, another hash......") == []
        # Nowhere in the database in clear.
        rows = s.execute(text("SELECT * FROM member")).all()
        assert not any(nik in str(v) for row in rows for v in row)
        with pytest.raises(ValueError, match="16 digits"):
            ledger.hash_nik("81710145", KEY)
        with pytest.raises(ledger.NotAllowed, match="NIK key"):
            ledger.create_member(s, bank=bank, member_no="AMB-0010", name="X", nik=nik)


def test_nik_key_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from wastebank.config import ConfigError, load_settings

    monkeypatch.delenv("WASTEBANK_NIK_KEY", raising=False)
    with pytest.raises(ledger.NotAllowed, match="WASTEBANK_NIK_KEY"):
        load_settings(ledger.MemberPrivacySettings).key()
    monkeypatch.setenv("WASTEBANK_NIK_KEY", "too-short")
    with pytest.raises(ConfigError, match="nik_key"):
        load_settings(ledger.MemberPrivacySettings)
    monkeypatch.setenv("WASTEBANK_NIK_KEY", "s" * 40)
    assert load_settings(ledger.MemberPrivacySettings).key() == b"s" * 40


# ---- verify -----------------------------------------------------------------------------------


def _some_books(s: Session) -> None:
    _deposit(s, 1, net_g=5_000)
    _deposit(s, 2, net_g=3_000, card=RIJALI_CARD, bank=RIJALI)
    ledger.void_deposit(s, "gw-01-2", author=STAFF_BM, reason="test")
    w = ledger.request_withdrawal(s, "AMB-0001", 10_000, "cash", requested_by="AMB-0001")
    ledger.approve_withdrawal(s, w.id, author=STAFF_BM)
    ledger.pay_withdrawal(s, w.id, author=STAFF_BM)
    ledger.sell_stock(
        s, BM, "pet", 1_000, collector_code="ud-galala-plastik", revenue_idr=9_000, author=STAFF_BM
    )


def test_verify_reports_an_unbalanced_row_inserted_behind_its_back(engine: Engine) -> None:
    with Session(engine) as s:
        _some_books(s)
        _verified(s)
        s.add(
            ledger.JournalEntry(
                txn_ref="deposit:gw-01-1",
                account=ledger.member_account("AMB-0001"),
                amount_idr=1_000,
            )
        )
        s.commit()
        problems = [str(p) for p in ledger.verify(s)]
        assert problems == [
            "unbalanced: money deposit:gw-01-1: legs sum to Rp1000",
            "entries: money deposit:gw-01-1 member:AMB-0001: expected Rp20000, found Rp21000",
        ]


def test_verify_reports_tampered_stock_amounts_and_negative_balances(engine: Engine) -> None:
    with Session(engine) as s:
        _some_books(s)
        # A balanced pair that no document explains: moves stock between banks.
        s.add_all(
            [
                ledger.StockEntry(
                    txn_ref="x", account="stock:bs-batu-merah", category_id=1, grams=-9_000
                ),
                ledger.StockEntry(
                    txn_ref="x", account="stock:bs-rijali", category_id=1, grams=9_000
                ),
            ]
        )
        s.execute(
            update(ledger.Deposit).where(ledger.Deposit.event_id == "gw-01-1").values(amount_idr=1)
        )
        s.commit()
        checks = Counter(p.check for p in ledger.verify(s))
        # entries: the two unexplained stock legs, and both legs of the deposit (whose document
        # now says Rp1); negative: the induk's stock; amount: the deposit's price x weight.
        assert checks == {"entries": 4, "negative": 1, "amount": 1}
        found = {str(p) for p in ledger.verify(s)}
        assert "negative: stock:bs-batu-merah category 1: -5000 g" in found
        assert "amount: deposit gw-01-1: Rp1, its count prices at Rp20000" in found


def test_verify_reports_a_broken_hierarchy(engine: Engine) -> None:
    with Session(engine) as s:
        s.execute(update(ledger.Bank).where(ledger.Bank.code == BM).values(kind="unit"))
        s.commit()
        assert [str(p) for p in ledger.verify(s)] == [
            "hierarchy: bank bs-rijali: a unit's parent must be an induk"
        ]


def test_ledger_verify_command(engine: Engine, ledger_url: str) -> None:
    from typer.testing import CliRunner

    from wastebank.cli import app

    with Session(engine) as s:
        _some_books(s)
        s.commit()
    runner = CliRunner()
    ok = runner.invoke(app, ["ledger", "verify", "--ledger-url", ledger_url])
    assert (ok.exit_code, ok.stdout.strip()) == (0, "pembukuan benar / the books hold")
    with Session(engine) as s:
        s.add(ledger.JournalEntry(txn_ref="forged", account="member:AMB-0002", amount_idr=50_000))
        s.commit()
    bad = runner.invoke(app, ["ledger", "verify", "--ledger-url", ledger_url])
    assert bad.exit_code == 1
    assert bad.stdout.splitlines() == [
        "unbalanced: money forged: legs sum to Rp50000",
        "entries: money forged member:AMB-0002: expected Rp0, found Rp50000",
    ]
    assert "2 masalah / problems" in bad.stderr


# ---- migration 0002 ---------------------------------------------------------------------------


def test_migration_moves_banks_into_areas_and_fills_the_stock_journal(
    ledger_factory: LedgerFactory, ledger_backend: str, tmp_path: Path
) -> None:
    """A ledger at revision 0001 with banks named by kecamatan/kelurahan strings and deposits
    without stock entries: after 0002 the banks refer to area rows and ``verify`` holds."""
    sqlite = ledger_backend == "sqlite"
    if sqlite:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    else:
        url = ledger_factory.new(seeded=False)
        wipe = ledger.plain_engine(url)
        with wipe.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
        wipe.dispose()
    engine = ledger.make_engine(url, migrate=False)
    try:
        migrations.upgrade(engine, "0001")
        ts = "2026-11-01 01:00:00.000000" if sqlite else "2026-11-01 01:00:00+00"
        deposit = (
            "INSERT INTO deposit (id, event_id, member_id, bank_id, category_id, net_g, tare_g, "
            "price_per_kg_idr, amount_idr, measured_at, recorded_at, gateway_id, scale_id, "
            "protocol, stable, raw_frames) VALUES "
            "(1, 'gw-01-1', 1, 1, 1, 1250, 0, 4000, 5000, :ts, :ts, 'gw-01', 's', 'p', true, '[]'),"
            " (2, 'gw-03-1', 2, 3, 1, 2000, 0, 3500, 7000, :ts, :ts, 'gw-03', 's', 'p', true, '[]')"
        )
        journal = (
            "INSERT INTO journal_entry (txn_ref, account, amount_idr, created_at, memo) VALUES "
            "('deposit:gw-01-1', 'member:M-1', 5000, :ts, ''), "
            "('deposit:gw-01-1', 'bank:bs-a:waste_purchases', -5000, :ts, ''), "
            "('deposit:gw-03-1', 'member:M-3', 7000, :ts, ''), "
            "('deposit:gw-03-1', 'bank:bs-c:waste_purchases', -7000, :ts, '')"
        )
        with engine.begin() as conn:
            for sql in (
                "INSERT INTO city VALUES (1, 'ambon', 'Kota Ambon', 'Asia/Jayapura')",
                "INSERT INTO bank (id, code, name, city_id, kecamatan, kelurahan) VALUES "
                "(1, 'bs-a', 'A', 1, 'Sirimau', 'Batu Merah'), "
                "(2, 'bs-b', 'B', 1, 'Sirimau', 'Rijali'), "
                "(3, 'bs-c', 'C', 1, 'Nusaniwe', 'Benteng')",
                "INSERT INTO member (id, member_no, name, bank_id) VALUES "
                "(1, 'M-1', 'x', 1), (2, 'M-3', 'y', 3)",
                "INSERT INTO category (id, code, name_id, name_en, unit) VALUES "
                "(1, 'pet', 'PET', 'PET', 'kg')",
                deposit,
                journal,
            ):
                conn.execute(text(sql), {"ts": ts})
        assert migrations.upgrade(engine) is True
        assert migrations.current(engine) == migrations.head()
        assert migrations.differences(engine, tables.metadata()) == []
        with Session(engine) as s:
            banks = {
                b.code: (b.kind, b.kecamatan, b.kelurahan.name, b.min_withdrawal_idr)
                for b in s.scalars(select(ledger.Bank))
            }
            assert banks == {
                "bs-a": ("unit", "Sirimau", "Batu Merah", 0),
                "bs-b": ("unit", "Sirimau", "Rijali", 0),
                "bs-c": ("unit", "Nusaniwe", "Benteng", 0),
            }
            assert s.scalar(select(func.count()).select_from(ledger.Kecamatan)) == 2
            assert ledger.bank_stock(s, "bs-a") == {"pet": 1250}
            assert ledger.bank_stock(s, "bs-c") == {"pet": 2000}
            assert ledger.verify(s) == []
    finally:
        engine.dispose()
        ledger_factory.drop(url)


def test_an_unknown_pengepul_is_named_in_both_languages(engine: Engine) -> None:
    """The fifth review: "tidak ditemukan / not found: unknown pengepul 'nope'" named it in
    English only."""
    with Session(engine) as s, pytest.raises(ledger.NotFound) as refused:
        ledger.sell_stock(
            s, BM, "pet", 1000, collector_code="nope", revenue_idr=9_000, author=STAFF_BM
        )
    assert str(refused.value) == "pengepul 'nope' tidak dikenal / unknown pengepul 'nope'"
