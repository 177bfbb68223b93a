"""TPS analytics and alerts (wastebank/tps/, api/tps.py, `wastebank tps watch`).

Pure parts are checked against figures computed by hand; pickups against the simulator's own
pickups (firmware_sim/tps.py's FillModel, seeded) after a round trip through InfluxDB; the
watcher on the real broker and ledger (both backends), with a restart in the middle.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.app import create_app
from firmware_sim.tps import FillModel, TpsSimSettings
from gateway.fill_sensor import fill_ratio
from tests.auth_helpers import PASSWORD, PIN, add_users, api_settings, login
from tests.conftest import deposit_event, eventually
from tests.ledger_helpers import apply_deposit
from wastebank import ledger, tps
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx, fill_line
from wastebank.messages import FillReading, Topics, TpsAlert
from wastebank.mqtt import client as mqtt_client
from wastebank.structs import decode_json, encode_json, replace

WIT = ZoneInfo("Asia/Jayapura")
TPS = "tps-batu-merah"  # demo city: 8 m³, 214.8 kg/m³, raise 0.8, clear 0.6, offline after 30 min


def reading(seq: int, level: float, at: datetime, sensor: str = "us-01") -> FillReading:
    return FillReading(
        reading_id=f"{sensor}-{seq}",
        sensor_id=sensor,
        seq=seq,
        tps_code=TPS,
        measured_at=at,
        distance_mm=round(1400 - level * 1150),
        fillingLevel=level,
    )


# ---- pure: by hand ----------------------------------------------------------------------------


def test_fill_rate_and_time_to_full_on_a_linear_ramp() -> None:
    t0 = datetime(2026, 11, 23, 6, 0, tzinfo=WIT)
    ramp = [tps.Reading(t0 + timedelta(minutes=30 * i), 0.2 + 0.025 * i) for i in range(11)]
    rate = tps.fill_rate(ramp, window=timedelta(hours=6))
    assert rate is not None
    assert rate.per_hour == pytest.approx(0.05)  # 0.025 per half hour
    assert rate.stderr_per_hour == pytest.approx(0.0, abs=1e-12)
    assert rate.fitted_level == pytest.approx(0.45)  # at 11:00
    pred = tps.predict_full(rate)
    assert pred is not None
    assert pred.hours == pytest.approx(11.0)  # (1 - 0.45) / 0.05
    assert pred.full_at == t0 + timedelta(hours=16)
    assert pred.earliest == pred.full_at == pred.latest
    assert pred.reliability == "high"


def test_fill_rate_confidence_on_noisy_points() -> None:
    """(hours, level) (0, .1) (1, .2) (2, .2) (3, .4): slope 0.45 / 5 = 0.09 per hour, line at
    the last point 0.225 + 1.5 × 0.09 = 0.36, SSE 0.007, se √(0.007 / 2 / 5) = 0.02646; t(2) =
    4.303, so the slope's lower bound is below zero: no latest time, reliability medium."""
    t0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    pts = [(0, 0.1), (1, 0.2), (2, 0.2), (3, 0.4)]
    rate = tps.fill_rate([tps.Reading(t0 + timedelta(hours=h), v) for h, v in pts])
    assert rate is not None
    assert rate.per_hour == pytest.approx(0.09)
    assert rate.fitted_level == pytest.approx(0.36)
    assert rate.stderr_per_hour == pytest.approx(math.sqrt(0.0007))
    pred = tps.predict_full(rate)
    assert pred is not None
    assert pred.hours == pytest.approx(0.64 / 0.09)
    fast = 0.09 + 4.303 * math.sqrt(0.0007)
    assert pred.earliest == t0 + timedelta(hours=3 + 0.64 / fast)
    assert pred.latest is None
    assert pred.reliability == "medium"
    falling = [tps.Reading(t0 + timedelta(hours=h), 0.5 - 0.01 * h) for h in range(5)]
    rate = tps.fill_rate(falling)
    assert rate is not None
    assert tps.predict_full(rate) is None


def test_mass_per_pickup_and_diversion_by_hand() -> None:
    assert tps.pickup_mass_kg(8.0, 0.9, 214.8) == pytest.approx(1546.56)  # 8 × 0.9 × 214.8
    assert tps.pickup_mass_kg(6.0, 1.0, 250.0) == pytest.approx(1500.0)
    assert tps.density_from_weighbridge(1546.56, 8.0, 0.9) == pytest.approx(214.8)
    assert tps.diversion_rate(30.0, 90.0) == pytest.approx(0.25)
    assert tps.diversion_rate(0.0, 0.0) is None
    assert tps.diversion_rate(3.0, 0.0) is None  # nothing seen going to the TPA: not 100 %
    assert tps.diversion_rate(0.0, 2.0) == 0.0
    with pytest.raises(ValueError, match="fill"):
        tps.density_from_weighbridge(1000, 8.0, 0.0)


