"""The SIPSN bank sampah export (wastebank/reports/sipsn.py): one row per bank and category with
the ledger's own totals for the period (local half years in WIT, voids left out, manual entries
as estimated), members and units, the city data file's bank facts (and its bad entries said,
not guessed at), the CSV read back in both dialects, the XLSX's number cells, the CLI; and the
public bank list's data (no personal data). Every ledger test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.settings import PagesSettings
from api.web import content_policy
from tests.auth_helpers import ApiEnv, api_settings
from tests.ledger_helpers import scale
from wastebank import ledger, reports
from wastebank.cli import app

WIT = timezone(timedelta(hours=9))
NOW = datetime(2027, 1, 5, 3, 0, tzinfo=UTC)


@pytest.fixture
def session(ledger_url: str) -> Iterator[Session]:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        yield s
    engine.dispose()


def second_half_2026(s: Session) -> None:
    """Deposits in and around July-December 2026 (WIT): the 30 June 23:30 one is the first
    half's, the 1 January 2027 00:30 one the next year's; one voided; one entered by hand."""
    scale(s, datetime(2026, 6, 30, 23, 30, tzinfo=WIT), 5_000)  # S1
    scale(s, datetime(2026, 7, 1, 0, 30, tzinfo=WIT), 1_250)  # 2026-06-30 15:30 UTC: S2
    scale(s, datetime(2026, 8, 3, 9, 0, tzinfo=WIT), 2_000, category="kardus")
    scale(s, datetime(2026, 8, 3, 9, 5, tzinfo=WIT), 700, card="04A1B2C3D5")  # AMB-0002
    scale(
        s,
        datetime(2026, 9, 9, 10, 0, tzinfo=WIT),
        4_000,
        card="04B1B2C3D1",
        bank="bs-nusaniwe",
        category="kardus",
    )
    voided = scale(
        s,
        datetime(2026, 9, 9, 10, 1, tzinfo=WIT),
        9_000,
        card="04B1B2C3D1",
        bank="bs-nusaniwe",
        category="kardus",
    )
    ledger.void_deposit(s, voided, author="petugas-nsw-01", reason="dobel / duplicate")
    ledger.record_manual_deposit(
        s,
        bank_code="bs-batu-merah",
        member_no="AMB-0003",
        category_code="pet",
        net_g=300,
        measured_at=datetime(2026, 12, 31, 23, 59, tzinfo=WIT),
        author="petugas-bm-01",
        reason="timbangan rusak / scale down",
    )
    s.commit()
    scale(s, datetime(2027, 1, 1, 0, 30, tzinfo=WIT), 8_000)  # 2026-12-31 15:30 UTC: 2027


def ledger_totals(
    s: Session, first: date, last: date
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(bank, category) -> (grams, deposits, Rupiah) straight from the deposits, voids left out,
    measured in the local days first..last (WIT)."""
    d = ledger.Deposit
    start = datetime(first.year, first.month, first.day, tzinfo=WIT)
    end = datetime(last.year, last.month, last.day, tzinfo=WIT) + timedelta(days=1)
    rows = s.execute(
        select(
            ledger.Bank.code,
            ledger.Category.code,
            func.sum(d.net_g),
            func.count(),
            func.sum(d.amount_idr),
        )
        .join(ledger.Bank, d.bank_id == ledger.Bank.id)
        .join(ledger.Category, d.category_id == ledger.Category.id)
        .where(d.measured_at >= start, d.measured_at < end)
        .where(~d.id.in_(select(ledger.DepositVoid.deposit_id)))
        .group_by(ledger.Bank.code, ledger.Category.code)
    )
    return {(b, c): (int(g), int(n), int(v)) for b, c, g, n, v in rows}


def test_one_row_per_bank_and_category_with_the_ledgers_totals(session: Session) -> None:
    second_half_2026(session)
    scope = reports.load_scope(session)
    export = reports.sipsn_export(session, scope, "2026-S2", now=NOW)
    assert (export.start, export.end) == (date(2026, 7, 1), date(2026, 12, 31))
    banks = session.scalars(select(func.count()).select_from(ledger.Bank)).one()
    categories = session.scalars(select(func.count()).select_from(ledger.Category)).one()
    keys = [(r.bank_code, r.category_code) for r in export.rows]
    assert len(keys) == len(set(keys)) == banks * categories
    expected = ledger_totals(session, date(2026, 7, 1), date(2026, 12, 31))
    got = {k: (r.net_g, r.deposits, r.value_idr) for k, r in zip(keys, export.rows, strict=True)}
    assert {k: v for k, v in got.items() if v != (0, 0, 0)} == expected
    assert expected[("bs-batu-merah", "pet")][:2] == (1_250 + 700 + 300, 3)  # not 5 kg, not 8 kg
    assert expected[("bs-nusaniwe", "kardus")][:2] == (4_000, 1)  # the voided 9 kg left out
    pet = next(r for r in export.rows if (r.bank_code, r.category_code) == ("bs-batu-merah", "pet"))
    assert (pet.measured_g, pet.estimated_g) == (1_950, 300)
    assert pet.value_idr == expected[("bs-batu-merah", "pet")][2] > 0
    whole = reports.tonnage(session, scope, date(2026, 7, 1), date(2026, 12, 31), "city", "total")
    assert sum(r.net_g for r in export.rows) == whole.total_g == 8_250


