"""Simulated TPS container fill sensors: over MQTT, over real serial ptys, and via LoRaWAN.

The sensor looks down into the container: the distance to the waste surface shrinks as the
container fills (docs/protocol.md §3). :class:`FillModel` plays the container over simulated
time, which runs ``time_scale`` times faster than real time, so a day of filling (busier in
daytime) and the truck's pickup show up in minutes. Single pings carry noise, the odd false echo
(a side wall: too short) and lost echo (too long). Four ways to hear it:

* ``mqtt`` -- :func:`run_tps_sensor`: a smart sensor publishing :class:`FillReading` itself.
  Each reading is the median of 5 pings turned into FIWARE ``fillingLevel``. Readings go to
  ``Topics(prefix).fill(tps, sensor)`` with QoS 1; a retained ``GatewayStatus`` "online" goes
  to ``sensor_status``, with a retained "offline" will.
* ``jsn`` / ``maxbotix`` -- :class:`SerialFillSensorSim`: a bare ultrasonic module on a real
  pty (``link`` -> ``/dev/pts/N``) for the gateway to read with pyserial: JSN-SR04T mode 2
  (``FF H L SUM`` every 100 ms, 9600 8N1) or MaxBotix HRXL (``R1234\\r``, or the 3-digit inch
  ``R048\\r`` of the LV-MaxSonar). Like the real modules it assumes the speed of sound at
  20 degC, so its distances are off by the air temperature (:attr:`last_temperature_c`).
* ``em310`` -- :func:`run_em310_sensor`: a Milesight EM310-UDL heard through a LoRaWAN network
  server: ChirpStack v4 uplink events (JSON, base64 ``data``) on
  ``{prefix}application/{app_id}/device/{dev_eui}/event/up``.

MQTT messages wait in a bounded outbox while the broker is away (oldest dropped and counted);
the connection is retried through stamina, waiting as a gateway does (capped, jittered,
exponential), logged once on loss and once on recovery.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import math
import random
import re
import statistics
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, ClassVar, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiomqtt
import msgspec
import stamina
from msgspec import Meta

from firmware_sim.encoders import encode_em310_udl, encode_maxbotix, encode_mode2
from firmware_sim.ptydevice import PtyDevice
from wastebank.config import FieldError, MqttSettings, WastebankSettings
from wastebank.messages import (
    CODE_PATTERN,
    FillReading,
    GatewayStatus,
    Topics,
    device_event_id,
    encode_set,
    new_install,
)
from wastebank.mqtt import backoff
from wastebank.mqtt import client as mqtt_client
from wastebank.structs import checked, encode_json

logger = logging.getLogger(__name__)

SIM_VERSION: Final = "firmware_sim-0.1"
OFFLINE_PUBLISH_TIMEOUT_S: Final = 2.0
PINGS_PER_READING: Final = 5
PING_NOISE_MM: Final = 6.0
FALSE_ECHO_P: Final = 0.1
DAY_HOURS: Final = (6, 21)
"""Local hours when people bring waste; the rest of the day the container barely fills."""

SERIAL_PERIOD_S: Final[dict[str, float]] = {"jsn": 0.1, "maxbotix": 0.15}
"""Real seconds between frames: JSN-SR04T mode 2 sends every 100 ms; HRXL-MaxSonar ~6-7.5 Hz."""
CHIRPSTACK_APP_ID: Final = "5f0c2a0e-7d43-4b8e-9a51-2c6b1e3f9d70"
"""Application id (a UUID in ChirpStack v4) of the simulated TPS application."""
LORA_FREQUENCIES_HZ: Final = (921_400_000, 921_600_000)
"""AS923-2 default uplink channels (the plan used in Indonesia)."""

CALIBRATION_C: Final = 20.0
"""The modules convert echo time to distance with the speed of sound at this temperature."""
EM310_FPORT: Final = 85
"""Application port Milesight devices use for uplinks (their gateway's forwarded example)."""

_CODE_RE: Final = re.compile(CODE_PATTERN)
_DEV_EUI_RE: Final = re.compile(r"[0-9a-f]{16}")

SerialKind = Literal["jsn", "maxbotix"]


def speed_of_sound(temperature_c: float) -> float:
    """c = 331.3 + 0.606 * T (m/s, T in degC; good to about +-30 degC, device-protocols.md §2.2)."""
    return 331.3 + 0.606 * temperature_c


def fill_ratio(distance_mm: float, empty_mm: float, full_mm: float) -> float:
    """FIWARE ``fillingLevel`` as a smart sensor reports it: (empty - d) / (empty - full),
    clamped to 0..1 (device-protocols.md §2.2)."""
    if empty_mm <= full_mm:
        raise ValueError("empty_mm must be greater than full_mm")
    return min(1.0, max(0.0, (empty_mm - distance_mm) / (empty_mm - full_mm)))


class TpsSimSettings(WastebankSettings, kw_only=True):
    """Settings of ``wastebank sim tps``."""

    broker_user: ClassVar[str | None] = "sim"
    mqtt: MqttSettings = msgspec.field(default_factory=MqttSettings)
    empty_distance_mm: Annotated[int, Meta(ge=100, le=20_000, description="sensor -> floor")] = 1400
    full_distance_mm: Annotated[int, Meta(ge=0, description="distance that counts as full")] = 250
    timezone: Annotated[str, Meta(description="local time of the TPS (WIT)")] = "Asia/Jayapura"
    time_scale: Annotated[float, Meta(gt=0, description="simulated s per real s")] = 360.0
    fill_per_hour_day: Annotated[float, Meta(ge=0, le=1)] = 0.06
    fill_per_hour_night: Annotated[float, Meta(ge=0, le=1)] = 0.01
    pickup_fill: Annotated[float, Meta(gt=0, le=1.1, description="truck comes above this")] = 0.85
    pickup_wait_h: Annotated[float, Meta(gt=0, description="mean wait for the truck")] = 2.0
    max_pending: Annotated[int, Meta(ge=1, description="readings kept while offline")] = 500
    false_echo_p: Annotated[
        float, Meta(ge=0, le=1, description="share of pings that are false/lost echoes")
    ] = FALSE_ECHO_P
    clock_skew_s: Annotated[
        float, Meta(description="the device clock's error: its readings carry now + this")
    ] = 0.0

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise FieldError("timezone", f"unknown time zone {self.timezone!r}") from None
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")
        super().__post_init__()


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

    def true_distance_mm(self) -> float:
        """Sensor -> waste surface now (a heap above the rim stops short of the sensor)."""
        s = self.settings
        true_mm = s.empty_distance_mm - self.fill * (s.empty_distance_mm - s.full_distance_mm)
        return max(true_mm, s.full_distance_mm * 0.6)

    def ping_mm(self) -> tuple[float, bool]:
        """One ping: (distance, is_false_echo). Noise, or a false echo from a side wall
        (shorter) or a lost echo from tilted cardboard (beyond the floor)."""
        s = self.settings
        true_mm = self.true_distance_mm()
        roll = self.rng.random()
        if roll < s.false_echo_p / 2:
            return self.rng.uniform(s.full_distance_mm * 0.6, true_mm), True
        if roll < s.false_echo_p:
            return s.empty_distance_mm + self.rng.uniform(0, 300), True
        return self.rng.gauss(true_mm, PING_NOISE_MM), False

    def distance_mm(self) -> int:
        """Median of a few pings: noise plus the odd false echo (wall) or lost echo (max)."""
        pings = [self.ping_mm()[0] for _ in range(PINGS_PER_READING)]
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
    """(topic, payload) pairs waiting for the broker; bounded, oldest dropped and counted."""

    pending: deque[tuple[str, str]]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False
    dropped: int = 0

    def add(self, topic: str, payload: str) -> None:
        if len(self.pending) == self.pending.maxlen:
            self.dropped += 1
        self.pending.append((topic, payload))
        self.wake.set()


@dataclass(frozen=True)
class _Presence:
    """Retained status topic plus will of a device that announces itself (the MQTT sensor)."""

    topic: str
    device_id: str


async def run_tps_sensor(
    settings: TpsSimSettings,
    *,
    tps_code: str,
    sensor_id: str,
    interval_s: float,
    count: int | None = None,
) -> None:
    """Measure every ``interval_s`` and publish; forever, or until ``count`` are delivered."""
    _check_codes(tps_code, sensor_id)
    _check_pacing(interval_s, count)
    zone = ZoneInfo(settings.timezone)
    rng = random.Random()
    model = FillModel(settings, rng, datetime.now(zone), fill=rng.uniform(0.05, 0.4))
    outbox = _Outbox(deque(maxlen=settings.max_pending))
    topics = Topics(settings.mqtt.topic_prefix)
    presence = _Presence(topics.sensor_status(tps_code, sensor_id), sensor_id)
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
            _publish_loop(settings, outbox, f"wb-sim-{tps_code}-{sensor_id}", presence),
            name=f"tps-sim[{sensor_id}].publish",
        )


