"""Energy and emission estimates (wastebank.estimates), checked against hand arithmetic from the
published equations (IPCC 2006 Vol. 5, US EPA WARM) with the coefficients in the data files."""

from __future__ import annotations

import math
import re
import shutil
from pathlib import Path

import pytest

from wastebank import estimates as est
from wastebank.ledger import MaterialClass

REL = 1e-9


# ---- landfill methane avoided (IPCC 2006 FOD) ------------------------------------------------


def test_fod_one_tonne_paper_by_hand() -> None:
    # 1 t office paper at a managed anaerobic TPA (MCF 1.0), OX 0, tropical wet:
    # Lo = DOC 0.40 x DOCf 0.5 x MCF 1.0 x F 0.5 x 16/12 = 0.1333 t CH4 (Eq 3.2, 3.3).
    # Year 1 (decay starts 1 Jan after deposit): 0.1333 x (1 - e^-0.07) = 0.1333 x 0.067606
    #   = 0.0090142 t CH4; year 2 = year 1 x e^-0.07 = 0.0084047 t CH4 (Eq 3.4-3.6).
    # AR5 (CH4 28): year 1 = 0.25240 t CO2e; lifetime 0.1333 x 28 = 3.7333 t CO2e.
    r = est.methane_avoided({"office_paper": 1.0}, 10, "AR5", site="managed_anaerobic")
    lo = 0.40 * 0.5 * 1.0 * 0.5 * 16 / 12
    assert lo == pytest.approx(0.133333, rel=1e-5)
    assert r.lifetime_ch4_t == pytest.approx(lo, rel=REL)
    assert r.years[0].year == 1
    assert r.years[0].ch4_t == pytest.approx(0.0090142, rel=1e-4)
    assert r.years[0].ch4_t == pytest.approx(lo * (1 - math.exp(-0.07)), rel=REL)
    assert r.years[1].ch4_t == pytest.approx(0.0084047, rel=1e-4)
    assert r.years[0].co2e_t == pytest.approx(0.25240, rel=1e-4)
    assert r.lifetime_co2e_t == pytest.approx(3.7333, rel=1e-4)
    assert r.basis == "estimated"
    assert r.by_material["office_paper"].waste_type == "paper"


def test_fod_food_default_site_is_uncategorised_mcf_06() -> None:
    # 1 t food, uncategorised TPA (MCF 0.6): Lo = 0.15 x 0.5 x 0.6 x 0.5 x 16/12 = 0.03 t CH4;
    # year 1 with k = 0.40: 0.03 x (1 - e^-0.4) = 0.03 x 0.329680 = 0.0098904 t CH4.
    r = est.methane_avoided({"food": 1.0}, 5)
    assert (r.site, r.mcf, r.ox) == ("uncategorised", 0.6, 0.0)
    assert r.lifetime_ch4_t == pytest.approx(0.03, rel=REL)
    assert r.years[0].ch4_t == pytest.approx(0.0098904, rel=1e-4)


@pytest.mark.parametrize("material", ["food", "yard", "office_paper", "textile", "wood"])
def test_fod_series_sums_to_lifetime(material: str) -> None:
    # The series plus what remains after year N is the lifetime figure exactly; with N long
    # enough (wood, k 0.035: e^-0.035x400 = 8e-7 remains) the series alone is the lifetime.
    short = est.methane_avoided({material: 3.0}, 7)
    assert short.series_ch4_t + short.remaining_ch4_t == pytest.approx(short.lifetime_ch4_t)
    assert sum(y.ch4_t for y in short.years) == pytest.approx(short.series_ch4_t, rel=REL)
    long = est.methane_avoided({material: 3.0}, 400)
    assert long.series_ch4_t == pytest.approx(long.lifetime_ch4_t, rel=1e-6)


def test_fod_inert_materials_avoid_no_methane() -> None:
    # Plastics, metals, glass: DOC 0 (Table 2.4), so no landfill CH4 is avoided.
    r = est.methane_avoided({"pet": 5.0, "aluminium": 1.0, "glass": 2.0}, 10)
    assert r.lifetime_ch4_t == 0.0
    assert all(y.ch4_t == 0.0 for y in r.years)


def test_fod_several_diversion_years_superpose() -> None:
    # 1 t food diverted in year 0 and 2 t in year 1: year 2 = (1 t's year 2) + (2 t's year 1).
    one = est.methane_avoided({"food": 1.0}, 3)
    two = est.methane_avoided_series([{"food": 1.0}, {"food": 2.0}], 3)
    assert two.years[0].ch4_t == pytest.approx(one.years[0].ch4_t, rel=REL)
    assert two.years[1].ch4_t == pytest.approx(one.years[1].ch4_t + 2 * one.years[0].ch4_t)
    assert two.lifetime_ch4_t == pytest.approx(3 * one.lifetime_ch4_t, rel=REL)


def test_fod_oxidation_and_recovery() -> None:
    # Eq 3.1: (generated - R) x (1 - OX): recovery 0.25 and OX 0.1 leave 0.75 x 0.9 = 0.675.
    base = est.methane_avoided({"food": 1.0}, 5)
    r = est.methane_avoided({"food": 1.0}, 5, oxidation="managed_covered", recovery_fraction=0.25)
    assert r.lifetime_ch4_t == pytest.approx(base.lifetime_ch4_t * 0.675, rel=REL)
    assert r.years[0].ch4_t == pytest.approx(base.years[0].ch4_t * 0.675, rel=REL)


def test_fod_tropical_dry_uses_slower_k() -> None:
    # Tropical dry food k = 0.085: year 1 = 0.03 x (1 - e^-0.085) = 0.0024450 t CH4.
    r = est.methane_avoided({"food": 1.0}, 2, climate="tropical_dry")
    assert r.years[0].ch4_t == pytest.approx(0.03 * (1 - math.exp(-0.085)), rel=REL)