def test_members_units_and_types(session: Session) -> None:
    second_half_2026(session)
    export = reports.sipsn_export(session, reports.load_scope(session), "2026-S2", now=NOW)
    by_bank = {r.bank_code: r for r in export.rows}
    bm, nsw, rjl = by_bank["bs-batu-merah"], by_bank["bs-nusaniwe"], by_bank["bs-rijali"]
    assert (bm.bank_type, bm.units, bm.parent_code) == ("BSI", 1, None)  # bs-rijali under it
    assert (rjl.bank_type, rjl.units, rjl.parent_code) == ("BSU", None, "bs-batu-merah")
    assert (nsw.bank_type, nsw.units) == ("BSU", None)
    registered = dict(
        session.execute(
            select(ledger.Bank.code, func.count())
            .join(ledger.Member, ledger.Member.bank_id == ledger.Bank.id)
            .group_by(ledger.Bank.code)
        ).all()
    )
    assert {c: r.members for c, r in by_bank.items()} == registered
    # AMB-0001, AMB-0002 (scale), AMB-0003 (by hand) at Batu Merah; AMB-0101 at Nusaniwe
    assert (bm.active_members, nsw.active_members, rjl.active_members) == (3, 1, 0)
    first_half = reports.sipsn_export(session, reports.load_scope(session), "2026-S1", now=NOW)
    assert sum(r.net_g for r in first_half.rows) == 5_000
    assert {r.bank_code: r.active_members for r in first_half.rows}["bs-batu-merah"] == 1


def test_the_csv_reads_back_with_the_ledgers_totals(session: Session) -> None:
    second_half_2026(session)
    export = reports.sipsn_export(session, reports.load_scope(session), "2026-S2", now=NOW)
    body = reports.sipsn_render(export, "csv")
    assert body.startswith("\ufeff".encode())
    lines = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert len(lines) == len(export.rows)
    kg = [line["sampah terkelola kg / waste managed kg"] for line in lines]
    assert "2,250" in kg  # bs-batu-merah's PET: comma decimals
    assert sum(round(float(v.replace(",", ".")) * 1000) for v in kg) == 8_250
    plain = reports.sipsn_render(export, "csv", csv_dialect="plain").decode("utf-8-sig")
    again = list(csv.DictReader(io.StringIO(plain)))
    assert (
        sum(round(float(line["sampah terkelola kg / waste managed kg"]) * 1000) for line in again)
        == 8_250
    )
    assert list(again[0]) == list(reports.SIPSN_HEADER)


def test_the_xlsx_cells_are_numbers(session: Session) -> None:
    from openpyxl import load_workbook

    second_half_2026(session)
    export = reports.sipsn_export(session, reports.load_scope(session), "2026-S2", now=NOW)
    wb = load_workbook(io.BytesIO(reports.sipsn_render(export, "xlsx")))
    assert wb.sheetnames == ["SIPSN", "Catatan"]
    ws = wb["SIPSN"]
    header = [c.value for c in ws[1]]
    assert header == list(reports.SIPSN_HEADER)
    kg_col = header.index("sampah terkelola kg / waste managed kg") + 1
    values = [ws.cell(r, kg_col) for r in range(2, ws.max_row + 1)]
    assert all(c.data_type == "n" for c in values)
    assert values[0].number_format == "#,##0.000"
    kgs = [c.value for c in values if isinstance(c.value, int | float)]
    assert len(kgs) == len(values)
    assert sum(kgs) == pytest.approx(8.25)
    assert ws.cell(2, header.index("nilai Rp / value IDR") + 1).number_format == '"Rp"#,##0'


FORMULAS = ('=HYPERLINK("http://evil","klik")', "=1+1", "#N/A", "+1", "-1", "@SUM(A1)")


