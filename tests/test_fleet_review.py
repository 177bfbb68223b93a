"""The fleet after the independent review of issue 16 (docs/fleet.md): a gateway speaks only for
the sensors it serves, the registry found from either directory an operator may name, a clock
that synced this boot, a sensor seen through its gateway's report (and unknown behind an
offline gateway), the page's bad filter in words, and the minor ones (durations, a sensor's
``since``, a scale listed twice)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta
from html import unescape
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.settings import ApiSettings, PagesSettings
from ingest.consumer import Ingester
from tests.auth_helpers import ApiEnv, api_settings
from tests.test_fleet import NOW, SETTINGS, SYNCED, _maxbotix, health, status, stored
from tests.test_fleet import ingester as ingester  # the fixture: the ingester's handle()
from tests.test_fleet_http import _report
from tests.test_fleet_http import _sensor as served_sensor  # at tps-batu-merah
from wastebank import demo, devices, fleet, ledger, services
from wastebank.config import InfluxSettings, load_settings
from wastebank.fleet.view import Inputs, Site, Stored
from wastebank.messages import GatewayHealth, GatewayStatus, Topics
from wastebank.structs import Invalid, decode_json, encode_json

AMBON, TERNATE = "Asia/Jayapura", "Asia/Jayapura"
BANKS = {
    "bs-a": Site("bs-a", "Bank A", AMBON, city="ambon"),
    "bs-b": Site("bs-b", "Bank B", AMBON, city="ambon"),
    "bs-t": Site("bs-t", "Bank Ternate", TERNATE, city="ternate"),
}
TPS = {"tps-1": Site("tps-1", "TPS Satu", AMBON, offline_after_min=60, city="ambon")}
HEARD = NOW - timedelta(seconds=10)


def _sensor(sensor_id: str, **values: Any) -> dict[str, Any]:
    return {**_maxbotix(sensor_id, 0, None), **values}


def _gateway(
    gateway: str,
    bank: str,
    sensors: list[dict[str, Any]],
    heard: datetime = HEARD,
    **values: Any,
) -> Stored:
    h = health(gateway, bank, at=heard, clock=SYNCED, sensors=sensors, **values)
    return stored(gateway, bank, h, heard)


def _by_id(found: fleet.Fleet) -> dict[str, fleet.FleetDevice]:
    return {d.device_id: d for d in found.devices}


# ---- 1. a gateway speaks only for the sensors it serves ----------------------------------------


def test_with_the_registry_a_gateway_speaks_only_for_the_sensors_it_serves() -> None:
    """The reviewer's case: gw-b, publishing on its own health topic, lists a healthy sensor of
    another gateway as disconnected and invents one: neither counts; gw-b shows the problem."""
    honest = _gateway("gw-a", "bs-a", [_sensor("s-1")])
    lying = _gateway(
        "gw-b",
        "bs-b",
        [
            _sensor("s-1", connected=False, no_target=99, no_target_since=NOW - timedelta(days=6)),
            _sensor("s-9", connected=False),
        ],
        heard=NOW - timedelta(seconds=1),  # heard after gw-a's: it would have won
    )
    serves = {("bs-a", "gw-a"): frozenset({("tps-1", "s-1")}), ("bs-b", "gw-b"): frozenset()}
    inputs = Inputs([honest, lying], BANKS, TPS, [], {}, serves=serves)
    found = fleet.build(inputs, NOW, SETTINGS)
    by_id = _by_id(found)
    assert found.serving_checked
    assert "s-9" not in by_id  # invented: no device
    s1 = by_id["s-1"]
    assert (s1.condition, s1.via, s1.problems) == (fleet.Condition.OK, "gw-a", [])
    assert s1.no_target == 0  # gw-a's word, not gw-b's 99
    gw_b = by_id["gw-b"]
    assert gw_b.condition is fleet.Condition.FAULT
    assert [(p.code, p.subject) for p in gw_b.problems] == [
        ("unserved_sensor", "tps-1/s-1"),
        ("unserved_sensor", "tps-1/s-9"),
    ]
    assert fleet.describe(gw_b, NOW, "id").problems[0] == (
        "melaporkan sensor yang tidak dilayaninya: tps-1/s-1"
    )
    # a gateway the registry does not have serves nothing either
    unknown = fleet.build(replace(inputs, serves={}), NOW, SETTINGS)
    assert {d.device_id for d in unknown.devices} == {"gw-a", "gw-b"}


def test_without_the_registry_a_gateway_speaks_for_its_own_citys_tps_only() -> None:
    """Serving unchecked (said on the fleet): a gateway of a bank in the ledger, in the TPS's
    city. A gateway of a bank the ledger does not know (hidden from DLH) names nothing to DLH
    staff; an admin sees it, with what it listed."""
    reports = [
        _gateway("gw-a", "bs-a", [_sensor("s-1")]),
        _gateway("gw-t", "bs-t", [_sensor("s-2", connected=False)]),  # another city's bank
        _gateway("gw-y1", "bs-unknown", [_sensor("us-77")]),  # a bank the ledger does not know
    ]
    dlh = Inputs(reports, {"bs-a": BANKS["bs-a"], "bs-b": BANKS["bs-b"]}, TPS, [], {})
    dlh.other_banks = {"bs-t": BANKS["bs-t"]}
    found = fleet.build(dlh, NOW, SETTINGS)
    assert not found.serving_checked
    assert sorted(_by_id(found)) == ["gw-a", "s-1"]
    assert "gw-y1" not in found.model_dump_json()
    assert "gw-t" not in found.model_dump_json()
    admin = fleet.build(replace(dlh, banks=BANKS, all_sites=True), NOW, SETTINGS)
    by_id = _by_id(admin)
    assert sorted(by_id) == ["gw-a", "gw-t", "gw-y1", "s-1"]
    assert [p.subject for p in by_id["gw-y1"].problems] == ["tps-1/us-77"]
    assert [p.subject for p in by_id["gw-t"].problems] == ["tps-1/s-2"]
    # with the registry, a gateway of a bank the ledger does not know still names no sensor
    serves = {("bs-unknown", "gw-y1"): frozenset({("tps-1", "us-77")})}
    checked = fleet.build(replace(dlh, serves=serves), NOW, SETTINGS)
    assert "gw-y1" not in checked.model_dump_json()


def test_of_two_gateways_serving_one_sensor_the_report_heard_last_wins() -> None:
    serves = {
        ("bs-a", "gw-a"): frozenset({("tps-1", "s-1")}),
        ("bs-b", "gw-b"): frozenset({("tps-1", "s-1")}),
    }
    earlier = NOW - timedelta(seconds=20)
    said_down = _gateway("gw-a", "bs-a", [_sensor("s-1", connected=False)], heard=NOW)
    said_up = _gateway("gw-b", "bs-b", [_sensor("s-1")], heard=earlier)
    readings = {("tps-1", "s-1"): earlier}
    for reports in ([said_down, said_up], [said_up, said_down]):  # not the first listed
        inputs = Inputs(reports, BANKS, TPS, [], readings, serves=serves)
        s1 = _by_id(fleet.build(inputs, NOW, SETTINGS))
        assert (s1["s-1"].via, s1["s-1"].condition) == ("gw-a", fleet.Condition.FAULT)
    said_up = replace(said_up, health_received_at=NOW + timedelta(seconds=1))
    inputs = Inputs([said_down, said_up], BANKS, TPS, [], readings, serves=serves)
    s1 = _by_id(fleet.build(inputs, NOW, SETTINGS))
    assert (s1["s-1"].via, s1["s-1"].condition) == ("gw-b", fleet.Condition.OK)


# ---- 2. the registry from either directory ------------------------------------------------------


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A broker run dir with a registry: gw-a at bs-batu-merah serving tps-batu-merah/us-01."""
    run = tmp_path / "run"
    registry = devices.Registry(devices.broker_auth_files(run))
    serves = (("tps-batu-merah", "us-01"),)
    registry.add(devices.Device("gateway", "bs-batu-merah", "gw-a", serves=serves))
    registry.add(devices.Device("gateway", "bs-batu-merah", "gw-gone"))
    registry.remove("gw-gone")
    return run