def test_gwp_ar5_vs_ar6() -> None:
    # Same CH4; CO2e scales with the set: AR5 28, AR6 non-fossil 27.0 (Table 7.15).
    ar5 = est.methane_avoided({"office_paper": 1.0}, 3, "AR5", site="managed_anaerobic")
    ar6 = est.methane_avoided({"office_paper": 1.0}, 3, "AR6", site="managed_anaerobic")
    assert ar5.lifetime_ch4_t == ar6.lifetime_ch4_t
    assert ar5.lifetime_co2e_t == pytest.approx(0.4 / 3 * 28, rel=REL)  # 3.7333
    assert ar6.lifetime_co2e_t == pytest.approx(0.4 / 3 * 27.0, rel=REL)  # 3.6000
    assert (ar5.gwp, ar6.gwp) == ("AR5", "AR6")
    assert est.gwp_set("AR6").n2o == 273.0
    assert est.gwp_set("AR5").n2o == 265.0
    with pytest.raises(ValueError, match="unknown GWP set 'AR7'"):
        est.gwp_set("AR7")


# ---- recycling credits (WARM) ------------------------------------------------------------------


def test_warm_short_ton_conversion() -> None:
    # 1 t = 1 / 0.90718474 = 1.1023113 short tons. PET EF -1.04 t CO2e/short ton:
    # avoided = 1.1023113 x 1.04 = 1.146404 t CO2e. Energy: 53.4 MMBtu/short ton x 1.1023113
    # = 58.8634 MMBtu x 1.05505585 GJ/MMBtu = 62.1042 GJ.
    r = est.recycling_credits({"pet": 1.0})
    pet = r.by_material["pet"]
    assert pet.short_tons == pytest.approx(1.1023113, rel=1e-7)
    assert pet.co2e_avoided_t == pytest.approx(1.146404, rel=1e-6)
    assert pet.energy_saved_mmbtu == pytest.approx(58.8634, rel=1e-5)
    assert pet.energy_saved_gj == pytest.approx(62.1042, rel=1e-5)
    assert r.label == "indicative (US EPA WARM)"
    assert r.basis == "estimated"


def test_warm_several_materials_and_not_modelled() -> None:
    # 2 t kardus (corrugated -3.14) + 0.5 t aluminium cans (-9.13):
    # 2 x 1.1023113 x 3.14 + 0.5 x 1.1023113 x 9.13 = 6.922515 + 5.032051 = 11.954566 t CO2e.
    # Steel cans: 17.47 MJ/kg x yield 0.9 = 15.723 GJ per t. LDPE: WARM does not model it.
    r = est.recycling_credits({"corrugated": 2.0, "aluminium": 0.5, "steel": 1.0, "ldpe": 4.0})
    steel = r.by_material["steel"]
    assert steel.energy_saved_gj == pytest.approx(15.723, rel=REL)
    assert r.by_material["corrugated"].energy_saved_gj is None
    expected = (2 * 3.14 + 0.5 * 9.13 + 1.83) / 0.90718474
    assert r.co2e_avoided_t == pytest.approx(expected, rel=REL)
    assert "ldpe" in r.not_estimated
    assert "ldpe" not in r.by_material
    assert {ref.dataset for ref in r.provenance} == {"warm_v16", "recycling_energy_2005"}


# ---- thermal energy ------------------------------------------------------------------------


def test_thermal_power_100_tonnes_per_day_food() -> None:
    # Food (energy.toml v2): HHV 4.65 MJ/kg as discarded at 0.70 moisture (Tchobanoglous), carried
    # to the Indonesian moisture 0.796 (JICA Mebidang): 4.65 x 0.204 / 0.30 = 3.162 MJ/kg; H 0.064.
    # LHV = 3.162 - 2.442 x (0.796 + 8.94 x 0.064 x 0.204) = 3.162 - 2.442 x 0.912721
    #   = 0.933136 MJ/kg (version 1, at US moisture 0.70, gave 2.521436)
    # 100 t/d x 1000 kg/t x 0.933136 MJ/kg / 86,400 s/d = 1.080019 MW thermal; x 0.20 = 0.216004
    p = est.thermal_power(100, {"food": 1.0})
    assert p.lhv_mj_per_kg == pytest.approx(0.933136, rel=1e-6)
    assert p.thermal_mw == pytest.approx(1.080019, rel=1e-5)
    assert p.efficiency == 0.20
    assert p.electric_mw == pytest.approx(0.216004, rel=1e-4)


def test_thermal_energy_mix_and_kwh() -> None:
    # Mix 1:1 food and PET (plastics: HHV 32.60 at 0.02, Indonesian moisture 0.445, H 0.072):
    # HHV_ar = 32.60 x 0.555 / 0.98 = 18.462245; LHV = 18.462245 - 2.442 x (0.445 + 8.94 x 0.072
    #   x 0.555) = 18.462245 - 2.442 x 0.802242 = 16.503169 MJ/kg;
    # mix = (0.933136 + 16.503169) / 2 = 8.718153 MJ/kg.
    # 2 t: 2000 kg x 8.718153 / 3.6 = 4843.418 kWh thermal; x 0.25 given = 1210.855 kWh e.
    r = est.thermal_energy(2.0, {"food": 3.0, "pet": 3.0}, efficiency=0.25)
    assert r.mix == {"food": 0.5, "pet": 0.5}
    assert r.lhv_mj_per_kg == pytest.approx(8.718153, rel=1e-6)
    assert r.thermal_kwh == pytest.approx(4843.418, rel=1e-6)
    assert r.electric_kwh == pytest.approx(1210.855, rel=1e-6)
    with pytest.raises(ValueError, match="cooking_oil"):
        est.thermal_energy(1.0, {"cooking_oil": 1.0})


# ---- biogas and composting ----------------------------------------------------------------


def test_biogas_food_capped_by_ipcc_ceiling() -> None:
    # BMP route: 1000 kg x TS 0.25 x VS/TS 0.85 x 0.467 Nm3/kg VS = 99.2375 Nm3 CH4.
    # Ceiling: 1 t x DOC 0.15 x DOCf 0.7 x F 0.5 x 16/12 = 0.070 t CH4 / 0.7168 kg/Nm3
    #   = 97.65625 Nm3 -> capped. Energy 97.65625 x 35.8 / 3.6 = 971.137 kWh; x 0.35 = 339.898.
    r = est.biogas_energy({"food": 1.0, "pet": 1.0})
    food = r.by_material["food"]
    assert food.ch4_nm3_bmp == pytest.approx(99.2375, rel=REL)
    assert food.ch4_nm3_ceiling == pytest.approx(97.65625, rel=REL)
    assert food.capped
    assert r.ch4_nm3 == pytest.approx(97.65625, rel=REL)
    assert r.ch4_t == pytest.approx(0.070, rel=REL)
    assert r.energy_kwh == pytest.approx(971.137, rel=1e-6)
    assert r.electric_kwh == pytest.approx(339.898, rel=1e-5)
    assert "pet" in r.not_estimated