def test_pickups_need_a_persisting_low_level() -> None:
    t0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    levels = [
        0.7,
        0.8,
        0.85,
        0.02,
        0.86,
        0.87,
        0.9,
        0.03,
        0.04,
        0.05,
    ]  # one false low, then a pickup
    rs = [tps.Reading(t0 + timedelta(minutes=10 * i), v) for i, v in enumerate(levels)]
    found = tps.detect_pickups(rs)
    assert [(p.at, p.fill_before, p.fill_after) for p in found] == [
        (t0 + timedelta(minutes=70), 0.87, 0.035)
    ]
    assert tps.detect_pickups(rs[:8]) == []  # the low level seen once so far: not yet
    # a wall echo just after the emptying (seed 47 of the simulator did this) hides nothing
    levels = [0.88, 0.89, 0.91, 0.91, 0.01, 0.747, 0.032, 0.036]
    rs = [tps.Reading(t0 + timedelta(minutes=10 * i), v) for i, v in enumerate(levels)]
    found = tps.detect_pickups(rs)
    assert [(p.at, p.fill_before, p.fill_after) for p in found] == [
        (t0 + timedelta(minutes=40), 0.91, 0.021)
    ]


def test_hysteresis_rule() -> None:
    assert tps.fill_transition(False, 0.8, 0.8, 0.6) == "raise"
    assert tps.fill_transition(True, 0.9, 0.8, 0.6) is None
    assert tps.fill_transition(True, 0.61, 0.8, 0.6) is None
    assert tps.fill_transition(True, 0.6, 0.8, 0.6) == "clear"
    assert tps.fill_transition(False, 0.79, 0.8, 0.6) is None


def replay(window: tps.PickupWindow, readings: list[tps.Reading]) -> dict[datetime, tps.Pickup]:
    """What the watcher's journal holds after ``readings`` arrive in this order (in memory):
    each update's span deleted first, then its pickups inserted unless there (by time)."""
    journal: dict[datetime, tps.Pickup] = {}
    for r in readings:
        update = window.update(r)
        if update is None:
            continue
        if update.forget is not None:
            lo, hi = update.forget
            journal = {at: p for at, p in journal.items() if not lo <= at <= hi}
        for p in update.found:
            journal.setdefault(p.at, p)
    return journal


def as_readings(frs: list[FillReading]) -> list[tps.Reading]:
    return [tps.Reading(r.measured_at.astimezone(UTC), float(r.fillingLevel)) for r in frs]


def test_the_window_finds_what_the_whole_series_gives_in_order_and_late() -> None:
    readings, truth = simulated_days(3, seed=20261123)
    series = as_readings(readings)
    whole = tps.detect_pickups(series)
    assert [p.at for p in whole] == truth
    assert len(truth) >= 2
    in_order = replay(tps.PickupWindow(), series)
    assert sorted(in_order.values(), key=lambda p: p.at) == whole
    # a store-and-forward backlog: every reading delayed by 0..5 places (seeded), so lows and
    # highs around each pickup arrive after later ones
    rng = random.Random(7)
    late = [r for _, r in sorted((i + rng.uniform(0, 5), r) for i, r in enumerate(series))]
    assert late != series
    assert sorted(replay(tps.PickupWindow(), late).values(), key=lambda p: p.at) == whole


def test_late_high_readings_undo_a_pickup_and_the_true_one_is_recorded() -> None:
    """0.9 0.9 0.9 0.05 [0.9 0.9] 0.05 0.05, the two bracketed readings arriving last: in order
    of arrival the drop at 03:00 looks like a pickup (two lows after three highs); with them in
    their place it is not (two highs after the low: more than ``tolerate``), and the pickup is
    the drop at 06:00 (levels before: 0.05, 0.9, 0.9, median 0.9; after: 0.05, 0.05)."""
    t0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    levels = [0.9, 0.9, 0.9, 0.05, 0.9, 0.9, 0.05, 0.05]
    rs = [tps.Reading(t0 + timedelta(minutes=10 * i), v) for i, v in enumerate(levels)]
    window = tps.PickupWindow()
    arrival = [*rs[:4], *rs[6:], rs[4], rs[5]]
    before = replay(window, arrival[:6])
    assert [(p.at, p.fill_before) for p in before.values()] == [(rs[3].at, 0.9)]
    window = tps.PickupWindow()
    after = replay(window, arrival)
    assert [(p.at, p.fill_before, p.fill_after) for p in after.values()] == [(rs[6].at, 0.9, 0.05)]
    assert list(after.values()) == tps.detect_pickups(rs)
    # older than the window: not used
    assert window.update(tps.Reading(t0 - tps.WINDOW - timedelta(hours=1), 0.9)) is None