def test_the_registry_is_found_from_the_run_dir_or_the_brokers_files(
    run_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    assert devices.registry_run_dir(run_dir) == run_dir.resolve()
    assert devices.registry_run_dir(run_dir / "mosquitto") == run_dir.resolve()
    for given in (run_dir, run_dir / "mosquitto"):
        facts = fleet.registry_facts(given)
        assert facts.problem is None
        assert set(facts.removed) == {("gateway", "bs-batu-merah", "gw-gone")}
        assert facts.serves == {("bs-batu-merah", "gw-a"): frozenset({("tps-batu-merah", "us-01")})}
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    assert devices.registry_run_dir(empty) is None
    with caplog.at_level(logging.WARNING, logger="wastebank.fleet"):
        facts = fleet.registry_facts(empty)
        again = fleet.registry_facts(empty)  # the next page load: said on the page, not logged
    said = f"registri perangkat tidak ditemukan / device registry not found: {empty}"
    assert facts.problem == again.problem == said
    assert facts.serves is None
    assert caplog.text.count(said) == 1
    # a registry in both: which one is meant cannot be told
    nested = devices.Registry(devices.broker_auth_files(run_dir / "mosquitto"))
    nested.add(devices.Device("gateway", "bs-rijali", "gw-x"))
    with pytest.raises(devices.DeviceSetupError, match="two device registries"):
        devices.registry_run_dir(run_dir / "mosquitto")
    assert "unreadable" in (fleet.registry_facts(run_dir / "mosquitto").problem or "")


def _api(ledger_url: str, broker_run_dir: Path) -> ApiEnv:
    settings = api_settings(
        ledger_url=ledger_url,
        pages=PagesSettings(broker_run_dir=broker_run_dir),
        influx=InfluxSettings(url="http://127.0.0.1:9"),
    )
    return ApiEnv(ledger_url, settings)


def _fleet(env: ApiEnv, who: str = "admin") -> dict[str, Any]:
    resp = env.client.get("/api/fleet", headers=env.bearer(who))
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_the_brokers_files_directory_works_as_the_docs_name_it(
    ledger_url: str, run_dir: Path
) -> None:
    """The reviewer set .run/mosquitto, the directory holding devices.toml: the removed gateway
    stayed. Now it is left out, the served sensor checked, and the admin's device page lists
    the registry's devices from the same setting."""
    with _api(ledger_url, run_dir / "mosquitto") as env:
        for gateway in ("gw-a", "gw-gone"):
            _report(env, gateway, [served_sensor("us-01", 0, None)])
        found = _fleet(env)
        by_id = {d["device_id"]: d for d in found["devices"]}
        assert sorted(by_id) == ["gw-a", "us-01"]
        assert (found["serving_checked"], found["registry_problem"]) == (True, None)
        assert by_id["us-01"]["via"] == "gw-a"
        page = env.client.get("/admin/perangkat", headers=env.cookie("admin"))
        assert page.status_code == 200
        assert "gw-a" in page.text
        assert 'id="devices-not-local"' not in page.text


def test_a_directory_without_a_registry_is_said_on_the_fleet_to_admins(
    ledger_url: str, tmp_path: Path
) -> None:
    nowhere = tmp_path / "no-broker-here"
    with _api(ledger_url, nowhere) as env:
        _report(env, "gw-a", [served_sensor("us-01", 0, None)])
        said = f"registri perangkat tidak ditemukan / device registry not found: {nowhere}"
        admin = _fleet(env)
        assert (admin["registry_problem"], admin["serving_checked"]) == (said, False)
        dlh = _fleet(env, "dlh")
        assert dlh["registry_problem"] is None  # the server's paths are the admins'
        assert dlh["serving_checked"] is False
        # unchecked: the gateway of a bank of the TPS's city speaks for it, and the page says so
        assert "us-01" in {d["device_id"] for d in dlh["devices"]}
        html = unescape(env.client.get("/armada", headers=env.cookie("admin")).text)
        assert said in html
        assert "Registri perangkat tidak dibaca: sensor yang dilaporkan gateway" in html


def test_the_demo_gives_its_api_the_brokers_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = load_settings(services.ServicesSettings, None, run_dir=tmp_path / "run")
    demo._device_login(broker, "bs-batu-merah", "gw-01")
    env = demo.api_env(demo.demo_env("sqlite://"), broker)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    api = load_settings(ApiSettings, None)
    assert api.pages.broker_run_dir is not None
    assert devices.registry_run_dir(api.pages.broker_run_dir) == broker.run_dir.resolve()
    assert fleet.registry_facts(api.pages.broker_run_dir).serves == {
        ("bs-batu-merah", "gw-01"): frozenset()
    }


# ---- 3. a clock that synced this boot -----------------------------------------------------------


def test_a_clock_synced_this_boot_whose_source_is_lost_is_a_detail_not_the_clock_condition() -> (
    None
):
    synced_at = NOW - timedelta(hours=2)
    lost = {"synchronized": False, "source": "timesyncd", "synced_at": synced_at}
    never = {"synchronized": False, "source": "chrony"}
    reports = [
        stored("gw-a", "bs-a", health("gw-a", "bs-a", clock=lost), HEARD),
        stored("gw-b", "bs-b", health("gw-b", "bs-b", clock=never), HEARD),
    ]
    by_id = _by_id(fleet.build(Inputs(reports, BANKS, TPS), NOW, SETTINGS))
    assert by_id["gw-a"].condition is fleet.Condition.OK
    assert by_id["gw-b"].condition is fleet.Condition.CLOCK
    assert fleet.describe(by_id["gw-a"], NOW, "id").clock == (
        "sinkron sejak 6 Des 2026 19.00 WIT, sumber waktu hilang (timesyncd)"
    )
    assert fleet.describe(by_id["gw-a"], NOW, "en").clock == (
        "synced at 6 Dec 2026 19.00 WIT, time source lost (timesyncd)"
    )
    assert fleet.describe(by_id["gw-b"], NOW, "en").clock == "not synchronized (chrony)"


# ---- 4. a sensor seen through its gateway's report ----------------------------------------------


def test_a_connected_sensor_is_seen_at_its_gateways_report_and_unknown_behind_an_offline_one() -> (
    None
):
    """mb-01 behind a running gateway, no reading yet: not "never heard"; its gateway stopped
    (or silent): not ok on that gateway's old report."""
    serves = {("bs-a", "gw-a"): frozenset({("tps-1", "mb-01")})}
    gw = _gateway("gw-a", "bs-a", [_sensor("mb-01")])
    inputs = Inputs([gw], BANKS, TPS, [], {}, serves=serves)
    mb = _by_id(fleet.build(inputs, NOW, SETTINGS))["mb-01"]
    assert (mb.condition, mb.offline_reason, mb.last_seen) == (fleet.Condition.OK, None, HEARD)
    # its port closed: the gateway's report says nothing of frames: not seen by it
    closed = _gateway("gw-a", "bs-a", [_sensor("mb-01", connected=False)])
    mb = _by_id(fleet.build(replace(inputs, reports=[closed]), NOW, SETTINGS))["mb-01"]
    assert mb.offline_reason == "never"
    # the gateway stopped (its clean "offline" after the report)
    stopped = replace(
        gw,
        status=decode_json(status("gw-a", "offline", NOW), GatewayStatus),
        status_received_at=NOW - timedelta(seconds=5),
    )
    silent = replace(gw, health_received_at=NOW - timedelta(minutes=5))
    for gone in (stopped, silent):
        by_id = _by_id(fleet.build(replace(inputs, reports=[gone]), NOW, SETTINGS))
        assert by_id["gw-a"].condition is fleet.Condition.OFFLINE
        mb = by_id["mb-01"]
        assert (mb.condition, mb.unknown_reason) == (fleet.Condition.UNKNOWN, "via_offline")
        assert mb.rank == fleet.RANKING.index(fleet.Condition.UNKNOWN)
        assert fleet.describe(mb, NOW, "id").why_unknown == "lewat gateway yang luring (gw-a)"
        assert fleet.condition_text(mb.condition, "en") == "❔ UNKNOWN"
    # a sensor also heard on its own (an MQTT sensor's reading a second ago): its readings say
    # how it is, not the offline gateway's old report (the second review)
    own = {("tps-1", "mb-01"): NOW - timedelta(seconds=1)}
    mb = _by_id(fleet.build(replace(inputs, reports=[stopped], last_readings=own), NOW, SETTINGS))[
        "mb-01"
    ]
    assert (mb.condition, mb.unknown_reason) == (fleet.Condition.OK, None)


# ---- 6. minors ----------------------------------------------------------------------------------


def test_durations_group_their_figures_and_a_clock_far_off_is_over_a_year() -> None:
    assert fleet.duration(10**15, "id") == "lebih dari 1 tahun"  # the reviewer's 11574074074 hari
    assert fleet.duration(10**15, "en") == "over a year"
    assert fleet.duration(fleet.words.DURATION_MAX_S, "id") == "365 hari"
    assert fleet.duration(fleet.words.DURATION_MAX_S + 1, "id") == "lebih dari 1 tahun"


def test_a_sensors_disconnected_problem_says_since_its_gateways_report() -> None:
    at = NOW - timedelta(seconds=40)
    h = health("gw-a", "bs-a", at=at, sensors=[_sensor("s-1", connected=False)])
    gw = stored("gw-a", "bs-a", h, HEARD)
    serves = {("bs-a", "gw-a"): frozenset({("tps-1", "s-1")})}
    s1 = _by_id(fleet.build(Inputs([gw], BANKS, TPS, [], {}, serves=serves), NOW, SETTINGS))
    assert [(p.code, p.since) for p in s1["s-1"].problems] == [("disconnected", at)]


async def test_a_health_report_listing_one_scale_twice_is_a_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    kiosk = {
        "scale_id": "kiosk-01",
        "protocol": "gs_nt",
        "connected": True,
        "frames_parsed": 1,
        "frames_rejected": 0,
        "reconnects": 0,
        "state": "ok",
    }
    payload: dict[str, Any] = json.loads(encode_json(health("gw-a", "bs-rijali")))
    twice = encode_json({**payload, "scales": [kiosk, {**kiosk, "state": "overload"}]})
    with pytest.raises(Invalid, match="listed twice: kiosk-01"):
        decode_json(twice, GatewayHealth)
    topic = Topics("").gateway_health("bs-rijali", "gw-a")
    assert await ingester.handle(topic, twice) == []
    assert ingester.stats.dead_lettered == 1
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert s.scalars(select(fleet.DeviceReport)).all() == []
            (letter,) = s.scalars(select(ledger.DeadLetter)).all()
            assert "each scale_id once; listed twice: kiosk-01" in letter.error
    finally:
        engine.dispose()


# ---- 5. the page's bad filter -------------------------------------------------------------------


@pytest.fixture
def api(ledger_url: str, tmp_path: Path) -> Iterator[ApiEnv]:
    with _api(ledger_url, tmp_path / "run") as env:
        yield env


def test_an_unknown_filter_is_the_page_in_words_not_json(api: ApiEnv) -> None:
    resp = api.client.get("/armada", params={"tampil": "xyz"}, headers=api.cookie("dlh"))
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("text/html")
    html = unescape(resp.text)
    assert "Pilihan tampil tidak dikenal: 'xyz' (semua atau masalah)" in html
    english = api.client.get(
        "/armada", params={"tampil": "xyz", "lang": "en"}, headers=api.cookie("dlh")
    )
    assert "Unknown show option: 'xyz' (semua or masalah)" in unescape(english.text)
    fine = api.client.get("/armada", params={"tampil": "masalah"}, headers=api.cookie("dlh"))
    assert fine.status_code == 200