def _check_codes(tps_code: str, sensor_id: str) -> None:
    for name, code in (("tps_code", tps_code), ("sensor_id", sensor_id)):
        if _CODE_RE.fullmatch(code) is None:
            raise ValueError(f"{name} must match {CODE_PATTERN}: {code!r}")


def _check_pacing(interval_s: float, count: int | None) -> None:
    if interval_s < 0 or (count is not None and count < 0):
        raise ValueError("interval_s and count must not be negative")


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
    topic = Topics(settings.mqtt.topic_prefix).fill(tps_code, sensor_id)
    # A run of the simulator is a sensor's session: its own install, numbered from 1, so a
    # restart never repeats an id (as a LoRaWAN sensor's rejoin starts a new frame counter).
    install, seq = new_install(), 1
    made = 0
    try:
        while count is None or made < count:
            if made:
                await asyncio.sleep(interval_s)
                model.advance(interval_s * settings.time_scale)
            distance = model.distance_mm()
            reading = checked(
                FillReading(
                    reading_id=device_event_id(sensor_id, install, seq),
                    sensor_id=sensor_id,
                    install=install,
                    seq=seq,
                    tps_code=tps_code,
                    measured_at=datetime.now(zone) + timedelta(seconds=settings.clock_skew_s),
                    distance_mm=distance,
                    fillingLevel=round(
                        fill_ratio(distance, settings.empty_distance_mm, settings.full_distance_mm),
                        3,
                    ),
                    temperature_c=model.temperature_c(),
                    battery_pct=model.battery_pct(),
                )
            )
            outbox.add(topic, encode_json(reading).decode())
            seq += 1
            made += 1
    finally:
        outbox.done = True
        outbox.wake.set()