def test_a_truncated_window_leaves_out_pickups_it_lacks_the_context_for() -> None:
    """Primed (older readings may exist): a drop 20 min after the window's first reading is not
    judged from it (its level before would be one reading); one 3 h later is."""
    t0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
    levels = [0.9, 0.9, 0.05, 0.05] + [0.05 + 0.05 * i for i in range(1, 17)] + [0.02, 0.02]
    rs = [tps.Reading(t0 + timedelta(minutes=10 * i), v) for i, v in enumerate(levels)]
    assert [p.at for p in tps.detect_pickups(rs)] == [rs[2].at, rs[20].at]
    window = tps.PickupWindow(truncated=True)
    for r in rs:
        window.add(r)
    assert [p.at for p in window.pickups()] == [rs[20].at]  # 200 min after the first reading
    assert window.settled_since() == t0 + timedelta(hours=3)


# ---- a simulated TPS, through InfluxDB --------------------------------------------------------


def simulated_days(days: int, seed: int) -> tuple[list[FillReading], list[datetime]]:
    """Readings every 10 min from the simulator's container (seeded), and its pickup times."""
    settings = load_settings(TpsSimSettings)
    # From a local midnight: the simulator's day curve (and so where pickups fall and how full
    # the container is then) depends on the time of day, which must not depend on when the
    # suite runs.
    midnight = datetime.now(WIT).replace(hour=0, minute=0, second=0, microsecond=0)
    start = midnight - timedelta(days=days)
    model = FillModel(settings, random.Random(seed), start, fill=0.3)
    out: list[FillReading] = []
    picked: list[datetime] = []
    for i in range(days * 144):
        if i:
            before = model.pickups
            model.advance(600)
            if model.pickups > before:
                picked.append(model.sim_time)
        level = round(
            fill_ratio(model.distance_mm(), settings.empty_distance_mm, settings.full_distance_mm),
            3,
        )
        out.append(reading(i, level, model.sim_time))
    return out, picked