def test_composting_emissions_table_4_1() -> None:
    # 1 t wet food composted: CH4 4 g/kg = 0.004 t, N2O 0.24 g/kg = 0.00024 t.
    # AR5: 0.004 x 28 + 0.00024 x 265 = 0.112 + 0.0636 = 0.1756 t CO2e.
    # AR6: 0.004 x 27.0 + 0.00024 x 273 = 0.108 + 0.06552 = 0.17352 t CO2e.
    # Digestion: 0.8 g/kg CH4, N2O negligible: 0.0008 x 28 = 0.0224 t CO2e.
    ar5 = est.composting_emissions({"food": 1.0}, "AR5")
    assert (ar5.ch4_t, ar5.n2o_t) == pytest.approx((0.004, 0.00024))
    assert ar5.co2e_t == pytest.approx(0.1756, rel=REL)
    assert est.composting_emissions({"food": 1.0}, "AR6").co2e_t == pytest.approx(0.17352)
    ad = est.composting_emissions({"food": 1.0}, process="anaerobic_digestion")
    assert ad.co2e_t == pytest.approx(0.0224, rel=REL)
    with pytest.raises(ValueError, match="'pet'.*not biologically treatable"):
        est.composting_emissions({"pet": 1.0})


# ---- per category (ledger grams) ----------------------------------------------------------


DEMO_MATERIALS = {"pet": "pet", "kardus": "corrugated", "sisa-dapur": "food"}


def test_estimate_for_categories_from_grams() -> None:
    # 2,500,000 g kardus = 2.5 t; 1,000,000 g sisa-dapur = 1 t food; 400,000 g PET = 0.4 t.
    # CH4 (uncategorised, MCF 0.6): kardus 2.5 x 0.40 x 0.5 x 0.6 x 0.5 x 4/3 = 0.2 t;
    #   food 1 x 0.15 x 0.5 x 0.6 x 0.5 x 4/3 = 0.03 t; lifetime 0.23 t CH4 = 6.44 t CO2e (AR5).
    # WARM: (2.5 x 3.14 + 0.4 x 1.04) / 0.90718474 = 8.266 / 0.90718474 = 9.111705 t CO2e.
    # Composting the food: 0.1756 t CO2e. Net: 6.44 + 9.111705 - 0.1756 = 15.376105.
    grams = {"kardus": 2_500_000, "sisa-dapur": 1_000_000, "pet": 400_000}
    r = est.estimate_for_categories(grams, DEMO_MATERIALS, years=20)
    assert r.tonnes_by_material == {"corrugated": 2.5, "food": 1.0, "pet": 0.4}
    assert r.methane.lifetime_ch4_t == pytest.approx(0.23, rel=REL)
    assert r.methane.lifetime_co2e_t == pytest.approx(6.44, rel=REL)
    assert r.recycling.co2e_avoided_t == pytest.approx(9.111705, rel=1e-6)
    assert r.treatment is not None
    assert r.treatment.co2e_t == pytest.approx(0.1756)
    assert r.co2e_avoided_t == pytest.approx(15.376105, rel=1e-6)
    assert r.basis == "estimated"
    untreated = est.estimate_for_categories(
        grams, DEMO_MATERIALS, years=20, organics_treatment=None
    )
    assert untreated.treatment is None


def test_unknown_material_names_the_category() -> None:
    with pytest.raises(est.UnknownMaterialError, match="category 'botol-kaca'.*'kaca'"):
        est.estimate_for_categories({"botol-kaca": 1000}, {"botol-kaca": "kaca"}, years=5)
    with pytest.raises(est.UnknownMaterialError, match="category 'baru'"):
        est.estimate_for_categories({"baru": 1000}, DEMO_MATERIALS, years=5)
    with pytest.raises(est.UnknownMaterialError, match="material class 'kaca'"):
        est.methane_avoided({"kaca": 1.0}, 5)


def test_grams_must_be_integers() -> None:
    with pytest.raises(TypeError, match="'pet'"):
        est.tonnes_by_material({"pet": 1.5}, DEMO_MATERIALS)  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="negative"):
        est.tonnes_by_material({"pet": -1}, DEMO_MATERIALS)


# ---- data files --------------------------------------------------------------------------------


def test_data_files_cover_every_material_class() -> None:
    d = est.load_estimate_data()
    assert d.materials == {m.value for m in MaterialClass}
    for f in (d.ipcc, d.warm, d.recycling_energy, d.energy, d.gwp, d.tariff):
        assert f.meta.version
        assert f.sources
        for source in f.sources.values():
            assert source.citation


def test_the_methods_note_cited_is_in_the_repository() -> None:
    """Data files, code and docs cite docs/methods.md by section, each section there, and no
    note outside the repository (the waste-bank facts are in its section 10)."""
    root = Path(__file__).parent.parent
    methods = (root / "docs" / "methods.md").read_text()
    sections = set(re.findall(r"^## (\d+)\. ", methods, re.MULTILINE))
    files = [
        *root.glob("docs/*.md"),
        *root.glob("wastebank/**/*.toml"),
        *root.glob("wastebank/**/*.py"),
    ]
    cited = set()
    for path in files:
        text = path.read_text()
        assert "shared/domain/waste-banks" not in text, path
        cited |= set(re.findall(r"docs/methods\.md (?:section |§)(\d+)", text))
    assert "10" in cited
    assert cited <= sections


def test_results_name_their_data_versions() -> None:
    r = est.methane_avoided({"food": 1.0}, 2, "AR6")
    refs = {(ref.dataset, ref.version) for ref in r.provenance}
    assert refs == {("ipcc2006", "1"), ("gwp", "1")}
    ipcc_ref = next(ref for ref in r.provenance if ref.dataset == "ipcc2006")
    assert "ipcc2006_v5_t3_3" in ipcc_ref.sources  # k, Table 3.3


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    shutil.copytree(est.DATA_DIR, tmp_path / "estimates")
    return tmp_path / "estimates"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_a_coefficient_without_a_source_fails(data_copy: Path) -> None:
    _edit(
        data_copy / "ipcc2006.toml",
        '\nf = { value = 0.5, unit = "fraction", source = "ipcc2006_v5_ch3", ',
        '\nf = { value = 0.5, unit = "fraction", ',
    )
    with pytest.raises(
        est.EstimateDataError, match=r"(?s)ipcc2006.toml.*coefficients.f.source.*Field required"
    ):
        est.load_estimate_data(data_copy)


