"""The ingester: MQTT (QoS 1, persistent session) -> ledger + InfluxDB, each message applied once.

A message is acknowledged to the broker only after its ledger effect is committed and its points
are written to InfluxDB (paho's manual acknowledgement, under aiomqtt). If the ingester dies before
that, the broker redelivers the message to the same persistent session; the ledger ignores an
event it has already applied and InfluxDB keeps one point per (measurement, tags, timestamp), so a
redelivery changes nothing. A message that cannot be applied is written to the dead-letter table
(topic, raw bytes, error, time), counted, and acknowledged: it never stops the consumer.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import aiomqtt
from pydantic import Field, ValidationError
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from wastebank import ledger, mqtt
from wastebank.config import (
    InfluxSettings,
    MqttSettings,
    WastebankSettings,
    default_ledger_url,
)
from wastebank.influx import (
    Influx,
    InfluxError,
    alert_line,
    deposit_line,
    fill_line,
    health_lines,
)
from wastebank.messages import DepositEvent, FillReading, GatewayAlert, GatewayHealth, Topics
from wastebank.mqtt import backoff

log = logging.getLogger("wastebank.ingest")


CLOCK_AHEAD_TOLERANCE = timedelta(minutes=2)
"""A device timestamp further in the future than this is a wrong clock (late ones may be a
backlog delivered after an outage, so only the future is flagged)."""


class IngestSettings(WastebankSettings):
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    client_id: str = Field(default="wastebank-ingest", pattern=r"^[A-Za-z0-9_-]{1,64}$")
    batch_size: int = Field(default=500, ge=1, le=50_000)
    batch_max_age_s: float = Field(default=0.5, gt=0, le=60)


@dataclass
class Stats:
    received: int = 0
    deposits_applied: int = 0
    deposits_duplicate: int = 0
    fill_readings: int = 0
    health_reports: int = 0
    clock_ahead: int = 0
    alerts: int = 0
    dead_lettered: int = 0
    points_written: int = 0
    write_retries: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Pending:
    topic: str
    payload: bytes
    mid: int
    qos: int
    lines: list[str] = field(default_factory=list)


class Ingester:
    def __init__(self, settings: IngestSettings, engine: Engine, influx: Influx) -> None:
        self.settings = settings
        self.engine = engine
        self.influx = influx
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.stats = Stats()
        self._clock_warned: set[str] = set()

    # ---- one message --------------------------------------------------------------------------

    async def handle(self, topic: str, payload: bytes) -> list[str]:
        """Apply one message to the ledger; return its InfluxDB lines ([] if dead-lettered)."""
        self.stats.received += 1
        try:
            return await self._handle(topic, payload)
        except _Reject as rej:
            await self.dead_letter(topic, payload, str(rej))
            return []

    async def _handle(self, topic: str, payload: bytes) -> list[str]:
        parts = self.topics.parse(topic)
        if parts is None:
            raise _Reject(f"topic not understood: {topic}")
        if parts.kind == "deposit" and parts.device_type == "gateway":
            ev = _validate(DepositEvent, payload)
            if (ev.bank_code, ev.gateway_id) != (parts.site, parts.device_id):
                raise _Reject(
                    f"identity mismatch: topic bank={parts.site} gateway={parts.device_id}, "
                    f"payload bank={ev.bank_code} gateway={ev.gateway_id}"
                )
            try:
                applied = await asyncio.to_thread(self._apply_deposit, ev)
            except ledger.DepositRejected as exc:
                raise _Reject(f"deposit rejected: {exc}") from None
            if applied.outcome is ledger.Outcome.APPLIED:
                self.stats.deposits_applied += 1
            else:
                self.stats.deposits_duplicate += 1
            ahead = self._clock_ahead(ev.gateway_id, ev.measured_at)
            return [
                deposit_line(
                    ev,
                    kecamatan=applied.kecamatan,
                    amount_idr=applied.amount_idr,
                    clock_ahead_s=ahead,
                )
            ]
        if parts.kind == "fill" and parts.device_type == "fill_sensor":
            reading = _validate(FillReading, payload)
            if (reading.tps_code, reading.sensor_id) != (parts.site, parts.device_id):
                raise _Reject(
                    f"identity mismatch: topic tps={parts.site} sensor={parts.device_id}, "
                    f"payload tps={reading.tps_code} sensor={reading.sensor_id}"
                )
            self.stats.fill_readings += 1
            ahead = self._clock_ahead(reading.sensor_id, reading.measured_at)
            return [fill_line(reading, clock_ahead_s=ahead)]
        if parts.device_type == "gateway" and parts.kind in ("health", "alert"):
            msg: GatewayHealth | GatewayAlert = (
                _validate(GatewayHealth, payload)
                if parts.kind == "health"
                else _validate(GatewayAlert, payload)
            )
            if (msg.bank_code, msg.gateway_id) != (parts.site, parts.device_id):
                raise _Reject(
                    f"identity mismatch: topic bank={parts.site} gateway={parts.device_id}, "
                    f"payload bank={msg.bank_code} gateway={msg.gateway_id}"
                )
            if isinstance(msg, GatewayHealth):
                self.stats.health_reports += 1
                return health_lines(msg)
            self.stats.alerts += 1
            return [alert_line(msg)]
        raise _Reject(f"no handler for {parts.device_type}/{parts.kind}")

    def _clock_ahead(self, device: str, measured_at: datetime) -> int | None:
        """Seconds the device's timestamp is in the future, when that is beyond tolerance.

        The point keeps the device's time (a redelivery must land on the same point), carries
        this as a field, is counted, and the device is named in the log once.
        """
        ahead = measured_at - datetime.now(UTC)
        if ahead <= CLOCK_AHEAD_TOLERANCE:
            return None
        self.stats.clock_ahead += 1
        if device not in self._clock_warned:
            self._clock_warned.add(device)
            log.warning(
                "jam perangkat terlalu maju / device clock ahead: %s by %d s",
                device,
                ahead.total_seconds(),
            )
        return int(ahead.total_seconds())

    def _apply_deposit(self, ev: DepositEvent) -> ledger.AppliedDeposit:
        with Session(self.engine) as session:
            return ledger.apply_deposit(session, ev)

    async def dead_letter(self, topic: str, payload: bytes, error: str) -> None:
        def write() -> int:
            with Session(self.engine) as session:
                return ledger.add_dead_letter(session, topic, payload, error)

        row_id = await asyncio.to_thread(write)
        self.stats.dead_lettered += 1
        log.warning("pesan ditolak / dead letter #%d on %s: %s", row_id, topic, error)

    # ---- batches ------------------------------------------------------------------------------

    async def write_batch(self, batch: list[_Pending]) -> None:
        """Write ``batch``; retry what is retryable; dead-letter what InfluxDB refuses."""
        lines = [line for p in batch for line in p.lines]
        try:
            await self._write_retrying(lines)
        except InfluxError:
            # Permanent (4xx): find the culprits one message at a time.
            for p in batch:
                try:
                    await self._write_retrying(p.lines)
                except InfluxError as exc:
                    await self.dead_letter(p.topic, p.payload, f"InfluxDB refused: {exc}")
                    self.stats.points_written -= len(p.lines)
            self.stats.points_written += len(lines)
            return
        self.stats.points_written += len(lines)

    async def _write_retrying(self, lines: list[str]) -> None:
        attempt = 0
        while True:
            try:
                await self.influx.write(lines)
                if attempt:
                    log.info("InfluxDB menerima lagi / accepting writes again")
                return
            except InfluxError as exc:
                if not exc.retryable:
                    raise
                if attempt == 0:
                    log.warning("InfluxDB tidak tersedia / unavailable, retrying: %s", exc)
                attempt += 1
                self.stats.write_retries += 1
                await asyncio.sleep(backoff(attempt))

    # ---- the consumer loop --------------------------------------------------------------------

    async def consume(self, client: aiomqtt.Client, ready: asyncio.Event | None = None) -> None:
        await client.subscribe(self.topics.deposit_filter, qos=1)
        await client.subscribe(self.topics.fill_filter, qos=1)
        await client.subscribe(self.topics.health_filter, qos=1)
        await client.subscribe(self.topics.alert_filter, qos=1)
        log.info(
            "berlangganan / subscribed to %s, %s",
            self.topics.deposit_filter,
            self.topics.fill_filter,
        )
        if ready is not None:
            ready.set()
        loop = asyncio.get_running_loop()
        messages = aiter(client.messages)
        batch: list[_Pending] = []
        deadline = 0.0
        while True:
            timeout = max(0.0, deadline - loop.time()) if batch else None
            try:
                msg = await asyncio.wait_for(anext(messages), timeout)
            except TimeoutError:
                await self._flush(client, batch)
                batch = []
                continue
            payload = _payload_bytes(msg.payload)
            pending = _Pending(topic=str(msg.topic), payload=payload, mid=msg.mid, qos=msg.qos)
            pending.lines = await self.handle(pending.topic, payload)
            if not batch:
                deadline = loop.time() + self.settings.batch_max_age_s
            batch.append(pending)
            if sum(len(p.lines) for p in batch) >= self.settings.batch_size:
                await self._flush(client, batch)
                batch = []

    async def _flush(self, client: aiomqtt.Client, batch: list[_Pending]) -> None:
        if not batch:
            return
        await self.write_batch(batch)
        for p in batch:
            if p.qos > 0:
                client._client.ack(p.mid, p.qos)  # noqa: SLF001 - aiomqtt has no ack API


class _Reject(Exception):
    pass


M = TypeVar("M", DepositEvent, FillReading, GatewayHealth, GatewayAlert)


def _validate(model: type[M], payload: bytes) -> M:
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        raise _Reject(f"invalid {model.__name__}: {errors}") from None


def _payload_bytes(payload: Any) -> bytes:
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return str(payload).encode()


async def run(settings: IngestSettings, *, ready: asyncio.Event | None = None) -> None:
    engine = ledger.make_engine(settings.ledger_url)
    influx = Influx(settings.influx)
    ingester = Ingester(settings, engine, influx)
    try:
        await _ensure_database(influx)
        attempt = 0
        lost = False
        while True:
            client = mqtt.client(settings.mqtt, identifier=settings.client_id, persistent=True)
            # Must be set before CONNECT: a persistent session's queued messages arrive at once.
            client._client.manual_ack_set(True)  # noqa: SLF001
            try:
                async with client:
                    if lost:
                        log.info("terhubung kembali / reconnected to the broker")
                    else:
                        log.info(
                            "ingest terhubung / connected to %s:%d as %s",
                            settings.mqtt.host,
                            settings.mqtt.port,
                            settings.client_id,
                        )
                    attempt, lost = 0, False
                    await ingester.consume(client, ready)
            except aiomqtt.MqttError as exc:
                if not lost:
                    log.warning("broker terputus / broker connection lost: %s", exc)
                lost = True
                attempt += 1
                await asyncio.sleep(backoff(attempt))
    finally:
        log.info("ingest berhenti / stopping: %s", ingester.stats.as_dict())
        await influx.aclose()
        engine.dispose()


async def _ensure_database(influx: Influx) -> None:
    attempt = 0
    while True:
        try:
            await influx.ensure_database()
            return
        except InfluxError as exc:
            if not exc.retryable:
                raise
            attempt += 1
            if attempt == 1:
                log.warning("menunggu InfluxDB / waiting for InfluxDB: %s", exc)
            await asyncio.sleep(backoff(attempt))