@pytest.mark.integration
async def test_pickups_on_a_simulated_tps_match_the_simulator(
    influx_settings: InfluxSettings, ledger_url: str
) -> None:
    readings, truth = simulated_days(3, seed=20261123)
    assert len(truth) >= 2, "the seed should give the simulator a few pickups"
    influx = Influx(influx_settings)
    try:
        await influx.ensure_database()
        await influx.write([fill_line(r) for r in readings])
        start, end = readings[0].measured_at, readings[-1].measured_at + timedelta(minutes=1)
        series = await tps.fill_readings(influx, [TPS], start, end)
        found = tps.detect_pickups(series[TPS, "us-01"])
        assert [p.at for p in found] == truth
        assert all(p.fill_before >= 0.8 and p.fill_after <= 0.1 for p in found)

        engine = ledger.make_engine(ledger_url)
        try:
            with Session(engine) as session:
                # no watcher ran: the journal is made from the readings, as the CLI does
                done = await tps.rebuild_pickups(session, influx, start, end)
                session.commit()
                assert (done.tps, done.sensors, done.readings) == (2, 1, len(readings))
                assert (done.removed, done.inserted) == (0, len(truth))
                est = await tps.tpa_bound_tonnes(session, influx, "ambon", start, end)
        finally:
            engine.dispose()
        expected = sum(8.0 * p.fill_before * 214.8 for p in found) / 1000
        assert est.pickups == len(truth)
        assert est.tonnes == pytest.approx(expected)
        assert est.per_tps_tonnes[TPS] == pytest.approx(expected)
        assert est.tps_without_sensor_data == ["tps-benteng"]
        assert est.basis == "estimated"
        assert "density" in est.method

        # The diversion rate DLH sees: the banks' deposits in the same local days against it.
        engine = ledger.make_engine(ledger_url)
        try:
            with Session(engine) as session:
                for seq, grams in ((1, 1250), (2, 2000)):
                    at = readings[100 * seq].measured_at
                    apply_deposit(session, deposit_event(seq, net_g=grams, at=at))
                session.commit()
        finally:
            engine.dispose()
        add_users(ledger_url, ("dlh", "citizen_a"))
        app = create_app(api_settings(influx=influx_settings, ledger_url=ledger_url))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                dlh = await login(client, "dlh-ambon", PASSWORD)
                days = {
                    "from": start.astimezone(WIT).date().isoformat(),
                    "to": end.astimezone(WIT).date().isoformat(),
                }
                resp = await client.get("/api/dlh/diversion", params=days, headers=dlh)
                assert resp.status_code == 200, resp.text
                body = resp.json()
                citizen = await login(client, "AMB-0001", PIN)
                refused = await client.get("/api/dlh/diversion", params=days, headers=citizen)
                backwards = {"from": days["to"], "to": days["from"]}
                if days["from"] != days["to"]:
                    bad = await client.get("/api/dlh/diversion", params=backwards, headers=dlh)
                    assert bad.status_code == 422
        assert refused.status_code == 403
        diverted_t = (1250 + 2000) / 1_000_000
        assert body["diverted_t"] == pytest.approx(diverted_t)
        assert body["diverted_measured_t"] == pytest.approx(diverted_t)
        assert body["tpa_bound_t"] == pytest.approx(expected)
        assert body["pickups"] == len(truth)
        # the demo city's file counts none of its TPS: not the city's rate (docs/dlh.md)
        assert body["rate_of_covered_tps"] == pytest.approx(diverted_t / (diverted_t + expected))
        assert body["rate"] is None
        cov = body["coverage"]
        assert (cov["tps_with_sensors"], cov["tps_reporting"], cov["tps_in_city"]) == (2, 1, None)
        assert (cov["pickups"], cov["enough"]) == (len(truth), False)
        assert body["tpa_bound_basis"] == "estimated"
        assert body["tps_without_sensor_data"] == ["tps-benteng"]
    finally:
        await influx.aclose()


@pytest.mark.integration
async def test_no_rate_of_the_covered_tps_when_none_reported_or_none_sent_to_the_tpa(
    influx_settings: InfluxSettings, ledger_url: str
) -> None:
    """The banks took in 3.25 kg; no TPS sensor reported: ``rate_of_covered_tps`` is null, not
    1.0 (the banks' tonnage over itself); one TPS reporting but no pickup (nothing sent to the
    TPA to set the banks against): still null."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            for seq, grams in ((1, 1250), (2, 2000)):
                apply_deposit(session, deposit_event(seq, net_g=grams))
            session.commit()
    finally:
        engine.dispose()
    add_users(ledger_url, ("dlh",))
    now = datetime.now(WIT)
    days = {"from": (now - timedelta(days=1)).date().isoformat(), "to": now.date().isoformat()}
    app = create_app(api_settings(influx=influx_settings, ledger_url=ledger_url))
    influx = Influx(influx_settings)
    try:
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                dlh = await login(client, "dlh-ambon", PASSWORD)
                silent = await client.get("/api/dlh/diversion", params=days, headers=dlh)
                flat = [
                    reading(i, 0.3, now - timedelta(minutes=10 * i)) for i in range(1, 7)
                ]  # a TPS reporting, never emptied
                await influx.write([fill_line(r) for r in flat])
                quiet = await client.get("/api/dlh/diversion", params=days, headers=dlh)
    finally:
        await influx.aclose()
    for resp, reporting in ((silent, 0), (quiet, 1)):
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["diverted_t"] == pytest.approx(3250 / 1_000_000)
        assert (body["tpa_bound_t"], body["pickups"]) == (0, 0)
        assert body["coverage"]["tps_reporting"] == reporting
        assert body["rate_of_covered_tps"] is None
        assert body["rate"] is None


# ---- the watcher ------------------------------------------------------------------------------


class Watch:
    """A TpsWatcher in the test's loop, restartable with the same persistent session."""

    def __init__(self, settings: tps.TpsWatchSettings) -> None:
        self.settings = settings
        self.engine = ledger.make_engine(settings.ledger_url)
        self.watcher: tps.TpsWatcher | None = None
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> tps.TpsWatcher:
        self.watcher = tps.TpsWatcher(self.settings, self.engine)
        ready = asyncio.Event()
        self.task = asyncio.create_task(self.watcher.run(ready))
        await asyncio.wait_for(ready.wait(), 20)
        return self.watcher

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None


