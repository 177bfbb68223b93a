"""DLH reports (wastebank/reports/): local months in WIT and WIB, voids, measured vs
estimated, the generation estimate and the reduction share, the CSV / XLSX / PDF renderings and
``wastebank report monthly``. Every test runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import io
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, text, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import deposit_event, undo_0009
from tests.ledger_helpers import scale
from wastebank import estimates, formats, ledger, migrations, reports
from wastebank.cli import app
from wastebank.reports import wording
from wastebank.structs import replace

WIT = timezone(timedelta(hours=9))
WIB = timezone(timedelta(hours=7))
ATTENDANT = "petugas-bm-01"  # bs-batu-merah's
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(ledger_url: str) -> Iterator[Session]:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def manual(s: Session, at: datetime, net_g: int, *, category: str = "pet") -> str:
    """An estimated (manual) deposit at bs-batu-merah; its event id."""
    event_id = ledger.record_manual_deposit(
        s,
        bank_code="bs-batu-merah",
        member_no="AMB-0001",
        category_code=category,
        net_g=net_g,
        measured_at=at,
        author=ATTENDANT,
        reason="timbangan rusak / scale down",
    ).event_id
    s.commit()
    return event_id


def months(t: reports.Tonnage) -> dict[date, int]:
    return {r.period_start: r.net_g for r in t.rows}


# ---- local months -------------------------------------------------------------------------------


def test_month_boundary_in_wit(session: Session) -> None:
    scale(session, datetime(2026, 10, 31, 23, 30, tzinfo=WIT), 1000)  # old month
    scale(session, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 2000)  # 2026-10-31T15:30Z: new
    scope = reports.load_scope(session, city_code="ambon")
    assert scope.timezone == "Asia/Jayapura"
    t = reports.tonnage(session, scope, date(2026, 10, 1), date(2026, 11, 30), "city", "month")
    assert months(t) == {date(2026, 10, 1): 1000, date(2026, 11, 1): 2000}
    assert t.zone == "WIT"
    days = reports.tonnage(session, scope, date(2026, 10, 31), date(2026, 11, 1), "city", "day")
    assert months(days) == {date(2026, 10, 31): 1000, date(2026, 11, 1): 2000}
    october = reports.monthly_report(session, scope, "2026-10", now=NOW)
    assert october.total.net_g == 1000


def test_month_boundary_in_wib(session: Session) -> None:
    session.execute(update(ledger.City).values(timezone="Asia/Jakarta"))
    session.commit()
    scale(session, datetime(2026, 10, 31, 23, 30, tzinfo=WIB), 1000)  # 16:30Z: old month
    scale(session, datetime(2026, 11, 1, 0, 30, tzinfo=WIB), 2000)  # 2026-10-31T17:30Z: new
    # 00:30 WIT on the 1st is 22:30 WIB on the 31st: October in a WIB city.
    scale(session, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 400)
    scope = reports.load_scope(session, city_code="ambon")
    t = reports.tonnage(session, scope, date(2026, 10, 1), date(2026, 11, 30), "city", "month")
    assert months(t) == {date(2026, 10, 1): 1400, date(2026, 11, 1): 2000}
    assert t.zone == "WIB"
    years = reports.tonnage(session, scope, date(2026, 1, 1), date(2026, 12, 31), "city", "year")
    assert months(years) == {date(2026, 1, 1): 3400}


def test_weeks_are_iso_weeks_from_monday(session: Session) -> None:
    scale(session, datetime(2026, 11, 1, 10, 0, tzinfo=WIT), 100)  # a Sunday
    scale(session, datetime(2026, 11, 2, 10, 0, tzinfo=WIT), 200)  # the Monday after
    scope = reports.load_scope(session)
    t = reports.tonnage(session, scope, date(2026, 10, 26), date(2026, 11, 8), "city", "week")
    assert months(t) == {date(2026, 10, 26): 100, date(2026, 11, 2): 200}


# ---- voids and basis ----------------------------------------------------------------------------


def test_voids_are_not_diverted_and_basis_is_stated(session: Session) -> None:
    at = datetime(2026, 11, 10, 9, 0, tzinfo=WIT)
    scale(session, at, 1000)
    voided = scale(session, at + timedelta(minutes=1), 2000)
    ledger.void_deposit(session, voided, author=ATTENDANT, reason="salah kartu / wrong card")
    manual(session, at + timedelta(minutes=2), 500)
    scale(session, at, 3000, category="kardus", card="04B1B2C3D1", bank="bs-nusaniwe")
    scope = reports.load_scope(session)
    t = reports.tonnage(session, scope, date(2026, 11, 1), date(2026, 11, 30), "category")
    rows = {r.key: r for r in t.rows}
    assert (rows["pet"].measured_g, rows["pet"].estimated_g, rows["pet"].net_g) == (1000, 500, 1500)
    assert (rows["pet"].measured_deposits, rows["pet"].estimated_deposits) == (1, 1)
    assert rows["pet"].basis == "mixed"
    assert (rows["kardus"].net_g, rows["kardus"].basis) == (3000, "measured")
    assert (t.total_g, t.measured_g, t.estimated_g) == (4500, 4000, 500)

    by = {
        g: {r.key: r.net_g for r in reports.tonnage(session, scope, t.start, t.end, g).rows}
        for g in ("kecamatan", "kelurahan", "bank", "sipsn_class", "city")
    }
    assert by["kecamatan"] == {"Sirimau": 1500, "Nusaniwe": 3000}
    assert by["kelurahan"] == {"Sirimau/Batu Merah": 1500, "Nusaniwe/Benteng": 3000}
    assert by["bank"] == {"bs-batu-merah": 1500, "bs-nusaniwe": 3000}
    assert by["sipsn_class"] == {"plastik": 1500, "kertas_karton": 3000}
    assert by["city"] == {"ambon": 4500}
    only_estimated = reports.tonnage(session, scope, t.start, t.end, "bank")
    assert {r.key: r.basis for r in only_estimated.rows}["bs-batu-merah"] == "mixed"


# ---- the daily summary the reports read (ledger.DepositDay) ------------------------------------


def summary(s: Session) -> dict[tuple[date, int, int, bool], tuple[int, int]]:
    dd = ledger.DepositDay
    rows = s.execute(
        select(dd.local_date, dd.bank_id, dd.category_id, dd.manual, dd.net_g, dd.deposits)
    )
    return {(day, b, c, bool(m)): (g, n) for day, b, c, m, g, n in rows}


def recomputed(s: Session) -> dict[tuple[date, int, int, bool], tuple[int, int]]:
    """The summary as it should be, from the deposits one by one (voided ones left out)."""
    voided = set(s.scalars(select(ledger.DepositVoid.deposit_id)))
    acc: defaultdict[tuple[date, int, int, bool], list[int]] = defaultdict(lambda: [0, 0])
    for d in s.scalars(select(ledger.Deposit)):
        if d.id in voided:
            continue
        day = d.measured_at.astimezone(ZoneInfo(d.bank.city.timezone)).date()
        a = acc[day, d.bank_id, d.category_id, d.manual]
        a[0] += d.net_g
        a[1] += 1
    return {k: (g, n) for k, (g, n) in acc.items()}


def test_the_summary_follows_batches_duplicates_voids_and_corrections(session: Session) -> None:
    late = datetime(2026, 10, 31, 23, 59, tzinfo=WIT)  # 14:59 UTC: still October in Ambon
    early = datetime(2026, 11, 1, 0, 1, tzinfo=WIT)  # 15:01 UTC on 31 October: November
    events = [
        deposit_event(9001, net_g=1000, at=late),
        deposit_event(9002, net_g=2000, at=early),
        deposit_event(9002, net_g=2000, at=early),  # a duplicate inside the batch
        deposit_event(9003, net_g=300, at=early, category="kardus"),
        deposit_event(9004, net_g=4000, at=early, card="04B1B2C3D1", bank="bs-nusaniwe"),
        deposit_event(9005, net_g=500, at=early),
    ]
    ledger.apply_deposits(session, events)
    again = ledger.apply_deposits(session, [events[0], deposit_event(9006, net_g=60, at=late)])
    assert [r.outcome for r in again if isinstance(r, ledger.AppliedDeposit)] == [
        ledger.Outcome.DUPLICATE,
        ledger.Outcome.APPLIED,
    ]
    manual(session, early, 700)
    ledger.void_deposit(session, events[5].event_id, author=ATTENDANT, reason="salah / wrong")
    ledger.correct_deposit(
        session, events[1].event_id, author=ATTENDANT, reason="kardus", category_code="kardus"
    )
    # 9002 (corrected) and 9005 (voided) leave Batu Merah's measured PET of 1 November empty:
    # the row is deleted, not left at 0
    s = summary(session)
    assert s == recomputed(session)
    assert ledger.verify(session) == []
    pet = session.scalars(select(ledger.Category.id).where(ledger.Category.code == "pet")).one()
    bm = session.scalars(select(ledger.Bank.id).where(ledger.Bank.code == "bs-batu-merah")).one()
    assert s[date(2026, 10, 31), bm, pet, False] == (1060, 2)
    assert s[date(2026, 11, 1), bm, pet, True] == (700, 1)
    assert (date(2026, 11, 1), bm, pet, False) not in s  # 9002 corrected, 9005 voided
    scope = reports.load_scope(session)
    t = reports.tonnage(session, scope, date(2026, 10, 1), date(2026, 11, 30), "category", "month")
    assert {(r.period_start.month, r.key): (r.measured_g, r.estimated_g) for r in t.rows} == {
        (10, "pet"): (1060, 0),
        (11, "pet"): (4000, 700),  # Nusaniwe's weighed, Batu Merah's entered by hand
        (11, "kardus"): (300, 2000),  # the correction is a manual deposit: estimated
    }


def test_verify_finds_a_tampered_summary_and_a_rebuild_mends_it(session: Session) -> None:
    at = datetime(2026, 11, 10, 9, 0, tzinfo=WIT)
    scale(session, at, 1000)
    scale(session, at, 2000, category="kardus")
    assert ledger.verify(session) == []
    dd = ledger.DepositDay
    kardus = session.scalars(
        select(ledger.Category.id).where(ledger.Category.code == "kardus")
    ).one()
    session.execute(update(dd).where(dd.category_id == kardus).values(net_g=dd.net_g + 1))
    session.commit()
    (problem,) = ledger.verify(session)
    assert problem.check == "summary"
    assert problem.subject == "deposit_day 2026-11-10 bs-batu-merah kardus measured"
    assert problem.detail == "expected 2000 g in 1 deposits, found 2001 g in 1"
    session.execute(delete(dd).where(dd.category_id != kardus))  # the PET row goes
    session.commit()
    problems = ledger.verify(session)
    assert [p.check for p in problems] == ["summary", "summary"]
    assert "expected 1000 g in 1 deposits, found 0 g in 0" in {p.detail for p in problems}
    assert ledger.rebuild_deposit_days(session) == 2
    assert ledger.verify(session) == []
    assert summary(session) == recomputed(session)


def test_the_migration_fills_the_summary_from_existing_deposits(ledger_url: str) -> None:
    """A ledger at 0004 with deposits (one voided, two around a WIT midnight) gets the summary
    they imply from migration 0005."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            scale(s, datetime(2026, 10, 31, 23, 30, tzinfo=WIT), 1000)
            scale(s, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 2000)
            voided = scale(s, datetime(2026, 11, 1, 0, 40, tzinfo=WIT), 4000)
            ledger.void_deposit(s, voided, author=ATTENDANT, reason="dobel / duplicate")
            manual(s, datetime(2026, 11, 1, 8, 0, tzinfo=WIT), 300)
            want = summary(s)
            assert want == recomputed(s)
        undo_0009(engine)
        with engine.begin() as conn:  # back to 0004: no summary yet
            conn.execute(text("DROP TABLE tps_pickup"))  # 0008's
            conn.execute(text("DROP TABLE deposit_month"))
            conn.execute(text("DROP TABLE deposit_day"))
            conn.execute(text("UPDATE alembic_version SET version_num = '0004'"))
        assert migrations.upgrade(engine) is True
        with Session(engine) as s:
            assert summary(s) == want
            assert len(want) == 3
            assert ledger.verify(s) == []
    finally:
        engine.dispose()


