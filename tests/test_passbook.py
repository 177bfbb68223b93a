"""Passbook statements (JSON, CSV, text, PDF), receipts (PDF, thermal text) and a member's data
export, on a small ledger whose every line is known: each test that uses it runs on SQLite and on
PostgreSQL (the ``ledger_url`` fixture)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import WIT, deposit_event
from tests.ledger_helpers import apply_deposit, member_available
from wastebank import ledger, passbook
from wastebank.cli import app

STAFF = "petugas-bm-01"  # attendant of bs-batu-merah
MEMBER = "AMB-0002"  # at bs-batu-merah, nothing in the seeded ledger
CARD = "04A1B2C3D5"
NOV = datetime(2026, 11, 1, tzinfo=WIT)


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


@dataclass(frozen=True)
class Books:
    replacement: str  # the event id of the correction's new deposit
    paid: int  # the paid withdrawal's id
    pending: int  # the open withdrawal's id


def _at(day: int, hour: int, minute: int = 0) -> datetime:
    return NOV.replace(day=day, hour=hour, minute=minute)


@pytest.fixture
def books(engine: Engine) -> Books:
    """AMB-0002's November: three deposits (one at 00:30 WIT on 6 Nov, still 5 Nov in UTC), one
    voided, one corrected, a withdrawal paid, one still open, and a deposit in December.

    Voids and payouts are stamped by the clock when they happen; the test moves those stamps to
    fixed November times (``verify`` does not look at them), so every line is known exactly."""
    with Session(engine) as s:
        for seq, category, grams, at in (
            (1, "pet", 1250, _at(3, 10)),
            (2, "kardus", 2000, _at(6, 0, 30)),
            (3, "pet", 5000, _at(7, 9)),
        ):
            apply_deposit(s, deposit_event(seq, card=CARD, category=category, net_g=grams, at=at))
        void = ledger.void_deposit(s, "gw-01-2", author=STAFF, reason="salah kategori")
        fix, replacement = ledger.correct_deposit(
            s, "gw-01-3", author=STAFF, reason="berat salah", net_g=4500
        )
        paid = ledger.request_withdrawal(s, MEMBER, 10_000, "cash", requested_by=MEMBER)
        ledger.approve_withdrawal(s, paid.id, author=STAFF)
        ledger.pay_withdrawal(s, paid.id, author=STAFF)
        apply_deposit(s, deposit_event(4, card=CARD, net_g=1000, at=_at(1, 8) + timedelta(30)))
        pending = ledger.request_withdrawal(s, MEMBER, 10_000, "cash", requested_by=MEMBER)
        for row, stamp in ((void.id, _at(10, 8)), (fix.id, _at(12, 14, 15))):
            s.execute(
                update(ledger.DepositVoid)
                .where(ledger.DepositVoid.id == row)
                .values(voided_at=stamp)
            )
        s.execute(
            update(ledger.Withdrawal)
            .where(ledger.Withdrawal.id == paid.id)
            .values(paid_at=_at(15, 10))
        )
        s.commit()
        assert ledger.verify(s) == []
        return Books(replacement.event_id, paid.id, pending.id)


# ---- formatting -----------------------------------------------------------------------------


def test_rupiah_weights_and_dates_are_written_the_indonesian_way() -> None:
    assert [passbook.rupiah(v) for v in (12_500, 0, -1_500, 1_234_567)] == [
        "Rp12.500",
        "Rp0",
        "-Rp1.500",
        "Rp1.234.567",
    ]
    assert [passbook.kg(g) for g in (1250, 2000, 1005, 1_234_500, 40)] == [
        "1,25 kg",
        "2,00 kg",
        "1,005 kg",
        "1.234,50 kg",
        "0,04 kg",
    ]
    assert passbook.quantity_text("piece", 800, 12) == "12 pcs"
    assert passbook.quantity_text("litre", 900, 1500) == "1,5 L"
    assert passbook.unit_price(4000, "kg") == "Rp4.000/kg"
    assert [passbook.tanggal(date(2026, m, 23)) for m in (8, 11, 12)] == [
        "23 Agu 2026",
        "23 Nov 2026",
        "23 Des 2026",
    ]
    # 15:30 UTC on 22 Nov is already 23 Nov in Ambon (WIT, UTC+9), still 22 Nov in Jakarta.
    at = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert passbook.tanggal_waktu(at, ZoneInfo("Asia/Jayapura")) == "23 Nov 2026 00.30 WIT"
    assert passbook.tanggal_waktu(at, ZoneInfo("Asia/Makassar")) == "22 Nov 2026 23.30 WITA"
    assert passbook.tanggal_waktu(at, ZoneInfo("Asia/Jakarta")) == "22 Nov 2026 22.30 WIB"


def test_csv_text_never_starts_a_formula() -> None:
    assert [passbook.csv_text(v) for v in ("=SUM(A1)", "+62", "-1", "@x", "ok", "")] == [
        "'=SUM(A1)",
        "'+62",
        "'-1",
        "'@x",
        "ok",
        "",
    ]


def test_a_period_is_bucketed_in_local_days() -> None:
    start, end = passbook.period_bounds(ZoneInfo("Asia/Jayapura"), date(2026, 11, 6), None)
    assert (start, end) == (datetime(2026, 11, 5, 15, tzinfo=UTC), None)
    with pytest.raises(ValueError, match="ends"):
        passbook.period_bounds(ZoneInfo("Asia/Jayapura"), date(2026, 11, 6), date(2026, 11, 5))


# ---- statements -----------------------------------------------------------------------------


def test_november_statement_as_csv_is_exactly_the_books(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        st = passbook.statement(s, MEMBER, date(2026, 11, 1), date(2026, 11, 30))
    assert passbook.statement_csv(st) == (
        "tanggal / date,jenis / type,referensi / reference,kategori / category,"
        "berat_g / weight_g,jumlah / quantity,satuan / unit,harga_rp / price_idr,"
        "debit_rp / debit_idr,kredit_rp / credit_idr,saldo_rp / balance_idr,keterangan / note\r\n"
        "2026-11-01,saldo_awal / opening,,,,,,,,,0,\r\n"
        "2026-11-03 10:00:00,deposit,gw-01-1,pet,1250,,kg,4000,,5000,5000,\r\n"
        "2026-11-06 00:30:00,deposit,gw-01-2,kardus,2000,,kg,1500,,3000,8000,\r\n"
        "2026-11-07 09:00:00,deposit,gw-01-3,pet,5000,,kg,4000,,20000,28000,\r\n"
        f"2026-11-07 09:00:00,deposit,{books.replacement},pet,4500,,kg,4000,,18000,46000,"
        "correction of gw-01-3: berat salah\r\n"
        "2026-11-10 08:00:00,void,gw-01-2,kardus,2000,,kg,1500,3000,,43000,salah kategori\r\n"
        "2026-11-12 14:15:00,correction,gw-01-3,pet,5000,,kg,4000,20000,,23000,berat salah\r\n"
        f"2026-11-15 10:00:00,withdrawal,withdrawal:{books.paid},,,,,,10000,,13000,"
        "tunai / cash\r\n"
        "2026-11-30,saldo_akhir / closing,,,,,,,,,13000,\r\n"
    )
    assert (st.credits_idr, st.debits_idr, st.deposited_g) == (46_000, 33_000, 5_750)
    assert (st.timezone, st.timezone_label) == ("Asia/Jayapura", "WIT")


def test_opening_balance_and_open_withdrawals(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        # From 6 Nov (local): the 00:30 WIT deposit (5 Nov in UTC) is inside, 3 Nov's is not.
        st = passbook.statement(s, MEMBER, date(2026, 11, 6))
        balance = ledger.member_balance(s, MEMBER)
        available = member_available(s, MEMBER)
    assert st.opening_balance_idr == 5_000
    assert [line.reference for line in st.lines][:1] == ["gw-01-2"]
    assert st.lines[-1].reference == "gw-01-4"
    assert st.closing_balance_idr == balance == 17_000
    assert st.opening_balance_idr + sum(line.amount_idr for line in st.lines) == balance
    assert [w.id for w in st.open_withdrawals] == [books.pending]
    assert st.available_idr == available == 7_000
    # A period with nothing in it carries the balance through.
    with Session(engine) as s:
        quiet = passbook.statement(s, MEMBER, date(2026, 11, 20), date(2026, 11, 25))
    assert (quiet.opening_balance_idr, quiet.closing_balance_idr, quiet.lines) == (
        13_000,
        13_000,
        [],
    )


def test_statement_json_round_trips_with_aware_local_times(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        st = passbook.statement(s, MEMBER, date(2026, 11, 1), date(2026, 11, 30))
    data = json.loads(st.model_dump_json())
    assert data["lines"][1]["at"] == "2026-11-06T00:30:00+09:00"
    assert data["lines"][5]["kind"] == "correction"
    assert passbook.Statement.model_validate_json(st.model_dump_json()) == st


def test_statement_pdf_reads_back_in_both_languages(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        st = passbook.statement(s, MEMBER, date(2026, 11, 1), date(2026, 11, 30))
    pdf = passbook.statement_pdf(st)
    assert pdf.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    for expected in (
        "BUKU TABUNGAN / PASSBOOK STATEMENT",
        "AMB-0002 - Yohanes Pattiasina",
        "1 Nov 2026 - 30 Nov 2026 (WIT)",
        "3 Nov 2026",
        "1,25 kg",
        "Rp4.000/kg",
        "Pembatalan / Reversal: Kardus",
        "Penarikan / Withdrawal",
        "Saldo akhir / Closing balance",
        "Rp13.000",
    ):
        assert expected in text, expected
    assert "Rp17.000" not in text  # December's deposit is outside the period


def test_a_long_statement_runs_over_pages_with_headings_on_each(engine: Engine) -> None:
    with Session(engine) as s:
        for seq in range(70):
            apply_deposit(s, deposit_event(seq, card=CARD, at=_at(1, 8) + timedelta(hours=seq)))
        st = passbook.statement(s, MEMBER)
    reader = PdfReader(io.BytesIO(passbook.statement_pdf(st)))
    pages = len(reader.pages)
    assert pages >= 2
    last = reader.pages[-1].extract_text()
    assert "Tanggal / Date" in last
    assert f"halaman / page {pages}/{pages}" in last
    assert passbook.rupiah(70 * 5000) in last


def test_statement_text_and_unknown_members(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        text = passbook.statement_text(passbook.statement(s, MEMBER, date(2026, 11, 1)))
        with pytest.raises(ledger.NotFound):
            passbook.statement(s, "AMB-9999")
    assert "Saldo awal / Opening balance: Rp0" in text
    assert "Saldo akhir / Closing balance: Rp17.000" in text
    assert "6 Nov 2026 00.30" in text


def test_statement_command_writes_each_format(ledger_url: str, books: Books) -> None:
    runner = CliRunner()
    args = ["ledger", "statement", MEMBER, "--ledger-url", ledger_url, "--from", "2026-11-01"]
    csv_out = runner.invoke(app, [*args, "--to", "2026-11-30", "--format", "csv"])
    assert csv_out.exit_code == 0, csv_out.output
    assert csv_out.stdout_bytes.endswith(b"2026-11-30,saldo_akhir / closing,,,,,,,,,13000,\r\n")
    as_json = runner.invoke(app, [*args, "--format", "json"])
    assert json.loads(as_json.stdout)["closing_balance_idr"] == 17_000
    bad = runner.invoke(app, [*args, "--to", "2026-10-01"])
    assert bad.exit_code == 2
    assert "ends" in bad.output


# ---- receipts -------------------------------------------------------------------------------


def test_receipt_of_a_visit_as_thermal_text(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        rc = passbook.receipt(s, ["gw-01-1", "gw-01-2"], now=_at(20, 9))
    assert (rc.total_idr, rc.balance_after_idr) == (5_000, 8_000)  # gw-01-2 voided since
    assert [line.voided for line in rc.lines] == [False, True]
    for width in (32, 48):
        text = passbook.receipt_text(rc, width)
        lines = text.splitlines()
        assert max(len(line) for line in lines) <= width
        assert all(line.isascii() for line in lines)
        assert "KUITANSI SETORAN" in text
        assert "DEPOSIT RECEIPT" in text
        assert any(
            line.startswith("  1,25 kg x Rp4.000/kg") and line.endswith("Rp5.000") for line in lines
        )
        assert any(line.startswith("TOTAL") and line.endswith("Rp5.000") for line in lines)
        assert any(line.startswith("Saldo/Balance") and line.endswith("Rp8.000") for line in lines)
        assert "DIBATALKAN / VOIDED" in text
        assert "3 Nov 2026 10.00 WIT" in text.replace("\n", " ")
    with pytest.raises(ValueError, match="columns"):
        passbook.receipt_text(rc, 40)


def test_receipt_pdf_and_refusals(engine: Engine, books: Books) -> None:
    with Session(engine) as s:
        rc = passbook.receipt(s, [books.replacement])
        with pytest.raises(ledger.NotFound, match="nope"):
            passbook.receipt(s, ["gw-01-1", "nope"])
        apply_deposit(s, deposit_event(9, at=_at(4, 9)))  # AMB-0001's
        with pytest.raises(ValueError, match="one member"):
            passbook.receipt(s, ["gw-01-1", "gw-01-9"])
    assert rc.attendant == STAFF
    reader = PdfReader(io.BytesIO(passbook.receipt_pdf(rc)))
    text = reader.pages[0].extract_text()
    page = reader.pages[0].mediabox
    assert (round(float(page.width) / 72 * 25.4), round(float(page.height) / 72 * 25.4)) == (
        105,
        148,
    )
    for expected in (
        "Bank Sampah Batu Merah Bersih",
        "KUITANSI SETORAN / DEPOSIT RECEIPT",
        "7 Nov 2026 09.00 WIT",
        "4,50 kg x Rp4.000/kg",
        "Rp18.000",
        "Rp46.000",  # the balance right after it
        f"Petugas / Attendant: {STAFF}",
    ):
        assert expected in text, expected


# ---- a member's data ------------------------------------------------------------------------


def test_member_data_export_holds_everything_but_the_nik(engine: Engine, books: Books) -> None:
    key = b"k" * 32
    nik = "8171014107900001"
    with Session(engine) as s:
        member = ledger.get_member(s, MEMBER)
        assert member is not None
        ledger.create_member(
            s,
            bank=member.bank,
            member_no="AMB-0009",
            name="Rahel",
            nik=nik,
            nik_key=key,
            cards=["04E1"],
        )
        s.commit()
        data = passbook.member_data(s, MEMBER)
        other = passbook.member_data(s, "AMB-0009")
        digest = ledger.hash_nik(nik, key)
    assert data.profile.member_no == MEMBER
    assert (data.profile.kelurahan, data.profile.kecamatan, data.profile.rt) == (
        "Batu Merah",
        "Sirimau",
        "004",
    )
    assert [c.uid for c in data.cards] == [CARD]
    by_id = {d.event_id: d for d in data.deposits}
    assert set(by_id) == {"gw-01-1", "gw-01-2", "gw-01-3", "gw-01-4", books.replacement}
    assert by_id["gw-01-2"].void_reason == "salah kategori"
    assert by_id["gw-01-3"].replaced_by == books.replacement
    assert [(w.id, w.status) for w in data.withdrawals] == [
        (books.paid, "paid"),
        (books.pending, "requested"),
    ]
    assert data.statement.closing_balance_idr == 17_000
    assert data.profile.nik_recorded is False
    assert other.profile.nik_recorded is True
    exported = other.model_dump_json()
    assert nik not in exported
    assert digest not in exported