@pytest.fixture
async def watch(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> AsyncIterator[Watch]:
    w = Watch(
        load_settings(
            tps.TpsWatchSettings,
            mqtt=mqtt_settings,
            influx=influx_settings,
            ledger_url=ledger_url,
            client_id=f"tps-watch-{test_id}",
            check_interval_s=3600,  # the tests call check_offline themselves
        )
    )
    yield w
    await w.stop()
    w.engine.dispose()


class Events:
    """Every TpsAlert on the TPS's event topic, from a subscriber of the test's own."""

    def __init__(self) -> None:
        self.got: list[TpsAlert] = []


@contextlib.asynccontextmanager
async def events(mqtt: MqttSettings, topic: str) -> AsyncIterator[Events]:
    seen = Events()
    async with mqtt_client(mqtt) as c:
        await c.subscribe(topic, qos=1)

        async def collect() -> None:
            async for m in c.messages:
                assert isinstance(m.payload, bytes)
                seen.got.append(decode_json(m.payload, TpsAlert))

        task = asyncio.create_task(collect())
        try:
            yield seen
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def publish(mqtt: MqttSettings, readings: list[FillReading]) -> None:
    topics = Topics(mqtt.topic_prefix)
    async with mqtt_client(mqtt) as c:
        for r in readings:
            await c.publish(topics.fill(r.tps_code, r.sensor_id), encode_json(r).decode(), qos=1)


async def processed(w: tps.TpsWatcher, n: int) -> None:
    async def done() -> bool:
        return w.processed >= n

    await eventually(done)


@pytest.mark.integration
async def test_alert_raised_once_and_cleared_once_across_a_restart(
    watch: Watch, mqtt_settings: MqttSettings
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=20)
    noisy = [0.5, 0.82, 0.79, 0.81, 0.83, 0.78, 0.85, 0.79, 0.82, 0.62, 0.55, 0.62, 0.58, 0.7]
    rs = [reading(i, v, t0 + timedelta(minutes=i)) for i, v in enumerate(noisy)]
    async with events(mqtt_settings, topics.tps_alert_event(TPS)) as seen:
        w = await watch.start()
        await publish(mqtt_settings, rs[:6])  # raised at 0.82, still raised at 0.78
        await processed(w, 6)
        await watch.stop()
        await publish(mqtt_settings, rs[6:9])  # while it is down: kept in its session
        w = await watch.start()
        await publish(mqtt_settings, rs[9:])  # cleared at 0.55; 0.62, 0.7 raise nothing
        await processed(w, len(rs) - 6)
        await publish(mqtt_settings, rs[1:3])  # a redelivered backlog changes nothing
        await processed(w, len(rs) - 4)

        async def both() -> bool:
            return len(seen.got) >= 2

        await eventually(both)
    assert [(e.code, e.state, e.value) for e in seen.got] == [
        ("fill_high", "raised", 0.82),
        ("fill_high", "cleared", 0.55),
    ]
    assert seen.got[0].raised_at == rs[1].measured_at
    assert seen.got[1].cleared_at == rs[10].measured_at
    with Session(watch.engine) as session:
        rows = list(session.scalars(select(ledger.TpsAlert)))
        assert [(r.code, r.raised_at, r.cleared_at) for r in rows] == [
            ("fill_high", rs[1].measured_at, rs[10].measured_at)
        ]
        assert rows[0].raised_published
        assert rows[0].cleared_published
    # the retained state says cleared
    async with mqtt_client(mqtt_settings) as c:
        await c.subscribe(topics.tps_alert_state(TPS, "us-01", "fill_high"), qos=1)
        async with asyncio.timeout(10):
            m = await anext(c.messages)
    assert isinstance(m.payload, bytes)
    assert m.retain
    assert decode_json(m.payload, TpsAlert).state == "cleared"


@pytest.mark.integration
async def test_offline_sensors_raised_and_cleared(
    watch: Watch, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    influx = Influx(influx_settings)
    try:  # us-09 went quiet 2 h ago, before the watcher started: InfluxDB remembers it
        await influx.ensure_database()
        await influx.write([fill_line(reading(1, 0.3, now - timedelta(hours=2), "us-09"))])
    finally:
        await influx.aclose()
    topics = Topics(mqtt_settings.topic_prefix)
    async with events(mqtt_settings, topics.tps_alert_event(TPS)) as seen:
        w = await watch.start()
        await publish(mqtt_settings, [reading(2, 0.3, now - timedelta(minutes=45))])
        await processed(w, 1)
        raised = await w.check_offline()  # us-01 silent 45 min, us-09 2 h; offline after 30
        assert sorted((a.sensor_id, a.state) for a in raised) == [
            ("us-01", "raised"),
            ("us-09", "raised"),
        ]
        assert await w.check_offline() == []  # once
        await publish(mqtt_settings, [reading(3, 0.31, datetime.now(UTC))])
        await processed(w, 2)

        async def three() -> bool:
            return len(seen.got) >= 3

        await eventually(three)
    assert sorted((e.sensor_id, e.code, e.state) for e in seen.got) == [
        ("us-01", "sensor_offline", "cleared"),
        ("us-01", "sensor_offline", "raised"),
        ("us-09", "sensor_offline", "raised"),
    ]
    us09 = next(e for e in seen.got if e.sensor_id == "us-09")
    assert us09.value is not None
    assert us09.value >= 120
    assert us09.threshold == 30


def journal_rows(engine: Engine) -> list[tuple[str, str, datetime, float, float]]:
    with Session(engine) as session:
        rows = session.execute(
            select(
                ledger.Tps.code,
                ledger.TpsPickup.sensor_id,
                ledger.TpsPickup.at,
                ledger.TpsPickup.fill_before,
                ledger.TpsPickup.fill_after,
            )
            .join(ledger.Tps, ledger.Tps.id == ledger.TpsPickup.tps_id)
            .order_by(ledger.TpsPickup.at)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


@pytest.mark.integration
async def test_the_watcher_journals_the_pickups_across_a_restart_and_rebuild_agrees(
    watch: Watch,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Three simulated days over MQTT; the watcher is stopped just after the first low reading
    of the second pickup and started again (the readings so far in InfluxDB, as the ingester
    writes them; a few published while it is down, kept in its session): it records exactly
    what ``detect_pickups`` finds over the whole series, the simulator's pickups, once each.
    ``wastebank tps rebuild-pickups`` over the same days gives the same rows."""
    readings, truth = simulated_days(3, seed=20261123)
    series = as_readings(readings)
    whole = tps.detect_pickups(series)
    assert [p.at for p in whole] == truth
    want = [(TPS, "us-01", p.at, p.fill_before, p.fill_after) for p in whole]
    cut = next(i for i, r in enumerate(series) if r.at == truth[1]) + 1  # after the first low
    influx = Influx(influx_settings)
    try:
        await influx.ensure_database()
        w = await watch.start()
        await publish(mqtt_settings, readings[:cut])
        await processed(w, cut)
        assert journal_rows(watch.engine) == want[:1]  # the second is not confirmed yet
        await watch.stop()
        await influx.write([fill_line(r) for r in readings[:cut]])
        await publish(mqtt_settings, readings[cut : cut + 1])  # while it is down
        w = await watch.start()
        primed = w.windows[TPS, "us-01"].readings  # from InfluxDB (and perhaps readings[cut])
        assert series[cut - 4 : cut] == [r for r in primed if r.at < series[cut].at][-4:]
        await publish(mqtt_settings, readings[cut + 1 :])
        await processed(w, len(readings) - cut)
        assert journal_rows(watch.engine) == want
        assert w.too_late == 0
        await publish(mqtt_settings, readings[cut - 3 : cut + 3])  # a redelivered backlog
        await processed(w, len(readings) - cut + 6)
        assert journal_rows(watch.engine) == want

        # the readings all in InfluxDB: rebuild the days from them
        await influx.write([fill_line(r) for r in readings[cut:]])
        await watch.stop()
        monkeypatch.setenv("WASTEBANK_INFLUX__URL", influx_settings.url)
        monkeypatch.setenv("WASTEBANK_INFLUX__DATABASE", influx_settings.database)
        days = [series[0].at.astimezone(WIT).date(), series[-1].at.astimezone(WIT).date()]
        args = ["tps", "rebuild-pickups", "--from", str(days[0]), "--to", str(days[1])]
        result = await asyncio.to_thread(
            CliRunner().invoke, app, [*args, "--ledger-url", watch.settings.ledger_url]
        )
        assert result.exit_code == 0, result.output
        n = len(truth)
        assert f"dihapus / removed {n}, dicatat / recorded {n}" in result.output
        assert journal_rows(watch.engine) == want
        # one TPS, a day with none of them: its rows go, the others stay
        one_day = ["--from", str(days[1]), "--to", str(days[1]), "--tps", TPS]
        result = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["tps", "rebuild-pickups", *one_day, "--ledger-url", watch.settings.ledger_url],
        )
        assert result.exit_code == 0, result.output
        assert journal_rows(watch.engine) == want
        missing = await asyncio.to_thread(
            CliRunner().invoke,
            app,
            ["tps", "rebuild-pickups", *one_day[:4], "--tps", "tps-nowhere", "--ledger-url",
             watch.settings.ledger_url],
        )  # fmt: skip
        assert missing.exit_code == 2
        assert "tps-nowhere" in missing.output
    finally:
        await influx.aclose()


@pytest.mark.integration
async def test_late_readings_undo_a_false_pickup_in_the_journal(
    watch: Watch, mqtt_settings: MqttSettings
) -> None:
    """The arrival order of ``test_late_high_readings_undo_a_pickup_and_the_true_one_is_
    recorded`` over MQTT: the drop at the fourth reading is journaled, then undone by the two
    late high readings (in the same transaction as theirs), and the true pickup recorded."""
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    levels = [0.9, 0.9, 0.9, 0.05, 0.9, 0.9, 0.05, 0.05]
    rs = [reading(i, v, t0 + timedelta(minutes=10 * i)) for i, v in enumerate(levels)]
    w = await watch.start()
    await publish(mqtt_settings, [*rs[:4], *rs[6:]])
    await processed(w, 6)
    assert [(r[2], r[3]) for r in journal_rows(watch.engine)] == [(rs[3].measured_at, 0.9)]
    await publish(mqtt_settings, rs[4:6])
    await processed(w, 8)
    assert [(r[2], r[3], r[4]) for r in journal_rows(watch.engine)] == [
        (rs[6].measured_at, 0.9, 0.05)
    ]


@pytest.mark.integration
async def test_tpa_bound_tonnes_from_the_journal_by_hand(
    influx_settings: InfluxSettings, ledger_url: str
) -> None:
    """Journal rows in WIT 23 November 2026 (00:00 WIT = 15:00 UTC the day before):

    * tps-batu-merah (8 m³, 214.8 kg/m³): fill before 0.9 and 1.2 (clamped to 1.0):
      8 × (0.9 + 1.0) × 214.8 = 3,264.96 kg; one at 23:59 UTC on the 23rd (the 24th in WIT)
      is outside the day;
    * tps-benteng (6 m³, 214.8 kg/m³): one of 0.5: 6 × 0.5 × 214.8 = 644.4 kg.

    Total 3.90936 t from 3 pickups. Recalibrated to 250 kg/m³ at tps-benteng, its past pickup
    weighs 6 × 0.5 × 250 = 750 kg: total 3.26496 + 0.75 = 4.01496 t. A TPS without a pickup is
    in ``tps_without_sensor_data`` unless InfluxDB has a reading of it in the period."""
    day = (datetime(2026, 11, 23, tzinfo=WIT), datetime(2026, 11, 24, tzinfo=WIT))
    utc = datetime(2026, 11, 22, 15, tzinfo=UTC)
    engine = ledger.make_engine(ledger_url)
    influx = Influx(influx_settings)
    try:
        await influx.ensure_database()
        with Session(engine) as session:
            bm, bt = (tps.get_tps(session, c) for c in (TPS, "tps-benteng"))
            assert bm is not None
            assert bt is not None
            rows = [
                (bm.id, "us-01", utc + timedelta(hours=2), 0.9),
                (bm.id, "us-02", utc + timedelta(hours=20), 1.2),
                (bm.id, "us-01", datetime(2026, 11, 23, 23, 59, tzinfo=UTC), 0.95),
                (bt.id, "us-01", utc, 0.5),  # 00:00 WIT: in the day
            ]
            for tps_id, sensor, at, fill in rows:
                p = tps.Pickup(at=at, fill_before=fill, fill_after=0.02)
                assert tps.record_pickups(session, tps_id, sensor, [p]) == 1
                assert tps.record_pickups(session, tps_id, sensor, [p]) == 0  # once
            session.commit()
            est = await tps.tpa_bound_tonnes(session, influx, "ambon", *day)
            assert est.pickups == 3
            assert est.tonnes == pytest.approx(3.90936)
            assert est.per_tps_tonnes == pytest.approx({TPS: 3.26496, "tps-benteng": 0.6444})
            assert est.tps_without_sensor_data == []
            assert est.basis == "estimated"
            assert "density" in est.method
            tps.calibrate(session, "tps-benteng", density_kg_m3=250.0, source="jembatan timbang")
            est = await tps.tpa_bound_tonnes(session, influx, "ambon", *day)
            assert est.tonnes == pytest.approx(4.01496)
            # the next day: only the 23:59 UTC pickup; tps-benteng has no pickup and no reading,
            # until one reading of it is written
            nxt = (day[1], day[1] + timedelta(days=1))
            est = await tps.tpa_bound_tonnes(session, influx, "ambon", *nxt)
            assert (est.pickups, est.tps_without_sensor_data) == (1, ["tps-benteng"])
            assert est.tonnes == pytest.approx(8 * 0.95 * 214.8 / 1000)
            quiet = replace(reading(1, 0.3, day[1] + timedelta(hours=5)), tps_code="tps-benteng")
            await influx.write([fill_line(quiet)])
            est = await tps.tpa_bound_tonnes(session, influx, "ambon", *nxt)
            assert est.tps_without_sensor_data == []
    finally:
        await influx.aclose()
        engine.dispose()


# ---- the API ----------------------------------------------------------------------------------


@pytest.mark.integration
async def test_api_lists_tps_and_pickups_with_masses(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str
) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    levels = [0.6, 0.7, 0.8, 0.9, 0.03, 0.04] + [0.05 + 0.05 * i for i in range(7)]
    rs = [reading(i, v, now - timedelta(hours=len(levels) - 1 - i)) for i, v in enumerate(levels)]
    influx = Influx(influx_settings)
    try:
        await influx.ensure_database()
        await influx.write([fill_line(r) for r in rs])
    finally:
        await influx.aclose()
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            tps.calibrate(session, TPS, density_kg_m3=250.0, source="jembatan timbang uji")
            session.commit()
    finally:
        engine.dispose()
    add_users(ledger_url, ("dlh",))
    app = create_app(
        api_settings(mqtt=mqtt_settings, influx=influx_settings, ledger_url=ledger_url)
    )
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            dlh = await login(client, "dlh-ambon", "kata-sandi-uji-2026")
            listed = (await client.get("/api/tps", headers=dlh)).json()
            detail = await client.get(f"/api/tps/{TPS}", headers=dlh)
            missing = await client.get("/api/tps/tps-nowhere", headers=dlh)
            alerts = await client.get("/api/tps/alerts", headers=dlh)
    assert [t["code"] for t in listed] == ["tps-batu-merah", "tps-benteng"]
    bm = listed[0]
    assert bm["fill"] == pytest.approx(0.35)
    assert not bm["offline"]
    (c,) = bm["containers"]
    assert datetime.fromisoformat(c["last_emptied"]) == rs[4].measured_at
    assert c["fill_rate_per_hour"] == pytest.approx(0.05)  # the 6 h since: 0.05 per hour
    assert c["predicted_full"]["hours"] == pytest.approx(13.0)  # (1 - 0.35) / 0.05
    assert listed[1]["containers"] == []
    assert listed[1]["offline"]
    assert detail.status_code == 200, detail.text
    body = detail.json()
    (p,) = body["pickups"]
    assert p["fill_before"] == pytest.approx(0.8)  # median of 0.7, 0.8, 0.9
    assert p["mass_kg"] == pytest.approx(8.0 * 0.8 * 250.0)  # 1,600 kg
    assert body["total_mass_kg"] == pytest.approx(1600.0)
    assert body["density_source"] == "jembatan timbang uji"
    assert body["timezone"] == "Asia/Jayapura"
    assert body["basis"] == "estimated"
    assert missing.status_code == 404
    assert alerts.status_code == 200
    assert alerts.json() == []


def test_calibrate_from_a_weighbridge_keeps_the_density_and_its_source(ledger_url: str) -> None:
    """`wastebank tps calibrate` commits what it set (the tps functions leave that to it):
    1,200 kg weighed from tps-benteng's 6 m3 container at a 0.8 fill is 250 kg/m3."""
    args = ["tps", "calibrate", "--tps", "tps-benteng", "--weighbridge-kg", "1200", "--fill", "0.8"]
    result = CliRunner().invoke(
        app, [*args, "--source", "jembatan timbang uji", "--ledger-url", ledger_url]
    )
    assert result.exit_code == 0, result.output
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as session:
            row = tps.get_tps(session, "tps-benteng")
            assert row is not None
            assert row.density_kg_m3 == pytest.approx(250.0)
            assert row.density_source.startswith("jembatan timbang uji (jembatan timbang")
    finally:
        engine.dispose()
