"""The ingester against the real Mosquitto and InfluxDB: once-only, dead letters, never stuck."""

from __future__ import annotations

import asyncio
import contextlib
import struct
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import cast
from unittest import mock

import aiomqtt
import httpx
import pytest
from asgi_lifespan import LifespanManager
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api.app import create_app
from firmware_sim.tps import TpsSimSettings, run_tps_sensor
from ingest.main import Inbox, IngestSettings
from ingest.main import run as run_ingest
from ingest.metrics import MetricsSettings
from ingest.paho_inbox import InboxClient
from tests.auth_helpers import PASSWORD, add_users, api_settings, login
from tests.conftest import deposit_event, eventually, free_port, mqtt_login
from wastebank import ledger
from wastebank.cli import app
from wastebank.config import InfluxSettings, MqttSettings, load_settings
from wastebank.influx import Influx
from wastebank.messages import SEQ_MAX, DepositEvent, FillReading, Topics
from wastebank.money_rules import MoneyRules
from wastebank.structs import Invalid, convert, decode_json, encode_json, replace, to_builtins

pytestmark = pytest.mark.integration


async def publish(mqtt: MqttSettings, items: list[tuple[str, bytes]]) -> None:
    async with aiomqtt.Client(mqtt.host, mqtt.port, **mqtt_login(mqtt)) as client:
        for topic, payload in items:
            await client.publish(topic, payload, qos=1)


def ledger_counts(url: str) -> tuple[int, int, int]:
    engine = ledger.make_engine(url)
    try:
        with Session(engine) as s:
            deposits = s.scalar(select(func.count()).select_from(ledger.Deposit)) or 0
            dead = s.scalar(select(func.count()).select_from(ledger.DeadLetter)) or 0
            balance = ledger.member_balance(s, "AMB-0001")
        return deposits, dead, balance
    finally:
        engine.dispose()


async def influx_sum(settings: InfluxSettings, q: str) -> list[list[object]]:
    influx = Influx(settings)
    try:
        series = await influx.query(q)
    finally:
        await influx.aclose()
    return [v for s in series for v in s.values]