def _client(
    settings: TpsSimSettings, identifier: str, presence: _Presence | None
) -> aiomqtt.Client:
    will = None
    if presence is not None:
        offline = checked(
            GatewayStatus(state="offline", device_id=presence.device_id, version=SIM_VERSION)
        )
        will = aiomqtt.Will(presence.topic, encode_set(offline), qos=1, retain=True)
    return mqtt_client(settings.mqtt, identifier=identifier, will=will, timeout=10)


def _status(state: Literal["online", "offline"], sensor_id: str) -> str:
    status = checked(
        GatewayStatus(state=state, device_id=sensor_id, at=datetime.now(UTC), version=SIM_VERSION)
    )
    return encode_set(status).decode()


async def _say_offline(client: aiomqtt.Client, presence: _Presence | None) -> None:
    """Leaving on purpose: a clean disconnect does not fire the will, so publish it ourselves."""
    if presence is None:
        return
    with contextlib.suppress(aiomqtt.MqttError, TimeoutError):
        async with asyncio.timeout(OFFLINE_PUBLISH_TIMEOUT_S):
            await client.publish(
                presence.topic, _status("offline", presence.device_id), qos=1, retain=True
            )


class _Link:
    """The simulator's connection to the broker as its log tells it: once when it is lost (or
    down from the start), once when it is back; and how long to wait before the next try."""

    def __init__(self, where: str, outbox: _Outbox) -> None:
        self.where, self.outbox = where, outbox
        self.connected_once = False
        self.failures = 0
        """Tries failed since the last connection: the backoff grows with them, and starts over
        once connected (a sensor that was up for a day waits seconds, not half a minute, after a
        blip)."""

    def up(self) -> None:
        if self.failures:
            logger.info(
                "MQTT %s tersambung kembali / reconnected (%d bacaan dibuang / dropped)",
                self.where,
                self.outbox.dropped,
            )
        elif not self.connected_once:
            logger.info("MQTT %s tersambung / connected", self.where)
        self.connected_once, self.failures = True, 0

    def retry_after(self, exc: BaseException) -> bool | float:
        """stamina's hook: an MQTT error is tried again after :func:`wastebank.mqtt.backoff`
        (anything else is not)."""
        if not isinstance(exc, aiomqtt.MqttError):
            return False
        if not self.failures:
            verb = "terputus / connection lost" if self.connected_once else "tidak tersedia / down"
            logger.info("MQTT %s %s: %s", self.where, verb, exc)
        self.failures += 1
        return backoff(self.failures)