def month_summary(s: Session) -> dict[tuple[date, int, int, bool], tuple[int, int]]:
    dm = ledger.DepositMonth
    rows = s.execute(select(dm.month, dm.bank_id, dm.category_id, dm.manual, dm.net_g, dm.deposits))
    return {(month, b, c, bool(m)): (g, n) for month, b, c, m, g, n in rows}


def by_month(
    days: dict[tuple[date, int, int, bool], tuple[int, int]],
) -> dict[Any, tuple[int, int]]:
    acc: defaultdict[tuple[date, int, int, bool], list[int]] = defaultdict(lambda: [0, 0])
    for (day, b, c, m), (g, n) in days.items():
        a = acc[day.replace(day=1), b, c, m]
        a[0] += g
        a[1] += n
    return {k: (g, n) for k, (g, n) in acc.items()}


def test_the_monthly_roll_up_follows_deposits_voids_and_corrections(session: Session) -> None:
    """deposit_month is deposit_day by local month after every kind of change, and a month
    emptied by voids loses its row."""
    late = datetime(2026, 10, 31, 23, 59, tzinfo=WIT)  # October in Ambon
    early = datetime(2026, 11, 1, 0, 1, tzinfo=WIT)  # November in Ambon, October in UTC
    only = scale(session, datetime(2026, 9, 15, 10, 0, tzinfo=WIT), 900, category="kardus")
    ledger.apply_deposits(
        session,
        [
            deposit_event(9101, net_g=1000, at=late),
            deposit_event(9102, net_g=2000, at=early),
            deposit_event(9103, net_g=300, at=early, category="kardus"),
        ],
    )
    manual(session, early, 700)
    ledger.correct_deposit(
        session, "gw-01-9102", author=ATTENDANT, reason="kardus", category_code="kardus"
    )
    ledger.void_deposit(session, only, author=ATTENDANT, reason="salah / wrong")
    months = month_summary(session)
    assert months == by_month(recomputed(session)) == by_month(summary(session))
    assert date(2026, 9, 1) not in {k[0] for k in months}  # its one deposit voided
    bm = session.scalars(select(ledger.Bank.id).where(ledger.Bank.code == "bs-batu-merah")).one()
    pet, kardus = (
        session.scalars(select(ledger.Category.id).where(ledger.Category.code == code)).one()
        for code in ("pet", "kardus")
    )
    assert months == {
        (date(2026, 10, 1), bm, pet, False): (1000, 1),
        (date(2026, 11, 1), bm, pet, True): (700, 1),
        (date(2026, 11, 1), bm, kardus, False): (300, 1),
        (date(2026, 11, 1), bm, kardus, True): (2000, 1),  # the correction: entered by hand
    }
    assert ledger.verify(session) == []


