"""Faults on the real services while a stream flows: the broker restarted several times, the
ingester SIGKILLed and restarted, InfluxDB stopped for a minute. Every published deposit and
reading ends up exactly once in the ledger and in InfluxDB: counted, not sampled.

The stream comes from an at-least-once publisher (like a gateway's outbox): a message whose PUBACK
does not arrive is published again after reconnecting, so the ingester also sees duplicates.
"""

from __future__ import annotations

import asyncio
import functools
import signal
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.conftest import (
    PrivateMosquitto,
    Processes,
    deposit_event,
    eventually,
    free_port,
    influx_database,
    mqtt_login,
    settings_env,
)
from tests.ledger_helpers import journal_is_balanced
from wastebank import ledger, services
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import FillReading, Topics
from wastebank.structs import encode_json

pytestmark = pytest.mark.integration

DEPOSITS = 600
READINGS = 3000
CARDS = ["04A1B2C3D4", "04A1B2C3D5", "04A1B2C3D6"]


def stream(topics: Topics) -> list[tuple[str, bytes]]:
    """Deposits and fill readings interleaved, each with a unique id."""
    base = datetime.now(UTC) - timedelta(hours=1)
    items: list[tuple[str, bytes]] = []
    for n in range(READINGS):
        if n % (READINGS // DEPOSITS) == 0:
            seq = n // (READINGS // DEPOSITS) + 1
            ev = deposit_event(
                seq,
                net_g=100 + seq,
                card=CARDS[seq % 3],
                category=("pet", "kardus", "kaleng")[seq % 3],
                at=base + timedelta(seconds=seq),
            )
            items.append((topics.deposit(ev.bank_code, ev.gateway_id), encode_json(ev)))
        reading = FillReading(
            reading_id=f"us-01-{n + 1}",
            sensor_id="us-01",
            seq=n + 1,
            tps_code="tps-batu-merah",
            measured_at=base + timedelta(milliseconds=n),
            distance_mm=1400 - n % 1000,
            fillingLevel=round((n % 1000) / 1000, 3),
        )
        items.append((topics.fill("tps-batu-merah", "us-01"), encode_json(reading)))
    return items


class Publisher:
    """Publishes a list at QoS 1, at least once: on a lost connection it reconnects and sends
    again everything not yet acknowledged."""

    def __init__(self, mqtt: MqttSettings, items: list[tuple[str, bytes]]) -> None:
        self.mqtt = mqtt
        self.items = items
        self.acked = 0
        self.reconnects = 0

    async def run(self, pace: float = 0.0) -> None:
        while self.acked < len(self.items):
            try:
                async with aiomqtt.Client(
                    self.mqtt.host, self.mqtt.port, timeout=5, **mqtt_login(self.mqtt)
                ) as client:
                    while self.acked < len(self.items):
                        topic, payload = self.items[self.acked]
                        await client.publish(topic, payload, qos=1)
                        self.acked += 1
                        if pace:
                            await asyncio.sleep(pace)  # a steady stream, not a burst
            except aiomqtt.MqttError:
                self.reconnects += 1
                await asyncio.sleep(0.2)  # the broker is restarting; try again


def counts(url: str) -> tuple[int, int]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            deposits = s.scalar(select(func.count()).select_from(ledger.Deposit)) or 0
            dead = s.scalar(select(func.count()).select_from(ledger.DeadLetter)) or 0
            return deposits, dead
    finally:
        engine.dispose()


async def influx_count(settings: InfluxSettings, measurement: str, field: str) -> int:
    influx = Influx(settings)
    try:
        series = await influx.query(f'SELECT count("{field}") FROM "{measurement}"')  # noqa: S608
    except Exception:  # noqa: BLE001 - InfluxDB down or starting: "not yet"
        return -1
    finally:
        await influx.aclose()
    return int(series[0].values[0][1]) if series else 0


async def assert_exactly_once(influx: InfluxSettings, ledger_url: str) -> None:
    async def complete() -> bool:
        return (
            counts(ledger_url)[0] == DEPOSITS
            and await influx_count(influx, "deposit", "net_g") == DEPOSITS
            and await influx_count(influx, "fill_level", "filling_level") == READINGS
        )

    await eventually(complete, timeout=180)
    assert counts(ledger_url) == (DEPOSITS, 0)  # nothing dead-lettered, nothing doubled
    engine = ledger.make_engine(ledger_url)
    with Session(engine) as s:
        assert journal_is_balanced(s)
        entries = s.scalar(select(func.count()).select_from(ledger.JournalEntry))
        assert entries == 2 * DEPOSITS
    engine.dispose()


@pytest.fixture
def ingest_env(test_id: str) -> dict[str, str]:
    return {"WASTEBANK_CLIENT_ID": f"ingest-{test_id}", "WASTEBANK_BATCH_MAX_AGE_S": "0.05"}


async def test_broker_restarts_and_sigkilled_ingester_lose_and_double_nothing(
    private_mosquitto: PrivateMosquitto,
    processes: Processes,
    influx_settings: InfluxSettings,
    ledger_url: str,
    ingest_env: dict[str, str],
    test_id: str,
) -> None:
    broker = private_mosquitto
    mqtt = broker.mqtt(f"faults-{test_id}/")
    env = {**settings_env(mqtt, influx_settings, ledger_url), **ingest_env}
    starts = 0

    def start_ingester() -> None:
        nonlocal starts
        starts += 1
        processes.start(f"ingest-{starts}", ["ingest"], env)

    async def subscribed() -> bool:
        return "subscribed" in processes.log(f"ingest-{starts}")

    start_ingester()
    await eventually(subscribed)
    items = stream(Topics(mqtt.topic_prefix))
    publisher = Publisher(mqtt, items)
    publishing = asyncio.create_task(publisher.run(pace=0.001))

    async def past(share: float) -> bool:
        return publisher.acked >= share * len(items)

    for share in (0.15, 0.35, 0.55):
        await eventually(functools.partial(past, share), timeout=120)
        broker.stop()
        broker.start()
    for share in (0.65, 0.8):
        await eventually(functools.partial(past, share), timeout=120)
        processes.kill(f"ingest-{starts}", signal.SIGKILL)
        start_ingester()
    await asyncio.wait_for(publishing, 300)
    assert publisher.reconnects >= 3

    await assert_exactly_once(influx_settings, ledger_url)


@pytest.fixture
def private_influx(tmp_path: Path) -> Iterator[services.ServicesSettings]:
    settings = load_settings(
        services.ServicesSettings,
        run_dir=tmp_path / "influx-run",
        mqtt_port=free_port(),
        influx_port=free_port(),
    )
    services.up(settings, only=["influxd"])
    yield settings
    services.down(settings)


@pytest.fixture
def private_influx_settings(
    private_influx: services.ServicesSettings, test_id: str
) -> InfluxSettings:
    return influx_database(private_influx, f"f_{test_id}")


async def test_influxdb_down_for_a_minute_loses_nothing(
    private_influx: services.ServicesSettings,
    private_influx_settings: InfluxSettings,
    processes: Processes,
    mqtt_settings: MqttSettings,
    ledger_url: str,
    ingest_env: dict[str, str],
) -> None:
    influx = private_influx_settings
    env = {**settings_env(mqtt_settings, influx, ledger_url), **ingest_env}
    processes.start("ingest", ["ingest"], env)

    async def subscribed() -> bool:
        return "subscribed" in processes.log("ingest")

    await eventually(subscribed)
    items = stream(Topics(mqtt_settings.topic_prefix))
    publisher = Publisher(mqtt_settings, items)
    # A steady stream over about a minute and a half; InfluxDB is away for a minute of it.
    publishing = asyncio.create_task(publisher.run(pace=90 / len(items)))

    async def past(share: float) -> bool:
        return publisher.acked >= share * len(items)

    await eventually(lambda: past(0.1), timeout=60)
    services.down(private_influx)
    stopped_at = asyncio.get_running_loop().time()

    async def logged_unavailable() -> bool:
        return "InfluxDB tidak tersedia" in processes.log("ingest")

    await eventually(logged_unavailable, timeout=30)
    await eventually(lambda: past(0.75), timeout=120)
    # A minute away, measured from the stop: the stream keeps flowing meanwhile.
    while asyncio.get_running_loop().time() - stopped_at < 60:
        await asyncio.sleep(1)  # the outage lasts a minute by design; this is its clock
    services.up(private_influx, only=["influxd"])
    await asyncio.wait_for(publishing, 300)

    await assert_exactly_once(influx, ledger_url)
    assert "InfluxDB menerima lagi" in processes.log("ingest")


async def test_two_ingesters_share_one_subscription_without_loss_or_duplicates(
    processes: Processes,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    ledger_url: str,
    test_id: str,
) -> None:
    env = settings_env(mqtt_settings, influx_settings, ledger_url)
    ports = [free_port(), free_port()]
    for n, port in enumerate(ports, start=1):
        processes.start(
            f"ingest-{n}",
            ["ingest"],
            {
                **env,
                "WASTEBANK_CLIENT_ID": f"ingest-{test_id}-{n}",
                "WASTEBANK_SHARED_GROUP": f"g{test_id}",
                "WASTEBANK_METRICS__PORT": str(port),
                "WASTEBANK_BATCH_MAX_AGE_S": "0.05",
            },
        )

    async def both_subscribed() -> bool:
        return all("subscribed" in processes.log(f"ingest-{n}") for n in (1, 2))

    await eventually(both_subscribed)
    await Publisher(mqtt_settings, stream(Topics(mqtt_settings.topic_prefix))).run()
    await assert_exactly_once(influx_settings, ledger_url)

    received = []
    for port in ports:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
            text = (await web.get("/metrics")).text
        received.append(
            sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("wastebank_ingest_received_total{")
            )
        )
    assert all(r > 0 for r in received), received  # the group really split the stream
    assert sum(received) == DEPOSITS + READINGS  # each message went to one of them