async def _publish_loop(
    settings: TpsSimSettings,
    outbox: _Outbox,
    identifier: str,
    presence: _Presence | None,
    qos: Literal[0, 1, 2] = 1,
) -> None:
    """Publish ``outbox`` until it is done, connecting again whenever the broker goes away.

    The tries never end (a sensor keeps trying while it has power; its outbox bounds what waits)
    and wait as a gateway's do (:func:`wastebank.mqtt.backoff`: capped, jittered, exponential).
    """
    link = _Link(f"{settings.mqtt.host}:{settings.mqtt.port}", outbox)
    # no attempt limit, no deadline; every wait is the hook's (stamina's own backoff unused)
    tries = stamina.retry_context(on=link.retry_after, attempts=None, timeout=None)
    async for attempt in tries:
        with attempt:
            async with _client(settings, identifier, presence) as client:
                if presence is not None:
                    await client.publish(
                        presence.topic, _status("online", presence.device_id), qos=1, retain=True
                    )
                link.up()
                try:
                    await _drain(client, outbox, qos)
                except asyncio.CancelledError:
                    await _say_offline(client, presence)
                    raise
                await _say_offline(client, presence)


async def _drain(client: aiomqtt.Client, outbox: _Outbox, qos: Literal[0, 1, 2]) -> None:
    while True:
        while outbox.pending:
            topic, payload = outbox.pending.popleft()
            try:
                await client.publish(topic, payload, qos=qos)
            except BaseException:
                outbox.pending.appendleft((topic, payload))  # not acked: send after reconnecting
                raise
        if outbox.done:
            return
        outbox.wake.clear()
        await outbox.wake.wait()


# ---- serial modules on a real pty ----------------------------------------------------------------