@pytest.mark.parametrize("period", ["month", "year", "total"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 1), date(2026, 12, 31)),  # whole months only
        (date(2026, 3, 17), date(2026, 11, 4)),  # days, whole months, days
        (date(2026, 3, 17), date(2026, 3, 20)),  # inside one month
        (date(2026, 2, 1), date(2026, 2, 27)),  # a month less its last day
        (date(2026, 12, 31), date(2027, 1, 31)),  # one day, then a whole month across the year
    ],
)
def test_cells_from_the_roll_up_and_the_days_equal_the_days_alone(
    session: Session, start: date, end: date, period: str
) -> None:
    """Whatever the range, reading whole months from deposit_month and the days around them
    from deposit_day gives what the days alone give."""
    events = []
    for i, d in enumerate(range(0, 400, 3)):  # 2026-01-01 .. 2027-02-04 WIT, near midnight too
        at = datetime(2026, 1, 1, tzinfo=WIT) + timedelta(days=d, minutes=11 * i)
        events.append(
            deposit_event(20_000 + i, net_g=100 + i, at=at, category=("pet", "kardus")[i % 2])
        )
    ledger.apply_deposits(session, events)
    for month in (3, 11, 12):
        manual(session, datetime(2026, month, 28, 9, 0, tzinfo=WIT), 50 * month)
    scope = reports.load_scope(session)
    got = reports.cells(session, scope, start, end, period)
    days = reports.summary_rows(
        session, scope, ledger.DepositDay.local_date, start, end, period, start
    )
    want: defaultdict[tuple[date, int, int, bool], list[int]] = defaultdict(lambda: [0, 0])
    for day, b, c, m, g, n in days:
        want[day, b, c, m][0] += g
        want[day, b, c, m][1] += n
    assert {(c.day, c.bank_id, c.category_id, c.manual): [c.net_g, c.deposits] for c in got} == (
        dict(want)
    )
    assert got  # every range holds deposits


