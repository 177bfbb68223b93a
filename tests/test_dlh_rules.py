"""The DLH page's rules without a service: kg or t (formats.mass), the diversion rate's
coverage (reports.diversion_coverage, [reports.diversion_coverage]), a city's data file with its
sources (reports.generation_for, reports.tps_in_city), the map's tile settings and the page's
Content-Security-Policy (api/settings.py, api/web.py). docs/dlh.md."""

from __future__ import annotations

from pathlib import Path

import pytest

from api.pages_dlh import share_text
from api.settings import ApiSettings, PagesSettings
from api.web import content_policy
from wastebank import formats, reports
from wastebank.config import load_settings, settings_table
from wastebank.structs import Invalid

# ---- kg or t ----------------------------------------------------------------------------------


def test_below_ten_tonnes_in_kg_from_ten_in_tonnes() -> None:
    assert formats.mass(1_234_567) == "1.234,6 kg"
    assert formats.mass(9_999_949) == "9.999,9 kg"
    assert formats.mass(10_000_000) == "10,0 t"
    assert formats.mass(88_297_974_000) == "88.298,0 t"  # the "88.297.974,00 kg"
    # a table takes its largest figure's unit: no column mixes kg and t
    unit = formats.mass_unit(max(123_456, 34_000_000))
    assert (unit, formats.mass(123_456, unit)) == ("t", "0,1 t")
    assert formats.mass_unit(9_999_999) == "kg"


def test_a_tiny_share_is_not_written_as_zero() -> None:
    assert share_text(0.004) == "< 0,01 %"
    assert share_text(0.0) == "0,00 %"
    assert share_text(22.7) == "22,70 %"


# ---- the diversion rate's coverage ------------------------------------------------------------


def test_one_sensor_equipped_tps_of_twenty_is_not_enough() -> None:
    cov = reports.diversion_coverage(
        tps_with_sensors=1, tps_reporting=1, tps_in_city=20, pickups=40
    )
    assert (cov.enough, cov.share, cov.tps_in_city) == (False, 0.05, 20)
    assert cov.reason is not None
    assert "1 dari 20 TPS" in cov.reason
    assert "1 of the city's 20 TPS" in cov.reason


def test_coverage_needs_the_share_and_the_pickups() -> None:
    enough = reports.diversion_coverage(
        tps_with_sensors=16, tps_reporting=16, tps_in_city=20, pickups=10
    )
    assert (enough.enough, enough.reason) == (True, None)
    # a sensor that sent nothing in the period covers nothing
    silent = reports.diversion_coverage(
        tps_with_sensors=16, tps_reporting=15, tps_in_city=20, pickups=10
    )
    assert not silent.enough
    few = reports.diversion_coverage(
        tps_with_sensors=20, tps_reporting=20, tps_in_city=20, pickups=5
    )
    assert not few.enough
    assert "5 pengangkutan" in (few.reason or "")
    # the city's TPS count not entered: no share can be stated
    unknown = reports.diversion_coverage(
        tps_with_sensors=2, tps_reporting=2, tps_in_city=None, pickups=50
    )
    assert (unknown.enough, unknown.share) == (False, None)
    assert "belum diisi" in (unknown.reason or "")
    # a city file counting fewer TPS than the ledger has is out of date: the ledger's count
    stale = reports.diversion_coverage(
        tps_with_sensors=12, tps_reporting=12, tps_in_city=10, pickups=50
    )
    assert (stale.tps_in_city, stale.share, stale.enough) == (12, 1.0, True)


def test_the_threshold_is_one_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WASTEBANK_REPORTS__DIVERSION_COVERAGE__MIN_TPS_SHARE", "0.05")
    monkeypatch.setenv("WASTEBANK_REPORTS__DIVERSION_COVERAGE__MIN_PICKUPS", "3")
    rule = load_settings(ApiSettings).reports.diversion_coverage
    assert (rule.min_tps_share, rule.min_pickups) == (0.05, 3)
    cov = reports.diversion_coverage(
        tps_with_sensors=1, tps_reporting=1, tps_in_city=20, pickups=5, rule=rule
    )
    assert cov.enough
    with pytest.raises(Invalid, match=r"Expected `float` > 0\.0"):
        settings_table({"min_tps_share": 0}, reports.CoverageRule)


# ---- a city's data file -----------------------------------------------------------------------


def city_file(tmp_path: Path, body: str) -> reports.ReportSettings:
    (tmp_path / "kota-uji.toml").write_text('[city]\ncode = "kota-uji"\n' + body)
    return reports.ReportSettings(cities_dir=tmp_path)


def test_a_city_enters_its_figures_with_their_sources(tmp_path: Path) -> None:
    settings = city_file(
        tmp_path,
        """
[population]
count = 120000
year = 2024
source = "BPS Kota Uji, Kota Uji Dalam Angka 2025"
url = "https://ujikota.bps.go.id/"
[generation]
kg_per_capita_day = 0.6
year = 2023
source = "SIPSN 2023, timbulan harian 72 t"
url = "https://sipsn.menlhk.go.id/sipsn/public/data/timbulan"
[tps]
count = 40
source = "DLH Kota Uji 2025"
""",
    )
    gen = reports.generation_for("kota-uji", settings)
    assert (gen.population, gen.population_year, gen.kg_per_capita_day) == (120_000, 2024, 0.6)
    assert gen.population_url == "https://ujikota.bps.go.id/"
    assert gen.rate_source == "SIPSN 2023, timbulan harian 72 t (2023)"
    assert gen.grams(1) == 72_000_000
    assert reports.tps_in_city("kota-uji", settings) == (40, "DLH Kota Uji 2025")


def test_a_figure_without_its_source_is_refused(tmp_path: Path) -> None:
    settings = city_file(
        tmp_path,
        "[population]\ncount = 120000\n[generation]\nkg_per_capita_day = 0.6\n[tps]\ncount = 9\n",
    )
    with pytest.raises(reports.NoGenerationEstimate, match="source"):
        reports.generation_for("kota-uji", settings)
    assert reports.tps_in_city("kota-uji", settings) is None  # a count without a source
    with pytest.raises(reports.NoGenerationEstimate, match="kota-lain.toml"):
        reports.generation_for("kota-lain", settings)


def test_the_demo_city_has_no_illustrative_figures() -> None:
    gen = reports.generation_for("ambon")
    assert gen.population_source is not None
    assert gen.population_source.startswith("BPS")
    assert gen.population_year is not None
    assert gen.population_year >= 2024
    for text in (gen.source, gen.population_source, gen.rate_source or ""):
        assert "ILUSTRATIF" not in text
        assert "recalled" not in text
    assert reports.tps_in_city("ambon") is None  # no published count found: not invented


# ---- the map ----------------------------------------------------------------------------------


def test_openstreetmap_by_default_and_the_policy_allows_that_host_only() -> None:
    pages = PagesSettings()
    assert pages.map_tile_url.startswith("https://tile.openstreetmap.org/")
    assert "OpenStreetMap" in pages.map_tile_attribution
    policy = content_policy(pages)
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in policy
    own = PagesSettings(map_tile_url="https://{s}.peta.example.id:8443/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://*.peta.example.id:8443;" in content_policy(own)
    assert "openstreetmap" not in content_policy(own)
    none = PagesSettings(map_tile_url="")
    assert "img-src 'self' data:;" in content_policy(none)
    for bad in ("ftp://x/{z}/{x}/{y}", "https://tiles.example/{z}.png", "tiles/{z}/{x}/{y}"):
        with pytest.raises(Invalid, match="map_tile_url"):
            settings_table({"map_tile_url": bad}, PagesSettings)