class SerialFillSensorSim(PtyDevice):
    """A JSN-SR04T (mode 2) or MaxBotix module on a pty; an async context manager.

    Every ``period_s`` real seconds it advances the :class:`FillModel` by ``period_s *
    time_scale`` simulated seconds and writes one ping as the module would: the distance it
    *reports* assumes the speed of sound at 20 degC, so in the warm TPS air it reads short by
    c(20)/c(T) (undo with the gateway's ``compensate_distance`` and
    :attr:`last_temperature_c`). False echoes (``settings.false_echo_p``) are sent as they
    are: the reader's filter has to reject them. Bytes nobody reads are dropped and counted
    (:class:`~firmware_sim.ptydevice.PtyDevice`).
    """

    label = "sensor isi TPS (serial) / serial fill sensor"

    def __init__(
        self,
        link: Path,
        *,
        kind: SerialKind = "jsn",
        settings: TpsSimSettings | None = None,
        period_s: float | None = None,
        seed: int | None = None,
        fill: float | None = None,
        maxbotix_digits: Literal[3, 4] = 4,
        maxbotix_no_target_mm: int | None = None,
        max_backlog: int = 1024,
    ) -> None:
        if kind not in SERIAL_PERIOD_S:
            raise ValueError(f"kind must be one of {sorted(SERIAL_PERIOD_S)}")
        if period_s is not None and period_s <= 0:
            raise ValueError("period_s must be positive")
        self.period_s = period_s if period_s is not None else SERIAL_PERIOD_S[kind]
        super().__init__(link, rate_hz=1.0 / self.period_s, max_backlog=max_backlog)
        self.kind: SerialKind = kind
        self.settings = settings or TpsSimSettings()
        self.maxbotix_digits: Literal[3, 4] = maxbotix_digits
        if maxbotix_no_target_mm is not None and (kind != "maxbotix" or maxbotix_digits != 4):
            raise ValueError("maxbotix_no_target_mm is for 4-digit maxbotix modules")
        self.maxbotix_no_target_mm = maxbotix_no_target_mm
        """An HRXL-MaxSonar's maximum reported distance (5000 on 5 m models, 9999 on 10 m):
        a lost echo, or anything farther, is sent as it, the module's "no target"."""
        self.no_targets_sent = 0
        rng = random.Random(seed)
        zone = ZoneInfo(self.settings.timezone)
        start = datetime(2026, 11, 23, 9, 0, tzinfo=zone) if seed is not None else None
        self.model = FillModel(
            self.settings,
            rng,
            start or datetime.now(zone),
            fill=rng.uniform(0.05, 0.4) if fill is None else fill,
        )
        self.false_echoes_sent = 0
        self.last_true_mm = self.model.true_distance_mm()
        self.last_temperature_c = self.model.temperature_c()

    @property
    def pings_sent(self) -> int:
        return self.ticks

    async def run_forever(self) -> None:
        """Wait until the simulator stops (it only stops by cancellation or an error)."""
        await self._wait_until(lambda: False, timeout_s=math.inf)

    async def wait_pings(self, count: int) -> None:
        """Wait until ``count`` more pings have been produced."""
        await self._wait_ticks(count)

    def encode(self, reported_mm: float) -> bytes:
        """One frame for ``reported_mm`` as this module sends it."""
        if self.kind == "jsn":
            return encode_mode2(max(0, min(0xFFFF, round(reported_mm))))
        return encode_maxbotix(reported_mm, digits=self.maxbotix_digits)

    def _tick(self) -> None:
        model = self.model
        model.advance(self.period_s * self.settings.time_scale)
        self.last_temperature_c = model.temperature_c()
        self.last_true_mm = model.true_distance_mm()
        ping, false_echo = model.ping_mm()
        # The module times the echo and converts with c(20 degC): it reads short in warm air.
        reported = ping * speed_of_sound(CALIBRATION_C) / speed_of_sound(self.last_temperature_c)
        no_target = self.maxbotix_no_target_mm
        lost = false_echo and ping > self.last_true_mm
        if no_target is not None and (lost or reported >= no_target):
            self._write_raw(encode_maxbotix(no_target))
            self.no_targets_sent += 1
        else:
            self._write_raw(self.encode(reported))
        self.false_echoes_sent += false_echo


async def run_serial_sensor(
    settings: TpsSimSettings, *, kind: SerialKind, link: Path, seed: int | None = None
) -> None:
    """Play a serial fill sensor on ``link`` until cancelled."""
    async with SerialFillSensorSim(link, kind=kind, settings=settings, seed=seed) as sim:
        await sim.run_forever()


# ---- Milesight EM310-UDL through a LoRaWAN network server (ChirpStack v4) ------------------------


def chirpstack_up_topic(prefix: str, app_id: str, dev_eui: str) -> str:
    """ChirpStack v4's default MQTT event topic for uplinks, under ``prefix``."""
    return f"{prefix}application/{app_id}/device/{dev_eui}/event/up"


def dev_eui_for(sensor_id: str) -> str:
    """A stable made-up DevEUI for a sensor id (Milesight's 24E124 OUI, then a hash)."""
    digest = hashlib.sha256(sensor_id.encode()).hexdigest()
    return "24e124" + digest[:10]