def test_verify_finds_a_tampered_roll_up_and_a_rebuild_mends_it(session: Session) -> None:
    scale(session, datetime(2026, 11, 10, 9, 0, tzinfo=WIT), 1000)
    dm = ledger.DepositMonth
    session.execute(update(dm).values(deposits=dm.deposits + 1))
    session.commit()
    (problem,) = ledger.verify(session)
    assert problem.check == "summary"
    assert problem.subject == "deposit_month 2026-11 bs-batu-merah pet measured"
    assert problem.detail == "expected 1000 g in 1 deposits, found 1000 g in 2"
    assert ledger.verify_summaries(session) == [problem]
    ledger.rebuild_deposit_days(session)
    assert ledger.verify(session) == []
    assert month_summary(session) == by_month(recomputed(session))


def test_cli_rebuild_summary(ledger_url: str) -> None:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            scale(s, datetime(2026, 10, 31, 23, 30, tzinfo=WIT), 1000)
            scale(s, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 2000, category="kardus")
            want = summary(s), month_summary(s)
            s.execute(delete(ledger.DepositDay))
            s.execute(update(ledger.DepositMonth).values(net_g=1))
            s.commit()
            assert len(ledger.verify(s)) == 4
    finally:
        engine.dispose()
    result = CliRunner().invoke(app, ["ledger", "rebuild-summary", "--ledger-url", ledger_url])
    assert result.exit_code == 0, result.output
    assert "ringkasan dibangun ulang / summary rebuilt: 2 baris harian / daily rows, 2 baris " in (
        result.output
    )
    assert "ringkasan sesuai setoran / the summary matches the deposits" in result.output
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert (summary(s), month_summary(s)) == want
            assert ledger.verify(s) == []
    finally:
        engine.dispose()


# ---- generation and reduction share -------------------------------------------------------------


def test_generation_estimate_from_the_data_file() -> None:
    gen = reports.generation_for("ambon")  # wastebank/data/cities/ambon.toml
    assert (gen.population, gen.kg_per_capita_day, gen.population_year) == (357_289, 0.78, 2024)
    assert gen.population_source is not None
    assert gen.population_source.startswith("BPS")
    assert gen.population_url == "https://ambonkota.bps.go.id/"
    assert gen.rate_url is not None
    assert gen.rate_url.startswith("https://")
    assert "ILUSTRATIF" not in gen.source
    assert "recalled" not in gen.source
    assert gen.grams(31) == round(357_289 * 780 * 31)  # 0.78 kg = 780 g per person per day
    with pytest.raises(reports.NoGenerationEstimate):
        reports.generation_for("kota-lain")
    other = reports.generation_for(
        "kota-lain", reports.ReportSettings(population=10, kg_per_capita_day=0.5)
    )
    assert (other.grams(2), other.source) == (10_000, "settings")


def test_reduction_share_by_hand(session: Session) -> None:
    scale(session, datetime(2026, 3, 1, 10, tzinfo=WIT), 60_000)
    manual(session, datetime(2026, 11, 1, 10, tzinfo=WIT), 30_000)
    scale(session, datetime(2027, 1, 1, 0, 30, tzinfo=WIT), 7_000)  # 2026-12-31 15:30 UTC
    scope = reports.load_scope(session)
    settings = reports.ReportSettings(population=2, kg_per_capita_day=0.5, source="uji / test")
    # 2 people x 500 g x 365 days = 365,000 g; 90,000 g diverted: 24.6575... %
    whole = reports.reduction(session, scope, 2026, settings, today=date(2027, 1, 5))
    assert (whole.days, whole.complete, whole.generation_g) == (365, True, 365_000)
    assert (whole.diverted_g, whole.measured_g, whole.estimated_g) == (90_000, 60_000, 30_000)
    assert whole.share_pct == round(100 * 90_000 / 365_000, 4) == 24.6575
    assert (whole.target_pct, whole.target_met) == (30.0, False)
    # The year in progress: generation to date only (1 Jan - 1 Nov: 305 days = 305,000 g).
    partial = reports.reduction(session, scope, 2026, settings, today=date(2026, 11, 1))
    assert (partial.days, partial.complete, partial.generation_g) == (305, False, 305_000)
    assert partial.share_pct == round(100 * 90_000 / 305_000, 4) == 29.5082
    later = reports.reduction(session, scope, 2027, settings, today=date(2027, 1, 5))
    assert (later.diverted_g, later.days, later.generation_g) == (7_000, 5, 5_000)
    assert (later.share_pct, later.target_met) == (140.0, True)


