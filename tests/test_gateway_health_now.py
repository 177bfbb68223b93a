"""Faults reach the fleet at once: the gateway publishes its health report when a scale's state,
an alert, a sensor's port, the clock's sync or the broker link changes, at most one report per
``health_min_gap_s``; the periodic report stays.

Through the real broker: the gateway's uplink and health loop run in the test's event loop, its
scale fed through ``Gateway.feed`` with the caller's monotonic time (so the fault debounce is
exercised without waiting for it), and an observer with a persistent session hears the reports
(what is published while it is away is queued for it). Every wait awaits a report, none sleeps;
``health_interval_s`` is its longest, a minute, wherever the periodic report must not be the one
heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiomqtt
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from firmware_sim.encoders import encode_weight
from gateway.app import Faults, Gateway
from gateway.readers import ScaleReader
from gateway.scale_state import FAULT_CLEAR_S, FAULT_RAISE_S
from gateway.settings import HEALTH_INTERVAL_MAX_S
from ingest.settings import IngestSettings
from tests.conftest import PrivateMosquitto, eventually, mqtt_login
from tests.gateway_helpers import gateway_settings
from wastebank import fleet, ledger
from wastebank.config import MqttSettings
from wastebank.messages import GatewayHealth, ScaleState, Topics
from wastebank.structs import decode_json

pytestmark = pytest.mark.integration

log = logging.getLogger("tests.health_now")

OL = b"OL,GS,+       kg\r\n"
"""A GS/NT indicator's overload line (docs/protocol.md)."""
STEP = 0.1
"""A 10 Hz indicator."""
LONGEST = HEALTH_INTERVAL_MAX_S  # the longest a site file may give


# ---- what is news for the fleet (pure) ---------------------------------------------------------


def _faults(
    state: ScaleState = "ok",
    *,
    port: bool | None = True,
    run: datetime | None = None,
    clock: bool | None = True,
    alerts: frozenset[tuple[str, str]] = frozenset(),
) -> Faults:
    return Faults.of([("scale-01", state)], [("tps-01-s1", port, run)], clock, alerts)


def test_what_is_news_for_the_fleet() -> None:
    told = _faults()
    assert not _faults("unsettled").news_since(told)  # every load: no news
    for state in ("overload", "underload", "indicator_error", "disconnected", "zero_drift"):
        assert _faults(state).news_since(told), state
    assert _faults(alerts=frozenset({("fill_high", "tps-01")})).news_since(told)
    assert _faults(alerts=frozenset()).news_since(_faults(alerts=frozenset({("x", "y")})))
    assert _faults(port=False).news_since(told)
    assert _faults(clock=False).news_since(told)
    run = datetime(2026, 12, 6, 23, 0, tzinfo=UTC)
    assert not _faults(run=run).news_since(told)  # a run's start: only a long one is a fault
    assert _faults(run=None).news_since(_faults(run=run))  # the run the fleet knows of ended
    assert not _faults(run=run).news_since(_faults(run=run))


# ---- through the broker --------------------------------------------------------------------------


class Reports:
    """The gateway's health reports as an observer with a persistent session hears them."""

    def __init__(self, mqtt: MqttSettings, topic: str, name: str) -> None:
        self.mqtt, self.topic, self.name = mqtt, topic, name
        self.heard: list[GatewayHealth] = []
        self.read = 0
        self._new = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _client(self) -> aiomqtt.Client:
        return aiomqtt.Client(
            self.mqtt.host, self.mqtt.port, clean_session=False, **mqtt_login(self.mqtt, self.name)
        )

    async def connect(self, *, subscribe: bool) -> None:
        """Listen from now on (``subscribe``: the first time; the session keeps it after)."""
        ready = asyncio.Event()

        async def listen() -> None:
            async with self._client() as client:
                if subscribe:
                    await client.subscribe(self.topic, qos=1)
                ready.set()
                with contextlib.suppress(aiomqtt.MqttError):  # the broker stopped
                    async for message in client.messages:
                        assert isinstance(message.payload, bytes)
                        self.heard.append(decode_json(message.payload, GatewayHealth))
                        self._new.set()

        self._task = asyncio.create_task(listen())
        async with asyncio.timeout(20):
            await ready.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def next(self, what: Callable[[GatewayHealth], bool] = lambda _h: True) -> GatewayHealth:
        """The first report not yet read that ``what`` holds for (those before it are read too)."""
        async with asyncio.timeout(20):
            while True:
                for i in range(self.read, len(self.heard)):
                    if what(self.heard[i]):
                        self.read = i + 1
                        return self.heard[i]
                self._new.clear()
                await self._new.wait()


