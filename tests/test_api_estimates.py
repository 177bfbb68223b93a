"""The estimates API (api/estimates.py): a month's diversion estimated per category and in total,
every figure low/central/high with central first, the same figures as the engine's; the PLTSa
scenario; who may ask, for which city; bad input refused with a 422 that says why. Every test runs
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.auth_helpers import ApiEnv, api_settings
from tests.conftest import LedgerFactory, deposit_event
from wastebank import estimates as est
from wastebank import ledger

pytestmark = pytest.mark.integration

WIT = timezone(timedelta(hours=9))
OCTOBER = {"pet": 2_000_000, "kardus": 1_000_000, "kaleng": 500_000}  # grams, bs-batu-merah
MATERIAL = {"pet": "pet", "kardus": "corrugated", "kaleng": "steel"}


@pytest.fixture(scope="module")
def api(ledger_factory: LedgerFactory) -> Iterator[ApiEnv]:
    url = ledger_factory.new()
    with ApiEnv(url, api_settings(ledger_url=url)) as env:
        with Session(env.engine) as s:
            _october_2026(s)
        yield env
    ledger_factory.drop(url)


def _october_2026(s: Session) -> None:
    """October 2026 (WIT) at bs-batu-merah, plus what the month must leave out: a deposit at
    23:30 WIT on 30 September (14:30 UTC: the month is the city's local one) and a voided one."""
    seq = iter(range(1, 1000))
    at = datetime(2026, 10, 10, 9, 0, tzinfo=WIT)
    for category, grams in OCTOBER.items():  # 500 kg a deposit: the heaviest a scale may give
        for _ in range(grams // 500_000):
            step = timedelta(seconds=next(seq))
            ev = deposit_event(next(seq), net_g=500_000, category=category, at=at + step)
            ledger.apply_deposits(s, [ev])
    before = deposit_event(next(seq), net_g=7_000, at=datetime(2026, 9, 30, 23, 30, tzinfo=WIT))
    voided = deposit_event(next(seq), net_g=9_000, at=at + timedelta(minutes=5))
    ledger.apply_deposits(s, [before, voided])
    s.commit()
    ledger.void_deposit(s, voided.event_id, author="petugas-bm-01", reason="dobel / duplicate")
    s.commit()


def _ranges(node: Any, path: str = "") -> Iterator[tuple[str, dict[str, float]]]:
    """Every {"central", "low", "high"} object in a JSON document, with where it is."""
    if isinstance(node, dict):
        if {"central", "low", "high"} <= set(node):
            yield path, node
            return
        for k, v in node.items():
            yield from _ranges(v, f"{path}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _ranges(v, f"{path}[{i}]")


def _central_first(text: str) -> list[tuple[str, dict[str, float]]]:
    found = list(_ranges(json.loads(text)))
    assert found, "no ranges in the answer"
    for where, r in found:
        assert list(r) == ["central", "low", "high"], where
        assert r["low"] <= r["central"] <= r["high"], where
    return found


def test_month_estimates_per_category_and_total(api: ApiEnv) -> None:
    resp = api.client.get(
        "/api/dlh/estimates", params={"month": "2026-10"}, headers=api.bearer("dlh")
    )
    assert resp.status_code == 200, resp.text
    ranges = _central_first(resp.text)
    body = resp.json()
    assert (body["city_code"], body["month"], body["basis"]) == ("ambon", "2026-10", "estimated")
    # the voided deposit and 30 September's are not October's
    got = {c["code"]: c["impact"]["grams"] for c in body["categories"]}
    assert got == OCTOBER
    assert [c["code"] for c in body["categories"]] == ["pet", "kardus", "kaleng"]  # largest first
    for c in body["categories"]:
        want = est.impact({MATERIAL[c["code"]]: OCTOBER[c["code"]]})
        assert c["impact"] == json.loads(want.model_dump_json()), c["code"]
    total = est.sum_impacts(est.impact({MATERIAL[k]: g}) for k, g in OCTOBER.items())
    assert body["total"] == json.loads(total.model_dump_json())
    # every part of the CO2e and the recycling energy saved (PET and steel cans have a factor)
    t = body["total"]
    for field in est.IMPACT_FIELDS:
        assert t[field] is not None, field
    assert t["recycling_energy_saved_gj"]["central"] > 0
    net = t["net_co2e_kg"]["central"]
    parts = t["landfill_ch4_co2e_kg"]["central"] + t["recycling_credit_co2e_kg"]["central"]
    assert net == pytest.approx(parts - t["composting_co2e_kg"]["central"])
    # each figure says what it is, in both languages
    assert set(body["figures"]) == set(est.IMPACT_FIELDS)
    assert "committed" in body["figures"]["landfill_ch4_co2e_kg"]["basis"]["en"]
    assert body["figures"]["wte_potential_kwh"]["label"]["id"] == "Potensi listrik PLTSa"
    assert body["assumptions"]["id"]
    assert {d["dataset"] for d in body["data"]} >= {"ipcc2006", "warm_v16", "energy"}
    # seven figures for three categories and the total, but cardboard has no energy-savings factor
    assert len(ranges) == 7 * 4 - 2
    kardus = body["categories"][1]["impact"]
    assert kardus["recycling_energy_saved_gj"] is None
    why = kardus["not_estimated"]["recycling_energy_saved_gj"]
    assert why.startswith("Kardus: belum ada faktor")
    assert "/ Corrugated cardboard: " in why
    assert "corrugated" not in why  # the name, not the material class code


def test_a_month_without_deposits_is_zero(api: ApiEnv) -> None:
    resp = api.client.get(
        "/api/dlh/estimates", params={"month": "2026-08"}, headers=api.bearer("admin")
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["categories"] == []
    assert body["total"]["net_co2e_kg"] == {"central": 0.0, "low": 0.0, "high": 0.0}


@pytest.mark.parametrize(
    ("params", "status", "says"),
    [
        ({"month": "2026-13"}, 422, "bulan 13 bukan 01..12 / the month 13 is not 01..12"),
        ({"month": "oktober"}, 422, "bukan bulan / not a month: 'oktober'"),
        ({"month": "1999-12"}, 422, "2000-01"),
        ({"month": "0000-10"}, 422, "tahun 0000 di luar 2000..2100"),
        ({"month": "10000-10"}, 422, "the year 10000 is out of range 2000..2100"),
        ({"month": "-2026-10"}, 422, "the year -2026 is out of range"),
        ({}, 422, "month"),
    ],
)
def test_month_estimates_refuse_a_bad_month(
    api: ApiEnv, params: dict[str, str], status: int, says: str
) -> None:
    resp = api.client.get("/api/dlh/estimates", params=params, headers=api.bearer("dlh"))
    assert resp.status_code == status, resp.text
    assert says in resp.text


@pytest.mark.parametrize(
    ("who", "city", "status"),
    [
        ("dlh", "ambon", 200),
        ("dlh", "jakarta", 403),  # DLH staff see their own city only
        ("admin", "ambon", 200),
        ("admin", "jakarta", 404),
        ("attendant_1", None, 403),
        ("citizen_a", None, 403),
        (None, None, 401),
    ],
)
def test_who_may_ask_for_which_city(
    api: ApiEnv, who: str | None, city: str | None, status: int
) -> None:
    headers = api.bearer(who) if who else {}
    params = {"month": "2026-10", **({"city": city} if city else {})}
    resp = api.client.get("/api/dlh/estimates", params=params, headers=headers)
    assert resp.status_code == status, resp.text
    scenario = api.client.get(
        "/api/dlh/wte-scenario",
        params={"tonnes_per_day": "100", **({"city": city} if city else {})},
        headers=headers,
    )
    assert scenario.status_code == status, scenario.text


def test_wte_scenario(api: ApiEnv) -> None:
    resp = api.client.get(
        "/api/dlh/wte-scenario",
        params={"tonnes_per_day": "1000", "idr_per_usd": "16000"},
        headers=api.bearer("dlh"),
    )
    assert resp.status_code == 200, resp.text
    _central_first(resp.text)
    body = resp.json()
    want = est.wte_scenario(1000, idr_per_usd=16_000)
    assert body == json.loads(want.model_dump_json())
    assert body["mix_name"] == "sipsn_2023"
    assert 4.19 <= body["lhv_mj_per_kg"]["central"] <= 8.37
    assert body["tariff"]["usd_cents_per_kwh"]["central"] == 13.35
    assert body["revenue_idr_per_year"]["central"] == round(
        body["revenue_usd_per_year"]["central"] * 16_000
    )
    assert body["fossil_co2_t_per_year"]["central"] > 0
    other = api.client.get(
        "/api/dlh/wte-scenario",
        params={
            "tonnes_per_day": "1200",
            "composition": "food:50,plastics:20,paper:30",
            "regulation": "perpres_109_2025",
            "efficiency": "0.22",
        },
        headers=api.bearer("admin"),
    )
    assert other.status_code == 200, other.text
    o = other.json()
    assert o["mix_name"] is None
    assert o["mix"] == pytest.approx({"food": 0.5, "plastics": 0.2, "paper": 0.3})
    assert o["tariff"]["usd_cents_per_kwh"] == {"central": 20.0, "low": 20.0, "high": 20.0}
    assert o["efficiency"] == {"central": 0.22, "low": 0.22, "high": 0.22}
    assert o["revenue_idr_per_year"] is None


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({}, "tonnes_per_day"),
        ({"tonnes_per_day": "0"}, "greater than 0"),
        ({"tonnes_per_day": "-5"}, "greater than 0"),
        ({"tonnes_per_day": "lots"}, "valid number"),
        ({"tonnes_per_day": "20001"}, "less than or equal to 20000"),
        ({"tonnes_per_day": "nan"}, "tonnes_per_day"),
        ({"tonnes_per_day": "100", "mix": "jakarta"}, "unknown mix 'jakarta'"),
        ({"tonnes_per_day": "100", "composition": "food"}, "not component:share"),
        ({"tonnes_per_day": "100", "composition": "food:x"}, "not component:share"),
        ({"tonnes_per_day": "100", "composition": "kaca:1"}, "unknown components"),
        ({"tonnes_per_day": "100", "composition": "food:0"}, "positive total"),
        ({"tonnes_per_day": "100", "composition": "food:1e308,paper:1e308"}, "is finite"),
        ({"tonnes_per_day": "100", "composition": "food:1,food:2"}, "given twice"),
        (
            {"tonnes_per_day": "100", "mix": "sipsn_2023", "composition": "food:1"},
            "mix or composition",
        ),
        ({"tonnes_per_day": "100", "efficiency": "0.9"}, "less than or equal to 0.45"),
        ({"tonnes_per_day": "100", "regulation": "perpres_1_2000"}, "perpres_35_2018"),
        ({"tonnes_per_day": "100", "idr_per_usd": "5"}, "greater than or equal to 1000"),
    ],
)
def test_wte_scenario_refuses_bad_input(api: ApiEnv, params: dict[str, str], says: str) -> None:
    resp = api.client.get("/api/dlh/wte-scenario", params=params, headers=api.bearer("dlh"))
    assert resp.status_code == 422, resp.text
    assert says in resp.text


@pytest.mark.parametrize(
    ("month", "says"),
    [
        ("0000-10", "tahun 0000 di luar 2000..2100 (bulan 2000-01..2100-12) / the year 0000"),
        ("10000-10", "the year 10000 is out of range 2000..2100"),
        ("-1-10", "the year -1 is out of range"),
        ("2026-00", "the month 00 is not 01..12"),
    ],
)
def test_the_monthly_report_says_what_is_wrong_with_a_month(
    api: ApiEnv, month: str, says: str
) -> None:
    resp = api.client.get(
        "/api/dlh/report/monthly",
        params={"month": month, "format": "csv"},
        headers=api.bearer("dlh"),
    )
    assert resp.status_code == 422, resp.text
    assert says in resp.json()["detail"]