# ---- the monthly report -------------------------------------------------------------------------


class FakeEstimator:
    """Per kg of PET: net CO2e 2 kg (1.5 to 2.5), of which a recycling credit of 2 kg; energy
    saved 0.08 GJ; a WtE potential of 1.5 kWh (1 to 2); nothing for other materials."""

    name = "uji / test factors"

    def impact(self, material_class: str, grams: int) -> estimates.Impact:
        if material_class != "pet":
            return estimates.Impact.unknown(grams, f"{material_class}: no test factor")
        kg = grams / 1000
        r = estimates.Range
        return estimates.Impact(
            grams=grams,
            net_co2e_kg=r(central=2 * kg, low=1.5 * kg, high=2.5 * kg),
            landfill_ch4_co2e_kg=r.exact(0.0),
            recycling_credit_co2e_kg=r(central=2 * kg, low=1.5 * kg, high=2.5 * kg),
            composting_co2e_kg=r.exact(0.0),
            recycling_energy_saved_gj=r.exact(0.08 * kg),
            recycling_energy_saved_kwh_eq=r.exact(0.08 * kg * 277.78),
            wte_potential_kwh=r(central=1.5 * kg, low=1.0 * kg, high=2.0 * kg),
        )


def journal_pickups(s: Session) -> None:
    """TPS pickups in the journal: tps-batu-merah (Sirimau; 8 m³, 214.8 kg/m³) at fill 0.9 on
    1 October 00:30 WIT, and 1.0 at 00:30 on 1 November (the next month); tps-benteng
    (Nusaniwe; 6 m³, 214.8 kg/m³) at 0.5 on 31 October 23:30 WIT."""
    from wastebank import tps

    bm, bt = (tps.get_tps(s, c) for c in ("tps-batu-merah", "tps-benteng"))
    assert bm is not None
    assert bt is not None
    for t, at, fill in (
        (bm, datetime(2026, 10, 1, 0, 30, tzinfo=WIT), 0.9),
        (bm, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 1.0),
        (bt, datetime(2026, 10, 31, 23, 30, tzinfo=WIT), 0.5),
    ):
        tps.record_pickups(s, t.id, "us-01", [tps.Pickup(at=at, fill_before=fill, fill_after=0)])
    s.commit()


def small_month(s: Session) -> reports.MonthlyReport:
    at = datetime(2026, 10, 5, 9, 0, tzinfo=WIT)
    scale(s, at, 1250)
    manual(s, at + timedelta(hours=1), 750)
    scale(s, at, 2000, category="kardus")
    scale(s, at, 4000, category="kardus", card="04B1B2C3D1", bank="bs-nusaniwe")
    voided = scale(s, at, 9000, category="kardus", card="04B1B2C3D1", bank="bs-nusaniwe")
    ledger.void_deposit(s, voided, author="petugas-nsw-01", reason="dobel / duplicate")
    journal_pickups(s)
    scope = reports.load_scope(s)
    settings = reports.ReportSettings(population=1000, kg_per_capita_day=0.5, source="uji")
    return reports.monthly_report(s, scope, "2026-10", settings, estimator=FakeEstimator(), now=NOW)


def test_monthly_csv_exactly(session: Session) -> None:
    report = small_month(session)
    # generation: 1000 x 500 g x 31 days = 15,500,000 g
    assert report.generation_g == 15_500_000
    header = ",".join(reports.CSV_HEADER)
    assert not [h for h in reports.CSV_HEADER if "," in h or ";" in h]
    # each estimate's central, low, high: net CO2e, landfill CH4, recycling credit, composting,
    # energy saved GJ, its kWh-eq (x 277.78), WtE potential; PET only (FakeEstimator)
    pet = (
        "4.000,3.000,5.000,0.000,0.000,0.000,4.000,3.000,5.000,0.000,0.000,0.000,"
        "0.160,0.160,0.160,44.445,44.445,44.445,3.000,2.000,4.000"
    )
    none = "," * 20  # 21 empty cells: no factor for cardboard in the fake
    cardboard = 'kardus,Kardus / Cardboard,kertas_karton,"Kertas, karton / Paper, cardboard",1'
    assert reports.monthly_csv(report, "plain").split("\r\n") == [
        header,
        f"2026-10,Nusaniwe,{cardboard},4.000,4.000,0.000,0.0258,{none}",
        f"2026-10,Sirimau,{cardboard},2.000,2.000,0.000,0.0129,{none}",
        "2026-10,Sirimau,pet,Botol PET bersih / Clean PET bottles,plastik,Plastik / Plastic,2,"
        f"2.000,1.250,0.750,0.0129,{pet}",
        f"2026-10,Jumlah / Total,,,,,4,8.000,7.250,0.750,0.0516,{pet}",
        "",
    ]
    assert reports.render(report, "csv").startswith("\ufeff".encode())
    # the default: Excel in Indonesian (';' between fields, comma decimals)
    pet_id = pet.replace(",", ";").replace(".", ",")
    assert reports.monthly_csv(report).split("\r\n")[3:5] == [
        "2026-10;Sirimau;pet;Botol PET bersih / Clean PET bottles;plastik;Plastik / Plastic;2;"
        f"2,000;1,250;0,750;0,0129;{pet_id}",
        f"2026-10;Jumlah / Total;;;;;4;8,000;7,250;0,750;0,0516;{pet_id}",
    ]