async def test_deposits_applied_once_and_bad_payloads_dead_lettered(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    topic = topics.deposit("bs-batu-merah", "gw-01")
    first = [deposit_event(1, net_g=1250), deposit_event(2, net_g=2500, category="kardus")]
    await publish(mqtt_settings, [(topic, encode_json(ev)) for ev in first])

    # 1,250 g PET @ Rp4,000 = Rp5,000; 2,500 g kardus @ Rp1,500 = Rp3,750.
    async def two_applied() -> bool:
        return ledger_counts(ingester.ledger_url)[0] == 2

    await eventually(two_applied)
    assert ledger_counts(ingester.ledger_url) == (2, 0, 8750)

    # The same messages again, then garbage, a mismatched identity, and one more good deposit.
    forged = replace(deposit_event(3, net_g=999), bank_code="bs-nusaniwe")
    await publish(
        mqtt_settings,
        [
            *[(topic, encode_json(ev)) for ev in first],
            (topic, b"\xff\x00{not json"),
            (topic, b'{"kind": "deposit", "net_g": -5}'),
            (topic, encode_json(forged)),
            (topic, encode_json(deposit_event(4, net_g=1000))),
        ],
    )

    async def last_applied() -> bool:
        # The batch's deposits and its dead letters are two commits: wait for both.
        return ledger_counts(ingester.ledger_url)[:2] == (3, 3)

    await eventually(last_applied)
    deposits, dead, balance = ledger_counts(ingester.ledger_url)
    assert (deposits, dead, balance) == (3, 3, 8750 + 4000)

    engine = ledger.make_engine(ingester.ledger_url)
    with Session(engine) as s:
        rows = ledger.dead_letters(s)
    engine.dispose()
    assert rows[0].payload == b"\xff\x00{not json"
    assert rows[0].topic == topic
    assert "invalid DepositEvent" in rows[0].error
    assert "identity mismatch" in rows[2].error

    # The same story in Prometheus' terms, from the running ingester's /metrics.
    port = ingester.metrics.port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as web:
        text = (await web.get("/metrics")).text
    assert 'wastebank_ingest_deposits_total{outcome="applied"} 3.0' in text
    assert 'wastebank_ingest_deposits_total{outcome="duplicate"} 2.0' in text
    assert 'wastebank_ingest_dead_lettered_total{reason="invalid_payload"} 2.0' in text
    assert 'wastebank_ingest_dead_lettered_total{reason="identity_mismatch"} 1.0' in text

    listed = CliRunner().invoke(app, ["deadletter", "list", "--ledger-url", ingester.ledger_url])
    assert listed.exit_code == 0
    assert "3 dead letter(s)" in listed.output
    assert listed.output.count(topic) == 3

    # InfluxDB holds one point per deposit even though two were delivered twice.
    async def three_points() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("net_g") FROM "deposit"')
        return bool(rows) and rows[0][1] == 3

    await eventually(three_points)
    ((_, total),) = await influx_sum(influx_settings, 'SELECT sum("net_g") FROM "deposit"')
    assert total == 1250 + 2500 + 1000


async def test_fill_readings_reach_influx(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    topics = Topics(mqtt_settings.topic_prefix)
    now = datetime.now(UTC)
    readings = [
        FillReading(
            reading_id=f"us-01-{i}",
            sensor_id="us-01",
            seq=i,
            tps_code="tps-batu-merah",
            measured_at=now + timedelta(minutes=15 * i),
            distance_mm=1400 - 100 * i,
            fillingLevel=round(0.1 * i, 3),
            battery_pct=90,
        )
        for i in range(1, 4)
    ]
    await publish(
        mqtt_settings,
        [(topics.fill("tps-batu-merah", "us-01"), encode_json(r)) for r in readings],
    )

    async def all_written() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("filling_level") FROM "fill_level"')
        return bool(rows) and rows[0][1] == 3

    await eventually(all_written)
    ((_, last),) = await influx_sum(
        influx_settings, 'SELECT last("filling_level") FROM "fill_level"'
    )
    assert last == pytest.approx(0.3)


async def test_simulated_tps_sensor_reaches_the_api(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    sim = load_settings(TpsSimSettings, mqtt=mqtt_settings)
    await asyncio.wait_for(
        run_tps_sensor(sim, tps_code="tps-benteng", sensor_id="us-02", interval_s=0, count=4), 30
    )

    async def four_points() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("filling_level") FROM "fill_level"')
        return bool(rows) and rows[0][1] == 4

    await eventually(four_points)
    add_users(ingester.ledger_url, ("dlh",))
    app = create_app(
        api_settings(mqtt=mqtt_settings, influx=influx_settings, ledger_url=ingester.ledger_url)
    )
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=manager.app), base_url="http://t") as c,
    ):
        dlh = await login(c, "dlh-ambon", PASSWORD)
        (latest,) = (await c.get("/api/tps/latest", headers=dlh)).json()
    ((_, last_level),) = await influx_sum(
        influx_settings, 'SELECT last("filling_level") FROM "fill_level"'
    )
    assert (latest["tps_code"], latest["sensor_id"]) == ("tps-benteng", "us-02")
    assert latest["filling_level"] == pytest.approx(last_level)
    assert 0.0 <= latest["filling_level"] <= 1.0


async def test_a_device_clock_running_ahead_is_flagged_not_dropped(
    ingester: IngestSettings, mqtt_settings: MqttSettings, influx_settings: InfluxSettings
) -> None:
    sim = load_settings(
        TpsSimSettings, mqtt=mqtt_settings, clock_skew_s=3600
    )  # the sensor's clock is 1 h fast
    await asyncio.wait_for(
        run_tps_sensor(sim, tps_code="tps-benteng", sensor_id="us-09", interval_s=0, count=2), 30
    )
    await asyncio.wait_for(
        run_tps_sensor(
            load_settings(TpsSimSettings, mqtt=mqtt_settings),
            tps_code="tps-benteng",
            sensor_id="us-10",
            interval_s=0,
            count=2,
        ),
        30,
    )

    async def four_points() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("filling_level") FROM "fill_level"')
        return bool(rows) and rows[0][1] == 4

    await eventually(four_points)
    flagged = await influx_sum(
        influx_settings,
        'SELECT "clock_ahead_s", "sensor" FROM "fill_level" WHERE "clock_ahead_s" > 0 '
        "AND time > now() - 1d",
    )
    assert len(flagged) == 2  # both readings of the fast sensor, and only those
    assert {row[2] for row in flagged} == {"us-09"}
    assert all(isinstance(row[1], int | float) and 3500 <= row[1] <= 3600 for row in flagged)