def test_the_xlsx_text_that_looks_like_a_formula_stays_text(
    session: Session, tmp_path: Path
) -> None:
    """A bank, kecamatan, category name or city-file address beginning ``=`` is a string cell
    Excel shows as written, never a formula it runs (nor ``#N/A`` an error)."""
    from openpyxl import load_workbook

    second_half_2026(session)
    hyperlink, one_plus_one, error, *_ = FORMULAS
    bank = session.scalars(select(ledger.Bank).where(ledger.Bank.code == "bs-batu-merah")).one()
    bank.name = hyperlink
    bank.kelurahan.kecamatan.name = one_plus_one
    pet = session.scalars(select(ledger.Category).where(ledger.Category.code == "pet")).one()
    pet.name_id = error
    session.commit()
    (tmp_path / "ambon.toml").write_text(
        '[city]\ncode = "ambon"\n[[bank]]\ncode = "bs-batu-merah"\naddress = "=1+1"\n'
    )
    settings = reports.ReportSettings(cities_dir=tmp_path)
    export = reports.sipsn_export(
        session, reports.load_scope(session), "2026-S2", settings, now=NOW
    )
    ws = load_workbook(io.BytesIO(reports.sipsn_render(export, "xlsx")))["SIPSN"]
    header = [c.value for c in ws[1]]
    seen = set()
    for row in ws.iter_rows(min_row=2):
        for cell in row:
            assert cell.column is not None  # a cell of a row has its column
            assert cell.data_type != "f", (header[cell.column - 1], cell.value)
            if cell.value in FORMULAS or str(cell.value).startswith(error):
                assert cell.data_type == "s"
                seen.add(cell.value)
    assert {hyperlink, one_plus_one} <= seen
    assert any(str(v).startswith(error) for v in seen)  # the category's name


def test_periods() -> None:
    assert reports.parse_period("2026") == (date(2026, 1, 1), date(2026, 12, 31))
    assert reports.parse_period("2026-S1") == (date(2026, 1, 1), date(2026, 6, 30))
    assert reports.parse_period("2026-S2") == (date(2026, 7, 1), date(2026, 12, 31))
    assert reports.parse_period("2024-02") == (date(2024, 2, 1), date(2024, 2, 29))
    for bad in ("2026-S3", "2026-13", "26", "2026-1", "1999", "2026-10-01", ""):
        with pytest.raises(ValueError, match="period"):
            reports.parse_period(bad)
    for outside in ("0000", "0000-10", "0000-S1", "1999-12", "2101", "9999-S2"):
        with pytest.raises(ValueError, match=r"^periode di luar / a period outside 2000\.\.2100"):
            reports.parse_period(outside)


CITY_FILE = """
[city]
code = "ambon"
name = "Kota Ambon"

[[bank]]
code = "bs-batu-merah"
address = "Jl. Jend. Sudirman, Batu Merah"
lat = -3.6841
lon = 128.1915
opening_hours = "Senin-Sabtu 08.00-12.00 WIT"
contact = "0911 312345"

[[bank]]
code = "bs-nusaniwe"
lat = -3.71

[[bank]]
code = "bs-lain"
address = "elsewhere"

[[bank]]
code = "bs-rijali"
contact = "Ibu Fatma"
"""


def test_bank_facts_from_the_city_file_and_its_bad_entries(
    session: Session, tmp_path: Path
) -> None:
    (tmp_path / "ambon.toml").write_text(CITY_FILE)
    settings = reports.ReportSettings(cities_dir=tmp_path)
    scope = reports.load_scope(session)
    export = reports.sipsn_export(session, scope, "2026-S2", settings, now=NOW)
    bm = next(r for r in export.rows if r.bank_code == "bs-batu-merah")
    assert (bm.address, bm.lat, bm.lon) == ("Jl. Jend. Sudirman, Batu Merah", -3.6841, 128.1915)
    nsw = next(r for r in export.rows if r.bank_code == "bs-nusaniwe")
    assert (nsw.address, nsw.lat) == (None, None)  # lat without lon: left out, not half-used
    problems = " | ".join(export.problems)
    assert "bs-nusaniwe" in problems
    assert "lat and lon go together" in problems
    assert "bs-lain: bukan bank kota ini / not a bank of this city" in problems
    assert "bs-rijali" in problems  # a person's name is not a public contact number
    directory, directory_problems = reports.bank_directory(session, scope, NOW, settings)
    assert directory_problems == export.problems
    listed = {b.code: b for b in directory.banks}
    assert listed["bs-batu-merah"].opening_hours == "Senin-Sabtu 08.00-12.00 WIT"
    assert listed["bs-batu-merah"].contact == "0911 312345"
    assert listed["bs-rijali"].contact is None