def test_monthly_xlsx_cells(session: Session, tmp_path: Path) -> None:
    from openpyxl import load_workbook

    report = small_month(session)
    wb = load_workbook(io.BytesIO(reports.monthly_xlsx(report)))
    assert wb.sheetnames == ["Laporan", "Per kategori", "Pengalihan", "Estimasi"]
    ws = wb["Laporan"]
    assert str(ws["A1"].value).startswith("LAPORAN PENGURANGAN SAMPAH")
    assert ws["B3"].value == "Oktober 2026 (2026-10)"
    header = next(r for r in range(1, 20) if ws.cell(r, 1).value == "kecamatan / sub-district")
    assert [c.value for c in ws[header]] == list(reports.CSV_HEADER[1:])
    first = [c.value for c in ws[header + 1]]
    # the SIPSN class by its code (for machines) and its name
    assert first[:9] == [
        "Nusaniwe",
        "kardus",
        "Kardus / Cardboard",
        "kertas_karton",
        "Kertas, karton / Paper, cardboard",
        1,
        4,
        4,
        0,
    ]
    assert first[9] == pytest.approx(4000 / 15_500_000, rel=1e-4)  # share_pct: 6 places
    assert ws.cell(header + 1, 7).number_format == "#,##0.000"
    assert ws.cell(header + 1, 10).number_format == "0.0000%"
    assert ws.cell(header + 1, 6).number_format == "#,##0"
    total = [c.value for c in ws[header + 4]]
    assert total[0] == "Jumlah / Total"
    assert total[5:9] == [4, 8, 7.25, 0.75]
    assert total[10:13] == [4, 3, 5]  # net CO2e: central, low, high
    assert total[-3:] == [3, 2, 4]  # the WtE potential
    co2e_heading = ws.cell(header, 11).value
    assert isinstance(co2e_heading, str)
    assert co2e_heading.startswith("CO2e terhindar (bersih) kg CO2e estimasi tengah")
    cats = wb["Per kategori"]
    assert [tuple(r) for r in cats.iter_rows(values_only=True)] == [
        ("Kategori / Category", "Berat kg / Weight kg"),
        ("Botol PET bersih / Clean PET bottles", 2),
        ("Kardus / Cardboard", 6),
    ]
    # openpyxl keeps loaded charts there: private, and so not in its stubs
    charts = cats._charts  # type: ignore[attr-defined]
    assert len(charts) == 1
    note = next(r for r in range(1, 20) if str(ws.cell(r, 1).value).startswith("Ke TPA"))
    assert str(ws.cell(note, 2).value).startswith("2.191,0 kg, 2 pengangkutan TPS")
    # the demo city file has no count of the city's TPS: no rate is the city's
    assert "diversion rate belum cukup data / not enough data" in str(ws.cell(note, 2).value)
    div = [tuple(r) for r in wb["Pengalihan"].iter_rows(values_only=True)]
    assert div[0] == reports.DIVERSION_HEADER
    rows: list[tuple[object, ...]] = [r[:4] for r in div[1:]]  # object: compared with approx
    assert rows == [
        ("Nusaniwe", 4, pytest.approx(644.4), 1),
        ("Sirimau", 4, pytest.approx(1546.56), 1),
        ("Jumlah / Total", 8, pytest.approx(2190.96), 2),
    ]
    assert div[-1][4] == "belum cukup data / not enough data"
    est = [tuple(r) for r in wb["Estimasi"].iter_rows(values_only=True)]
    assert est[1][:5] == ("Botol PET bersih / Clean PET bottles", 2, 4, 3, 5)
    assert est[2][2:] == (None,) * 21  # cardboard: no factor in the fake
    assert est[3][:5] == ("Jumlah / Total", 8, 4, 3, 5)
    words = " ".join(str(c) for r in est for c in r if isinstance(c, str))
    assert "Primary energy, not electricity" in words  # the basis of each figure
    assert (
        "corrugated: no test factor" in words
    )  # (its material class)  # what was not estimated, and why
    # a city whose TPS are all covered (the city file's count) shows its rate
    (tmp_path / "ambon.toml").write_text(
        '[city]\ncode = "ambon"\n[population]\ncount = 1000\nsource = "uji"\n'
        '[generation]\nkg_per_capita_day = 0.5\nsource = "uji"\n'
        '[tps]\ncount = 2\nsource = "uji / test"\n'
    )
    covered = reports.ReportSettings(
        cities_dir=tmp_path, diversion_coverage=reports.CoverageRule(min_pickups=2)
    )
    again = reports.monthly_report(
        session, reports.load_scope(session), "2026-10", covered, estimator=FakeEstimator(), now=NOW
    )
    assert again.coverage is not None
    assert again.coverage.enough
    wb = load_workbook(io.BytesIO(reports.monthly_xlsx(again)))
    div = [tuple(r) for r in wb["Pengalihan"].iter_rows(values_only=True)]
    assert div[-1][4] == pytest.approx(8 / (8 + 2190.96))
    assert wb["Pengalihan"].cell(2, 5).number_format == "0.00%"
    note_row = next(
        r
        for r in wb["Laporan"].iter_rows(values_only=True)
        if r[0] == "Ke TPA (estimasi) / TPA-bound (estimated)"
    )
    assert "diversion rate 0,36 %" in str(note_row[1])