async def test_processed_messages_are_acknowledged_and_never_redelivered(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> None:
    """After a batch is written the ingester acknowledges it (PUBACKs sent as one write): a
    client taking over its persistent session gets none of those messages again."""
    client_id = f"ingest-ack-{test_id}"
    settings = load_settings(
        IngestSettings,
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        client_id=client_id,
        batch_max_age_s=0.05,
        metrics=MetricsSettings(port=free_port()),
    )
    topics = Topics(mqtt_settings.topic_prefix)
    fill_topic = topics.fill("tps-batu-merah", "us-01")

    def reading(i: int) -> bytes:
        return encode_json(
            FillReading(
                reading_id=f"us-01-{i}",
                sensor_id="us-01",
                seq=i,
                tps_code="tps-batu-merah",
                measured_at=datetime.now(UTC) - timedelta(minutes=i),
                distance_mm=1000,
                fillingLevel=0.5,
            )
        )

    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    await asyncio.wait_for(ready.wait(), 20)
    await publish(mqtt_settings, [(fill_topic, reading(i)) for i in range(1, 301)])

    async def all_written() -> bool:
        rows = await influx_sum(influx_settings, 'SELECT count("filling_level") FROM "fill_level"')
        return bool(rows) and rows[0][1] == 300

    async def acknowledged() -> bool:
        # Set to what is still waiting after each batch's acks are handed to paho.
        url = f"http://127.0.0.1:{settings.metrics.port}/metrics"
        async with httpx.AsyncClient() as http:
            text = (await http.get(url)).text
        return "\nwastebank_ingest_inflight_messages 0.0\n" in text

    await eventually(all_written)
    await eventually(acknowledged)
    # Stopped now, the ingester sends its queued PUBACKs before DISCONNECT. A marker published
    # after that is queued in the session behind anything left unacknowledged.
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await publish(mqtt_settings, [(fill_topic, reading(999))])
    async with aiomqtt.Client(
        mqtt_settings.host,
        mqtt_settings.port,
        clean_session=False,
        **mqtt_login(mqtt_settings, client_id),
    ) as session:
        seqs = []
        async for message in session.messages:
            seqs.append(decode_json(bytes(message.payload), FillReading).seq)
            if seqs[-1] == 999:
                break
    assert seqs == [999]


def test_the_ingester_module_does_not_load_sqlalchemy() -> None:
    """A telemetry-only ingester stays small: SQLAlchemy is loaded with the ledger, on use."""
    code = "import sys, ingest.main; print(any(m.startswith('sqlalchemy') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


async def test_a_telemetry_ingester_leaves_deposits_and_still_keeps_dead_letters(
    mqtt_settings: MqttSettings, influx_settings: InfluxSettings, ledger_url: str, test_id: str
) -> None:
    settings = load_settings(
        IngestSettings,
        mqtt=mqtt_settings,
        influx=influx_settings,
        ledger_url=ledger_url,
        client_id=f"ingest-telemetry-{test_id}",
        batch_max_age_s=0.05,
        kinds=("fill", "health", "alert"),
    )
    topics = Topics(mqtt_settings.topic_prefix)
    ready = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, ready=ready))
    try:
        await asyncio.wait_for(ready.wait(), 20)
        good = FillReading(
            reading_id="us-01-1",
            sensor_id="us-01",
            seq=1,
            tps_code="tps-batu-merah",
            measured_at=datetime.now(UTC),
            distance_mm=900,
            fillingLevel=0.4,
        )
        fill_topic = topics.fill("tps-batu-merah", "us-01")
        await publish(
            mqtt_settings,
            [
                (
                    topics.deposit("bs-batu-merah", "gw-01"),
                    encode_json(deposit_event(1)),
                ),
                (fill_topic, b'{"kind": "fill", "fillingLevel": 7}'),
                (fill_topic, encode_json(good)),
            ],
        )

        async def written() -> bool:
            q = 'SELECT count("filling_level") FROM "fill_level"'
            rows = await influx_sum(influx_settings, q)
            return bool(rows) and rows[0][1] == 1

        await eventually(written)
        # The invalid reading came before the good one in the same stream: already stored.
        deposits, dead, _ = ledger_counts(ledger_url)
        assert (deposits, dead) == (0, 1)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class _ChunkedSocket:
    """Stands in for the broker's socket: each recv gives the next chunk, then "no data"."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks

    def recv(self, bufsize: int) -> bytes:
        if not self.chunks:
            raise BlockingIOError
        chunk = self.chunks.pop(0)
        if len(chunk) > bufsize:  # as a socket: at most what was asked, the rest waits
            self.chunks.insert(0, chunk[bufsize:])
            chunk = chunk[:bufsize]
        return chunk

    def close(self) -> None:
        pass


def _remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _publish(topic: bytes, payload: bytes, mid: int, qos: int) -> bytes:
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    header = 0x30 | (qos << 1)
    return bytes([header]) + _remaining_length(len(body) + len(payload)) + body + payload


def _client_for(inbox: Inbox, chunks: list[bytes]) -> InboxClient:
    client = InboxClient(CallbackAPIVersion.VERSION2, client_id="t", manual_ack=True)
    client.inbox, client.room = inbox, inbox.room
    client._sock = _ChunkedSocket(chunks)  # type: ignore[assignment]
    return client


_publishes = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=40),  # topic
        # payloads of every size class: 1-, 2- and 3-byte remaining lengths
        st.binary(max_size=100) | st.integers(100, 20_000).map(lambda n: b"\x7b" * n),
        st.integers(1, 65535),
        st.sampled_from([0, 1]),
    ),
    max_size=30,
)


@settings(max_examples=60, deadline=None)
@given(_publishes, st.data())
async def test_the_read_path_takes_every_publish_whatever_the_chunking(
    publishes: list[tuple[bytes, bytes, int, int]], data: st.DataObject
) -> None:
    """PUBLISHes split anywhere across reads reach the inbox whole and in order; a PINGRESP
    between them still goes to paho (its ping timer is cleared)."""
    stream = b"".join(_publish(*p) for p in publishes) + b"\xd0\x00"  # PINGRESP
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(stream) - 1)), max_size=12)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    inbox = Inbox(asyncio.get_running_loop(), limit=10**6)
    client = _client_for(inbox, [c for c in chunks if c])
    client._ping_t = 1.0
    socket = cast(_ChunkedSocket, client._sock)
    try:
        while socket.chunks:
            assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        got = [(t, p, mid, q) for t, p, mid, q, _ in inbox._items]
        assert got == [(t, p, mid if q else 0, q) for t, p, mid, q in publishes]
        assert client._ping_t == 0
    finally:
        client._sock = None


async def test_the_inbox_stops_paho_reading_when_the_consumer_is_behind() -> None:
    """Past its limit the inbox closes ``room``; the read path then leaves the socket unread
    (TCP pushes back on the broker) until a batch is taken."""
    inbox = Inbox(asyncio.get_running_loop(), limit=3)
    waiting = _publish(b"wb/v1/x", b"{}", 9, 1)
    client = _client_for(inbox, [waiting])
    try:
        for mid in range(1, 4):
            inbox.put(b"wb/v1/x", b"{}", mid, 1)
        assert not inbox.room.is_set()
        with mock.patch.object(inbox.room, "wait", return_value=False) as waited:
            assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        waited.assert_called_once()
        assert inbox.waiting() == 3  # the socket was not read
        batch, _ = await inbox.take(2, 0.01)
        assert [mid for _, _, mid, _, _ in batch] == [1, 2]
        assert inbox.room.is_set()
        assert client.loop_read() == MQTTErrorCode.MQTT_ERR_SUCCESS
        assert [mid for _, _, mid, _, _ in inbox._items] == [3, 9]
    finally:
        client._sock = None


def test_a_sequence_number_too_long_for_the_ledger_is_refused_at_validation() -> None:
    """event_id = gateway id + '-' + seq must fit the ledger's column (PostgreSQL enforces it):
    a longer one is an invalid payload (dead letter), not a batch failing for ever."""

    def with_seq(seq: int) -> DepositEvent:
        fields = to_builtins(deposit_event(1))
        fields.update(seq=seq, gateway_id="g" * 63, event_id=f"{'g' * 63}-{seq}")
        return convert(fields, DepositEvent)

    assert len(with_seq(SEQ_MAX).event_id) <= 100
    with pytest.raises(Invalid) as refused:
        with_seq(SEQ_MAX + 1)
    # msgspec names the first problem only: the id, declared before seq, is already too long
    assert refused.value.problems[0][0] == ("event_id",)


async def test_a_ledger_that_cannot_take_a_batch_holds_it_and_applies_it_once_later(
    ingester: IngestSettings,
    mqtt_settings: MqttSettings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A database error of the operational kind (down, locked, deadlock) is retried, not a crash
    and not a dead letter; the retry applies each deposit once."""
    real = ledger.apply_deposits
    failures = {"left": 2}

    def flaky(session: Session, events: list[DepositEvent], *, rules: MoneyRules) -> list[object]:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("INSERT", {}, Exception("deadlock detected"))
        return real(session, events, rules=rules)  # type: ignore[return-value]

    monkeypatch.setattr(ledger, "apply_deposits", flaky)
    topic = Topics(mqtt_settings.topic_prefix).deposit("bs-batu-merah", "gw-01")
    await publish(mqtt_settings, [(topic, encode_json(deposit_event(1, net_g=1250)))])

    async def applied() -> bool:
        return ledger_counts(ingester.ledger_url)[0] == 1

    await eventually(applied)
    assert failures["left"] == 0
    assert ledger_counts(ingester.ledger_url) == (1, 0, 5000)
    assert "ledger unavailable, retrying" in caplog.text