def test_the_public_directory_has_prices_and_nothing_personal(session: Session) -> None:
    scope = reports.load_scope(session)
    directory, problems = reports.bank_directory(session, scope, NOW)
    assert problems == []
    listed = {b.code: b for b in directory.banks}
    assert set(listed) == {"bs-batu-merah", "bs-nusaniwe", "bs-rijali"}
    pet = {p.category_code: p.price_idr for p in listed["bs-batu-merah"].prices}["pet"]
    assert pet == 4000  # demo_city.toml's list
    rijali = listed["bs-rijali"]
    assert rijali.prices_from == "Bank Sampah Batu Merah Bersih"  # buys at its induk's list
    assert {p.category_code for p in rijali.prices} == set(
        p.category_code for p in listed["bs-batu-merah"].prices
    )
    dumped = directory.model_dump_json()
    people = session.scalars(select(ledger.Member.name)).all()
    staff = session.scalars(select(ledger.Attendant.name)).all()
    phones = session.scalars(select(ledger.Member.phone).where(ledger.Member.phone.is_not(None)))
    for personal in [*people, *staff, *phones]:
        assert personal not in dumped


def test_cli_report_sipsn(ledger_url: str, tmp_path: Path) -> None:
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        second_half_2026(s)
    engine.dispose()
    runner = CliRunner()
    out = tmp_path / "sipsn.csv"
    args = ["report", "sipsn", "--period", "2026-S2", "--ledger-url", ledger_url]
    result = runner.invoke(app, [*args, "--format", "csv", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig")), delimiter=";"))
    assert (
        sum(
            round(float(r["sampah terkelola kg / waste managed kg"].replace(",", ".")) * 1000)
            for r in lines
        )
        == 8_250
    )
    xlsx = tmp_path / "sipsn.xlsx"
    result = runner.invoke(app, [*args, "--out", str(xlsx)])
    assert result.exit_code == 0, result.output
    assert xlsx.read_bytes().startswith(b"PK")
    bad = runner.invoke(app, ["report", "sipsn", "--period", "2026-S3", "--ledger-url", ledger_url])
    assert bad.exit_code != 0
    assert "period" in bad.output
    year_0 = runner.invoke(app, ["report", "sipsn", "--period", "0000", "--ledger-url", ledger_url])
    assert year_0.exit_code == 2  # a usage error naming --period
    assert "--period" in year_0.output
    assert "a period outside 2000..2100" in " ".join(year_0.output.split())
    assert "out of range" not in year_0.output


# ---- the API and the public page ----------------------------------------------------------------


@pytest.fixture
def api(ledger_url: str) -> Iterator[ApiEnv]:
    with ApiEnv(ledger_url, api_settings(ledger_url=ledger_url)) as env:
        yield env


@pytest.mark.integration
def test_api_sipsn_for_the_citys_dlh_and_admins(api: ApiEnv) -> None:
    with Session(api.engine) as s:
        second_half_2026(s)
    url = "/api/dlh/report/sipsn"
    resp = api.client.get(
        url, params={"period": "2026-S2", "format": "csv"}, headers=api.bearer("dlh")
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert "sipsn-bank-sampah-ambon-2026-S2.csv" in resp.headers["content-disposition"]
    lines = list(csv.DictReader(io.StringIO(resp.content.decode("utf-8-sig")), delimiter=";"))
    assert (
        sum(
            round(float(r["sampah terkelola kg / waste managed kg"].replace(",", ".")) * 1000)
            for r in lines
        )
        == 8_250
    )
    plain = api.client.get(
        url,
        params={"period": "2026-S2", "format": "csv", "csv_dialect": "plain"},
        headers=api.bearer("admin"),
    )
    assert plain.status_code == 200
    assert plain.content.decode("utf-8-sig").splitlines()[0].count(",") == 22
    xlsx = api.client.get(url, params={"period": "2026"}, headers=api.bearer("admin"))
    assert xlsx.content.startswith(b"PK")
    for role in ("attendant_1", "citizen_a"):
        refused = api.client.get(url, params={"period": "2026"}, headers=api.bearer(role))
        assert refused.status_code == 403, role
    assert api.client.get(url, params={"period": "2026"}).status_code == 401
    other = api.client.get(
        url, params={"period": "2026", "city": "kota-lain"}, headers=api.bearer("dlh")
    )
    assert other.status_code == 403
    bad = api.client.get(url, params={"period": "2026-S3"}, headers=api.bearer("dlh"))
    assert bad.status_code == 422
    year_0 = api.client.get(url, params={"period": "0000"}, headers=api.bearer("dlh"))
    assert year_0.status_code == 422
    assert "periode di luar / a period outside 2000..2100" in year_0.text
    assert "out of range" not in year_0.text


@pytest.mark.integration
def test_the_public_bank_list_needs_no_login_and_names_no_one(api: ApiEnv) -> None:
    page = api.client.get("/bank-sampah")
    assert page.status_code == 200, page.text
    assert page.text.count('class="card bank"') == 3
    shown = (
        "Bank sampah di Kota Ambon",
        "Bank Sampah Batu Merah Bersih",
        "Harga beli",
        "Rp4.000/kg",
        "unit dari Bank Sampah Batu Merah Bersih",
        "belum diisi",
    )
    for text in shown:
        assert text in page.text, text
    english = api.client.get("/bank-sampah", params={"lang": "en"})
    assert "Waste banks in Kota Ambon" in english.text
    # the pages' policy (docs/dlh.md): nothing runs or loads from elsewhere, no framing
    policy = page.headers["content-security-policy"]
    assert policy == content_policy(PagesSettings())  # the fixture's default tile host
    for part in ("default-src 'self'", "script-src 'self'", "frame-ancestors 'none'"):
        assert part in policy.split("; "), part
    assert english.headers["content-security-policy"] == policy
    assert "Clean PET bottles" in english.text
    listed = api.client.get("/api/public/banks")
    assert listed.status_code == 200
    body = listed.json()
    assert "problems" not in body
    assert {b["code"] for b in body["banks"]} == {"bs-batu-merah", "bs-nusaniwe", "bs-rijali"}
    with Session(api.engine) as s:
        people = [*s.scalars(select(ledger.Member.name)), *s.scalars(select(ledger.Attendant.name))]
        phones = list(
            s.scalars(select(ledger.Member.phone).where(ledger.Member.phone.is_not(None)))
        )
        member_nos = list(s.scalars(select(ledger.Member.member_no)))
    for personal in [*people, *phones, *member_nos]:
        assert personal not in page.text
        assert personal not in listed.text
    assert api.client.get("/bank-sampah", params={"city": "kota-lain"}).status_code == 404
    assert api.client.get("/api/public/banks", params={"city": "kota-lain"}).status_code == 404


@pytest.mark.integration
def test_the_public_bank_list_at_360_px(api: ApiEnv) -> None:
    pytest.importorskip("playwright")
    from playwright.sync_api import expect

    from wastebank.browser import PHONE, chromium

    with chromium() as browser:
        context = browser.new_context(viewport=PHONE, base_url=str(api.client.base_url))  # type: ignore[arg-type]
        try:
            page = context.new_page()
            page.goto("/bank-sampah")
            expect(page.locator("html")).to_have_attribute("lang", "id")
            expect(page.get_by_role("heading", level=1)).to_have_text("Bank sampah di Kota Ambon")
            expect(page.get_by_role("region", name="Bank Sampah Nusaniwe Lestari")).to_be_visible()
            expect(page.get_by_role("table", name="Harga beli").first).to_be_visible()
            scroll = page.evaluate("document.documentElement.scrollWidth")
            assert scroll <= PHONE["width"], f"{scroll} px wide at {PHONE['width']} px"
        finally:
            context.close()


@pytest.mark.integration
def test_api_monthly_report_dialects_and_orientation(api: ApiEnv) -> None:
    from pypdf import PdfReader

    with Session(api.engine) as s:
        second_half_2026(s)
    url, dlh = "/api/dlh/report/monthly", api.bearer("dlh")
    month = {"month": "2026-08", "format": "csv"}
    id_csv = api.client.get(url, params=month, headers=dlh)
    assert id_csv.status_code == 200, id_csv.text
    lines = id_csv.content.decode("utf-8-sig").splitlines()
    assert lines[-1].startswith("2026-08;Jumlah / Total;;;;;2;2,700;")  # 2 kg + 0.7 kg
    plain = api.client.get(url, params={**month, "csv_dialect": "plain"}, headers=dlh)
    assert (
        plain.content.decode("utf-8-sig")
        .splitlines()[-1]
        .startswith("2026-08,Jumlah / Total,,,,,2,2.700,")
    )
    bad = api.client.get(url, params={**month, "csv_dialect": "excel"}, headers=dlh)
    assert bad.status_code == 422
    for orientation, tall in (("portrait", True), ("landscape", False)):
        pdf = api.client.get(
            url,
            params={"month": "2026-08", "format": "pdf", "orientation": orientation},
            headers=dlh,
        )
        assert pdf.status_code == 200
        box = PdfReader(io.BytesIO(pdf.content)).pages[0].mediabox
        assert (float(box.height) > float(box.width)) is tall