def test_monthly_xlsx_text_that_looks_like_a_formula_stays_text(session: Session) -> None:
    """A kecamatan or category named like a formula is a string cell Excel shows as written,
    on every sheet, never a formula it runs (XLSX formula injection)."""
    from openpyxl import load_workbook

    hyperlink, one_plus_one = '=HYPERLINK("http://evil","klik")', "=1+1"
    sirimau = session.scalars(select(ledger.Kecamatan).where(ledger.Kecamatan.name == "Sirimau"))
    sirimau.one().name = hyperlink
    pet = session.scalars(select(ledger.Category).where(ledger.Category.code == "pet")).one()
    pet.name_id = one_plus_one
    session.commit()
    wb = load_workbook(io.BytesIO(reports.monthly_xlsx(small_month(session))))
    found: dict[str, set[str]] = defaultdict(set)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str) and cell.value.startswith("="):
                    assert cell.data_type == "s"
                    found[ws.title].add(cell.value)
    pet_name = f"{one_plus_one} / Clean PET bottles"
    assert found["Laporan"] == {hyperlink, pet_name}
    assert found["Pengalihan"] == {hyperlink}
    assert found["Per kategori"] == found["Estimasi"] == {pet_name}


def test_monthly_diversion_by_kecamatan_by_hand(session: Session) -> None:
    """October 2026 (WIT): Sirimau's banks 4 kg (PET 1.25 + 0.75 manual, cardboard 2) against
    tps-batu-merah's pickup of 8 m³ x 0.9 x 214.8 kg/m³ = 1,546.56 kg (its 1 November pickup
    is the next month's): 4 / (4 + 1,546.56) = 0.2580 %; Nusaniwe's 4 kg (the voided 9 kg
    not counted) against tps-benteng's 6 x 0.5 x 214.8 = 644.4 kg: 4 / 648.4 = 0.6169 %; the
    city 8 / (8 + 2,190.96) = 0.3638 %. A recalibrated density applies to the past month."""
    report = small_month(session)
    got: list[tuple[object, ...]] = [  # object: compared with approx
        (d.kecamatan, d.diverted_g, d.tpa_bound_kg, d.pickups) for d in report.diversion
    ]
    assert got == [
        ("Nusaniwe", 4000, pytest.approx(644.4), 1),
        ("Sirimau", 4000, pytest.approx(1546.56), 1),
    ]
    assert [d.rate for d in report.diversion] == [
        pytest.approx(4 / 648.4),
        pytest.approx(4 / 1550.56),
    ]
    total = report.diversion_total
    assert total is not None
    assert (total.diverted_g, total.pickups) == (8000, 2)
    assert total.tpa_bound_kg == pytest.approx(2190.96)
    assert total.rate == pytest.approx(8 / 2198.96)
    from wastebank import tps

    tps.calibrate(session, "tps-benteng", density_kg_m3=250.0, source="jembatan timbang")
    scope = reports.load_scope(session)
    again = reports.monthly_report(session, scope, "2026-10", now=NOW)
    assert again.diversion[0].tpa_bound_kg == pytest.approx(6 * 0.5 * 250.0)  # 750 kg
    november = reports.monthly_report(session, scope, "2026-11", now=NOW)
    assert [(d.kecamatan, d.diverted_g, d.pickups) for d in november.diversion] == [
        ("Nusaniwe", 0, 0),
        ("Sirimau", 0, 1),
    ]
    assert november.diversion[1].rate == 0.0
    assert reports.monthly_pdf(report).startswith(b"%PDF-")


def test_monthly_pdf(session: Session) -> None:
    report = small_month(session)
    pdf = reports.monthly_pdf(report)
    assert pdf.startswith(b"%PDF-")
    assert formats.percent(0.0516, 4) == "0,0516 %"
    assert formats.number(1234567.25, 2) == "1.234.567,25"


