"""A simulated ultrasonic fill sensor on a TPS container, publishing FillReading over MQTT.

The sensor looks down into the container: the distance to the waste surface shrinks as the
container fills (docs/protocol.md §3). Each reading is the median of 5 pings (single false
echoes are common in bins) turned into FIWARE ``fillingLevel`` by :func:`fill_ratio`. Simulated
time runs ``time_scale`` times faster than real time, so a day of filling (busier in daytime)
and the truck's pickup show up in minutes.

MQTT: readings go to ``Topics(prefix).fill(tps, sensor)`` with QoS 1; a retained
``GatewayStatus`` "online" goes to ``sensor_status``, with a retained "offline" will. Readings
wait in a bounded outbox while the broker is away (oldest dropped and counted); the connection
is retried with capped, jittered exponential backoff, logged once on loss and once on recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import re
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiomqtt
from pydantic import Field, field_validator, model_validator

from wastebank.config import MqttSettings, WastebankSettings
from wastebank.messages import CODE_PATTERN, FillReading, GatewayStatus, Topics
from wastebank.mqtt import backoff
from wastebank.mqtt import client as mqtt_client

logger = logging.getLogger(__name__)

SIM_VERSION: Final = "firmware_sim-0.1"
OFFLINE_PUBLISH_TIMEOUT_S: Final = 2.0
PINGS_PER_READING: Final = 5
PING_NOISE_MM: Final = 6.0
FALSE_ECHO_P: Final = 0.1
DAY_HOURS: Final = (6, 21)
"""Local hours when people bring waste; the rest of the day the container barely fills."""

_CODE_RE: Final = re.compile(CODE_PATTERN)


class TpsSimSettings(WastebankSettings):
    """Settings of ``wastebank sim tps``."""

    mqtt: MqttSettings = MqttSettings()
    empty_distance_mm: int = Field(default=1400, ge=100, le=20_000, description="sensor -> floor")
    full_distance_mm: int = Field(default=250, ge=0, description="distance that counts as full")
    timezone: str = Field(default="Asia/Jayapura", description="local time of the TPS (WIT)")
    time_scale: float = Field(default=360.0, gt=0, description="simulated s per real s")
    fill_per_hour_day: float = Field(default=0.06, ge=0, le=1)
    fill_per_hour_night: float = Field(default=0.01, ge=0, le=1)
    pickup_fill: float = Field(default=0.85, gt=0, le=1.1, description="truck comes above this")
    pickup_wait_h: float = Field(default=2.0, gt=0, description="mean wait for the truck")
    max_pending: int = Field(default=500, ge=1, description="readings kept while offline")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _geometry(self) -> Self:
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")
        return self


def fill_ratio(distance_mm: float, empty_mm: float, full_mm: float) -> float:
    """FIWARE ``fillingLevel``: (empty - d) / (empty - full), clamped to 0..1."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return min(1.0, max(0.0, (empty_mm - distance_mm) / (empty_mm - full_mm)))


@dataclass
class FillModel:
    """The container's contents over simulated time; pure apart from its random generator."""

    settings: TpsSimSettings
    rng: random.Random
    sim_time: datetime
    fill: float = 0.2
    pickups: int = 0
    _started: datetime = field(init=False)

    def __post_init__(self) -> None:
        self._started = self.sim_time

    def advance(self, sim_seconds: float) -> None:
        """Let ``sim_seconds`` pass: waste arrives (more by day), the truck may empty it."""
        s = self.settings
        self.sim_time += timedelta(seconds=sim_seconds)
        hours = sim_seconds / 3600
        day = DAY_HOURS[0] <= self.sim_time.hour < DAY_HOURS[1]
        rate = s.fill_per_hour_day if day else s.fill_per_hour_night
        self.fill += rate * hours * self.rng.uniform(0.3, 1.7)
        if day and self.rng.random() < 1 - math.exp(-hours / 3):  # a handcart tipped in
            self.fill += self.rng.uniform(0.01, 0.05)
        if self.fill >= s.pickup_fill and self.rng.random() < 1 - math.exp(
            -hours / s.pickup_wait_h
        ):
            self.fill = self.rng.uniform(0.0, 0.04)
            self.pickups += 1
            logger.info("truk sampah mengangkut isi kontainer / pickup emptied the container")
        self.fill = min(self.fill, 1.15)  # heaped above the rim

    def distance_mm(self) -> int:
        """Median of a few pings: noise plus the odd false echo (wall) or lost echo (max)."""
        s = self.settings
        true_mm = s.empty_distance_mm - self.fill * (s.empty_distance_mm - s.full_distance_mm)
        true_mm = max(true_mm, s.full_distance_mm * 0.6)
        pings = []
        for _ in range(PINGS_PER_READING):
            roll = self.rng.random()
            if roll < FALSE_ECHO_P / 2:
                pings.append(self.rng.uniform(s.full_distance_mm * 0.6, true_mm))
            elif roll < FALSE_ECHO_P:
                pings.append(s.empty_distance_mm + self.rng.uniform(0, 300))
            else:
                pings.append(self.rng.gauss(true_mm, PING_NOISE_MM))
        return max(0, min(20_000, round(statistics.median(pings))))

    def temperature_c(self) -> float:
        hour = self.sim_time.hour + self.sim_time.minute / 60
        warm = 27.5 + 3.0 * math.sin(2 * math.pi * (hour - 9) / 24)
        return round(warm + self.rng.gauss(0, 0.3), 1)

    def battery_pct(self) -> int:
        days = (self.sim_time - self._started) / timedelta(days=1)
        return max(1, min(100, round(98 - 0.4 * days)))


@dataclass
class _Outbox:
    pending: deque[FillReading]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    dropped: int = 0

    def add(self, reading: FillReading) -> None:
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append(reading)
        self.wake.set()


