"""Money rules (issue 13, part 5): plausibility limits on prices, scale deposits and manual
deposits, and withdrawals above an amount that need three different people. The ledger's side,
on every ledger backend; the API's in test_money_rules_api.py, the ingester's in
test_money_rules_ingest.py."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from ingest.main import IngestSettings
from tests.conftest import deposit_event
from tests.ledger_helpers import add_dead_letter, apply_deposit, is_voided, member_available
from wastebank import ledger
from wastebank.config import ConfigError, load_settings
from wastebank.money_rules import DEFAULT_RULES, CityMoneyRules, MoneyRules, PriceRange
from wastebank.structs import encode_json

BM = "bs-batu-merah"  # induk in the demo city (Kota Ambon, code "ambon"); petugas-bm-01
STAFF = "petugas-bm-01"
MEMBER = "AMB-0001"  # at bs-batu-merah


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


def _future(minutes: int) -> datetime:
    """An effective date ahead of every deposit (so no price history is in the way)."""
    return datetime.now(UTC) + timedelta(days=30, minutes=minutes)


def _prices(s: Session) -> int:
    return s.scalar(select(func.count()).select_from(ledger.Price)) or 0


# ---- the settings ------------------------------------------------------------------------------


def test_the_most_specific_value_wins_and_is_named() -> None:
    rules = MoneyRules(
        price_max_idr=100_000,
        category_prices={"tembaga": PriceRange(min_idr=20_000, max_idr=80_000)},
        scales={"gw-01/kiosk": 150_000},
        cities={
            "ambon": CityMoneyRules(
                price_max_idr=60_000,
                category_prices={"tembaga": PriceRange(max_idr=90_000)},
                scales={"gw-02/lantai": 300_000},
                second_approval_above_idr=500_000,
            )
        },
    )
    ambon, other = rules.city("ambon"), rules.city("kota-lain")
    # A category's own range, the city's first; an end the city leaves unset is the default's.
    assert ambon.price_range("tembaga") == (
        (20_000, "money.category_prices.tembaga.min_idr"),
        (90_000, "money.cities.ambon.category_prices.tembaga.max_idr"),
    )
    assert other.price_range("tembaga")[1] == (80_000, "money.category_prices.tembaga.max_idr")
    # Any other category: the city's value for every category, else the default.
    assert ambon.price_range("pet") == (
        (0, "money.price_min_idr"),
        (60_000, "money.cities.ambon.price_max_idr"),
    )
    assert other.price_range("pet")[1] == (100_000, "money.price_max_idr")
    assert ambon.scale_max("gw-02", "lantai") == (
        300_000,
        'money.cities.ambon.scales."gw-02/lantai"',
    )
    assert ambon.scale_max("gw-01", "kiosk") == (150_000, 'money.scales."gw-01/kiosk"')
    assert other.scale_max("gw-02", "lantai") == (500_000, "money.scale_max_g")
    assert ambon.own_scales() == {"gw-01/kiosk": 150_000, "gw-02/lantai": 300_000}
    # "Above" the amount: at it, one person may still do it all.
    assert not ambon.needs_second_person(500_000)
    assert ambon.needs_second_person(500_001)
    assert not other.needs_second_person(1_000_000)
    assert other.needs_second_person(1_000_001)


def test_the_rules_come_from_the_environment_and_bad_ones_stop_the_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("WASTEBANK_MONEY__PRICE_MAX_IDR", "75000")
    monkeypatch.setenv("WASTEBANK_MONEY__SCALES", '{"gw-01/scale-01": 150000}')
    monkeypatch.setenv("WASTEBANK_MONEY__CITIES", '{"ambon": {"manual_max_idr": 2000000}}')
    money = load_settings(IngestSettings).money
    assert money.price_max_idr == 75_000
    assert money.city("ambon").scale_max("gw-01", "scale-01")[0] == 150_000
    assert money.city("ambon").pick("manual_max_idr") == (
        2_000_000,
        "money.cities.ambon.manual_max_idr",
    )
    monkeypatch.setenv("WASTEBANK_MONEY__SCALES", '{"gw-01": 150000}')  # not gateway/scale
    with pytest.raises(ConfigError, match="WASTEBANK_MONEY__SCALES"):
        load_settings(IngestSettings)
    monkeypatch.delenv("WASTEBANK_MONEY__SCALES")
    monkeypatch.setenv("WASTEBANK_MONEY__PRICE_MAX_IDR", "-1")
    with pytest.raises(ConfigError, match="WASTEBANK_MONEY__PRICE_MAX_IDR"):
        load_settings(IngestSettings)
    with pytest.raises(ValueError, match="min_idr is above max_idr"):
        PriceRange(min_idr=10, max_idr=9)


# ---- prices ------------------------------------------------------------------------------------


def test_a_price_at_its_limit_is_set_and_one_past_it_refused(engine: Engine) -> None:
    rules = MoneyRules(
        price_max_idr=50_000,
        category_prices={"aluminium": PriceRange(min_idr=1_000, max_idr=20_000)},
    )
    with Session(engine) as s:
        before = _prices(s)
        assert ledger.set_price(s, BM, "pet", 50_000, _future(1), author=STAFF, rules=rules)
        with pytest.raises(ledger.OverLimit) as refused:
            ledger.set_price(s, BM, "pet", 50_001, _future(2), author=STAFF, rules=rules)
        assert refused.value.breach.setting == "money.price_max_idr"
        assert (refused.value.breach.limit, refused.value.breach.value) == (50_000, 50_001)
        # Bilingual, id-ID numbers, the setting named.
        assert str(refused.value) == (
            "harga pet Rp50.001/kg di atas batas Rp50.000/kg (money.price_max_idr) / the "
            "price of pet, Rp50.001/kg, is above the limit Rp50.000/kg (money.price_max_idr)"
        )
        ledger.set_price(s, BM, "aluminium", 20_000, _future(3), author=STAFF, rules=rules)
        ledger.set_price(s, BM, "aluminium", 1_000, _future(4), author=STAFF, rules=rules)
        for price, setting in ((20_001, "max_idr"), (999, "min_idr")):
            with pytest.raises(ledger.OverLimit, match=f"category_prices.aluminium.{setting}"):
                ledger.set_price(s, BM, "aluminium", price, _future(5), author=STAFF, rules=rules)
        with pytest.raises(ledger.OverLimit, match="di bawah batas"):
            ledger.set_price(s, BM, "aluminium", 999, _future(5), author=STAFF, rules=rules)
        # The Rp1,000,000,000/kg, against the built-in defaults.
        with pytest.raises(ledger.OverLimit, match=r"Rp1\.000\.000\.000/kg"):
            ledger.set_price(s, BM, "pet", 1_000_000_000, _future(6), author=STAFF)
        assert _prices(s) == before + 3  # nothing refused was written
        assert ledger.verify(s) == []


def test_a_city_of_its_own_has_its_own_price_limit(engine: Engine) -> None:
    rules = MoneyRules(cities={"ambon": CityMoneyRules(price_max_idr=8_000)})
    with Session(engine) as s:
        ledger.set_price(s, BM, "pet", 8_000, _future(1), author=STAFF, rules=rules)
        with pytest.raises(ledger.OverLimit, match=r"money\.cities\.ambon\.price_max_idr"):
            ledger.set_price(s, BM, "pet", 8_001, _future(2), author=STAFF, rules=rules)
        # Another city's values are not Ambon's: the defaults hold there.
        elsewhere = MoneyRules(cities={"kota-lain": CityMoneyRules(price_max_idr=8_000)})
        ledger.set_price(s, BM, "pet", 8_001, _future(3), author=STAFF, rules=elsewhere)


# ---- manual deposits ---------------------------------------------------------------------------


def _manual(s: Session, category: str, net_g: int, rules: MoneyRules) -> ledger.AppliedDeposit:
    return ledger.record_manual_deposit(
        s,
        bank_code=BM,
        member_no=MEMBER,
        category_code=category,
        net_g=net_g,
        measured_at=None,
        author=STAFF,
        reason="timbangan rusak / scale down",
        rules=rules,
    )


def test_a_manual_deposit_at_its_limits_is_recorded_and_one_past_them_refused(
    engine: Engine,
) -> None:
    rules = MoneyRules(manual_max_g=10_000, manual_max_idr=30_000)
    with Session(engine) as s:
        # kardus at Rp1,500/kg: 10 kg is Rp15,000, at the weight limit.
        assert _manual(s, "kardus", 10_000, rules).amount_idr == 15_000
        with pytest.raises(ledger.DepositOverLimit) as heavy:
            _manual(s, "kardus", 10_001, rules)
        assert heavy.value.breach.setting == "money.manual_max_g"
        assert "10,001 kg di atas batas 10,00 kg" in str(heavy.value)
        # PET at Rp4,000/kg: 7.5 kg is Rp30,000, at the amount limit; 7,501 g is Rp30,004.
        assert _manual(s, "pet", 7_500, rules).amount_idr == 30_000
        with pytest.raises(ledger.DepositOverLimit, match=r"Rp30\.004 .*manual_max_idr"):
            _manual(s, "pet", 7_501, rules)
        balance = ledger.member_balance(s, MEMBER)
        assert balance == 45_000  # only the two within the limits
        # The 1,000 t, against the built-in defaults.
        with pytest.raises(ledger.DepositOverLimit, match="manual_max_g"):
            _manual(s, "kardus", 1_000_000_000, DEFAULT_RULES)
        assert ledger.verify(s) == []


def test_a_correction_is_held_to_the_manual_limits(engine: Engine) -> None:
    rules = MoneyRules(manual_max_g=10_000)
    with Session(engine) as s:
        original = _manual(s, "kardus", 2_000, rules)
        with pytest.raises(ledger.DepositOverLimit, match="manual_max_g"):
            ledger.correct_deposit(
                s, original.event_id, author=STAFF, reason="salah", net_g=10_001, rules=rules
            )
        assert not is_voided(s, original.event_id)  # the refusal wrote nothing
        ledger.correct_deposit(
            s, original.event_id, author=STAFF, reason="salah", net_g=10_000, rules=rules
        )
        assert is_voided(s, original.event_id)
        assert ledger.verify(s) == []


# ---- scale deposits ----------------------------------------------------------------------------


def test_a_scale_deposit_over_its_scales_limit_is_refused_and_can_be_resolved(
    engine: Engine,
) -> None:
    rules = MoneyRules(scale_max_g=100_000, scales={"gw-01/scale-01": 30_000})
    events = [
        deposit_event(1, net_g=30_000),  # gw-01/scale-01 at its own limit
        deposit_event(2, net_g=30_001),
        deposit_event(3, net_g=100_000, gateway="gw-02"),  # the limit of every other scale
        deposit_event(4, net_g=100_001, gateway="gw-02"),
    ]
    with Session(engine) as s:
        results = ledger.apply_deposits(s, events, rules=rules)
        assert [type(r).__name__ for r in results] == [
            "AppliedDeposit",
            "DepositOverLimit",
            "AppliedDeposit",
            "DepositOverLimit",
        ]
        assert isinstance(results[1], ledger.DepositOverLimit)
        assert isinstance(results[3], ledger.DepositOverLimit)
        assert results[1].breach.setting == 'money.scales."gw-01/scale-01"'
        assert results[3].breach.setting == "money.scale_max_g"
        assert "a deposit of 30,001 kg from scale gw-01/scale-01" in str(results[1])
        assert ledger.member_balance(s, MEMBER) == ledger.amount_for(130_000, 4000)
        # A refused deposit is a DepositRejected too: apply_deposit raises it.
        with pytest.raises(ledger.DepositRejected):
            apply_deposit(s, events[1], rules=rules)

        # Kept as the ingester keeps it; an operator vouches for it: applied under its own id,
        # not held to the limit again, once.
        dead = add_dead_letter(
            s,
            "wb/bank/bs-batu-merah/gateway/gw-01/deposit",
            encode_json(events[1]),
            f"over limit: {results[1]}",
            ledger.DeadLetterReason.OVER_LIMIT,
            events[1].event_id,
        )
        row, applied = ledger.resolve_dead_letter(
            s, dead, apply=True, reason="ditimbang ulang, benar / re-weighed", author="cli:op"
        )
        assert applied is not None
        assert (applied.event_id, applied.net_g) == (events[1].event_id, 30_001)
        assert (
            row.resolution
            == f"applied as {events[1].event_id}: ditimbang ulang, benar / re-weighed"
        )
        with pytest.raises(ledger.InvalidTransition, match="settled already"):
            ledger.resolve_dead_letter(s, dead, apply=True, reason="again", author="cli:op")
        # A second dead letter of a deposit the ledger has by now is not applied twice.
        again = add_dead_letter(
            s,
            "wb/bank/bs-batu-merah/gateway/gw-01/deposit",
            encode_json(events[1]),
            "over limit: ...",
            ledger.DeadLetterReason.OVER_LIMIT,
            events[1].event_id,
        )
        with pytest.raises(ledger.InvalidTransition, match="in the ledger already"):
            ledger.resolve_dead_letter(s, again, apply=True, reason="dobel", author="cli:op")
        assert ledger.member_balance(s, MEMBER) == ledger.amount_for(160_001, 4000)
        assert ledger.verify(s) == []


# ---- withdrawals: three people above the amount ------------------------------------------------


def _attendants(s: Session, *staff_ids: str) -> None:
    bank = s.scalars(select(ledger.Bank).where(ledger.Bank.code == BM)).one()
    for staff_id in staff_ids:
        ledger.create_attendant(s, bank, staff_id, f"Petugas {staff_id}")
    s.commit()


def test_a_withdrawal_above_the_amount_needs_three_different_people(engine: Engine) -> None:
    rules = MoneyRules(second_approval_above_idr=50_000)
    with Session(engine) as s:
        _attendants(s, "petugas-bm-02", "petugas-bm-03")
        apply_deposit(s, deposit_event(1, net_g=100_000))  # Rp400,000

        # At the amount: one attendant may ask, approve and pay.
        at = ledger.request_withdrawal(s, MEMBER, 50_000, "cash", requested_by=STAFF, rules=rules)
        assert not at.dual_control
        ledger.approve_withdrawal(s, at.id, author=STAFF)
        ledger.pay_withdrawal(s, at.id, author=STAFF)

        # One Rupiah above it: reserved at once, and three people.
        w = ledger.request_withdrawal(s, MEMBER, 50_001, "cash", requested_by=STAFF, rules=rules)
        assert (w.status, w.dual_control) == ("requested", True)
        assert member_available(s, MEMBER) == 400_000 - 50_000 - 50_001
        for _ in range(2):  # the one who asked, twice: refused both times, nothing changes
            with pytest.raises(ledger.SecondPersonRequired, match=f"{STAFF} asked for it"):
                ledger.approve_withdrawal(s, w.id, author=STAFF)
            s.refresh(w)
            assert (w.status, w.decided_by) == ("requested", None)
        w = ledger.approve_withdrawal(s, w.id, author="petugas-bm-02")
        assert (w.status, w.decided_by) == ("approved", "petugas-bm-02")
        with pytest.raises(ledger.SecondPersonRequired, match="petugas-bm-02 approved it"):
            ledger.pay_withdrawal(s, w.id, author="petugas-bm-02")
        with pytest.raises(ledger.SecondPersonRequired, match=f"{STAFF} asked for it"):
            ledger.pay_withdrawal(s, w.id, author=STAFF)
        s.refresh(w)
        assert (w.status, w.paid_by) == ("approved", None)
        assert ledger.member_balance(s, MEMBER) == 350_000  # not paid yet
        w = ledger.pay_withdrawal(s, w.id, author="petugas-bm-03")
        assert (w.status, w.paid_by) == ("paid", "petugas-bm-03")
        assert ledger.member_balance(s, MEMBER) == 350_000 - 50_001

        # The member asks: the attendant who approves may not also pay out.
        own = ledger.request_withdrawal(
            s, MEMBER, 60_000, "cash", requested_by=f"nasabah:{MEMBER}", rules=rules
        )
        assert own.dual_control
        ledger.approve_withdrawal(s, own.id, author=STAFF)
        with pytest.raises(ledger.SecondPersonRequired, match="approved it"):
            ledger.pay_withdrawal(s, own.id, author=STAFF)
        ledger.pay_withdrawal(s, own.id, author="petugas-bm-02")

        # The rule is fixed at the request: under the default amount, one person, even if
        # the setting changes while the withdrawal is open.
        old = ledger.request_withdrawal(s, MEMBER, 50_001, "cash", requested_by=STAFF)
        assert not old.dual_control
        ledger.approve_withdrawal(s, old.id, author=STAFF)
        ledger.pay_withdrawal(s, old.id, author=STAFF)
        assert ledger.verify(s) == []


def test_parallel_requests_above_the_amount_never_overdraw(ledger_url: str) -> None:
    """Twenty requests above the second-approval amount at once, from their own sessions on
    four engines: reserved like any other, so exactly as many succeed as the balance covers."""
    rules = MoneyRules(second_approval_above_idr=50_000)
    setup = ledger.make_engine(ledger_url)
    with Session(setup) as s:
        apply_deposit(s, deposit_event(1, net_g=62_500))  # Rp250,000
        s.commit()
    engines = [ledger.make_engine(ledger_url) for _ in range(4)]
    start = threading.Barrier(20)
    outcomes = [""] * 20

    def request(k: int) -> None:
        with Session(engines[k % len(engines)]) as session:
            start.wait()
            try:
                w = ledger.request_withdrawal(
                    session, MEMBER, 60_000, "cash", requested_by=f"kiosk-{k}", rules=rules
                )
                session.commit()
                outcomes[k] = "dual" if w.dual_control else "single"
            except ledger.InsufficientBalance:
                outcomes[k] = "refused"
            except Exception as exc:  # noqa: BLE001 - reported by the assertion below
                outcomes[k] = f"{type(exc).__name__}: {exc}"

    threads = [threading.Thread(target=request, args=(k,)) for k in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for eng in engines:
        eng.dispose()
    try:
        assert Counter(outcomes) == {"dual": 4, "refused": 16}
        with Session(setup) as s:
            assert member_available(s, MEMBER) == 250_000 - 4 * 60_000
            assert ledger.verify(s) == []
    finally:
        setup.dispose()