def test_an_undeclared_source_fails(data_copy: Path) -> None:
    _edit(data_copy / "warm_v16.toml", 'source = "warm_v16_cpnd"', 'source = "somewhere"')
    with pytest.raises(est.EstimateDataError, match="'somewhere' is not in"):
        est.load_estimate_data(data_copy)


def test_the_moisture_cites_both_studies_where_each_is_used() -> None:
    """Central and high moisture are JICA's Medan measurements; the low ends below JICA's lowest
    are BPPT 1994's: the table names both, and every LHV and WtE figure cites both."""
    d = est.default_data()
    moisture = d.energy.tables["moisture"]
    assert moisture.source == "jica_mebidang2011"
    assert moisture.low_source == dict.fromkeys(
        ("food", "paper", "cardboard", "plastics", "wood", "rubber"), "bppt1994"
    )
    assert moisture.low["food"] == 0.636  # BPPT's 63.6 %
    assert moisture.sources == ["jica_mebidang2011", "bppt1994"]
    burned = est.thermal_energy(1.0, {"food": 1.0})
    scenario = est.wte_scenario(500)
    for refs in (burned.provenance, scenario.provenance):
        energy = next(ref for ref in refs if ref.dataset == "energy")
        assert {"jica_mebidang2011", "bppt1994"} <= set(energy.sources)


def test_a_low_end_from_an_undeclared_source_or_of_no_value_fails(data_copy: Path) -> None:
    path = data_copy / "energy.toml"
    _edit(path, 'wood = "bppt1994", rubber = "bppt1994" }', 'wood = "bppt", rubber = "bppt1994" }')
    with pytest.raises(est.EstimateDataError, match=r"tables.moisture: source 'bppt' is not in"):
        est.load_estimate_data(data_copy)
    _edit(path, 'wood = "bppt", rubber = "bppt1994" }', 'wood = "bppt1994", glass2 = "bppt1994" }')
    with pytest.raises(est.EstimateDataError, match=r"low_source has keys without a value"):
        est.load_estimate_data(data_copy)


def test_a_wrong_unit_fails(data_copy: Path) -> None:
    _edit(data_copy / "warm_v16.toml", 'unit = "t CO2e/short ton"', 'unit = "t CO2e/t"')
    with pytest.raises(est.EstimateDataError, match="expected 't CO2e/short ton'"):
        est.load_estimate_data(data_copy)
    _edit(data_copy / "warm_v16.toml", 'unit = "t CO2e/t"', 'unit = "t CO2e/short ton"')
    _edit(
        data_copy / "gwp.toml",
        'n2o = { value = 273.0, unit = "t CO2e/t"',
        'n2o = { value = 273.0, unit = "kg"',
    )
    with pytest.raises(est.EstimateDataError, match=r"sets.AR6.n2o"):
        est.load_estimate_data(data_copy)


def test_a_material_missing_from_a_file_fails(data_copy: Path) -> None:
    _edit(data_copy / "energy.toml", 'glass = "glass"\n', "")
    with pytest.raises(est.EstimateDataError, match=r"energy: .*missing \['glass'\]"):
        est.load_estimate_data(data_copy)


def test_a_fraction_out_of_range_fails(data_copy: Path) -> None:
    _edit(data_copy / "ipcc2006.toml", "managed_anaerobic = 1.0", "managed_anaerobic = 1.5")
    with pytest.raises(est.EstimateDataError, match="mcf has a fraction outside"):
        est.load_estimate_data(data_copy)


def test_another_file_version_is_used_and_named(data_copy: Path) -> None:
    # A new version is a new file: results name the file's id and version.
    _edit(data_copy / "gwp.toml", 'version = "1"', 'version = "2"')
    _edit(data_copy / "gwp.toml", "ch4 = { value = 28.0,", "ch4 = { value = 30.0,")
    d = est.load_estimate_data(data_copy)
    r = est.methane_avoided({"food": 1.0}, 2, "AR5", data=d)
    assert r.lifetime_co2e_t == pytest.approx(0.03 * 30.0, rel=REL)
    assert ("gwp", "2") in {(ref.dataset, ref.version) for ref in r.provenance}


def test_worked_example_in_docs() -> None:
    # docs/estimates.md, "Worked example": lifetime 0.043 t CH4 = 1.204 t CO2e (AR5); WARM
    # 1.4795 t CO2e and 8.710 GJ; composting 0.5 t food 0.0878 t CO2e; net 2.596 t CO2e.
    grams = {
        "kardus": 250_000,
        "kertas-hvs": 100_000,
        "pet": 120_000,
        "kaleng": 80_000,
        "sisa-dapur": 500_000,
    }
    materials = {
        "kardus": "corrugated",
        "kertas-hvs": "office_paper",
        "pet": "pet",
        "kaleng": "steel",
        "sisa-dapur": "food",
    }
    r = est.estimate_for_categories(grams, materials, years=5)
    assert r.methane.lifetime_co2e_t == pytest.approx(1.204, rel=REL)
    assert r.methane.years[0].ch4_t == pytest.approx(0.006838, abs=5e-7)
    assert r.recycling.co2e_avoided_t == pytest.approx(1.4795, abs=5e-5)
    assert r.recycling.energy_saved_gj == pytest.approx(8.710, abs=5e-4)
    assert r.treatment is not None
    assert r.treatment.co2e_t == pytest.approx(0.0878, rel=REL)
    assert r.co2e_avoided_t == pytest.approx(2.596, abs=5e-4)


# ---- coefficients tagged M or S, against the domain reference ----------------------------------