def _state(h: GatewayHealth) -> str | None:
    return h.scales[0].state


def _alerts(h: GatewayHealth) -> set[str]:
    assert isinstance(h.alerts_active, list)  # a gateway of this version always says
    return {a.code for a in h.alerts_active}


def _gateway(tmp_path: Path, mqtt: MqttSettings, **values: Any) -> tuple[Gateway, ScaleReader]:
    scale = {"id": "scale-01", "port": tmp_path / "tty", "flow": "attendant", "protocol": "gs_nt"}
    settings = gateway_settings(
        tmp_path, gateway_id="gw-now", mqtt=mqtt, scales=[scale], http_port=0, **values
    )
    gw = Gateway(settings)
    reader = gw.readers["scale-01"]
    reader.connected = True  # as its port task sets it; the port is not opened here
    return gw, reader


@contextlib.asynccontextmanager
async def _running(gw: Gateway) -> AsyncIterator[None]:
    """The gateway's broker link and health loop (its ports are fed by the test)."""
    tasks = [asyncio.create_task(gw.uplink.run()), asyncio.create_task(gw.health_loop())]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        gw.outbox.close()


class Scale:
    """A 10 Hz GS/NT indicator fed on the caller's clock."""

    def __init__(self, gw: Gateway, reader: ScaleReader) -> None:
        self.gw, self.reader, self.now = gw, reader, 1000.0

    def send(self, frame: bytes, seconds: float) -> None:
        for _ in range(round(seconds / STEP)):
            self.gw.feed(self.reader, frame, self.now)
            self.now += STEP

    def overload(self) -> None:
        self.send(OL, FAULT_RAISE_S + 2 * STEP)
        assert self.reader.health().state == "overload"

    def settle(self) -> None:
        self.send(encode_weight(0, stable=True), FAULT_CLEAR_S + 2 * STEP)
        assert self.reader.health().state == "ok"

    def port(self, connected: bool) -> None:
        """The port closes or opens again, as the reader's port task does it (an opened port
        starts afresh: no last weight, and its staleness clock from now)."""
        if connected:
            self.reader.reset()
        self.reader.connected = connected
        self.reader.note_state()
        self.reader.on_change()


def _topic(mqtt: MqttSettings) -> str:
    return Topics(mqtt.topic_prefix).gateway_health("bs-batu-merah", "gw-now")


@contextlib.asynccontextmanager
async def _observed(
    tmp_path: Path, mqtt: MqttSettings, observer: str, **values: Any
) -> AsyncIterator[tuple[Scale, Reports]]:
    """A running gateway whose scale is settled at 0 g, and its reports from the first one (the
    link is up: a fresh retained report) on; that first one is read already."""
    gw, reader = _gateway(tmp_path, mqtt, **values)
    scale = Scale(gw, reader)
    scale.settle()
    reports = Reports(mqtt, _topic(mqtt), observer)
    await reports.connect(subscribe=True)
    try:
        async with _running(gw):
            first = await reports.next()
            assert (_state(first), _alerts(first)) == ("ok", set())
            yield scale, reports
    finally:
        await reports.close()


async def test_a_fault_and_its_end_are_published_at_once(
    mqtt_settings: MqttSettings, tmp_path: Path, test_id: str
) -> None:
    name = f"observer-{test_id}"
    async with _observed(tmp_path, mqtt_settings, name, health_interval_s=LONGEST) as (
        scale,
        reports,
    ):
        scale.overload()
        faulty = await reports.next()  # not the periodic one: the change's
        assert (_state(faulty), _alerts(faulty)) == ("overload", {"overload"})

        scale.settle()
        back = await reports.next()
        assert (_state(back), _alerts(back)) == ("ok", set())
        assert back.boot == reports.heard[0].boot


async def test_a_burst_of_changes_is_one_or_two_reports(
    mqtt_settings: MqttSettings, tmp_path: Path, test_id: str
) -> None:
    name = f"observer-{test_id}"
    async with _observed(tmp_path, mqtt_settings, name, health_interval_s=LONGEST) as (
        scale,
        reports,
    ):
        # Ten changes, the health loop free to run between each: overload raised and cleared
        # four times and raised again (nine), then the port closes (ten).
        for _ in range(4):
            scale.overload()
            await asyncio.sleep(0)  # a turn of the event loop, not a wait
            scale.settle()
            await asyncio.sleep(0)
        scale.overload()
        await asyncio.sleep(0)
        scale.port(False)
        last = await reports.next(lambda h: _state(h) == "disconnected")
        assert _alerts(last) == {"overload"}
        burst = reports.read - 1  # the reports after the first, up to this one

        # A last change: its report follows whatever the burst still had pending.
        scale.port(True)
        after = await reports.next()
        assert _state(after) == "overload"  # no report of the burst came after its last
        assert burst <= 2, [(_state(h), _alerts(h)) for h in reports.heard]


