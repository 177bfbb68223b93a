"""The fleet's rules (wastebank/fleet/): the offline rule and the ranking on an injected clock,
which stored report is the latest, and the ingester keeping them (no services: a ledger of the
test's own, the ingester's handle() without a broker or InfluxDB)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from ingest.consumer import Ingester
from ingest.settings import IngestSettings
from wastebank import fleet, ledger
from wastebank.cli import app as cli
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.fleet.view import Inputs, SensorAlert, Site, Stored
from wastebank.influx import Influx
from wastebank.messages import GatewayHealth, GatewayStatus, Topics
from wastebank.structs import convert, encode_json

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SETTINGS = fleet.FleetSettings()  # gateways: offline after 90 s
BANKS = {
    code: Site(code, f"Bank {code}", "Asia/Jayapura")
    for code in ("bs-a", "bs-b", "bs-c", "bs-d", "bs-e", "bs-f")
}
TPS = {"tps-1": Site("tps-1", "TPS Satu", "Asia/Jayapura", offline_after_min=60)}


def health(gateway: str, bank: str, **values: Any) -> GatewayHealth:
    base: dict[str, Any] = {
        "gateway_id": gateway,
        "bank_code": bank,
        "boot": "b0000",
        "at": NOW - timedelta(seconds=10),
        "uptime_s": 100,
        "outbox_depth": 0,
        "outbox_dropped": 0,
        "mqtt_reconnects": 0,
        "deposits_stored": 0,
    }
    return convert({**base, **values}, GatewayHealth)


def scale(state: str | None = "ok", **values: Any) -> dict[str, Any]:
    return {
        "scale_id": "scale-01",
        "protocol": "gs_nt",
        "connected": True,
        "frames_parsed": 1,
        "frames_rejected": 0,
        "reconnects": 0,
        "state": state,
        **values,
    }


def status(device: str, state: str, at: datetime | None = None, boot: str = "b0000") -> str:
    return encode_json(
        convert({"state": state, "device_id": device, "at": at, "boot": boot}, GatewayStatus)
    ).decode()


def stored(
    gateway: str,
    bank: str,
    h: GatewayHealth | None,
    heard: datetime | None = None,
    state: str | None = "online",
    status_heard: datetime | None = None,
) -> Stored:
    return Stored.parse(
        "gateway",
        bank,
        gateway,
        status(gateway, state, NOW - timedelta(hours=1)) if state else None,
        status_heard or NOW - timedelta(hours=1),
        encode_json(h).decode() if h else None,
        heard,
    )


SYNCED = {"synchronized": True, "source": "timesyncd", "offset_ms": 3}


# ---- the offline rule ---------------------------------------------------------------------------


def test_silent_for_longer_than_the_limit_is_offline_and_not_a_second_sooner() -> None:
    limit = timedelta(seconds=90)
    at_limit = NOW - limit
    assert fleet.offline_reason("online", NOW - timedelta(hours=1), at_limit, NOW, limit) is None
    just_past = at_limit - timedelta(seconds=1)
    assert fleet.offline_reason("online", None, just_past, NOW, limit) == "silent"
    assert fleet.offline_reason(None, None, None, NOW, limit) == "never"


def test_a_retained_offline_counts_while_it_is_the_latest_word() -> None:
    limit = timedelta(seconds=90)
    said = NOW - timedelta(seconds=5)
    assert fleet.offline_reason("offline", said, said, NOW, limit) == "status"
    # a health report heard after the "offline" (the gateway is back, its status not yet)
    later = NOW - timedelta(seconds=1)
    assert fleet.offline_reason("offline", said, later, NOW, limit) is None


def test_the_silence_limit_of_each_kind_of_device() -> None:
    assert fleet.silence_limit("gateway", None, SETTINGS) == 90
    assert fleet.silence_limit("fill_sensor", 60, SETTINGS) == 3600  # its TPS's offline_after_min
    assert fleet.silence_limit("fill_sensor", None, SETTINGS) == SETTINGS.sensor_offline_after_s
    custom = fleet.FleetSettings(offline_after_s=300)
    assert fleet.silence_limit("gateway", None, custom) == 300


# ---- the ranking --------------------------------------------------------------------------------


def test_the_ranking_is_offline_fault_clock_ok() -> None:
    problem = [fleet.Problem(code="overload", subject="scale-01")]
    assert fleet.condition_of(True, problem, False) is fleet.Condition.OFFLINE
    assert fleet.condition_of(False, problem, False) is fleet.Condition.FAULT
    assert fleet.condition_of(False, [], False) is fleet.Condition.CLOCK
    assert fleet.condition_of(False, [], None) is fleet.Condition.OK  # cannot tell: not a fault
    assert fleet.condition_of(False, [], True) is fleet.Condition.OK
    assert [c.value for c in fleet.RANKING] == ["offline", "fault", "clock", "unknown", "ok"]


def test_the_fleet_lists_the_broken_ones_first() -> None:
    heard = NOW - timedelta(seconds=10)
    reports = [
        stored("gw-a", "bs-a", health("gw-a", "bs-a", scales=[scale()], clock=SYNCED), heard),
        stored(
            "gw-b",
            "bs-b",
            health("gw-b", "bs-b", scales=[scale("overload", state_since=NOW)], clock=SYNCED),
            heard,
        ),
        # stopped: its clean "offline" is the latest thing heard
        stored(
            "gw-c",
            "bs-c",
            health("gw-c", "bs-c", clock=SYNCED),
            NOW - timedelta(seconds=30),
            state="offline",
            status_heard=NOW - timedelta(seconds=20),
        ),
        stored(
            "gw-d",
            "bs-d",
            health("gw-d", "bs-d", clock={"synchronized": False, "source": "timesyncd"}),
            heard,
        ),
        stored("gw-e", "bs-e", health("gw-e", "bs-e"), heard),  # older: no state, no clock
        stored("gw-f", "bs-f", health("gw-f", "bs-f", clock=SYNCED), NOW - timedelta(minutes=2)),
    ]
    found = fleet.build(Inputs(reports, BANKS, TPS), NOW, SETTINGS)
    order = [(d.device_id, d.condition.value) for d in found.devices]
    assert order == [
        ("gw-c", "offline"),
        ("gw-f", "offline"),
        ("gw-b", "fault"),
        ("gw-d", "clock"),
        ("gw-a", "ok"),
        ("gw-e", "ok"),
    ]
    by_id = {d.device_id: d for d in found.devices}
    assert by_id["gw-c"].offline_reason == "status"
    assert by_id["gw-f"].offline_reason == "silent"
    assert [d.rank for d in found.devices] == [0, 0, 1, 2, 4, 4]
    assert found.counts == {
        fleet.Condition.OFFLINE: 2,
        fleet.Condition.FAULT: 1,
        fleet.Condition.CLOCK: 1,
        fleet.Condition.UNKNOWN: 0,
        fleet.Condition.OK: 2,
    }
    assert by_id["gw-b"].problems == [fleet.Problem(code="overload", subject="scale-01", since=NOW)]
    assert by_id["gw-e"].clock is None
    assert by_id["gw-e"].scales == []


def test_an_alert_and_the_state_that_says_the_same_are_one_problem() -> None:
    alert = {"code": "overload", "subject": "scale-01", "since": NOW, "value": 61000.0}
    h = health(
        "gw-a",
        "bs-a",
        scales=[scale("overload"), scale("disconnected", scale_id="scale-02")],
        alerts_active=[alert, {**alert, "code": "scale_offline", "subject": "scale-02"}],
    )
    (d,) = fleet.build(Inputs([stored("gw-a", "bs-a", h, NOW)], BANKS, TPS), NOW, SETTINGS).devices
    assert [(p.code, p.subject) for p in d.problems] == [
        ("overload", "scale-01"),
        ("scale_offline", "scale-02"),
    ]
    # an older gateway says only that a scale is not connected
    old = health("gw-a", "bs-a", scales=[scale(None, connected=False)])
    (d,) = fleet.build(
        Inputs([stored("gw-a", "bs-a", old, NOW)], BANKS, TPS), NOW, SETTINGS
    ).devices
    assert d.condition is fleet.Condition.FAULT
    assert [(p.code, p.subject) for p in d.problems] == [("disconnected", "scale-01")]


def test_sensors_offline_by_their_tps_limit_and_never_judged_without_readings() -> None:
    sensor = {
        "sensor_id": "s-1",
        "tps_code": "tps-1",
        "kind": "jsn_sr04t",
        "connected": False,
        "samples_accepted": 1,
        "samples_rejected": 0,
        "readings": 1,
    }
    gw = stored("gw-a", "bs-a", health("gw-a", "bs-a", sensors=[sensor]), NOW)
    readings = {
        ("tps-1", "s-1"): NOW - timedelta(minutes=59),
        ("tps-1", "s-2"): NOW - timedelta(minutes=61),
        ("tps-x", "s-9"): NOW,  # a TPS the ledger does not know
    }
    alerts = [SensorAlert("tps-1", "s-2", "sensor_offline", NOW - timedelta(minutes=1), 61.0)]
    inputs = Inputs([gw], BANKS, TPS, alerts, readings)
    sensors = {
        d.device_id: d for d in fleet.build(inputs, NOW, SETTINGS).devices if d.kind != "gateway"
    }
    assert set(sensors) == {"s-1", "s-2"}  # a city's staff: only the city's TPS
    assert sensors["s-1"].condition is fleet.Condition.FAULT  # heard, but its port is closed
    assert sensors["s-1"].via == "gw-a"
    assert sensors["s-1"].offline_after_s == 3600
    assert sensors["s-2"].offline_reason == "silent"
    assert [p.code for p in sensors["s-2"].problems] == ["sensor_offline"]
    everyone = Inputs([gw], BANKS, TPS, alerts, readings, all_sites=True)
    unknown = [d for d in fleet.build(everyone, NOW, SETTINGS).devices if d.site == "tps-x"]
    assert unknown[0].site_name is None
    assert unknown[0].offline_after_s == SETTINGS.sensor_offline_after_s
    # InfluxDB unreadable: no sensor is called silent
    blind = fleet.build(Inputs([gw], BANKS, TPS, alerts, None), NOW, SETTINGS)
    assert not blind.readings_known
    assert all(d.offline_reason is None for d in blind.devices if d.kind != "gateway")


def _maxbotix(sensor_id: str, no_target: int, since: datetime | None) -> dict[str, Any]:
    return {
        "sensor_id": sensor_id,
        "tps_code": "tps-1",
        "kind": "maxbotix",
        "connected": True,
        "samples_accepted": 10,
        "samples_rejected": no_target,
        "readings": 2,
        "no_target": no_target,
        "no_target_since": since,
    }


def test_a_sensor_that_has_seen_no_target_for_its_limit_is_a_fault() -> None:
    """The limit is measured on the gateway's clock (its report's ``at`` against the run's
    start), so a gateway whose clock is an hour off judges alike."""
    at = NOW - timedelta(hours=1)  # the gateway's clock, an hour behind
    limit = timedelta(seconds=SETTINGS.no_target_after_s)
    sensors = [
        _maxbotix("s-long", 1234, at - limit),
        _maxbotix("s-short", 56, at - limit + timedelta(seconds=1)),
        _maxbotix("s-fine", 7, None),
    ]
    gw = stored("gw-a", "bs-a", health("gw-a", "bs-a", at=at, sensors=sensors), NOW)
    readings = {("tps-1", s["sensor_id"]): NOW - timedelta(minutes=5) for s in sensors}
    found = fleet.build(Inputs([gw], BANKS, TPS, [], readings), NOW, SETTINGS)
    by_id = {d.device_id: d for d in found.devices}
    long_ = by_id["s-long"]
    assert long_.condition is fleet.Condition.FAULT
    assert [(p.code, p.subject, p.since) for p in long_.problems] == [
        ("no_target", "s-long", at - limit)
    ]
    assert (long_.no_target, long_.no_target_since) == (1234, at - limit)
    assert [d.device_id for d in found.devices if d.kind != "gateway"][0] == "s-long"
    assert by_id["s-short"].condition is fleet.Condition.OK
    assert by_id["s-fine"].condition is fleet.Condition.OK
    assert by_id["s-fine"].no_target == 7
    w = fleet.describe(long_, NOW, "id")
    assert w.problems == ["tidak ada target: s-long (sejak 6 Des 2026 19.45 WIT)"]
    assert w.no_target == (
        "1.234 sejak gateway mulai; semuanya tanpa target sejak 6 Des 2026 19.45 WIT"
    )
    assert fleet.describe(by_id["s-fine"], NOW, "en").no_target == "7 since the gateway started"
    # a longer limit in the settings: not yet a fault
    patient = fleet.FleetSettings(no_target_after_s=SETTINGS.no_target_after_s + 1)
    later = fleet.build(Inputs([gw], BANKS, TPS, [], readings), NOW, patient)
    assert {d.device_id: d.condition for d in later.devices}["s-long"] is fleet.Condition.OK
    # a sensor no gateway reports: its count is unknown, not 0
    alone = fleet.build(Inputs([], BANKS, TPS, [], readings), NOW, SETTINGS)
    assert {d.no_target for d in alone.devices} == {None}


def test_devices_of_sites_the_caller_does_not_see_are_left_out() -> None:
    reports = [stored("gw-z", "bs-elsewhere", health("gw-z", "bs-elsewhere"), NOW)]
    assert fleet.build(Inputs(reports, BANKS, TPS), NOW, SETTINGS).devices == []
    (d,) = fleet.build(Inputs(reports, BANKS, TPS, all_sites=True), NOW, SETTINGS).devices
    assert d.site_name is None
    assert d.timezone == "Asia/Jakarta"


def test_a_removed_device_is_left_out_with_the_sensors_only_its_report_lists() -> None:
    served = _maxbotix("s-1", 0, None)
    reports = [
        stored("gw-a", "bs-a", health("gw-a", "bs-a", sensors=[served]), NOW),
        stored("gw-b", "bs-b", health("gw-b", "bs-b"), NOW),
    ]
    own = Stored.parse("fill_sensor", "tps-1", "s-2", status("s-2", "online"), NOW, None, None)
    readings = {("tps-1", "s-2"): NOW, ("tps-1", "s-3"): NOW}
    everything = Inputs([*reports, own], BANKS, TPS, [], readings)
    listed = {d.device_id for d in fleet.build(everything, NOW, SETTINGS).devices}
    assert listed == {"gw-a", "gw-b", "s-1", "s-2", "s-3"}
    gone = replace(
        everything,
        removed={("gateway", "bs-a", "gw-a"): NOW, ("fill_sensor", "tps-1", "s-2"): NOW},
    )
    left = fleet.build(gone, NOW, SETTINGS)
    assert [d.device_id for d in left.devices] == ["gw-b", "s-3"]
    assert sum(left.counts.values()) == 2
    # a removed sensor whose own readings still come after its removal: listed, a fault
    later = {("tps-1", "s-2"): NOW + timedelta(minutes=5), ("tps-1", "s-3"): NOW}
    still = fleet.build(replace(gone, last_readings=later), NOW + timedelta(minutes=5), SETTINGS)
    (s2,) = [d for d in still.devices if d.device_id == "s-2"]
    assert s2.condition is fleet.Condition.FAULT
    assert [(p.code, p.since) for p in s2.problems] == [("removed_but_heard", NOW)]
    # the same gateway id at another bank is another device
    moved = replace(everything, removed={("gateway", "bs-b", "gw-a"): NOW})
    assert "gw-a" in {d.device_id for d in fleet.build(moved, NOW, SETTINGS).devices}


def test_a_stored_report_that_no_longer_reads_is_a_problem_not_a_gap() -> None:
    broken = Stored.parse("gateway", "bs-a", "gw-a", None, None, '{"kind": "health"}', NOW)
    (d,) = fleet.build(Inputs([broken], BANKS, TPS), NOW, SETTINGS).devices
    assert d.condition is fleet.Condition.FAULT
    assert [p.code for p in d.problems] == ["unreadable_report"]


# ---- in words -----------------------------------------------------------------------------------


def test_a_device_in_words_unknown_where_an_older_gateway_says_nothing() -> None:
    h = health("gw-a", "bs-a", outbox_depth=1234, outbox_oldest_age_s=3725)
    (d,) = fleet.build(
        Inputs([stored("gw-a", "bs-a", h, NOW - timedelta(seconds=75))], BANKS, TPS),
        NOW,
        SETTINGS,
    ).devices
    w = fleet.describe(d, NOW, "id")
    assert w.condition == "✓ BAIK"
    assert w.version == "tidak diketahui"
    assert w.clock == "tidak diketahui"
    assert w.outbox == "1.234 antre, tertua 1 jam 2 mnt"
    assert w.last_seen == "6 Des 2026 20.58 WIT (1 mnt 15 dtk lalu)"
    en = fleet.describe(d, NOW, "en")
    assert en.version == "unknown"
    assert en.outbox == "1.234 queued, oldest 1 h 2 min"


def test_durations() -> None:
    assert fleet.duration(0, "id") == "0 dtk"
    assert fleet.duration(90, "id") == "1 mnt 30 dtk"
    assert fleet.duration(3600, "id") == "1 jam"
    assert fleet.duration(2 * 86400 + 4 * 3600 + 59, "en") == "2 d 4 h"
    assert fleet.duration(None, "id") == "tidak diketahui"


# ---- which stored report is the latest, through the ingester ------------------------------------


@pytest.fixture
async def ingester(ledger_url: str) -> AsyncIterator[Ingester]:
    settings = load_settings(
        IngestSettings,
        mqtt=MqttSettings(topic_prefix=""),
        influx=InfluxSettings(),
        ledger_url=ledger_url,
    )
    influx = Influx(settings.influx)  # never asked: handle() only builds the points
    ingester = Ingester(settings, ledger.make_engine(ledger_url), influx)
    yield ingester
    ingester.close()
    await influx.aclose()


def _row(ledger_url: str) -> fleet.DeviceReport:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            (row,) = s.scalars(select(fleet.DeviceReport)).all()
            s.expunge(row)
            return row
    finally:
        engine.dispose()


async def test_the_ingester_keeps_the_latest_health_and_status(
    ingester: Ingester, ledger_url: str
) -> None:
    topics = Topics("")
    h_topic = topics.gateway_health("bs-a", "gw-a")
    s_topic = topics.gateway_status("bs-a", "gw-a")
    first = encode_json(health("gw-a", "bs-a", uptime_s=100))
    assert len(await ingester.handle(h_topic, first)) == 1  # its points still go to InfluxDB
    row = _row(ledger_url)
    assert row.health == first.decode()
    heard = row.health_received_at
    assert heard is not None

    # the retained copy again (a new subscription): nothing changes, not even when it was heard
    await ingester.handle(h_topic, first)
    assert _row(ledger_url).health_received_at == heard
    # an older report of the same process, late: kept out
    older = encode_json(health("gw-a", "bs-a", uptime_s=50, at=NOW))
    await ingester.handle(h_topic, older)
    assert _row(ledger_url).health == first.decode()
    # the same second of uptime: the later report is the latest, the earlier one late
    same_second = health("gw-a", "bs-a", uptime_s=100, at=NOW + timedelta(milliseconds=400))
    await ingester.handle(h_topic, encode_json(same_second))
    assert _row(ledger_url).health == encode_json(same_second).decode()
    await ingester.handle(h_topic, first)  # delivered again, late
    assert _row(ledger_url).health == encode_json(same_second).decode()
    # a new process whose clock is behind (a power cut, no network yet): it is the latest
    reboot = health("gw-a", "bs-a", uptime_s=5, boot="b1111", at=NOW - timedelta(days=300))
    await ingester.handle(h_topic, encode_json(reboot))
    assert _row(ledger_url).health == encode_json(reboot).decode()

    online = status("gw-a", "online", NOW, boot="b1111").encode()
    assert await ingester.handle(s_topic, online) == []  # presence: no point
    will = status("gw-a", "offline", None, boot="b1111").encode()
    await ingester.handle(s_topic, will)
    assert _row(ledger_url).status == will.decode()
    back = status("gw-a", "online", NOW + timedelta(seconds=5), boot="b1111").encode()
    await ingester.handle(s_topic, back)
    await ingester.handle(s_topic, online)  # the earlier "online" delivered again, late
    assert _row(ledger_url).status == back.decode()
    assert ingester.stats.statuses == 4
    assert ingester.stats.dead_lettered == 0


async def test_a_status_naming_another_device_is_a_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    topic = Topics("").sensor_status("tps-1", "s-1")
    assert await ingester.handle(topic, status("s-2", "online", NOW).encode()) == []
    assert ingester.stats.dead_lettered == 1
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            assert s.scalars(select(fleet.DeviceReport)).all() == []
            (letter,) = s.scalars(select(ledger.DeadLetter)).all()
            assert "identity mismatch" in letter.error
    finally:
        engine.dispose()


def test_the_ingester_subscribes_to_presence_with_the_health_reports() -> None:
    def filters(kinds: tuple[str, ...]) -> list[str]:
        settings = load_settings(
            IngestSettings,
            mqtt=MqttSettings(topic_prefix="t/"),
            influx=InfluxSettings(),
            kinds=kinds,
        )
        return [f for f, _qos in Ingester(settings, None, None).subscriptions()]  # type: ignore[arg-type]

    assert "t/wb/v1/+/gateway/+/status" in filters(("health",))
    assert "t/wb/v1/+/fill_sensor/+/status" in filters(("health",))
    assert not any(f.endswith("/status") for f in filters(("fill", "alert")))


async def test_wastebank_fleet_prints_the_broken_ones_first_and_exits_1(
    ingester: Ingester, ledger_url: str
) -> None:
    topics = Topics("")
    now = datetime.now(UTC)
    overloaded = health(
        "gw-over",
        "bs-rijali",
        at=now,
        version="0.9.0",
        scales=[scale("overload", state_since=now)],
        clock=SYNCED,
    )
    await ingester.handle(topics.gateway_health("bs-rijali", "gw-over"), encode_json(overloaded))
    blind = _maxbotix("s-blind", 4321, now - timedelta(hours=2))  # a sensor seeing nothing
    blind["tps_code"] = "tps-batu-merah"  # its gateway's bank's city's TPS (docs/fleet.md)
    for gateway, state in (("gw-ok", "online"), ("gw-stop", "offline")):
        sensors = [blind] if gateway == "gw-ok" else []
        await ingester.handle(
            topics.gateway_health("bs-batu-merah", gateway),
            encode_json(health(gateway, "bs-batu-merah", at=now, clock=SYNCED, sensors=sensors)),
        )
        await ingester.handle(
            topics.gateway_status("bs-batu-merah", gateway),
            status(gateway, state, now + timedelta(seconds=1)).encode(),
        )
    # InfluxDB unreachable: the gateways are listed all the same, the readings said unknown
    env = {"WASTEBANK_INFLUX__URL": "http://127.0.0.1:9"}
    args = ["fleet", "--ledger-url", ledger_url]
    text = await asyncio.to_thread(CliRunner().invoke, cli, args, env=env)
    assert text.exit_code == 1, text.output  # not every device is ok
    firsts = [line.split("\t") for line in text.output.splitlines() if "\t" in line]
    assert [(f[0], f[1]) for f in firsts] == [
        ("⛔ LURING", "Gateway gw-stop"),
        ("⚠ GANGGUAN", "Gateway gw-over"),
        ("⚠ GANGGUAN", "Sensor TPS s-blind"),
        ("✓ BAIK", "Gateway gw-ok"),
    ]
    assert "Timbangan: scale-01 kelebihan beban (sejak" in text.output
    assert "Bingkai tanpa target: 4.321 sejak gateway mulai; semuanya tanpa target" in text.output
    assert "Masalah aktif: tidak ada target: s-blind (sejak" in text.output
    assert "Versi: 0.9.0" in text.output
    shown = await asyncio.to_thread(CliRunner().invoke, cli, [*args, "--json", "--en"], env=env)
    # stdout alone: a retry's warning about the unreachable InfluxDB goes to stderr, and
    # Click's ``output`` interleaves both
    found = fleet.Fleet.model_validate_json(shown.stdout)
    assert [d.device_id for d in found.devices] == ["gw-stop", "gw-over", "s-blind", "gw-ok"]
    assert found.devices[2].no_target == 4321
    assert [p.code for p in found.devices[2].problems] == ["no_target"]
    assert not found.readings_known


async def test_a_device_removed_from_the_registry_leaves_the_fleet_until_added_again(
    ingester: Ingester, ledger_url: str, tmp_path: Path
) -> None:
    """`wastebank device remove` keeps what it removed in the registry; `wastebank fleet` (the
    API's settings: the broker's run dir) leaves it out, and the sensors only its report
    lists; `wastebank device add` at the same bank brings it back."""
    topics = Topics("")
    now = datetime.now(UTC)
    run = tmp_path / "run"
    env = {
        "WASTEBANK_RUN_DIR": str(run),
        "WASTEBANK_PAGES__BROKER_RUN_DIR": str(run),
        "WASTEBANK_INFLUX__URL": "http://127.0.0.1:9",
    }

    def cli_run(*args: str) -> Any:
        return CliRunner().invoke(cli, list(args), env=env)

    for gateway in ("gw-gone", "gw-kept"):
        added = await asyncio.to_thread(
            cli_run, "device", "add", "--bank", "bs-batu-merah", "--gateway", gateway,
            "--serves", f"tps-1/s-{gateway}",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
        sensors = [_maxbotix(f"s-{gateway}", 0, None)]
        h = health(gateway, "bs-batu-merah", at=now, clock=SYNCED, sensors=sensors)
        await ingester.handle(topics.gateway_health("bs-batu-merah", gateway), encode_json(h))
        # the broker's will once the device is dropped: offline, retained
        await ingester.handle(
            topics.gateway_status("bs-batu-merah", gateway),
            status(gateway, "offline", now + timedelta(seconds=1)).encode(),
        )

    def listed() -> list[str]:
        shown = cli_run("fleet", "--json", "--ledger-url", ledger_url)
        return [d.device_id for d in fleet.Fleet.model_validate_json(shown.stdout).devices]

    assert sorted(await asyncio.to_thread(listed)) == [
        "gw-gone", "gw-kept", "s-gw-gone", "s-gw-kept"
    ]  # fmt: skip
    removed = await asyncio.to_thread(cli_run, "device", "remove", "gw-gone")
    assert removed.exit_code == 0, removed.output
    assert sorted(await asyncio.to_thread(listed)) == ["gw-kept", "s-gw-kept"]
    text = await asyncio.to_thread(cli_run, "fleet", "--ledger-url", ledger_url)
    assert "gw-gone" not in text.stdout
    assert "⛔ LURING 1" in text.stdout  # gw-kept alone is counted offline
    again = await asyncio.to_thread(
        cli_run, "device", "add", "--bank", "bs-batu-merah", "--gateway", "gw-gone"
    )
    assert again.exit_code == 0, again.output
    assert "gw-gone" in await asyncio.to_thread(listed)


# An empty message on a retained report's topic is MQTT's "delete the retained report": the
# step docs/fleet.md ("Limits") gives an operator for a device that left. Counted and logged; no
# dead letter, and no stored report changes.


def _counts(ledger_url: str) -> tuple[int, int]:
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            reports = len(s.scalars(select(fleet.DeviceReport)).all())
            letters = len(s.scalars(select(ledger.DeadLetter)).all())
            return reports, letters
    finally:
        engine.dispose()


async def test_a_cleared_retained_report_is_counted_not_a_dead_letter(
    ingester: Ingester, ledger_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    topics = Topics("")
    cleared = [
        topics.gateway_health("bs-a", "gw-a"),
        topics.gateway_status("bs-a", "gw-a"),
        topics.sensor_status("tps-1", "s-1"),
    ]
    with caplog.at_level(logging.INFO, "wastebank.ingest"):
        for topic in cleared:
            assert await ingester.handle(topic, b"") == []
    assert (ingester.stats.retained_cleared, ingester.stats.dead_lettered) == (3, 0)
    assert _counts(ledger_url) == (0, 0)
    assert f"empty report (a retained one cleared): {cleared[0]}" in caplog.text


async def test_an_empty_deposit_or_alert_is_still_a_dead_letter(
    ingester: Ingester, ledger_url: str
) -> None:
    # only a retained report is deleted by an empty message; other kinds are never retained
    topics = Topics("")
    for topic in (topics.deposit("bs-a", "gw-a"), topics.gateway_alert("bs-a", "gw-a")):
        assert await ingester.handle(topic, b"") == []
    assert (ingester.stats.retained_cleared, ingester.stats.dead_lettered) == (0, 2)
    assert _counts(ledger_url) == (0, 2)