# Each coefficient whose source is tagged M (memory) or S (secondary), with the value given for it
# in docs/methods.md (checked 2026-11-30) and the section it is in. Where the
# reference gives a range, the value is the end or middle the data file's citation names.
REFERENCE: dict[tuple[str, str, str], tuple[float, str]] = {
    ("energy", "coefficients", "wte_net_electrical_efficiency"): (0.20, "5: 20-25 %, low end"),
    ("energy", "coefficients", "water_latent_heat"): (2.442, "5: LHV_ar = HHV_ar - 2.442 (...)"),
    ("energy", "coefficients", "bmp"): (0.467, "5: 0.467-0.529 Nm3 CH4/kg VS, low end"),
    ("energy", "coefficients", "ch4_lhv"): (35.8, "1.6 and 5: 35.8 MJ/Nm3"),
    ("energy", "coefficients", "ch4_density"): (0.7168, "5: 0.7168 kg/Nm3"),
    ("energy", "coefficients", "chp_electrical_efficiency"): (0.35, "5: 35-42 %, low end"),
    ("energy", "coefficients", "biogas_ceiling_docf"): (0.7, "2: DOCf 2019, food 0.7"),
    ("energy", "hhv_as_discarded", "food"): (4.65, "5: typical 4,650 kJ/kg"),
    ("energy", "hhv_as_discarded", "paper"): (16.75, "5: typical 16,750 kJ/kg"),
    ("energy", "hhv_as_discarded", "cardboard"): (16.30, "5: typical 16,300 kJ/kg"),
    ("energy", "hhv_as_discarded", "plastics"): (32.60, "5: typical 32,600 kJ/kg"),
    ("energy", "hhv_as_discarded", "textiles"): (17.45, "5: typical 17,450 kJ/kg"),
    ("energy", "hhv_as_discarded", "rubber"): (23.25, "5: typical 23,250 kJ/kg"),
    ("energy", "hhv_as_discarded", "yard"): (6.50, "5: typical 6,500 kJ/kg"),
    ("energy", "hhv_as_discarded", "wood"): (18.60, "5: typical 18,600 kJ/kg"),
    ("energy", "total_solids", "food"): (0.25, "5: TS 20-30 %, middle"),
    ("energy", "vs_per_ts", "food"): (0.85, "5: VS/TS 0.85-0.93, low end"),
    ("gwp", "AR6", "ch4"): (27.0, "GWP-100: AR6 Table 7.15 non-fossil CH4 27.0"),
    ("recycling_energy_2005", "energy_saved_per_short_ton", "aluminum_cans"): (206.9, "4.2"),
    ("recycling_energy_2005", "energy_saved_per_short_ton", "pet"): (53.4, "4.2"),
    ("recycling_energy_2005", "energy_saved_per_short_ton", "hdpe"): (51.4, "4.2"),
    ("recycling_energy_2005", "energy_saved_per_short_ton", "glass"): (2.7, "4.2"),
    ("recycling_energy_2005", "energy_saved_per_kg", "steel_cans"): (17.47, "4.2"),
    ("recycling_energy_2005", "recycling_yield", "steel_cans"): (0.9, "4.2"),
    ("warm_v16", "recycling_ghg", "aluminum_cans"): (-9.13, "4.1"),
    ("warm_v16", "recycling_ghg", "aluminum_ingot"): (-7.20, "4.1"),
    ("warm_v16", "recycling_ghg", "steel_cans"): (-1.83, "4.1"),
    ("warm_v16", "recycling_ghg", "copper_wire"): (-4.49, "4.1"),
    ("warm_v16", "recycling_ghg", "glass"): (-0.28, "4.1"),
    ("warm_v16", "recycling_ghg", "hdpe"): (-0.76, "4.1"),
    ("warm_v16", "recycling_ghg", "pet"): (-1.04, "4.1"),
    ("warm_v16", "recycling_ghg", "pp"): (-0.79, "4.1"),
    ("warm_v16", "recycling_ghg", "corrugated_containers"): (-3.14, "4.1"),
    ("warm_v16", "recycling_ghg", "mixed_paper_general"): (-3.55, "4.1"),
    ("warm_v16", "recycling_ghg", "newspaper"): (-2.71, "4.1"),
    ("warm_v16", "recycling_ghg", "office_paper"): (-2.86, "4.1"),
}
# Tagged M or S and not in the reference: they stay flagged (docs/estimates.md lists them).
ENERGY_COMPONENTS = (
    "food paper cardboard plastics textiles rubber yard wood glass metal dirt_ash".split()
)
NOT_COVERED: set[tuple[str, str, str]] = {
    ("energy", "hhv_as_discarded", "glass"),  # only the range, 110-225 kJ/kg
    ("energy", "hhv_as_discarded", "metal"),  # only the ranges, 225-1,100 / 225-1,120 kJ/kg
    ("energy", "hhv_as_discarded", "dirt_ash"),  # only the range, 2,230-11,175 kJ/kg
    *(("energy", "moisture_as_discarded", c) for c in ENERGY_COMPONENTS),  # Tchobanoglous 4-1
    *(("energy", "moisture", c) for c in ENERGY_COMPONENTS),  # JICA Mebidang 2011, BPPT 1994
    *(("energy", "hydrogen_dry", c) for c in ENERGY_COMPONENTS),  # Tchobanoglous Table 4-4
    ("energy", "coefficients", "wte_operating_hours"),  # World Bank 1999
    ("energy", "coefficients", "wte_min_lhv"),  # World Bank 1999
    # the check range: the reference's 4-7 MJ/kg is [M]; this one is BPPT's and Jakarta's
    ("energy", "coefficients", "mixed_msw_lhv"),
}
# Tchobanoglous et al. 1993 ranges as discarded, kJ/kg (reference section 5, tagged [V]).
HHV_RANGES_KJ = {
    "food": (3_350, 6_700),
    "paper": (11_200, 18_000),
    "cardboard": (13_400, 16_800),
    "plastics": (26_800, 35_750),
    "textiles": (14_500, 17_900),
    "rubber": (20_125, 26_800),
    "yard": (2_225, 17_900),
    "wood": (16_770, 19_000),
    "glass": (110, 225),
    "metal": (225, 1_100),  # tin cans; other metal 225-1,120
    "dirt_ash": (2_230, 11_175),
}


def _flagged_values() -> dict[tuple[str, str, str], float]:
    """Every coefficient of the data files whose source is tagged M or S."""
    d = est.load_estimate_data()
    out: dict[tuple[str, str, str], float] = {}
    for f in (d.ipcc, d.warm, d.recycling_energy, d.energy, d.gwp, d.tariff):
        flagged = {k for k, s in f.sources.items() if s.confidence in ("M", "S")}
        for name, c in f.coefficients.items():
            if c.source in flagged:
                out[f.meta.id, "coefficients", name] = c.value
        for name, t in f.tables.items():
            if t.source in flagged:
                out.update({(f.meta.id, name, key): v for key, v in t.values.items()})
        for set_name, cs in f.sets.items():
            for name, c in cs.items():
                if c.source in flagged:
                    out[f.meta.id, set_name, name] = c.value
    return out