async def test_a_change_during_a_broker_outage_is_published_once_on_reconnect(
    private_mosquitto: PrivateMosquitto, tmp_path: Path, test_id: str
) -> None:
    broker = private_mosquitto
    mqtt = broker.mqtt(f"test-{test_id}/")
    name = f"observer-{test_id}"
    async with _observed(tmp_path, mqtt, name, health_interval_s=LONGEST) as (scale, reports):
        broker.stop()
        await eventually(_is(lambda: not scale.gw.connected.is_set()))
        scale.overload()  # two changes while the link is down: one report when it is back
        scale.port(False)

        broker.start()  # same run_dir: the observer's session and its queue come back
        await reports.connect(subscribe=False)
        # The first report may come again: the broker stopped before the observer's PUBACK
        # reached it, and the session delivers it once more (QoS 1: at least once).
        first = reports.heard[0]
        back = await reports.next(lambda h: h != first)
        assert (_state(back), _alerts(back)) == ("disconnected", {"overload"})
        scale.port(True)
        after = await reports.next()
        assert _state(after) == "overload"
        # the first, the one after the outage, the last
        assert len([h for h in reports.heard if h != first]) == 2


async def test_the_periodic_report_stays(
    mqtt_settings: MqttSettings, tmp_path: Path, test_id: str
) -> None:
    name = f"observer-{test_id}"
    every = {"health_interval_s": 1, "health_min_gap_s": 1}
    async with _observed(tmp_path, mqtt_settings, name, **every) as (_scale, reports):
        later = [await reports.next(), await reports.next()]  # with nothing changed
        assert reports.heard[0].at < later[0].at < later[1].at
        assert all(_state(h) == "ok" for h in later)


def _is(predicate: Callable[[], bool]) -> Callable[[], Any]:
    async def holds() -> bool:
        return predicate()

    return holds


# ---- end to end: the gateway, the broker, the ingester, the ledger -------------------------------


def _stored(ledger_url: str) -> tuple[GatewayHealth, datetime] | None:
    """The gateway's health report the ingester keeps for the fleet, and when it was heard."""
    engine = ledger.make_engine(ledger_url)
    try:
        with Session(engine) as s:
            row = s.scalars(
                select(fleet.DeviceReport).where(fleet.DeviceReport.device_id == "gw-now")
            ).first()
    finally:
        engine.dispose()
    if row is None or row.health is None or row.health_received_at is None:
        return None
    return decode_json(row.health, GatewayHealth), row.health_received_at


def _stored_state(ledger_url: str) -> str | None:
    stored = _stored(ledger_url)
    return None if stored is None else _state(stored[0])


async def test_a_fault_reaches_the_fleets_ledger_at_once(
    mqtt_settings: MqttSettings, ingester: IngestSettings, ledger_url: str, tmp_path: Path
) -> None:
    """The fault, from the scale's frame to the ingester's ``device_report`` row, with the
    gateway's part (until the report was built) and the broker's and ingester's (until it was
    heard): the figures in docs/fleet.md ("How soon")."""
    gw, reader = _gateway(tmp_path, mqtt_settings, health_interval_s=LONGEST, health_min_gap_s=1)
    scale = Scale(gw, reader)
    scale.settle()
    async with _running(gw):
        await eventually(_is(lambda: _stored_state(ledger_url) == "ok"))
        before = _stored(ledger_url)
        assert before is not None
        loop = asyncio.get_running_loop()
        changed, changed_at = loop.time(), datetime.now(UTC)
        scale.overload()
        await eventually(_is(lambda: _stored_state(ledger_url) == "overload"), interval=0.01)
        total = loop.time() - changed
        stored = _stored(ledger_url)
        assert stored is not None
        report, heard = stored
        log.info(
            "fault -> device_report %.3f s: gateway %.3f s (%.3f s after the report before), "
            "broker and ingester %.3f s",
            total,
            (report.at - changed_at).total_seconds(),
            (report.at - before[0].at).total_seconds(),
            (heard - report.at).total_seconds(),
        )
