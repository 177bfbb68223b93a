"""The monthly report prints right: every text of the PDF inside the page's margins and no two
texts of a line on top of each other (read back with pypdf: each text's position, its width
from the core font's metrics), at A4 portrait and landscape, with long names and city-sized
numbers; no internal names; id-ID numbers only; the CSV dialects read back; the XLSX's figures
are number cells. Pure: a report made by hand, no ledger."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from pypdf import PdfReader

from wastebank import reports
from wastebank.estimates import FIGURES, Impact, Range
from wastebank.reports import DiversionRow, Generation, MonthlyReport, MonthlyRow

MM = 72 / 25.4  # points per mm
MARGIN_MM = 12  # wastebank.pdfdoc.document's


def row(kecamatan: str, category: str, grams: int, *, name: str = "Botol PET") -> MonthlyRow:
    return MonthlyRow(
        kecamatan=kecamatan,
        category=category,
        category_name_id=f"{name} bersih berwarna campur tanpa label",
        category_name_en=f"Clean mixed-colour {name} without labels",
        sipsn_class="plastik",
        material_class="pet",
        deposits=12_345,
        net_g=grams,
        measured_g=grams - 1_250,
        estimated_g=1_250,
        share_pct=23.271234,
        impact=impact(grams),
    )


def impact(grams: int) -> Impact:
    """City-sized ranges (the WtE potential's low end below zero, as wet waste can be)."""
    kg = grams / 1000
    r = Range
    return Impact(
        grams=grams,
        net_co2e_kg=r(central=1.5 * kg, low=1.1 * kg, high=1.9 * kg),
        landfill_ch4_co2e_kg=r(central=0.5 * kg, low=0.3 * kg, high=0.8 * kg),
        recycling_credit_co2e_kg=r(central=1.0 * kg, low=0.8 * kg, high=1.1 * kg),
        composting_co2e_kg=r.exact(0.0),
        recycling_energy_saved_gj=r(central=0.05 * kg, low=0.04 * kg, high=0.06 * kg),
        recycling_energy_saved_kwh_eq=r(central=13.9 * kg, low=11.1 * kg, high=16.7 * kg),
        wte_potential_kwh=r(central=0.4 * kg, low=-0.1 * kg, high=0.9 * kg),
        not_estimated={"composting_co2e_kg": "pet: tidak dikomposkan / not composted"},
    )


def big_report(rows: int = 40) -> MonthlyReport:
    """Long kecamatan and category names, a city-sized generation, enough rows for a second
    page (whose headings are repeated)."""
    kecamatan = ("Teluk Ambon Baguala", "Sirimau", "Nusaniwe", "Leitimur Selatan")
    items = [
        row(kecamatan[i % 4], f"cat-{i}", 8_074_446_000 // (i + 1), name=f"Kategori {i}")
        for i in range(rows)
    ]
    total = row("Jumlah / Total", "", sum(r.net_g for r in items))
    div = [
        DiversionRow(
            kecamatan=k,
            diverted_g=8_074_446_000,
            tpa_bound_kg=123_456_789.5,
            pickups=1234,
            rate=0.2327,
        )
        for k in kecamatan
    ]
    return MonthlyReport(
        city_code="ambon",
        city_name="Kota Ambon",
        timezone="Asia/Jayapura",
        zone="WIT",
        month="2026-10",
        start=date(2026, 10, 1),
        end=date(2026, 10, 31),
        generated_at=datetime(2026, 11, 1, 3, 0, tzinfo=UTC),
        generation=Generation(
            city_code="ambon", population=347_288, kg_per_capita_day=0.75, source="BPS 2024"
        ),
        generation_g=8_074_446_000,
        estimator="uji / test",
        rows=items,
        total=total,
        diversion=div,
        diversion_total=div[0],
    )


@dataclass(frozen=True)
class Run:
    """A text as drawn, without its leading and trailing spaces."""

    page: int
    x: float
    y: float
    width: float
    text: str


def text_runs(pdf: bytes) -> tuple[list[Run], list[tuple[float, float]]]:
    """Every text drawn, with its position and width in points, and each page's size."""
    from fpdf import FPDF

    metrics = FPDF(unit="pt")
    runs: list[Run] = []
    sizes = []
    for number, page in enumerate(PdfReader(io.BytesIO(pdf)).pages):
        sizes.append((float(page.mediabox.width), float(page.mediabox.height)))

        def visit(text: str, cm: list[float], tm: list[float], font: object, size: float) -> None:
            if not text.strip():
                return
            base = str(font.get("/BaseFont", "")) if isinstance(font, dict) else ""  # noqa: B023
            metrics.set_font("helvetica", "B" if "Bold" in base else "", size)
            x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
            y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
            shown = text.strip()
            lead = text[: len(text) - len(text.lstrip())]
            x += metrics.get_string_width(lead.replace("\n", ""))
            runs.append(Run(number, x, y, metrics.get_string_width(shown), shown))  # noqa: B023

        page.extract_text(visitor_text=visit)
    return runs, sizes


@pytest.mark.parametrize("orientation", ["portrait", "landscape"])
def test_the_pdf_stays_inside_its_margins_and_no_texts_overlap(orientation: str) -> None:
    pdf = reports.monthly_pdf(big_report(), orientation)  # type: ignore[arg-type]
    runs, sizes = text_runs(pdf)
    assert len(sizes) >= 2, "the test wants a table across two pages"
    wide = sizes[0][0] > sizes[0][1]
    assert wide == (orientation == "landscape")
    assert {(round(w), round(h)) for w, h in sizes} == (
        {(842, 595)} if wide else {(595, 842)}
    )  # A4
    left, slack, gap = MARGIN_MM * MM, 0.5, 2.0  # pt
    for r in runs:
        page_w, page_h = sizes[r.page]
        assert r.x >= left - slack, r
        assert r.x + r.width <= page_w - left + slack, r
        assert 0 < r.y < page_h - left, r
    lines: dict[tuple[int, int], list[Run]] = {}
    for r in runs:
        lines.setdefault((r.page, round(r.y)), []).append(r)
    for line in lines.values():
        line.sort(key=lambda r: r.x)
        for a, b in zip(line, line[1:], strict=False):
            assert a.x + a.width + gap <= b.x, (a, b)  # "Waste banksKe TPA" was 0 apart
    text = " ".join(r.text for r in runs)
    for heading in ("Kecamatan", "Bank sampah / Waste banks", "Ke TPA (estimasi)"):
        assert heading in text
    assert sum("Kecamatan" == r.text for r in runs) >= 3  # headings repeated on page 2


def test_the_pdf_has_no_internal_names_and_only_indonesian_numbers() -> None:
    runs, _ = text_runs(reports.monthly_pdf(big_report(rows=3)))
    text = " ".join(r.text for r in runs)
    assert "wastebank." not in text
    assert "WASTEBANK_" not in text
    # 10.00 WIT is a time; IPCC's "Table 4.1" a section
    without_times = re.sub(r"\b\d{2}\.\d{2} WI|Tabel \d+\.\d+|Table \d+\.\d+", "", text)
    assert not re.search(r"\d\.\d{1,2}(?!\d)", without_times), "a dot decimal"
    assert not re.search(r"\d,\d{3}\.", without_times), "English thousands"
    assert "23,27 %" in text
    assert "8.074,4" in text  # t from 10 t, one decimal (wastebank.formats.mass_unit)
    assert "347.288 jiwa" in text


def test_the_pdf_shows_each_estimate_central_first_with_its_range_and_basis() -> None:
    report = big_report(rows=1)
    runs, _ = text_runs(reports.monthly_pdf(report, "portrait"))
    text = " ".join(r.text for r in runs)
    # 8.074.446 kg of PET: net CO2e 1.5 kg/kg, 1.1 to 1.9
    assert "12.111.669,0 (8.881.890,6 s.d. 15.341.447,4)" in text
    # recycling energy saved (GJ) and the WtE potential, whose low end is below zero
    assert "403.722,30 (322.977,84 s.d. 484.466,76)" in text
    assert "3.229.778,4 (-807.444,6 s.d. 7.267.001,4)" in text
    for field in ("landfill_ch4_co2e_kg", "recycling_energy_saved_gj", "wte_potential_kwh"):
        label = FIGURES[field].label
        assert label.id in text
        assert label.en in text
    assert "Primary energy, not electricity" in text  # the basis of the energy saved
    assert "committed to the month it was" in text  # landfill methane: lifetime, said so
    assert "pet: tidak dikomposkan / not composted" in text  # not estimated, and why


def test_a_covered_city_prints_its_rate() -> None:
    covered = reports.diversion_coverage(
        tps_with_sensors=20, tps_reporting=20, tps_in_city=20, pickups=40
    )
    report = big_report(rows=1).model_copy(update={"coverage": covered})
    text = " ".join(r.text for r in text_runs(reports.monthly_pdf(report))[0])
    assert "23,27 %" in text
    assert "20 dari 20 TPS kota" in text
    thin = reports.diversion_coverage(
        tps_with_sensors=1, tps_reporting=1, tps_in_city=20, pickups=40
    )
    text = " ".join(
        r.text
        for r in text_runs(reports.monthly_pdf(report.model_copy(update={"coverage": thin})))[0]
    )
    assert "23,27 %" not in text
    assert "belum cukup data / not enough data" in text
    assert thin.reason is not None
    assert thin.reason in text


def test_a_word_longer_than_a_column_is_broken_inside_the_page() -> None:
    report = big_report(rows=2)
    report.rows[0].category_name_id = "Botol" + "PET" * 60  # 185 letters, no space
    runs, sizes = text_runs(reports.monthly_pdf(report, "portrait"))
    page_w = sizes[0][0]
    assert all(r.x + r.width <= page_w - MARGIN_MM * MM + 0.5 for r in runs)
    assert any(r.text.startswith("BotolPETPET") for r in runs)


def test_a_report_without_rows_or_estimates_prints() -> None:
    empty = big_report(rows=0).model_copy(
        update={"generation": None, "generation_g": None, "estimator": None}
    )
    empty.total.impact = None
    runs, _ = text_runs(reports.monthly_pdf(empty, "portrait"))
    text = " ".join(r.text for r in runs)
    assert "tidak ada setoran / no deposits" in text
    assert "belum diatur" in text
    assert "CO2e & energi / CO2e & energy: belum tersedia / not available" in text


def test_the_indonesian_csv_has_semicolons_and_comma_decimals() -> None:
    report = big_report(rows=2)
    body = reports.render(report, "csv")
    assert body.startswith("\ufeff".encode())
    lines = list(csv.reader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == list(reports.CSV_HEADER)
    first = dict(zip(lines[0], lines[1], strict=True))
    assert first["berat kg / weight kg"] == "8074446,000"
    assert first["pengurangan % timbulan / reduction % of generation"] == "23,2712"
    assert float(first["terukur kg / measured kg"].replace(",", ".")) == 8_074_444.75
    plain = reports.render(report, "csv", csv_dialect="plain").decode("utf-8-sig")
    again = list(csv.reader(io.StringIO(plain)))
    assert again[1][7] == "8074446.000"
    assert [len(r) for r in again] == [len(r) for r in lines]


def test_a_csv_text_cell_is_not_a_formula() -> None:
    report = big_report(rows=1)
    report.rows[0].kecamatan = "=HYPERLINK(1)"
    line = reports.monthly_csv(report).split("\r\n")[1]
    assert line.split(";")[1] == "'=HYPERLINK(1)"


def test_the_xlsx_figures_are_numbers_with_formats() -> None:
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(reports.render(big_report(rows=2), "xlsx")))
    ws = wb["Laporan"]
    figures = {str(ws.cell(r, 1).value): ws.cell(r, 2) for r in range(1, 30) if ws.cell(r, 1).value}
    generation = figures["Timbulan (estimasi) / Generation (estimated) (kg)"]
    assert generation.value == 8_074_446.0
    assert generation.data_type == "n"
    assert generation.number_format == "#,##0.000"
    rate = figures["Tingkat pengalihan / Diversion rate"]
    assert (rate.value, rate.number_format) == (0.2327, "0.00%")
    for cell in ws[next(r for r in range(1, 40) if ws.cell(r, 1).value == "Teluk Ambon Baguala")]:
        assert cell.column is not None  # a cell of a row has its column
        if cell.column >= 6:  # after the SIPSN class name
            assert cell.data_type == "n", cell
    texts = [c.value for r in ws.iter_rows() for c in r if isinstance(c.value, str)]
    assert not [t for t in texts if re.search(r"\d\.\d{3} kg", t)]  # no '8074446.000 kg'


def test_the_real_estimators_recycling_energy_saved_is_in_every_format() -> None:
    """wastebank.estimates' own figures for 10 kg of PET, not a fake's: the energy recycling
    saved (GJ, central first with its range) in the PDF, the CSV and the XLSX."""
    estimator = reports.default_estimator()
    assert estimator is not None
    report = big_report(rows=1)
    report.rows[0].net_g = report.total.net_g = 10_000
    report.rows[0].impact = report.total.impact = estimator.impact("pet", 10_000)
    saved = report.total.impact.recycling_energy_saved_gj
    assert saved is not None
    assert saved.low < saved.central < saved.high
    text = " ".join(r.text for r in text_runs(reports.monthly_pdf(report, "portrait"))[0])
    assert reports.wording.range_text(saved, "GJ") in text
    line = reports.monthly_csv(report).split("\r\n")[1].split(";")
    at = reports.CSV_HEADER.index(
        "Energi dihemat daur ulang GJ estimasi tengah / "
        "Energy saved by recycling GJ estimated central"
    )
    assert float(line[at].replace(",", ".")) == pytest.approx(saved.central, abs=5e-4)
    from openpyxl import load_workbook

    wb = load_workbook(io.BytesIO(reports.monthly_xlsx(report)))
    rows = list(wb["Estimasi"].iter_rows(values_only=True))
    gj = rows[0].index(reports.CSV_HEADER[at])
    assert rows[1][gj] == pytest.approx(saved.central)  # PET's row
