"""Bulk import of members and prices from CSV and XLSX: every row imported or refused with its
row number and reasons; all-or-nothing, valid-only and dry-run modes; the report as text, CSV
and XLSX. Each test that uses a ledger runs on SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.conftest import WIT, deposit_event
from tests.ledger_helpers import apply_deposit
from wastebank import bulk_import, ledger
from wastebank.bulk_import import Mode, RowStatus
from wastebank.cli import app

KEY = b"n" * 32
NIK = "8171014107900001"  # Maluku, Kota Ambon, a woman born 1 Jul 1990, sequence 0001
STAFF = "petugas-bm-01"  # attendant of bs-batu-merah (the induk of bs-rijali)

MEMBERS_CSV = [
    "No Nasabah / member_no;Nama;Kode Bank;Jenis;No HP;Kelurahan;RT;RW;NIK;Kartu;Catatan",
    f"AMB-0301;Ibu Ani;bs-batu-merah;perorangan;0812-3456-7890;Batu Merah;1;3;{NIK};04d1d2d3;x",
    "AMB-0302;;bs-nusaniwe;;;;;;;;",
    "AMB-0303;Budi;bs-xxx;;;;;;;;",
    "AMB-0304;Citra;bs-nusaniwe;;12345;;;;;;",
    "AMB-0001;Dup;bs-batu-merah;;;;;;;;",
    "AMB-0301;Again;bs-batu-merah;;;;;;;;",
    "AMB-0305;Dodi;bs-nusaniwe;;;Atlantis;;;;;",
    "AMB-0306;Eka;bs-nusaniwe;;;;;;81710141079;;",
    "AMB-0307;Fajar;bs-rijali;kelompok;+62 811-4700-123;rijali;RT 02;;;04D1D2D3;",
    f"AMB-0308;Gita;bs-batu-merah;;;;;;{NIK};;",
    "AMB-0309;Hana;bs-rijali;lembaga;(0911) 352-001;Rijali;;;;04A1B2C3D4;",
    "AMB-0310;Ika;bs-nusaniwe;;;;;;8171019907900001;;",
    ";;;;;;;;;;",
    "AMB-0311;Joko;bs-nusaniwe;alien;;;1000;;;;",
]
# Row number (the header is row 1) -> a fragment of each reason it must be refused for.
REFUSED = {
    3: ["missing field: nama (name)"],
    4: ["unknown bank 'bs-xxx'"],
    5: ["bad phone number '12345'"],
    6: ["member number AMB-0001 already exists"],
    7: ["duplicate member number AMB-0301 (row 2)"],
    8: ["unknown kelurahan 'Atlantis' in Kota Ambon"],
    9: ["a NIK is 16 digits"],
    10: ["duplicate card 04D1D2D3 (row 2)"],
    11: ["duplicate NIK (row 2)"],
    12: ["card 04A1B2C3D4 already belongs to a member"],
    13: ["NIK: bad region code or birth date"],
    15: ["unknown kind 'alien'", "RT is a number from 1 to 999: '1000'"],
}


@pytest.fixture
def engine(ledger_url: str) -> Iterator[Engine]:
    eng = ledger.make_engine(ledger_url)
    yield eng
    eng.dispose()


def _write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def _count(engine: Engine, model: type[ledger.Base]) -> int:
    with Session(engine) as s:
        return s.scalar(select(func.count()).select_from(model)) or 0


def _assert_refusals(report: bulk_import.ImportReport, refused: dict[int, list[str]]) -> None:
    got = {r.row: r for r in report.rows if r.status is RowStatus.REFUSED}
    assert sorted(got) == sorted(refused)
    for row, fragments in refused.items():
        for fragment in fragments:
            assert any(fragment in reason for reason in got[row].reasons), (row, got[row].reasons)
        assert len(got[row].reasons) == len(fragments), (row, got[row].reasons)


# ---- members ---------------------------------------------------------------------------------


def test_all_or_nothing_refuses_every_bad_row_and_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "nasabah.csv", MEMBERS_CSV, encoding="utf-8-sig")
    before = _count(engine, ledger.Member)
    report = bulk_import.import_members(engine, path, nik_key=KEY)
    _assert_refusals(report, REFUSED)
    assert {r.row: r.status for r in report.rows if r.row not in REFUSED} == {
        2: RowStatus.NOT_IMPORTED
    }
    assert report.ignored_columns == ["Catatan"]
    assert _count(engine, ledger.Member) == before
    assert _count(engine, ledger.Card) == 6  # the seeded ones
    text = report.text()
    assert "Baris / row 10 AMB-0307: ditolak / refused" in text
    assert "    - kartu ganda (baris 2) / duplicate card 04D1D2D3 (row 2)" in text
    assert "Baris / row 14" not in text  # the blank row is no row


def test_valid_only_imports_the_valid_rows_as_the_ledger_would(
    engine: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "nasabah.csv", MEMBERS_CSV, encoding="utf-8-sig")
    before = _count(engine, ledger.Member)
    report = bulk_import.import_members(engine, path, mode=Mode.VALID_ONLY, nik_key=KEY)
    _assert_refusals(report, REFUSED)
    assert [r.row for r in report.rows if r.status is RowStatus.IMPORTED] == [2]
    assert (report.imported, report.refused, report.ok) == (1, len(REFUSED), False)
    assert _count(engine, ledger.Member) == before + 1
    with Session(engine) as s:
        ani = ledger.get_member(s, "AMB-0301")
        assert ani is not None
        assert (ani.name, ani.bank.code, ani.kind, ani.phone) == (
            "Ibu Ani",
            "bs-batu-merah",
            "individual",
            "081234567890",
        )
        assert ani.kelurahan is not None
        assert (ani.kelurahan.name, ani.rt, ani.rw) == ("Batu Merah", "001", "003")
        assert ani.nik_hash == ledger.hash_nik(NIK, KEY)
        card = s.get(ledger.Card, "04D1D2D3")
        assert card is not None
        assert card.member_id == ani.id
        assert ledger.verify(s) == []
    # The same file again: every row is refused now, the first as a member that exists.
    again = bulk_import.import_members(engine, path, mode=Mode.VALID_ONLY, nik_key=KEY)
    assert again.imported == 0
    assert any("AMB-0301 already exists" in reason for reason in again.rows[0].reasons)
    assert any("NIK already registered: AMB-0301" in reason for reason in again.rows[0].reasons)


def test_a_clean_file_is_imported_whole_and_a_dry_run_writes_nothing(
    engine: Engine, tmp_path: Path
) -> None:
    path = _write(
        tmp_path / "nasabah.csv",
        [
            "member_no,name,bank,kind,phone,kelurahan,kecamatan,rt,rw,cards",
            "AMB-0501,Kelompok RT 05,bs-nusaniwe,kelompok,62 911 312345,Benteng,Nusaniwe,5,1,",
            'AMB-0502,Sekolah,bs-rijali,institution,0813.1111.2222,Rijali,,,,"04F1F2F3, 04F1F2F4"',
        ],
    )
    before = _count(engine, ledger.Member)
    dry = bulk_import.import_members(engine, path, dry_run=True)
    assert [r.status for r in dry.rows] == [RowStatus.WOULD_IMPORT] * 2
    assert "uji coba" in dry.text()
    assert _count(engine, ledger.Member) == before
    real = bulk_import.import_members(engine, path)
    assert [r.status for r in real.rows] == [RowStatus.IMPORTED] * 2
    with Session(engine) as s:
        group = ledger.get_member(s, "AMB-0501")
        school = ledger.get_member(s, "AMB-0502")
        assert group is not None
        assert school is not None
        assert (group.kind, group.phone, group.rt) == ("group", "0911312345", "005")
        assert (school.kind, school.phone) == ("institution", "081311112222")
        cards = s.scalars(select(ledger.Card.uid).where(ledger.Card.member_id == school.id))
        assert sorted(cards) == ["04F1F2F3", "04F1F2F4"]


def test_xlsx_sheet_with_number_cells(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "nasabah.xlsx"
    wb = openpyxl.Workbook()
    assert wb.active is not None
    wb.active.title = "Petunjuk"
    wb.active.append(["Isi lembar Nasabah"])
    ws = wb.create_sheet("Nasabah")
    ws.append(["No Nasabah / member_no", "Nama / name", "Kode bank", "No HP", "NIK", "RT"])
    # Excel drops a phone number's leading 0 in a number cell, and rounds a 16-digit NIK.
    ws.append(["AMB-0401", "Kiki", "bs-nusaniwe", 81299990000, int(NIK), None])
    ws.append(["AMB-0402", "Lia", "bs-nusaniwe", 81299990001, None, 2])
    wb.save(path)
    with pytest.raises(bulk_import.ImportFileError, match="no sheet 'Anggota'"):
        bulk_import.import_members(engine, path, sheet="Anggota")
    report = bulk_import.import_members(
        engine, path, sheet="Nasabah", mode=Mode.VALID_ONLY, nik_key=KEY
    )
    _assert_refusals(report, {2: ["NIK stored as a number"]})
    assert report.rows[1].status is RowStatus.IMPORTED
    with Session(engine) as s:
        lia = ledger.get_member(s, "AMB-0402")
        assert lia is not None
        assert (lia.phone, lia.rt) == ("081299990001", "002")


def test_a_nik_needs_the_key_and_is_refused_when_registered(engine: Engine, tmp_path: Path) -> None:
    with Session(engine) as s:
        member = ledger.get_member(s, "AMB-0101")
        assert member is not None
        ledger.create_member(
            s, bank=member.bank, member_no="AMB-0190", name="Ona", nik=NIK, nik_key=KEY
        )
        s.commit()
    path = _write(
        tmp_path / "nasabah.csv",
        ["member_no,name,bank,nik", f"AMB-0191,Ona lagi,bs-batu-merah,{NIK[:4]} {NIK[4:]}"],
    )
    no_key = bulk_import.import_members(engine, path)
    _assert_refusals(no_key, {2: ["without the NIK key"]})
    with_key = bulk_import.import_members(engine, path, nik_key=KEY)
    _assert_refusals(with_key, {2: ["NIK already registered: AMB-0190"]})
    assert NIK not in with_key.text() + with_key.csv()


def test_report_as_csv_and_xlsx(engine: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "nasabah.csv", MEMBERS_CSV[:4])
    report = bulk_import.import_members(engine, path, nik_key=KEY, dry_run=True)
    want = [
        ["2", "AMB-0301", "would-import", ""],
        ["3", "AMB-0302", "refused", "kolom wajib kosong / missing field: nama (name)"],
        ["4", "AMB-0303", "refused", "bank tidak dikenal / unknown bank 'bs-xxx'"],
    ]
    report.write(tmp_path / "laporan.csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "laporan.csv").read_text("utf-8-sig"))))
    assert rows == [list(bulk_import.REPORT_COLUMNS), *want]
    report.write(tmp_path / "laporan.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "laporan.xlsx").active
    assert ws is not None
    got = [[str(v) if v is not None else "" for v in r] for r in ws.iter_rows(values_only=True)]
    assert got == [list(bulk_import.REPORT_COLUMNS), *want]
    with pytest.raises(bulk_import.ImportFileError):
        report.write(tmp_path / "laporan.pdf")


def test_files_that_are_no_table_are_refused(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(bulk_import.ImportFileError, match="no header"):
        bulk_import.import_members(engine, tmp_path / "empty.csv")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0")
    with pytest.raises(bulk_import.ImportFileError, match="save as .xlsx"):
        bulk_import.import_members(engine, tmp_path / "old.xls")
    (tmp_path / "latin1.csv").write_bytes("member_no,name\nAMB-1,Jos\xe9\n".encode("latin-1"))
    with pytest.raises(bulk_import.ImportFileError, match="UTF-8"):
        bulk_import.import_members(engine, tmp_path / "latin1.csv")


@pytest.mark.parametrize(
    ("raw", "phone"),
    [
        ("0812-3456-7890", "081234567890"),
        ("+62 812 3456 7890", "081234567890"),
        (81234567890, "081234567890"),
        ("(0911) 352001", "0911352001"),
    ],
)
def test_phone_numbers_are_stored_in_national_form(raw: str | int, phone: str) -> None:
    assert bulk_import.normalize_phone(raw) == phone


@pytest.mark.parametrize("raw", ["12345", "0012345678", "08123", "0812345678901234", "08l2345678"])
def test_bad_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="bad phone"):
        bulk_import.normalize_phone(raw)


# ---- prices ----------------------------------------------------------------------------------

PRICES_CSV = [
    "kode_bank,kategori,harga,berlaku_mulai",
    "bs-batu-merah,pet,4.500,01/12/2026",
    "bs-batu-merah,kardus,Rp 1.750,2026-12-01",
    "bs-rijali,pet,5000,2026-12-01",
    "bs-batu-merah,besi,3000,2026-12-01",
    'bs-batu-merah,kaleng,"4.000,50",2026-12-01',
    "bs-batu-merah,pet,4200,2026-11-05",
    "bs-nusaniwe,pet,3600,2026-12-01",
    "bs-batu-merah,pet,4600,1/12/2026",
    "bs-batu-merah,aluminium,6500,31/02/2026",
    "bs-batu-merah,gelas-pp,,2026-12-01",
]
PRICE_REFUSALS = {
    4: ["buys at its induk's prices"],
    5: ["unknown category 'besi'"],
    6: ["a price is whole Rupiah"],
    7: ["was priced from bs-batu-merah's list"],  # set_price: the 10 Nov deposit
    8: ["'petugas-bm-01' bukan petugas bs-nusaniwe"],
    9: ["duplicate of row 2"],
    10: ["not a date: '31/02/2026'"],
    11: ["missing field: harga (price)"],
}
DEC_1 = datetime(2026, 12, 1, tzinfo=WIT)


@pytest.fixture
def priced(engine: Engine) -> Engine:
    """A PET deposit at bs-batu-merah on 10 Nov, priced from the January list (Rp4,000/kg)."""
    with Session(engine) as s:
        apply_deposit(s, deposit_event(1, at=datetime(2026, 11, 10, 9, tzinfo=WIT)))
        s.commit()
    return engine


def _price_at(engine: Engine, bank: str, category: str, at: datetime) -> int | None:
    with Session(engine) as s:
        bank_id = s.scalar(select(ledger.Bank.id).where(ledger.Bank.code == bank))
        cat_id = s.scalar(select(ledger.Category.id).where(ledger.Category.code == category))
        assert bank_id is not None
        assert cat_id is not None
        return ledger.price_in_force(s, bank_id, cat_id, at)


def test_prices_all_or_nothing_and_dry_run_see_set_prices_refusals(
    priced: Engine, tmp_path: Path
) -> None:
    path = _write(tmp_path / "harga.csv", PRICES_CSV)
    before = _count(priced, ledger.Price)
    for dry_run in (True, False):
        report = bulk_import.import_prices(priced, path, author=STAFF, dry_run=dry_run)
        _assert_refusals(report, PRICE_REFUSALS)
        valid = RowStatus.WOULD_IMPORT if dry_run else RowStatus.NOT_IMPORTED
        assert [r.status for r in report.rows[:2]] == [valid, valid]
        assert _count(priced, ledger.Price) == before
    assert _price_at(priced, "bs-batu-merah", "pet", DEC_1) == 4000


def test_prices_valid_only_go_through_set_price(priced: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "harga.csv", PRICES_CSV)
    report = bulk_import.import_prices(priced, path, author=STAFF, mode=Mode.VALID_ONLY)
    _assert_refusals(report, PRICE_REFUSALS)
    assert [(r.row, r.key) for r in report.rows if r.status is RowStatus.IMPORTED] == [
        (2, "bs-batu-merah/pet@2026-12-01T00:00:00+09:00"),
        (3, "bs-batu-merah/kardus@2026-12-01T00:00:00+09:00"),
    ]
    # From 00:00 WIT on 1 Dec, for the induk and for its unit that buys at its prices.
    for bank in ("bs-batu-merah", "bs-rijali"):
        assert _price_at(priced, bank, "pet", DEC_1) == 4500
        assert _price_at(priced, bank, "pet", DEC_1 - timedelta(microseconds=1)) == 4000
    assert _price_at(priced, "bs-batu-merah", "kardus", DEC_1) == 1750
    with Session(priced) as s:
        row = s.scalar(select(ledger.Price).where(ledger.Price.price_per_kg_idr == 4500))
        assert row is not None
        assert (row.created_by, row.effective_from) == (STAFF, DEC_1)


def test_a_price_without_a_date_starts_at_the_import(priced: Engine, tmp_path: Path) -> None:
    path = _write(tmp_path / "harga.csv", ["bank,category,price", "bs-nusaniwe,pet,3700"])
    now = datetime(2026, 12, 3, 8, tzinfo=WIT)
    report = bulk_import.import_prices(priced, path, author="petugas-nsw-01", now=now)
    assert report.ok
    assert _price_at(priced, "bs-nusaniwe", "pet", now) == 3700


# ---- the commands ----------------------------------------------------------------------------


def test_import_members_command(
    ledger_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WASTEBANK_NIK_KEY", KEY.decode())
    path = _write(tmp_path / "nasabah.csv", MEMBERS_CSV, encoding="utf-8-sig")
    runner = CliRunner()
    args = ["ledger", "import-members", str(path), "--ledger-url", ledger_url]
    dry = runner.invoke(app, [*args, "--dry-run", "--valid-only"])
    assert dry.exit_code == 1
    assert "Baris / row 2 AMB-0301: akan diimpor / would be imported" in dry.stdout
    result = runner.invoke(app, [*args, "--valid-only", "--report", str(tmp_path / "r.xlsx")])
    assert result.exit_code == 1
    assert "Baris / row 2 AMB-0301: diimpor / imported" in result.stdout
    assert (tmp_path / "r.xlsx").exists()
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            ani = ledger.get_member(s, "AMB-0301")
            assert ani is not None
            assert ani.nik_hash == ledger.hash_nik(NIK, KEY)
    finally:
        engine.dispose()
    prices = _write(tmp_path / "harga.csv", PRICES_CSV[:3])
    ok = runner.invoke(
        app, ["ledger", "import-prices", str(prices), "--author", STAFF, "--ledger-url", ledger_url]
    )
    assert ok.exit_code == 0, ok.output
    assert "diimpor / imported: 2" in ok.stdout


def test_cells_that_look_like_formulas_stay_text_in_the_report(
    engine: Engine, tmp_path: Path
) -> None:
    formula = '=HYPERLINK("http://x","klik")'
    path = _write(
        tmp_path / "nasabah.csv",
        ["member_no;name;bank", f"{formula};Ani;bs-nusaniwe", "AMB 0601;Budi;bs-nusaniwe"],
    )
    report = bulk_import.import_members(engine, path)
    _assert_refusals(report, {2: ["bad member number"], 3: ["bad member number 'AMB 0601'"]})
    report.write(tmp_path / "laporan.csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "laporan.csv").read_text("utf-8-sig"))))
    assert rows[1][1] == f"'{formula}"
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    report.write(tmp_path / "laporan.xlsx")
    ws = openpyxl.load_workbook(tmp_path / "laporan.xlsx").active
    assert ws is not None
    assert (ws["B2"].value, ws["B2"].data_type) == (formula, "s")