def test_m_and_s_coefficients_agree_with_the_domain_reference() -> None:
    flagged = _flagged_values()
    # every M/S value is either checked against the reference or listed as not covered by it
    assert set(flagged) == set(REFERENCE) | NOT_COVERED
    assert not set(REFERENCE) & NOT_COVERED
    wrong = {k: (flagged[k], want) for k, (want, _) in REFERENCE.items() if flagged[k] != want}
    assert wrong == {}


def test_heating_values_lie_in_the_reference_ranges() -> None:
    hhv = est.load_estimate_data().energy.table("hhv_as_discarded")
    assert set(hhv) == set(HHV_RANGES_KJ)
    for component, (low, high) in HHV_RANGES_KJ.items():
        assert low <= hhv[component] * 1000 <= high, component


# ---- Indonesian defaults -----------------------------------------------------------------------


def _mix_lhv(mix: dict[str, float], bound: est.Bound = "central") -> float:
    return sum(share * est.component_lhv(c, bound=bound) for c, share in mix.items())


def test_sipsn_2023_mix_lhv_is_where_indonesian_sources_put_it() -> None:
    # energy.toml mixed_msw_lhv: 1,000-2,000 kcal/kg (BPPT 1994) = 4.19-8.37 MJ/kg; docs say 4-7.
    # Version 1 (US moisture) gave 10.35 MJ/kg and a mix moisture of 0.33.
    e = est.default_data().energy
    mix = est.mixes()["sipsn_2023"]
    lhv = _mix_lhv(mix)
    cited = e.coefficients["mixed_msw_lhv"]
    assert cited.low is not None
    assert cited.high is not None
    assert (cited.low, cited.high) == (4.19, 8.37)
    assert cited.low <= lhv <= cited.high
    assert 4.0 <= lhv <= 7.0
    assert lhv == pytest.approx(5.7947, abs=5e-4)
    moisture = sum(share * e.table("moisture")[c] for c, share in mix.items())
    assert 0.50 <= moisture <= 0.70  # BPPT 1994: Indonesian MSW 50-70 % moisture
    assert _mix_lhv(est.mixes()["sipsn_2022"]) == pytest.approx(lhv, abs=0.2)


def test_sipsn_2023_composition_lies_in_the_domain_reference_ranges() -> None:
    # docs/methods.md: SIPSN 2023 snapshots, % (rounded to one decimal there)
    ranges = {
        "food": (40.1, 41.8),
        "plastics": (18.5, 18.75),
        "yard": (11.6, 12.35),
        "paper": (10.6, 11.35),
        "metal": (3.0, 3.05),
        "textiles": (2.5, 2.55),
        "glass": (2.45, 2.5),
        "rubber": (2.15, 2.2),
        "dirt_ash": (7.25, 7.3),
    }
    mix = est.mixes()["sipsn_2023"]
    assert set(mix) == set(ranges)
    for c, (low, high) in ranges.items():
        assert low <= mix[c] * 100 <= high, c


def test_food_lhv_low_end_by_hand() -> None:
    # Low: HHV at its low end 3.35 (Tchobanoglous), moisture at its high end 0.805 (JICA), H at
    # its high end 0.064 x 1.5 = 0.096 (tag M: +/- 50 %), latent heat a constant:
    # 3.35 x 0.195 / 0.30 - 2.442 x (0.805 + 8.94 x 0.096 x 0.195) = 2.1775 - 2.442 x 0.972357
    #   = -0.196995 MJ/kg: the wettest food waste takes more heat to dry than it gives.
    assert est.component_lhv("food", bound="low") == pytest.approx(-0.196995, rel=1e-5)
    assert est.component_lhv("food", bound="high") > est.component_lhv("food") > -0.2


# ---- uncertainty --------------------------------------------------------------------------------


def _files() -> list[est.DataFile]:
    d = est.default_data()
    return [d.ipcc, d.warm, d.recycling_energy, d.energy, d.gwp, d.tariff]


def test_every_coefficient_has_ordered_ends() -> None:
    for f in _files():
        for name in f.coefficients:
            low, mid, high = (f.coefficient(name, b) for b in ("low", "central", "high"))
            assert low <= mid <= high, (f.meta.id, name)
        for name in f.tables:
            lows, mids, highs = (f.table(name, b) for b in ("low", "central", "high"))
            for key in mids:
                assert lows[key] <= mids[key] <= highs[key], (f.meta.id, name, key)


def test_a_coefficient_without_a_range_takes_its_tag_share() -> None:
    d = est.default_data()
    # WARM PET -1.04 (S: +/- 25 %): -1.30 .. -0.78
    assert d.warm.table("recycling_ghg", "low")["pet"] == pytest.approx(-1.30)
    assert d.warm.table("recycling_ghg", "high")["pet"] == pytest.approx(-0.78)
    # composting CH4 4 g/kg (V: +/- 10 %): 3.6 .. 4.4; MCF 1.0 stays a fraction: 0.9 .. 1.0
    assert d.ipcc.table("bio_ch4", "low")["composting"] == pytest.approx(3.6)
    assert d.ipcc.table("mcf", "high")["managed_anaerobic"] == 1.0
    assert d.ipcc.table("mcf", "low")["managed_anaerobic"] == pytest.approx(0.9)
    # a range in the file wins: DOC food 0.08 .. 0.20 (Table 2.4)
    assert (d.ipcc.table("doc", "low")["food"], d.ipcc.table("doc", "high")["food"]) == (0.08, 0.2)


def test_a_range_end_on_the_wrong_side_fails(data_copy: Path) -> None:
    _edit(data_copy / "energy.toml", "low = 0.18, high = 0.30", "low = 0.22, high = 0.30")
    with pytest.raises(est.EstimateDataError, match="low 0.22 is above the value 0.2"):
        est.load_estimate_data(data_copy)


def test_range_arithmetic() -> None:
    a = est.Range(central=2.0, low=1.0, high=4.0)
    b = est.Range(central=1.0, low=0.5, high=1.5)
    assert a + b == est.Range(central=3.0, low=1.5, high=5.5)
    assert a - b == est.Range(central=1.0, low=-0.5, high=3.5)  # the low takes b's high
    assert list(a.model_dump()) == ["central", "low", "high"]
    with pytest.raises(ValueError, match="low <= central <= high"):
        est.Range(central=1.0, low=2.0, high=3.0)