async def run_tps_sensor(
    settings: TpsSimSettings,
    *,
    tps_code: str,
    sensor_id: str,
    interval_s: float,
    count: int | None = None,
) -> None:
    """Measure every ``interval_s`` and publish; forever, or until ``count`` are delivered."""
    for name, code in (("tps_code", tps_code), ("sensor_id", sensor_id)):
        if _CODE_RE.fullmatch(code) is None:
            raise ValueError(f"{name} must match {CODE_PATTERN}: {code!r}")
    if interval_s < 0 or (count is not None and count < 0):
        raise ValueError("interval_s and count must not be negative")
    zone = ZoneInfo(settings.timezone)
    rng = random.Random()
    model = FillModel(settings, rng, datetime.now(zone), fill=rng.uniform(0.05, 0.4))
    outbox = _Outbox(deque(maxlen=settings.max_pending))
    logger.info(
        "sensor TPS %s/%s mulai, interval %.1f s / TPS sensor started",
        tps_code,
        sensor_id,
        interval_s,
    )
    async with asyncio.TaskGroup() as tg:
        tg.create_task(
            _measure_loop(model, outbox, zone, tps_code, sensor_id, interval_s, count),
            name=f"tps-sim[{sensor_id}].measure",
        )
        tg.create_task(
            _publish_loop(settings, outbox, tps_code, sensor_id),
            name=f"tps-sim[{sensor_id}].publish",
        )


async def _measure_loop(
    model: FillModel,
    outbox: _Outbox,
    zone: ZoneInfo,
    tps_code: str,
    sensor_id: str,
    interval_s: float,
    count: int | None,
) -> None:
    settings = model.settings
    seq = time.time_ns() // 1_000_000  # never repeats across restarts
    made = 0
    try:
        while count is None or made < count:
            if made:
                await asyncio.sleep(interval_s)
                model.advance(interval_s * settings.time_scale)
            distance = model.distance_mm()
            outbox.add(
                FillReading(
                    reading_id=f"{sensor_id}-{seq}",
                    sensor_id=sensor_id,
                    seq=seq,
                    tps_code=tps_code,
                    measured_at=datetime.now(zone),
                    distance_mm=distance,
                    fillingLevel=round(
                        fill_ratio(distance, settings.empty_distance_mm, settings.full_distance_mm),
                        3,
                    ),
                    temperature_c=model.temperature_c(),
                    battery_pct=model.battery_pct(),
                )
            )
            seq += 1
            made += 1
    finally:
        outbox.done = True
        outbox.wake.set()


def _client(settings: TpsSimSettings, tps_code: str, sensor_id: str) -> aiomqtt.Client:
    mqtt = settings.mqtt
    topic = Topics(mqtt.topic_prefix).sensor_status(tps_code, sensor_id)
    will = GatewayStatus(state="offline", device_id=sensor_id, version=SIM_VERSION)
    return mqtt_client(
        mqtt,
        identifier=f"wb-sim-{tps_code}-{sensor_id}",
        will=aiomqtt.Will(topic, will.model_dump_json(exclude_none=True), qos=1, retain=True),
        timeout=10,
    )


def _status(state: Literal["online", "offline"], sensor_id: str) -> str:
    status = GatewayStatus(
        state=state, device_id=sensor_id, at=datetime.now(UTC), version=SIM_VERSION
    )
    return status.model_dump_json(exclude_none=True)


async def _say_offline(client: aiomqtt.Client, topic: str, sensor_id: str) -> None:
    """Leaving on purpose: a clean disconnect does not fire the will, so publish it ourselves."""
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        async with asyncio.timeout(OFFLINE_PUBLISH_TIMEOUT_S):
            await client.publish(topic, _status("offline", sensor_id), qos=1, retain=True)


async def _publish_loop(
    settings: TpsSimSettings, outbox: _Outbox, tps_code: str, sensor_id: str
) -> None:
    topics = Topics(settings.mqtt.topic_prefix)
    fill_topic = topics.fill(tps_code, sensor_id)
    status_topic = topics.sensor_status(tps_code, sensor_id)
    where = f"{settings.mqtt.host}:{settings.mqtt.port}"
    attempt, connected_once, lost = 0, False, False
    while True:
        try:
            async with _client(settings, tps_code, sensor_id) as client:
                await client.publish(status_topic, _status("online", sensor_id), qos=1, retain=True)
                if lost:
                    logger.info(
                        "MQTT %s tersambung kembali / reconnected (%d bacaan dibuang / dropped)",
                        where,
                        outbox.dropped,
                    )
                elif not connected_once:
                    logger.info("MQTT %s tersambung / connected", where)
                attempt, connected_once, lost = 0, True, False
                try:
                    await _drain(client, outbox, fill_topic)
                except asyncio.CancelledError:
                    await _say_offline(client, status_topic, sensor_id)
                    raise
                await _say_offline(client, status_topic, sensor_id)
                return
        except aiomqtt.MqttError as exc:
            if not lost:
                verb = "terputus / connection lost" if connected_once else "tidak tersedia / down"
                logger.info("MQTT %s %s: %s", where, verb, exc)
                lost = True
            attempt += 1
            await asyncio.sleep(backoff(attempt))


async def _drain(client: aiomqtt.Client, outbox: _Outbox, topic: str) -> None:
    while True:
        while outbox.pending:
            reading = outbox.pending.popleft()
            try:
                await client.publish(topic, reading.model_dump_json(), qos=1)
            except BaseException:
                outbox.pending.appendleft(reading)  # not acked: send again after reconnecting
                raise
        if outbox.done:
            return
        outbox.wake.clear()
        await outbox.wake.wait()