def test_the_notes_count_deposits_stamped_before_the_gateway_clock_was_synced(
    session: Session,
) -> None:
    """Issue 16: one October deposit stamped with clock_synced false is counted; a voided one,
    one of November, one that says nothing (None) and a synced one are not. A month with none
    has no such note."""
    quiet = small_month(session)
    assert quiet.unsynced_clock_deposits == 0
    assert not [label for label, _ in wording.notes(quiet) if label.startswith("Jam gateway")]
    oct_5 = datetime(2026, 10, 5, 10, 0, tzinfo=WIT)
    for seq, at, synced in (
        (1, oct_5, False),
        (2, oct_5, False),  # voided below
        (3, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), False),  # the next month, in WIT
        (4, oct_5, None),
        (5, oct_5, True),
    ):
        ev = replace(deposit_event(9_000 + seq, at=at), clock_synced=synced)
        ledger.apply_deposits(session, [ev])
        if seq == 2:
            ledger.void_deposit(session, ev.event_id, author=ATTENDANT, reason="uji / test")
    session.commit()
    report = reports.monthly_report(
        session, reports.load_scope(session), "2026-10", estimator=FakeEstimator(), now=NOW
    )
    assert report.unsynced_clock_deposits == 1
    line = (
        "1 setoran dicatat sebelum jam gateway tersinkron / 1 deposit stamped before the "
        "gateway's clock was synchronized"
    )
    assert ("Jam gateway / Gateway clock", line) in wording.notes(report)
    from openpyxl import load_workbook

    ws = load_workbook(io.BytesIO(reports.monthly_xlsx(report)))["Laporan"]
    assert ("Jam gateway / Gateway clock", line) in [
        (r[0], r[1]) for r in ws.iter_rows(values_only=True)
    ]
    from pypdf import PdfReader

    pages = PdfReader(io.BytesIO(reports.monthly_pdf(report))).pages
    pdf = " ".join(p.extract_text() for p in pages)
    assert "1 setoran dicatat sebelum jam gateway tersinkron" in " ".join(pdf.split())


def test_cli_report_monthly(ledger_url: str, tmp_path: Path) -> None:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        scale(s, datetime(2026, 10, 31, 23, 30, tzinfo=WIT), 1000)
        scale(s, datetime(2026, 11, 1, 0, 30, tzinfo=WIT), 2000)
    engine.dispose()
    out = tmp_path / "oktober.csv"
    runner = CliRunner()
    args = ["report", "monthly", "--month", "2026-10", "--ledger-url", ledger_url]
    result = runner.invoke(app, [*args, "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = out.read_text(encoding="utf-8-sig").splitlines()
    assert lines[1].startswith("2026-10;Sirimau;pet;")
    assert lines[-1].startswith("2026-10;Jumlah / Total;;;;;1;1,000;1,000;0,000;")
    plain = tmp_path / "plain.csv"
    result = runner.invoke(
        app, [*args, "--format", "csv", "--csv-dialect", "plain", "--out", str(plain)]
    )
    assert result.exit_code == 0, result.output
    assert (
        plain.read_text(encoding="utf-8-sig")
        .splitlines()[-1]
        .startswith("2026-10,Jumlah / Total,,,,,1,1.000,1.000,0.000,")
    )
    portrait = tmp_path / "oktober.pdf"
    result = runner.invoke(
        app, [*args, "--format", "pdf", "--orientation", "portrait", "--out", str(portrait)]
    )
    assert result.exit_code == 0, result.output
    from pypdf import PdfReader

    box = PdfReader(portrait).pages[0].mediabox
    assert float(box.width) < float(box.height)
    xlsx = tmp_path / "oktober.xlsx"
    result = runner.invoke(app, [*args, "--out", str(xlsx)])
    assert result.exit_code == 0, result.output
    assert xlsx.read_bytes().startswith(b"PK")
    bad = runner.invoke(
        app, ["report", "monthly", "--month", "2026-13", "--ledger-url", ledger_url]
    )
    assert bad.exit_code != 0


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("0000-10", "tahun 0000 di luar 2000..2100 (bulan 2000-01..2100-12) / the year 0000 is "
         "out of range 2000..2100 (months 2000-01..2100-12)"),
        ("10000-10", "tahun 10000 di luar 2000..2100"),
        ("-2026-10", "tahun -2026 di luar 2000..2100"),
        ("1999-12", "tahun 1999 di luar 2000..2100"),
        ("2101-01", "tahun 2101 di luar 2000..2100"),
        ("9" * 5000 + "-10", "tahun 999999999999… di luar"),  # no number is made of it
        ("2026-13", "bulan 13 bukan 01..12 / the month 13 is not 01..12: '2026-13'"),
        ("2026-1", "bukan bulan / not a month: '2026-1' (YYYY-MM, e.g. 2026-10)"),
        ("oktober", "bukan bulan / not a month"),
    ],
)  # fmt: skip
def test_a_month_that_cannot_be_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(says)) as refused:
        reports.parse_month(text)
    assert "year 0 is out of range" not in str(refused.value)  # Python's own words


def test_the_months_at_the_ends_of_the_range() -> None:
    assert reports.parse_month("2000-01") == (date(2000, 1, 1), date(2000, 1, 31))
    assert reports.parse_month("2100-12") == (date(2100, 12, 1), date(2100, 12, 31))
    assert reports.parse_month("2024-02")[1] == date(2024, 2, 29)


@pytest.mark.parametrize("month", ["0000-10", "10000-10", "-2026-10"])
def test_report_monthly_names_the_option_and_the_year(month: str) -> None:
    result = CliRunner().invoke(app, ["report", "monthly", f"--month={month}"])
    assert result.exit_code == 2  # a usage error, before any ledger is opened
    output = " ".join(result.output.split())
    assert "--month" in output
    year = month.rsplit("-", 1)[0]
    assert f"tahun {year} di luar 2000..2100" in output