# ---- impact: every figure as a range, CO2e in its parts -------------------------------------


@pytest.mark.parametrize("material", ["pet", "corrugated", "food", "steel", "ldpe", "yard"])
def test_impact_central_is_the_reference_engine(material: str) -> None:
    # The central figures are the verified engine's (estimate_for_categories, thermal_energy).
    grams = 1_234_567
    i = est.impact({material: grams})
    ref = est.estimate_for_categories({"c": grams}, {"c": material}, years=1)
    assert i.net_co2e_kg is not None
    assert i.landfill_ch4_co2e_kg is not None
    assert i.net_co2e_kg.central == pytest.approx(ref.co2e_avoided_t * 1000, rel=REL)
    assert i.landfill_ch4_co2e_kg.central == pytest.approx(
        ref.methane.lifetime_co2e_t * 1000, rel=REL
    )
    wte = est.thermal_energy(grams / 1e6, {material: 1.0}).electric_kwh
    assert i.wte_potential_kwh is not None
    assert i.wte_potential_kwh.central == pytest.approx(wte, rel=REL)
    for name in est.IMPACT_FIELDS:
        r = getattr(i, name)
        assert r is None or r.low <= r.central <= r.high, name


def test_impact_of_food_by_hand() -> None:
    # 1 t food, AR5, uncategorised TPA, composted.
    # Landfill CH4 committed: central 0.15 x 0.5 x 0.6 x 0.5 x 4/3 = 0.03 t CH4 x 28 = 840 kg.
    #   Low: DOC 0.08, DOCf 0.45, MCF 0.54, F 0.45 (V +/- 10 %): 0.08 x 0.45 x 0.54 x 0.45 x 4/3
    #   = 0.011664 t x 28 = 326.592 kg. High: 0.20 x 0.55 x 0.66 x 0.55 x 4/3 = 0.05324 t = 1490.72.
    # Composting (emitted): 175.6 kg central; 158.04 low (x 0.9); 193.16 high.
    # Net low = 326.592 - 193.16 = 133.432 kg; no recycling credit (not recycled).
    i = est.impact({"food": 1_000_000})
    assert i.landfill_ch4_co2e_kg == est.Range(central=840.0, low=326.592, high=1490.72)
    assert i.composting_co2e_kg is not None
    assert i.composting_co2e_kg.high == pytest.approx(193.16)
    assert i.net_co2e_kg is not None
    assert i.net_co2e_kg.central == pytest.approx(840 - 175.6)
    assert i.net_co2e_kg.low == pytest.approx(326.592 - 193.16)
    assert i.recycling_credit_co2e_kg is None
    assert i.not_estimated["recycling_credit_co2e_kg"].startswith(
        "Sisa makanan: faktor pengomposan/AD WARM belum terverifikasi"
    )


def test_impact_of_pet_recycling_energy() -> None:
    # 1 t PET: 62.1042 GJ saved (EPA 2005, S +/- 25 %) = 17,251.17 kWh-equivalent (x 277.78);
    # credit 1146.404 kg CO2e (WARM -1.04: low -0.78 x 1.1023 = 859.80, high 1433.00).
    i = est.impact({"pet": 1_000_000})
    assert i.recycling_energy_saved_gj is not None
    assert i.recycling_energy_saved_gj.central == pytest.approx(62.1042, rel=1e-5)
    assert i.recycling_energy_saved_gj.low == pytest.approx(62.1042 * 0.75, rel=1e-5)
    assert i.recycling_energy_saved_kwh_eq is not None
    assert i.recycling_energy_saved_kwh_eq.central == pytest.approx(62.1042 * 1000 / 3.6, rel=1e-5)
    assert i.recycling_credit_co2e_kg is not None
    assert i.recycling_credit_co2e_kg.low == pytest.approx(0.78 / 0.90718474 * 1000)
    assert i.landfill_ch4_co2e_kg == est.Range.exact(0.0)  # plastics: DOC 0


def test_impacts_add_up_and_say_what_is_missing() -> None:
    both = est.impact({"pet": 400_000, "cooking_oil": 100_000})
    pet, oil = est.impact({"pet": 400_000}), est.impact({"cooking_oil": 100_000})
    assert both == est.sum_impacts([pet, oil])
    assert both.grams == 500_000
    assert both.wte_potential_kwh == pet.wte_potential_kwh  # oil has none
    assert both.not_estimated["wte_potential_kwh"] == (
        "Minyak jelantah: minyak jelantah diolah menjadi biodiesel, tidak ke PLTSa / "
        "Used cooking oil: used cooking oil goes to biodiesel, not to a WtE plant"
    )
    with pytest.raises(est.UnknownMaterialError):
        est.impact({"kaca": 1})
    with pytest.raises(TypeError):
        est.impact({"pet": 1.5})  # type: ignore[dict-item]


def test_what_was_not_estimated_names_the_material_not_its_code() -> None:
    """Every material's reasons as the report and the DLH page print them: its name in each
    language (Bahasa first), never the class code (``corrugated``, ``office_paper``)."""
    d = est.default_data()
    everything = est.impact(dict.fromkeys(sorted(d.materials), 1000))
    words = " ".join(everything.not_estimated.values())
    assert "_" not in words
    for code in d.materials:
        assert f"{code}:" not in words, code
    paper = est.impact({"corrugated": 1000, "office_paper": 1000})
    assert paper.not_estimated["recycling_energy_saved_gj"] == (
        "Kardus: belum ada faktor penghematan energi bersumber / "
        "Corrugated cardboard: no sourced energy-savings factor; "
        "Kertas HVS: belum ada faktor penghematan energi bersumber / "
        "Office paper: no sourced energy-savings factor"
    )
    assert set(est.MATERIAL_NAMES) == d.materials


def test_a_material_without_a_name_or_a_reason_not_in_both_languages_fails(
    data_copy: Path,
) -> None:
    _edit(data_copy / "ipcc2006.toml", 'other = "inert"\n', 'other = "inert"\nslag = "inert"\n')
    with pytest.raises(est.EstimateDataError, match=r"no name in MATERIAL_NAMES for \['slag'\]"):
        est.load_estimate_data(data_copy)
    _edit(data_copy / "ipcc2006.toml", 'slag = "inert"\n', "")
    _edit(data_copy / "warm_v16.toml", "/ mixed residue is not recycled", "(not recycled)")
    with pytest.raises(est.EstimateDataError, match="not_modelled.other: not 'Bahasa / English'"):
        est.load_estimate_data(data_copy)


