"""id-ID formats (wastebank.formats): the one place money, weights, numbers and dates are written
for people, used by the passbook, the reports, the pages and the importer."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from wastebank import formats, ledger


def test_numbers_have_dot_thousands_and_comma_decimals() -> None:
    assert [formats.number(v, 1) for v in (12_345.64, -1234.5, 0.04, 7)] == [
        "12.345,6",
        "-1.234,5",
        "0,0",  # rounds to zero: no minus sign
        "7,0",
    ]
    assert formats.number(1_234_567.25, 2) == "1.234.567,25"
    assert formats.number(999.6, 0) == "1.000"
    assert formats.number(None) == "-"
    assert formats.number(None, missing="–") == "–"
    assert formats.percent(1234.5678, 2) == "1.234,57 %"
    assert formats.percent(None) == "-"


def test_money_weights_and_volumes() -> None:
    assert formats.rupiah(1_234_567) == "Rp1.234.567"
    assert formats.rupiah(-500) == "-Rp500"
    assert formats.kg(1_234_500) == "1.234,50 kg"
    assert formats.kg(-40) == "-0,04 kg"
    assert formats.kg(1005) == "1,005 kg"
    assert formats.litres(1500) == "1,5 L"
    assert formats.litres(2000) == "2,0 L"
    assert formats.thousands(10_000_000) == "10.000.000"


def test_quantities_and_prices_in_each_unit_the_ledger_knows() -> None:
    assert set(formats.UNIT_LABELS) == {u.value for u in ledger.Unit}
    assert formats.quantity_text(ledger.Unit.KG, 1250, None) == "1,25 kg"
    assert formats.quantity_text(ledger.Unit.PIECE, 600, 1200) == "1.200 pcs"
    assert formats.quantity_text(ledger.Unit.LITRE, 1400, 1500) == "1,5 L"
    assert formats.quantity_text(ledger.Unit.PIECE, 600, None) == "0,60 kg"  # no count: weight
    assert formats.unit_price(4000, ledger.Unit.KG) == "Rp4.000/kg"
    assert formats.unit_price(500, "piece") == "Rp500/pcs"
    assert formats.unit_price(3000, "litre") == "Rp3.000/L"


def test_dates_in_both_languages_and_zones_by_indonesian_name() -> None:
    day = date(2026, 8, 23)
    assert formats.tanggal(day) == "23 Agu 2026"
    assert formats.tanggal(day, "en") == "23 Aug 2026"
    assert formats.bulan(day) == "Agu 2026"
    assert formats.bulan(day, "en") == "Aug 2026"
    at = datetime(2026, 11, 22, 15, 30, tzinfo=UTC)
    assert formats.tanggal_waktu(at, ZoneInfo("Asia/Jayapura")) == "23 Nov 2026 00.30 WIT"
    assert formats.tanggal_waktu(at, ZoneInfo("Asia/Makassar"), "en") == "22 Nov 2026 23.30 WITA"
    # Outside Indonesia, the zone's own abbreviation (summer time included).
    assert formats.zone_label(ZoneInfo("Europe/Paris"), datetime(2026, 7, 1, tzinfo=UTC)) == "CEST"
    assert formats.zone_label(ZoneInfo("Asia/Kolkata"), at) == "IST"


def test_text_for_printers_pdfs_and_spreadsheets() -> None:
    assert formats.ascii_text("Ngurah Rai Ç 温") == "Ngurah Rai C ?"
    assert formats.latin1("Rp 5.000 · Tōmohon → 温") == "Rp 5.000 · Tomohon ? ?"
    # a minus sign or dash keeps its meaning (the CO2e basis: "credit − composting")
    assert formats.latin1("a − b – c “d” …") == 'a - b - c "d" ...'
    assert formats.ascii_text("a − b") == "a - b"
    assert [formats.csv_text(v) for v in ("=1+1", "@x", "-2", "\tA", "ok", "")] == [
        "'=1+1",
        "'@x",
        "'-2",
        "'\tA",
        "ok",
        "",
    ]


def test_a_bilingual_pair_is_indonesian_unless_english_is_asked_for() -> None:
    pair = ("Armada perangkat", "Device fleet")
    assert formats.in_lang(pair, "id") == "Armada perangkat"
    assert formats.in_lang(pair, "en") == "Device fleet"
    page = {"title": ("Judul halaman", "Page title")}
    shared = {"title": ("Judul", "Title"), "save": ("Simpan", "Save")}
    assert formats.bilingual("title", "en", page, shared) == "Page title"  # the first table's
    assert formats.bilingual("save", "id", page, shared) == "Simpan"  # then the next
    assert formats.bilingual("missing_key", "en", page, shared) == "missing_key"
    assert formats.bilingual("save", "en") == "save"


def test_every_page_and_the_fleet_pick_their_words_through_the_one_rule() -> None:
    from api import fleet as fleet_page
    from api import pages_dlh, web
    from wastebank import fleet

    assert web.text("logout", "en") == formats.in_lang(web.TEXTS["logout"], "en")
    assert fleet.say("overload", "en") == "overload"
    assert fleet.say("overload", "id") == "kelebihan beban"
    assert fleet.say("no-such-code", "id") == "no-such-code"
    assert fleet_page._t("title", "en") == "Device fleet"  # the page's own
    assert fleet_page._t("last_seen", "id") == "Terakhir terdengar"  # the fleet's
    wte = next(iter(pages_dlh.WTE_TEXTS))
    assert pages_dlh.wte_text(wte, "en") == pages_dlh.WTE_TEXTS[wte][1]
    assert pages_dlh.wte_text("logout", "id") == web.TEXTS["logout"][0]  # the pages' words
