"""The broker keeps an absent ingester's backlog: 100,000 QoS 1 readings, every one counted.

Mosquitto's default ``max_queued_messages`` (1000) silently drops what a persistent session
cannot take while its client is away; the config `wastebank services up` writes lifts that
bound. Here the ingester subscribes (creating its persistent session), is stopped, 100,000 fill
readings are published at QoS 1, the ingester starts again with the same client id, and InfluxDB
must end up with all of them, with no "dropped" notice in the broker's log.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from tests.conftest import PrivateMosquitto, Processes, eventually, mqtt_login, settings_env
from wastebank.config import InfluxSettings, MqttSettings
from wastebank.influx import Influx
from wastebank.messages import FillReading, Topics
from wastebank.structs import encode_json

pytestmark = pytest.mark.integration
log = logging.getLogger(__name__)

BACKLOG = 100_000
SENSORS = 50
WINDOW = 2_000  # QoS 1 publishes in flight (not yet PUBACKed) per publisher connection
DRAIN_DEADLINE_S = 300.0
"""Generous for now: the ingester being rewritten for throughput; the goal is < 60 s."""
STALL_S = 30.0
"""No new reading for this long while some are missing: they are lost, not late."""
DROPPED_NOTICE = "Outgoing messages are being dropped"
"""Mosquitto 2.0 logs this (NOTICE, once per episode) when a client's queue limit is reached."""


def readings(n: int) -> list[tuple[str, bytes]]:
    """``n`` valid, distinct fill readings: (topic, JSON payload), recent enough for retention."""
    topics = Topics("")  # the prefix is added by the publisher
    base = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    out = []
    for i in range(n):
        sensor, seq = f"fs-{i % SENSORS:02d}", i // SENSORS
        reading = FillReading(
            reading_id=f"{sensor}-{seq}",
            sensor_id=sensor,
            seq=seq,
            tps_code="tps-backlog",
            measured_at=base + timedelta(seconds=seq),
            distance_mm=1000 + i % 500,
            fillingLevel=(i % 101) / 100,
            battery_pct=90,
        )
        out.append((topics.fill("tps-backlog", sensor), encode_json(reading)))
    return out


def publish_qos1(mqtt: MqttSettings, messages: list[tuple[str, bytes]], client_id: str) -> None:
    """Publish at QoS 1 with ``WINDOW`` in flight; return once the broker acknowledged each.

    paho's own queue is O(n) per acknowledgement when it holds many messages, so the window is
    kept here with a semaphore released by each PUBACK.
    """
    window = threading.Semaphore(WINDOW)
    acked = 0
    all_acked = threading.Event()

    def on_publish(*_: object) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == len(messages):
            all_acked.set()

    login = mqtt_login(mqtt, client_id)
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=login["identifier"])
    client.username_pw_set(login["username"], login["password"])
    client.max_inflight_messages_set(WINDOW)
    client.on_publish = on_publish
    client.connect(mqtt.host, mqtt.port)
    client.loop_start()
    try:
        for topic, payload in messages:
            if not window.acquire(timeout=60):
                raise AssertionError(f"no PUBACK for 60 s ({acked} of {len(messages)} acked)")
            info = client.publish(mqtt.topic_prefix + topic, payload, qos=1)
            assert info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS, info.rc
        assert all_acked.wait(60), f"{acked} of {len(messages)} acknowledged"
    finally:
        client.disconnect()
        client.loop_stop()


async def fill_count(settings: InfluxSettings) -> int:
    influx = Influx(settings)
    try:
        series = await influx.query('SELECT count("filling_level") FROM "fill_level"')
    finally:
        await influx.aclose()
    return sum(int(row[1]) for s in series for row in s.values)


@pytest.mark.timeout(DRAIN_DEADLINE_S + 240)
async def test_an_absent_ingesters_backlog_of_100k_arrives_whole(
    private_mosquitto: PrivateMosquitto,
    influx_settings: InfluxSettings,
    ledger_url: str,
    processes: Processes,
    test_id: str,
    record_property: Callable[[str, object], None],
) -> None:
    mqtt = private_mosquitto.mqtt(f"test-{test_id}/")
    env = {
        **settings_env(mqtt, influx_settings, ledger_url),
        "WASTEBANK_CLIENT_ID": f"ingest-{test_id}",
    }
    messages = readings(BACKLOG)

    # 1. The ingester subscribes once (its persistent session now exists), then goes away.
    processes.start("ingest-1", ["ingest"], env)

    async def subscribed() -> bool:
        return "subscribed" in processes.log("ingest-1")

    await eventually(subscribed, timeout=30)
    processes.kill("ingest-1", signal.SIGTERM)

    # 2. The backlog, published while no ingester is connected.
    t0 = time.monotonic()
    await asyncio.to_thread(publish_qos1, mqtt, messages, f"pub-{test_id}")
    published_s = time.monotonic() - t0
    assert await fill_count(influx_settings) == 0  # nothing arrived while the ingester was away
    broker_log = private_mosquitto.settings.run_dir / "mosquitto" / "mosquitto.log"
    assert DROPPED_NOTICE not in broker_log.read_text()  # the queue limit was never reached

    # 3. The same client id again: every queued reading is delivered, written and counted.
    t1 = time.monotonic()
    processes.start("ingest-2", ["ingest"], env)
    last, changed_at = -1, 0.0

    async def all_counted() -> bool:
        nonlocal last, changed_at
        count = await fill_count(influx_settings)
        now = time.monotonic() - t1
        if count != last:
            last, changed_at = count, now
        if count < BACKLOG and now - changed_at > STALL_S:
            raise TimeoutError  # stuck: the rest is not coming
        return count >= BACKLOG

    try:
        await eventually(all_counted, timeout=DRAIN_DEADLINE_S, interval=0.5)
    except (AssertionError, TimeoutError):
        raise AssertionError(
            f"{last} of {BACKLOG} readings in InfluxDB {time.monotonic() - t1:.0f} s after the "
            f"ingester restarted (that count reached at {changed_at:.1f} s)\n"
            + processes.log("ingest-2")[-3000:]
        ) from None
    drained_s = time.monotonic() - t1
    assert last == BACKLOG

    assert DROPPED_NOTICE not in broker_log.read_text()
    record_property("published_s", round(published_s, 1))
    record_property("drained_s", round(drained_s, 1))
    log.info(
        "backlog %d: published in %.1f s (%.0f msg/s); drained end to end in %.1f s (%.0f msg/s)",
        BACKLOG,
        published_s,
        BACKLOG / published_s,
        drained_s,
        BACKLOG / drained_s,
    )