def test_every_figure_has_a_label_and_basis_in_both_languages() -> None:
    assert set(est.FIGURES) == set(est.IMPACT_FIELDS)
    for f in est.FIGURES.values():
        assert f.label.id
        assert f.label.en
        assert f.basis.id
        assert f.basis.en
        assert f.unit
    assert (
        "sepanjang umur" in est.FIGURES["landfill_ch4_co2e_kg"].basis.id
    )  # committed, not this month
    assert "not electricity" in est.FIGURES["recycling_energy_saved_kwh_eq"].basis.en
    assert "if burned" in est.FIGURES["wte_potential_kwh"].basis.en


# ---- WtE scenario (PLTSa) ---------------------------------------------------------------------


def test_wte_scenario_sipsn_mix_central_by_hand() -> None:
    # 1000 t/d x 1000 kg x 5.794743 MJ/kg / 86,400 = 67.0688 MW thermal; x 0.20 = 13.4138 MW net;
    # x 8000 h = 107,310 MWh/yr; <= 20 MW: USD 13.35 cents/kWh -> USD 14,325,892 a year.
    s = est.wte_scenario(1000, idr_per_usd=16_000)
    lhv = _mix_lhv(est.mixes()["sipsn_2023"])
    assert s.lhv_mj_per_kg.central == pytest.approx(lhv, rel=REL)
    assert s.thermal_mw.central == pytest.approx(1000 * 1000 * lhv / 86_400, rel=REL)
    assert s.net_electric_mw.central == pytest.approx(0.2 * 1000 * 1000 * lhv / 86_400, rel=REL)
    mwh = s.net_electric_mw.central * 8000
    assert s.electricity_mwh_per_year.central == pytest.approx(mwh, rel=REL)
    assert s.tariff.usd_cents_per_kwh.central == 13.35
    assert "20 MW" in s.tariff.band.id
    assert s.revenue_usd_per_year.central == pytest.approx(mwh * 1000 * 0.1335, rel=REL)
    assert s.revenue_idr_per_year is not None
    assert s.revenue_idr_per_year.central == round(s.revenue_usd_per_year.central * 16_000)
    assert list(s.model_dump()["lhv_mj_per_kg"]) == ["central", "low", "high"]
    # 5.8 MJ/kg is below the 6 MJ/kg a grate needs without support fuel, and 35/2018 is revoked
    assert any("6 MJ/kg" in w.en for w in s.warnings)
    assert any("revoked" in w.en for w in s.warnings)


def test_wte_fossil_co2_eq_5_2_by_hand() -> None:
    # Plastics only, 100 t/d, 8000 h: 33,333.3 t/yr x dm (1 - 0.445) x CF 0.75 x FCF 1.0 x OF 1.0
    # x 44/12 = 33,333.3 x 1.52625 = 50,875 t CO2/yr. Food: FCF 0, no fossil CO2.
    s = est.wte_scenario(100, {"plastics": 1.0})
    assert s.mix_name is None
    assert s.fossil_co2_t_per_year.central == pytest.approx(50_875.0, rel=1e-9)
    # low: dm at the high moisture 0.511, CF 0.675, FCF 0.9, 7500 h
    low = 100 * 7500 / 24 * (1 - 0.511) * 0.675 * 0.9 * 44 / 12
    assert s.fossil_co2_t_per_year.low == pytest.approx(low, rel=1e-9)
    assert est.wte_scenario(100, {"food": 1.0}).fossil_co2_t_per_year == est.Range.exact(0.0)


def test_wte_tariff_above_20_mw_is_the_formula() -> None:
    # Perpres 35/2018 Pasal 11 (1) b: 14.54 - 0.076 x MW sold, above 20 MW.
    s = est.wte_scenario(3000)
    mw = s.net_electric_mw.central
    assert mw > 20
    assert s.tariff.usd_cents_per_kwh.central == pytest.approx(14.54 - 0.076 * mw, rel=REL)
    assert "20 MW" in s.tariff.band.en
    assert "14.54" in s.tariff.band.en
    p109 = est.wte_scenario(800, regulation="perpres_109_2025")
    assert p109.tariff.usd_cents_per_kwh == est.Range.exact(20.0)
    assert any("1.000 t/hari" in w.id for w in p109.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tonnes_per_day": 0}, "tonnes_per_day must be above 0"),
        ({"tonnes_per_day": math.nan}, "tonnes_per_day"),
        ({"tonnes_per_day": 20_001}, "at most 20000"),
        ({"tonnes_per_day": 10, "mix": "jakarta"}, "unknown mix 'jakarta'; known: sipsn_2022"),
        ({"tonnes_per_day": 10, "mix": {"kaca": 1.0}}, "unknown components \\['kaca'\\]"),
        ({"tonnes_per_day": 10, "mix": {"food": 0.0}}, "positive total"),
        ({"tonnes_per_day": 10, "mix": {"food": 1e308, "paper": 1e308}}, "total that is finite"),
        ({"tonnes_per_day": 10, "efficiency": 0.9}, "efficiency must be within"),
        ({"tonnes_per_day": 10, "idr_per_usd": 5}, "idr_per_usd"),
    ],
)
def test_wte_scenario_refuses_bad_input(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        est.wte_scenario(**kwargs)  # type: ignore[arg-type]


def test_a_mix_whose_shares_sum_past_a_float_is_refused_not_burned_as_nothing() -> None:
    # 1e308 + 1e308 is inf: every share became nan and the LHV 0 (a 200 with zero power)
    with pytest.raises(ValueError, match="total that is finite"):
        est.thermal_energy(1.0, {"food": 1e308, "pet": 1e308})


def test_every_not_estimated_reason_is_bahasa_first_then_english() -> None:
    # the reasons are printed as they are in the report and on the DLH page, which put Bahasa first
    d = est.default_data()
    for f in (d.warm, d.recycling_energy, d.energy):
        for material, reason in f.not_modelled.items():
            bahasa, _, english = reason.partition(" / ")
            assert bahasa.strip(), (f.meta.id, material, reason)
            assert english.strip(), (f.meta.id, material, reason)