def chirpstack_uplink(
    *,
    app_id: str,
    dev_eui: str,
    device_name: str,
    f_cnt: int,
    payload: bytes,
    rssi_dbm: int,
    snr_db: float,
    at: datetime,
    rng: random.Random,
    tags: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An ``up`` event as ChirpStack v4's MQTT integration publishes it (protobuf JSON mapping
    of ``integration.UplinkEvent``: camelCase names, bytes as base64)."""
    when = at.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return {
        "deduplicationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "time": when,
        "deviceInfo": {
            "tenantId": "52f14cd4-c6f1-4fbd-8f87-4025e1d49242",
            "tenantName": "wastebank",
            "applicationId": app_id,
            "applicationName": "tps-fill",
            "deviceProfileId": "0d1e7b2c-5b8a-4f5e-a1c3-9e7d6b5a4c3f",
            "deviceProfileName": "Milesight EM310-UDL",
            "deviceName": device_name,
            "devEui": dev_eui,
            "tags": tags or {},
        },
        "devAddr": f"{rng.getrandbits(32):08x}",
        "adr": True,
        "dr": 5,
        "fCnt": f_cnt,
        "fPort": EM310_FPORT,
        "confirmed": False,
        "data": base64.b64encode(payload).decode("ascii"),
        "rxInfo": [
            {
                "gatewayId": "24e124fffef54092",
                "uplinkId": rng.randrange(1, 65536),
                "nsTime": when,
                "rssi": rssi_dbm,
                "snr": snr_db,
                "channel": 0,
                "location": {},
                "context": base64.b64encode(rng.randbytes(4)).decode("ascii"),
                "crcStatus": "CRC_OK",
            }
        ],
        "txInfo": {
            "frequency": rng.choice(LORA_FREQUENCIES_HZ),
            "modulation": {
                "lora": {"bandwidth": 125000, "spreadingFactor": 7, "codeRate": "CR_4_5"}
            },
        },
    }


async def run_em310_sensor(
    settings: TpsSimSettings,
    *,
    tps_code: str,
    sensor_id: str,
    interval_s: float,
    count: int | None = None,
    dev_eui: str | None = None,
    app_id: str = CHIRPSTACK_APP_ID,
    seed: int | None = None,
    qos: Literal[0, 1, 2] = 0,
) -> None:
    """Uplink every ``interval_s`` as ChirpStack would forward it; forever, or ``count`` times.

    The EM310-UDL filters on board, so each uplink carries one distance (the median of a few
    pings of :class:`FillModel`), the battery and the tilt flag (always normal here). ChirpStack
    publishes with QoS 0 by default (``qos``); there is no presence topic for LoRaWAN devices.
    """
    _check_codes(tps_code, sensor_id)
    _check_pacing(interval_s, count)
    eui = (dev_eui or dev_eui_for(sensor_id)).lower()
    if _DEV_EUI_RE.fullmatch(eui) is None:
        raise ValueError(f"dev_eui must be 16 hex digits: {dev_eui!r}")
    if not app_id or any(c in app_id for c in "/+#"):
        raise ValueError(f"app_id must be a plain topic level: {app_id!r}")
    rng = random.Random(seed)
    model = FillModel(
        settings, rng, datetime.now(ZoneInfo(settings.timezone)), fill=rng.uniform(0.05, 0.4)
    )
    outbox = _Outbox(deque(maxlen=settings.max_pending))
    topic = chirpstack_up_topic(settings.mqtt.topic_prefix, app_id, eui)
    logger.info("EM310-UDL %s (%s) mulai / LoRaWAN fill sensor started", sensor_id, eui)

    async def measure() -> None:
        made, f_cnt = 0, rng.randrange(1, 1000)
        try:
            while count is None or made < count:
                if made:
                    await asyncio.sleep(interval_s)
                    model.advance(interval_s * settings.time_scale)
                payload = encode_em310_udl(
                    battery_pct=model.battery_pct(), distance_mm=model.distance_mm()
                )
                uplink = chirpstack_uplink(
                    app_id=app_id,
                    dev_eui=eui,
                    device_name=sensor_id,
                    f_cnt=f_cnt,
                    payload=payload,
                    rssi_dbm=round(rng.gauss(-95, 8)),
                    snr_db=round(rng.gauss(4, 3), 1),
                    at=datetime.now(UTC),
                    rng=rng,
                    tags={"tps": tps_code},
                )
                outbox.add(topic, json.dumps(uplink))
                made += 1
                f_cnt += 1
        finally:
            outbox.done = True
            outbox.wake.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(measure(), name=f"em310-sim[{sensor_id}].measure")
        tg.create_task(
            _publish_loop(settings, outbox, f"wb-sim-em310-{sensor_id}", None, qos),
            name=f"em310-sim[{sensor_id}].publish",
        )
