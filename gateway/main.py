"""The gateway process at a waste bank: scales -> deposit events -> SQLite outbox -> MQTT (QoS 1).

One TaskGroup holds: a reader per scale (its own port, protocol and line settings; reconnects on its
own when a USB adapter is unplugged and comes back), the MQTT side (MQTT 5; retained "online" status
with an "offline" will; drains the outbox oldest first at a rate limit, deleting a row only once
the broker accepted it, and keeping one it refused), a health loop (retained telemetry, outbox
expiry, alerts raised once and cleared once) and a small local HTTP endpoint for the
attendant-assisted flow and calibration checks.

The site is described by one TOML file (``wastebank gateway --config site.toml``), validated at
start with errors that name the field; see docs/deploy-pi.md.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import signal
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiomqtt
import serial
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    FilePath,
    ValidationError,
    field_validator,
    model_validator,
)

from gateway.attendant_store import AttendantDb
from gateway.fill_sensor import (
    DistanceSample,
    FillConfig,
    FillDecodeError,
    FillProcessor,
    MaxBotixDecoder,
    Mode2Decoder,
    decode_em310_uplink,
    decode_json_reading,
)
from gateway.kiosk import AttendantSession, DepositCandidate, KioskSession
from gateway.outbox import CalibrationLog, Outbox, OutboxRow
from gateway.scale_protocol import (
    PROTOCOLS,
    AutoDetector,
    FrameError,
    ScaleDecoder,
    ScaleStatus,
    WeightReading,
    decoder_for,
)
from gateway.weighing import StabilityDetector, WeighState
from wastebank import __version__, mqtt
from wastebank.config import RUN_DIR, MqttSettings, WastebankSettings
from wastebank.messages import (
    CODE_PATTERN,
    DepositEvent,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    ScaleHealth,
    SensorHealth,
    Topics,
    device_event_id,
    new_install,
)
from wastebank.mqtt import backoff

log = logging.getLogger("wastebank.gateway")

Code = Annotated[str, Field(pattern=CODE_PATTERN)]
DRAIN_WINDOW = mqtt.IN_FLIGHT
"""Publishes in flight at once while draining (each still deleted only after its PUBACK)."""
DRAIN_BATCH = 1000
"""Rows read from the outbox at a time; acknowledged ones are deleted together."""


# ---- settings ---------------------------------------------------------------------------------


class ScaleSettings(BaseModel):
    """One scale at the site."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    port: Path = Field(description="/dev/serial/by-id/usb-... (stable across replugs)")
    protocol: str = Field(
        default="gs_nt", description="scale protocol id (docs/protocol.md §1), 'kiosk' or 'auto'"
    )
    unit: Literal["kg", "g", "lb"] = Field(
        default="kg", description="for formats that do not say (Yaohua, HX711 sketches)"
    )
    flow: Literal["kiosk", "attendant"] = "kiosk"
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    min_net_g: int = Field(default=50, ge=1)
    zero_band_g: int = Field(default=20, ge=0)
    zero_drift_alert_g: int = Field(default=30, ge=1, description="alert when idle zero drifts")
    stability_window_s: float = Field(default=1.0, gt=0, description="flagless formats only")
    stability_tolerance_g: int = Field(default=10, ge=0, description="flagless formats only")
    calibration_version: str | None = Field(
        default=None, max_length=64, description="until a calibration check is recorded here"
    )

    @model_validator(mode="after")
    def _bands(self) -> Self:
        if self.zero_band_g >= self.min_net_g:
            raise ValueError("zero_band_g must be smaller than min_net_g")
        known = (*PROTOCOLS, "kiosk", "auto")
        if self.protocol not in known:
            raise ValueError(f"protocol {self.protocol!r} is not one of {', '.join(known)}")
        return self


class SensorSettings(BaseModel):
    """One TPS fill sensor served by this gateway (serial, or LoRaWAN through a network server)."""

    model_config = ConfigDict(extra="forbid")

    id: Code
    tps_code: Code
    kind: Literal["jsn_sr04t", "maxbotix", "em310_udl", "json"]
    port: Path | None = Field(default=None, description="serial kinds: the adapter's stable path")
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    maxbotix_unit: Literal["mm", "cm"] = "mm"
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$", description="em310_udl")
    uplink_topic: str = Field(
        default="application/+/device/{dev_eui}/event/up",
        description="em310_udl: the network server's uplink topic (ChirpStack v4 default); "
        "json: the topic the sensor publishes its own JSON on",
    )
    empty_distance_mm: int = Field(ge=100, le=20_000)
    full_distance_mm: int = Field(ge=0, le=20_000)
    window: int | None = Field(default=None, ge=1, le=101, description="pings per reading")
    spike_mm: int | None = Field(default=150, ge=1)
    ambient_c: float | None = Field(default=None, description="for sound-speed compensation")
    calibrated_at_c: float | None = 20.0
    report_interval_s: float = Field(default=300.0, gt=0, description="serial: one reading per")

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind == "em310_udl":
            if self.dev_eui is None:
                raise ValueError("em310_udl sensors need dev_eui")
        elif self.kind == "json":
            if "{dev_eui}" in self.uplink_topic or "+" in self.uplink_topic:
                raise ValueError("json sensors need their own uplink_topic (no wildcards)")
        elif self.port is None:
            raise ValueError(f"{self.kind} sensors need port")
        if self.empty_distance_mm - self.full_distance_mm < 50:
            raise ValueError("empty_distance_mm must exceed full_distance_mm by at least 50 mm")
        return self

    @property
    def over_mqtt(self) -> bool:
        return self.kind in ("em310_udl", "json")

    def fill_config(self) -> FillConfig:
        lora = self.over_mqtt  # filters on board; one message is one reading
        return FillConfig(
            empty_distance_mm=self.empty_distance_mm,
            full_distance_mm=self.full_distance_mm,
            window=self.window or (1 if lora else 5),
            spike_mm=None if lora else self.spike_mm,
            calibrated_at_c=None if lora else self.calibrated_at_c,
        )

    def topic(self) -> str:
        return self.uplink_topic.replace("{dev_eui}", (self.dev_eui or "").lower())


class OutboxSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: Path = RUN_DIR / "gateway" / "outbox.db"
    max_rows: int = Field(default=100_000, ge=100)
    max_age_days: float = Field(default=30.0, gt=0)
    drain_rate_per_s: float = Field(default=500.0, gt=0, description="after a reconnect")
    refused_retry_s: float = Field(
        default=60.0,
        gt=0,
        le=3600,
        description="a row the broker refused is tried again after this, doubled per refusal "
        "up to an hour; a restart tries every refused row at once",
    )


class AttendantSettings(BaseModel):
    """The attendant (petugas) page on the local endpoint: logins, offline cache, time zone."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = Field(
        default="Asia/Jakarta",
        description="the bank's zone for 'today' and the times shown (Asia/Jakarta WIB, "
        "Asia/Makassar WITA, Asia/Jayapura WIT)",
    )
    login_cache_days: float = Field(
        default=14.0, gt=0, le=90, description="an attendant may log in offline this long"
    )
    session_hours: float = Field(default=12.0, gt=0, le=168)
    sync_interval_s: float = Field(
        default=300.0, gt=0, description="members, prices and queued voids, while online"
    )
    api_timeout_s: float = Field(default=5.0, gt=0, le=60)
    max_login_failures: int = Field(default=5, ge=1, description="per account per 15 minutes")
    argon2_time_cost: int = Field(default=2, ge=1)
    argon2_memory_kib: int = Field(default=19_456, ge=8, description="19 MiB: fine on a Pi")
    argon2_parallelism: int = Field(default=1, ge=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class GatewaySettings(WastebankSettings):
    """A gateway's site file. Its broker identity is its ``gateway_id`` unless the site file's
    ``[mqtt]`` names another username (`wastebank device add` issues both)."""

    gateway_id: Code = "gw-01"
    bank_code: Code
    api_url: AnyHttpUrl | None = Field(
        default=None,
        description="the central API (e.g. https://wastebank.ambon.go.id): attendant logins, "
        "members, prices and voids for the attendant page; unset: the page has no logins",
    )
    attendant: AttendantSettings = AttendantSettings()
    mqtt: MqttSettings = MqttSettings()
    outbox: OutboxSettings = OutboxSettings()
    scales: list[ScaleSettings] = Field(default_factory=list)
    sensors: list[SensorSettings] = Field(default_factory=list)
    http_host: str = Field(
        default="127.0.0.1",
        description="where the local endpoint listens: 127.0.0.1 (this Pi only), or the Pi's "
        "LAN address / 0.0.0.0 for tablets on the bank's Wi-Fi (then with http_tls_cert)",
    )
    http_port: int = Field(default=8081, ge=0, le=65535, description="0: no local endpoint")
    http_tls_cert: FilePath | None = Field(
        default=None,
        description="HTTPS for the local endpoint: the certificate `wastebank certs gateway` "
        "issued from the site CA (PEM); with http_tls_key. Unset: plain HTTP",
    )
    http_tls_key: FilePath | None = Field(
        default=None, description="its private key (PEM, mode 0600, the gateway's user only)"
    )
    health_interval_s: float = Field(default=30.0, gt=0)

    def default_broker_user(self) -> str | None:
        return self.gateway_id

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if (self.http_tls_cert is None) != (self.http_tls_key is None):
            raise ValueError("http_tls_cert and http_tls_key go together: set both or neither")
        if not self.scales and not self.sensors:
            raise ValueError("a site needs at least one entry in scales or sensors")
        ids = [s.id for s in self.scales] + [s.id for s in self.sensors]
        if len(set(ids)) != len(ids):
            raise ValueError(f"scale ids must be unique: {ids}")
        devices: list[ScaleSettings | SensorSettings] = [*self.scales, *self.sensors]
        ports = [str(d.port) for d in devices if d.port is not None]
        if len(set(ports)) != len(ports):
            raise ValueError(f"each scale and sensor needs its own port: {ports}")
        return self


# ---- one scale --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArmContext:
    """What the attendant page knew when it armed a scale: kept with the deposit's journal entry."""

    attendant: str
    member_name: str | None
    price_per_kg_idr: int | None


@dataclass
class ScaleStats:
    bytes_read: int = 0
    frames_parsed: int = 0
    frames_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class SerialDevice(abc.ABC):
    """A device on a serial port: opens it, reads it on the event loop, and when the adapter goes
    away keeps reopening the same (by-id) path with backoff; logs once on loss, once on recovery,
    and raises a ``scale_offline`` alert once / clears it once."""

    kind_id, kind_en = "perangkat", "device"  # for log lines: Bahasa Indonesia, then English

    def __init__(self, device_id: str, port: Path, gateway: Gateway, **line: int | str) -> None:
        self.device_id = device_id
        self.port = port
        self.line = line
        self.gateway = gateway
        self.connected = False
        self.reconnects = 0

    @abc.abstractmethod
    def feed(self, data: bytes) -> None:
        """Decode bytes read from the port."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget any partial frame: the first bytes after (re)opening may be mid-frame."""

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        attempt, lost = 0, False
        id_, en, name = self.kind_id, self.kind_en, self.device_id
        while True:
            try:
                port = serial.Serial(str(self.port), timeout=0, **self.line)  # type: ignore[arg-type]
            except (serial.SerialException, OSError, ValueError) as exc:
                if not lost:
                    log.warning("%s tidak terhubung / %s not connected: %s: %s", id_, en, name, exc)
                    self._offline(True, str(exc))
                lost = True
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                continue
            log.info("%s terhubung / %s connected: %s on %s", id_, en, name, self.port)
            if lost:
                self.reconnects += 1
            self._offline(False, "connected")
            attempt, lost = 0, False
            self.reset()
            self.connected = True
            try:
                await self._read_port(loop, port)
            except (serial.SerialException, OSError) as exc:
                log.warning("%s terputus / %s disconnected: %s: %s", id_, en, name, exc)
                self._offline(True, str(exc))
                lost = True
            finally:
                self.connected = False
                with contextlib.suppress(OSError, serial.SerialException):
                    port.close()

    def _offline(self, offline: bool, detail: str) -> None:
        state = "tidak tersedia / unavailable" if offline else "tersedia lagi / available again"
        self.gateway.alert(
            "scale_offline",
            self.device_id,
            offline,
            message=f"{self.kind_id} {self.device_id}: {state} ({detail})",
        )

    async def _read_port(self, loop: asyncio.AbstractEventLoop, port: serial.Serial) -> None:
        readable = asyncio.Event()
        fd = port.fileno()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                data = port.read(4096)
                if data:
                    self.feed(data)
        finally:
            loop.remove_reader(fd)


class ScaleReader(SerialDevice):
    """Reads one scale's port and turns its frames into deposit candidates."""

    kind_id, kind_en = "timbangan", "scale"

    def __init__(self, cfg: ScaleSettings, gateway: Gateway) -> None:
        super().__init__(
            cfg.id,
            cfg.port,
            gateway,
            baudrate=cfg.baudrate,
            bytesize=cfg.bytesize,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
        )
        self.cfg = cfg
        self.stats = ScaleStats()
        self.last: WeightReading | None = None
        self.bad_frames: list[tuple[str, bytes]] = []  # the latest rejects, for inspection
        self.session: KioskSession | AttendantSession
        if cfg.flow == "kiosk":
            self.session = KioskSession(min_net_g=cfg.min_net_g, zero_band_g=cfg.zero_band_g)
        else:
            self.session = AttendantSession(min_net_g=cfg.min_net_g, zero_band_g=cfg.zero_band_g)
        self.decoder: ScaleDecoder | AutoDetector = decoder_for(cfg.protocol, unit=cfg.unit)
        self.weigh = WeighState(
            stability=StabilityDetector(
                window_s=cfg.stability_window_s, tolerance_g=cfg.stability_tolerance_g
            ),
            zero_band_g=cfg.zero_band_g,
        )
        self.status_events = 0
        self.arm_context: ArmContext | None = None
        self.last_event_id: str | None = None
        """The latest deposit stored from this scale (its journal entry)."""
        self.last_card: tuple[str, float] | None = None
        """(uid, monotonic time) of the last card tapped on an attendant scale's reader."""

    def reset(self) -> None:
        self.decoder.reset()

    def feed(self, data: bytes) -> None:
        if self.process(data):
            self.gateway.wake()
        self.gateway.live.notify()

    def process(self, data: bytes, now: float | None = None) -> list[int]:
        """Decode raw bytes from the port; return the seqs of deposits stored in the outbox."""
        now = time.monotonic() if now is None else now
        self.stats.bytes_read += len(data)
        stored: list[int] = []
        for item in self.decoder.feed(data):
            if isinstance(item, FrameError):
                self._reject(item)
                continue
            self.stats.frames_parsed += 1
            candidate: DepositCandidate | None = None
            if isinstance(item, ScaleStatus):
                # Overload, underload, a device error: no weight, and the last weight is stale
                # (a confirm now must not use it).
                self.status_events += 1
                marker = WeightReading("overload", "gross", None, item.raw, item.protocol)
                self.last = marker
                candidate = self.session.on_reading(marker, now)
            elif isinstance(item, WeightReading):
                weighing = self.weigh.update(item, now)
                if weighing is None:  # a tare frame: it set the tare
                    continue
                reading = replace(weighing.reading, grams=weighing.net_g)
                self.last = reading
                self._zero_alert()
                candidate = self.session.on_reading(reading, now)
                if candidate is not None:
                    candidate = replace(candidate, tare_g=weighing.tare_g)
            elif isinstance(self.session, KioskSession):
                candidate = self.session.on_frame(item, now)
            elif item.kind == "CARD":  # a card reader next to an attendant scale
                self.last_card = (item.value, now)
                continue
            else:  # keys frames on a scale configured for the attendant flow
                self.stats.frames_parsed -= 1
                self._count_reject("kiosk_frame_on_attendant_scale", item.raw)
                continue
            if candidate is not None:
                seq = self.gateway.store_deposit(self, candidate)
                if seq is not None:
                    stored.append(seq)
        return stored

    def _reject(self, exc: FrameError) -> None:
        self._count_reject(exc.reason, exc.raw)

    def _count_reject(self, reason: str, raw: bytes) -> None:
        self.stats.frames_rejected += 1
        reasons = self.stats.rejected_by_reason
        reasons[reason] = reasons.get(reason, 0) + 1
        self.bad_frames = [*self.bad_frames[-99:], (reason, raw)]
        log.debug("bingkai rusak / bad frame on %s (%s): %r", self.cfg.id, reason, raw)

    def _zero_alert(self) -> None:
        """Raise once when the idle zero has drifted past the limit; clear once at half of it."""
        if self.weigh.zero_g is None:
            return
        drift, limit, subject = self.weigh.drift_g, self.cfg.zero_drift_alert_g, self.cfg.id
        if abs(drift) > limit:
            self.gateway.alert(
                "zero_drift",
                subject,
                True,
                value=drift,
                threshold=limit,
                message=f"nol timbangan bergeser / zero drift {drift:+d} g on {subject}",
            )
        elif abs(drift) <= limit // 2:
            self.gateway.alert(
                "zero_drift",
                subject,
                False,
                value=drift,
                threshold=limit,
                message=f"nol timbangan kembali / zero back to {drift:+d} g on {subject}",
            )

    @property
    def protocol(self) -> str:
        """The protocol in use: the configured one, or what auto-detection decided."""
        return self.decoder.protocol or self.cfg.protocol

    def calibration_version(self) -> str | None:
        latest = self.gateway.calibration.latest(self.cfg.id)
        return latest.version if latest else self.cfg.calibration_version

    def health(self) -> ScaleHealth:
        return ScaleHealth(
            scale_id=self.cfg.id,
            protocol=self.protocol,
            connected=self.connected,
            frames_parsed=self.stats.frames_parsed,
            frames_rejected=self.stats.frames_rejected,
            reconnects=self.reconnects,
            last_g=self.last.grams if self.last else None,
            stable=(self.last.status == "stable") if self.last else None,
            zero_drift_g=self.weigh.drift_g if self.weigh.zero_g is not None else None,
        )


class FillSensorReader(SerialDevice):
    """A TPS fill sensor: raw distance samples -> filtered readings -> the outbox.

    Serial sensors (JSN-SR04T mode 2, MaxBotix) are read from their port and publish one reading
    per ``report_interval_s``; EM310-UDL uplinks come from the network server (see
    :meth:`Gateway.lns_loop`) and each becomes a reading.
    """

    kind_id, kind_en = "sensor TPS", "TPS sensor"

    def __init__(self, cfg: SensorSettings, gateway: Gateway) -> None:
        super().__init__(cfg.id, cfg.port or Path("/dev/null"), gateway, baudrate=cfg.baudrate)
        self.cfg = cfg
        self.processor = FillProcessor(cfg.fill_config())
        self.decoder: Mode2Decoder | MaxBotixDecoder = (
            Mode2Decoder()
            if cfg.kind == "jsn_sr04t"
            else MaxBotixDecoder(four_digit_unit=cfg.maxbotix_unit)
        )
        self.readings = 0
        self._last_report = -float("inf")

    def reset(self) -> None:
        self.decoder.reset()

    def feed(self, data: bytes) -> None:
        for sample in self.decoder.feed(data):
            self.add(sample, throttle=True)

    def add(self, sample: DistanceSample, *, throttle: bool) -> int | None:
        estimate = self.processor.add(sample, temperature_c=self.cfg.ambient_c)
        if estimate is None:
            return None
        now = time.monotonic()
        if throttle and now - self._last_report < self.cfg.report_interval_s:
            return None
        self._last_report = now
        measured_at = sample.received_at or datetime.now(UTC)
        cfg = self.cfg

        def build(seq: int) -> tuple[str, bytes]:
            reading = estimate.to_reading(
                sensor_id=cfg.id,
                tps_code=cfg.tps_code,
                seq=seq,
                install=self.gateway.outbox.install,
                measured_at=measured_at,
            )
            topic = self.gateway.topics.fill(cfg.tps_code, cfg.id)
            return topic, reading.model_dump_json(exclude_none=True).encode()

        seq = self.gateway.outbox.add(build, sequence=f"fill:{cfg.id}")
        self.readings += 1
        self.gateway.wake()
        return seq

    def health(self) -> SensorHealth:
        return SensorHealth(
            sensor_id=self.cfg.id,
            tps_code=self.cfg.tps_code,
            kind=self.cfg.kind,
            connected=None if self.cfg.over_mqtt else self.connected,
            samples_accepted=self.processor.accepted,
            samples_rejected=sum(self.processor.rejects.values())
            + sum(self.decoder.rejects.values()),
            readings=self.readings,
        )


# ---- the gateway ------------------------------------------------------------------------------


@dataclass
class GatewayStats:
    deposits_stored: int = 0
    deposits_invalid: int = 0
    published: int = 0
    refusals: int = 0  # PUBACKs with a failure reason code, outbox rows and telemetry alike
    mqtt_reconnects: int = 0
    alerts_raised: int = 0
    uplinks_rejected: int = 0


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.outbox = Outbox(
            settings.outbox.path,
            max_rows=settings.outbox.max_rows,
            max_age=timedelta(days=settings.outbox.max_age_days),
        )
        self.boot = new_install()
        """This process's start: two boots of one install at once are a cloned outbox."""
        self.calibration = CalibrationLog(self.outbox)
        self.attendant_db = AttendantDb(self.outbox)
        self.live = Live()
        self.stats = GatewayStats()
        self.readers = {cfg.id: ScaleReader(cfg, self) for cfg in settings.scales}
        self.sensors = {cfg.id: FillSensorReader(cfg, self) for cfg in settings.sensors}
        self.started = time.monotonic()
        self.connected = asyncio.Event()
        self._wake = asyncio.Event()
        self._publisher: mqtt.Publisher | None = None
        self._active_alerts: set[tuple[str, str]] = set()
        self._dropped_reported = self.outbox.dropped
        self._refusals_logged: set[tuple[int, bool]] = set()
        # Rows an earlier run kept because the broker refused them: try them now (the site file
        # or the credentials may have been fixed before this start), and clear the alert that
        # run raised once they are accepted.
        refused = sum(self.outbox.refused().values())
        if refused:
            self.outbox.release_refused()
            self._active_alerts.add(("publish_refused", "outbox"))
            log.warning(
                "%d pesan yang ditolak broker dicoba lagi / %d rows the broker refused are "
                "tried again",
                refused,
                refused,
            )

    def wake(self) -> None:
        self._wake.set()

    def event_id(self, seq: int) -> str:
        """The id of this gateway's event number ``seq``: unique for the city's life (see
        gateway/outbox.py, "Install identity")."""
        return device_event_id(self.settings.gateway_id, self.outbox.install, seq)

    # ---- events into the outbox ---------------------------------------------------------------

    def store_deposit(self, reader: ScaleReader, c: DepositCandidate) -> int | None:
        s = self.settings
        measured_at = datetime.now(UTC)
        calibration = reader.calibration_version()
        context, reader.arm_context = reader.arm_context, None
        directory = self.attendant_db.directory
        member = (
            directory.member(c.member_no)
            if c.member_no is not None
            else directory.by_card(c.card_uid)
            if c.card_uid is not None
            else None
        )
        price = directory.price(c.category_code)

        def journal(seq: int, row_id: int) -> None:
            # In the outbox's transaction: the journal entry exists if and only if the event does.
            self.attendant_db.journal.add(
                event_id=self.event_id(seq),
                outbox_id=row_id,
                scale_id=reader.cfg.id,
                member_no=c.member_no or (member.member_no if member else None),
                member_name=(context.member_name if context else None)
                or (member.name if member else None),
                card_uid=c.card_uid,
                category_code=c.category_code,
                net_g=c.net_g,
                price_per_kg_idr=context.price_per_kg_idr
                if context is not None
                else (price.price_idr if price else None),
                attendant=context.attendant if context else None,
                recorded_at=measured_at,
            )

        def build(seq: int) -> tuple[str, bytes]:
            ev = DepositEvent(
                event_id=self.event_id(seq),
                gateway_id=s.gateway_id,
                install=self.outbox.install,
                seq=seq,
                bank_code=s.bank_code,
                scale_id=reader.cfg.id,
                flow=reader.cfg.flow,
                card_uid=c.card_uid,
                member_no=c.member_no,
                category_code=c.category_code,
                net_g=c.net_g,
                tare_g=c.tare_g,
                stable=c.stable,
                protocol=c.protocol,
                measured_at=measured_at,
                raw_frames=list(c.raw_frames),
                calibration_version=calibration,
            )
            return self.topics.deposit(s.bank_code, s.gateway_id), ev.model_dump_json().encode()

        try:
            seq = self.outbox.add(build, on_stored=journal)
        except ValidationError as exc:
            # The scale or attendant sent something our schema refuses (e.g. a bad category key).
            self.stats.deposits_invalid += 1
            log.warning("setoran tidak sah / invalid deposit %s: %s", c, exc.errors()[0]["msg"])
            return None
        self.stats.deposits_stored += 1
        reader.last_event_id = self.event_id(seq)
        self.live.notify()
        who = c.card_uid or c.member_no
        log.info(
            "setoran / deposit %s: %s, %s, %d g",
            self.event_id(seq),
            who,
            c.category_code,
            c.net_g,
        )
        return seq

    def alert(
        self,
        code: Literal["zero_drift", "outbox_dropped", "scale_offline", "publish_refused"],
        subject: str,
        active: bool,
        *,
        message: str,
        value: float | None = None,
        threshold: float | None = None,
    ) -> None:
        """Raise once when a condition starts, clear once when it ends; through the outbox."""
        key = (code, subject)
        if active == (key in self._active_alerts):
            return
        if active:
            self._active_alerts.add(key)
            self.stats.alerts_raised += 1
        else:
            self._active_alerts.discard(key)
        s = self.settings

        def build(seq: int) -> tuple[str, bytes]:
            alert = GatewayAlert(
                alert_id=self.event_id(seq),
                gateway_id=s.gateway_id,
                install=self.outbox.install,
                seq=seq,
                bank_code=s.bank_code,
                code=code,
                state="raised" if active else "cleared",
                subject=subject,
                value=value,
                threshold=threshold,
                at=datetime.now(UTC),
                message=message[:300],
            )
            topic = self.topics.gateway_alert(s.bank_code, s.gateway_id)
            return topic, alert.model_dump_json().encode()

        self.outbox.add(build, sequence="alert")
        log.log(
            logging.WARNING if active else logging.INFO,
            "peringatan / alert %s %s: %s",
            code,
            "raised" if active else "cleared",
            message,
        )
        self.wake()

    # ---- MQTT side ----------------------------------------------------------------------------

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        status = GatewayStatus(
            state=state,
            device_id=self.settings.gateway_id,
            at=datetime.now(UTC),
            version=__version__,
            install=self.outbox.install,
            boot=self.boot,
        )
        return status.model_dump_json().encode()

    async def mqtt_loop(self) -> None:
        s = self.settings
        status_topic = self.topics.gateway_status(s.bank_code, s.gateway_id)
        will_payload = GatewayStatus(
            state="offline", device_id=s.gateway_id, install=self.outbox.install, boot=self.boot
        ).model_dump_json()
        attempt, lost = 0, False
        while True:
            # MQTT 5: a PUBACK says whether the broker accepted the message (3.1.1 acknowledges
            # a publish its ACL refused like any other). Not a persistent session: the outbox,
            # not the broker, holds what is not yet delivered.
            # Its own session per process (install and boot in the client id): two gateways
            # with one gateway id (a clone) no longer take each other's connection in a loop.
            client = mqtt.client(
                s.mqtt,
                identifier=f"{s.gateway_id}.{self.outbox.install}.{self.boot}",
                will=aiomqtt.Will(status_topic, will_payload, qos=1, retain=True),
                protocol=mqtt.V5,
            )
            publisher = mqtt.Publisher(client)
            try:
                async with client:
                    log.info(
                        "%s / connected to the broker %s:%d (%d in outbox)",
                        "terhubung kembali" if lost else "terhubung",
                        s.mqtt.host,
                        s.mqtt.port,
                        len(self.outbox),
                    )
                    if lost:
                        self.stats.mqtt_reconnects += 1
                    attempt, lost = 0, False
                    online = self._status("online")
                    reason = await publisher.publish(status_topic, online, qos=1, retain=True)
                    self._telemetry_refused(status_topic, reason)
                    self._publisher = publisher
                    self.connected.set()
                    self.live.notify()
                    try:
                        await self._publish_health(publisher)
                        await self._drain(publisher)
                    finally:
                        self._publisher = None
                        self.connected.clear()
                        self.live.notify()
                        # A clean stop: say offline ourselves (the will only fires on a lost link).
                        with contextlib.suppress(aiomqtt.MqttError):
                            await client.publish(
                                status_topic, self._status("offline"), qos=1, retain=True, timeout=2
                            )
            except aiomqtt.MqttError as exc:
                if not lost:
                    log.warning(
                        "broker terputus / broker unreachable (%d in outbox): %s",
                        len(self.outbox),
                        exc,
                    )
                lost = True
                attempt += 1
                await asyncio.sleep(backoff(attempt))

    async def _drain(self, publisher: mqtt.Publisher) -> None:
        """Publish the outbox oldest first, at most ``drain_rate_per_s``, ``DRAIN_WINDOW`` in
        flight at any time (a continuous pipeline: waiting for whole windows would stall on each
        window's last PUBACK); rows the broker accepted are deleted once per batch, rows it
        refused are kept, marked and held back (:meth:`_refused`)."""
        loop = asyncio.get_running_loop()
        min_gap = 1.0 / self.settings.outbox.drain_rate_per_s
        next_at = loop.time()
        window = asyncio.Semaphore(DRAIN_WINDOW)
        while True:
            self._wake.clear()
            rows = self.outbox.peek(DRAIN_BATCH)
            if not rows:
                await self._idle(publisher.client)
                continue
            acked: list[OutboxRow] = []
            refused: list[tuple[OutboxRow, ReasonCode]] = []
            try:
                async with asyncio.TaskGroup() as tg:
                    for row in rows:
                        await window.acquire()
                        delay = next_at - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        next_at = max(next_at, loop.time()) + min_gap
                        tg.create_task(self._publish_row(publisher, row, acked, refused, window))
            except ExceptionGroup as group:
                # A lost connection fails every publish in flight: reconnect like any MqttError.
                mqtt_errors = group.subgroup(aiomqtt.MqttError)
                if mqtt_errors is None:
                    raise
                first = mqtt_errors.exceptions[0]
                raise aiomqtt.MqttError(str(first)) from group
            finally:
                # Only what the broker accepted goes, in one transaction per batch; what it
                # refused stays, marked with the reason, in another.
                self.outbox.remove_many([row.id for row in acked])
                if self.attendant_db.journal.mark_sent(
                    [row.id for row in acked], datetime.now(UTC)
                ):
                    self.live.notify()
                self.stats.published += len(acked)
                self._refused(refused)
                self._accepted_again(acked)

    async def _publish_row(
        self,
        publisher: mqtt.Publisher,
        row: OutboxRow,
        acked: list[OutboxRow],
        refused: list[tuple[OutboxRow, ReasonCode]],
        window: asyncio.Semaphore,
    ) -> None:
        try:
            reason = await publisher.publish(row.topic, row.payload, qos=1)
            if mqtt.accepted(reason):
                acked.append(row)
            else:
                refused.append((row, reason))
        finally:
            window.release()

    def _refused(self, refused: list[tuple[OutboxRow, ReasonCode]]) -> None:
        """Keep the rows the broker refused, each marked with its reason code and held back
        (``refused_retry_s``, doubled per refusal, at most an hour): not deleted, not resent at
        once. Each reason is logged once as an error; the ``publish_refused`` alert is raised
        once (through the outbox: its own topic may be refused too, then it waits with the rest,
        and the refusal still shows in the log and the health report)."""
        if not refused:
            return
        hold = self.settings.outbox.refused_retry_s
        self.outbox.mark_refused(((row.id, reason.value) for row, reason in refused), hold_s=hold)
        self.stats.refusals += len(refused)
        for row, reason in refused:
            self._log_refusal(row.topic, reason, kept=True)
        total = sum(self.outbox.refused().values())
        row, reason = refused[0]
        self.alert(
            "publish_refused",
            "outbox",
            True,
            value=total,
            message=f"broker menolak pesan / the broker refused {_reason(reason)} on {row.topic}; "
            f"{total} disimpan di outbox / kept in the outbox",
        )

    def _accepted_again(self, acked: list[OutboxRow]) -> None:
        """Rows refused before and accepted now; the alert clears once none is left."""
        again = sum(1 for row in acked if row.refused_code is not None)
        if again:
            log.info(
                "%d pesan yang sempat ditolak kini diterima / %d rows refused before are accepted",
                again,
                again,
            )
        self._check_refused()

    def _check_refused(self) -> None:
        if ("publish_refused", "outbox") not in self._active_alerts:
            return
        if self.outbox.refused():
            return
        self._refusals_logged.clear()  # a new episode logs its reasons again
        self.alert(
            "publish_refused",
            "outbox",
            False,
            value=0,
            message="tidak ada lagi pesan yang ditolak / no refused rows left in the outbox",
        )

    def _telemetry_refused(self, topic: str, reason: ReasonCode) -> None:
        """Status and health are not kept (the next report replaces them): only logged once."""
        if not mqtt.accepted(reason):
            self.stats.refusals += 1
            self._log_refusal(topic, reason, kept=False)

    def _log_refusal(self, topic: str, reason: ReasonCode, *, kept: bool) -> None:
        key = (reason.value, kept)
        if key in self._refusals_logged:
            return
        self._refusals_logged.add(key)
        s = self.settings
        if kept:
            what = (
                "disimpan di outbox, dicoba lagi nanti / kept in the outbox, tried again in "
                f"{s.outbox.refused_retry_s:g} s and at every start"
            )
        else:
            what = "tidak disimpan / not kept: status and health are sent again anyway"
        log.error(
            "broker menolak pesan / the broker refused a publish: %s on %s; %s (bank_code %s and "
            "gateway_id %s must be those the credentials %s were issued for: docs/deploy-pi.md §8)",
            _reason(reason),
            topic,
            what,
            s.bank_code,
            s.gateway_id,
            s.mqtt.username or "(anonymous)",
        )

    async def _idle(self, client: aiomqtt.Client) -> None:
        """Wait for new rows or the next refused row's retry; raise MqttError if the connection
        drops meanwhile.

        We subscribe to nothing, so the message iterator only ever ends, with MqttError, when the
        connection is lost: watching it notices a dead broker while idle, not at the next deposit.
        """
        retry_at = self.outbox.next_retry()
        timeout = None if retry_at is None else max(0.0, retry_at - time.time())
        wake = asyncio.ensure_future(self._wake.wait())
        lost = asyncio.ensure_future(anext(client.messages))
        try:
            await asyncio.wait((wake, lost), timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            lost.cancel()
        if lost.done() and not lost.cancelled():
            lost.result()

    # ---- LoRaWAN sensors through the network server's MQTT integration -------------------------

    async def lns_loop(self) -> None:
        """Sensors that arrive over MQTT: EM310-UDL uplinks from the LoRaWAN network server (the
        DevEUI in the uplink names the sensor) and sensors publishing their own JSON (the topic
        names it). Persistent session, QoS 1; each message is acknowledged only after its reading
        is in the outbox."""
        s = self.settings
        lora = {
            (x.cfg.dev_eui or "").lower(): x
            for x in self.sensors.values()
            if x.cfg.kind == "em310_udl"
        }
        by_topic = {
            s.mqtt.topic_prefix + x.cfg.uplink_topic: x
            for x in self.sensors.values()
            if x.cfg.kind == "json"
        }
        filters = {s.mqtt.topic_prefix + x.cfg.topic() for x in lora.values()} | set(by_topic)
        attempt, lost = 0, False
        while True:
            client = mqtt.client(
                s.mqtt,
                identifier=f"{s.gateway_id}.{self.outbox.install}.lns",
                persistent=True,
                protocol=mqtt.V5,
            )
            client._client.manual_ack_set(True)  # noqa: SLF001 - ack after the outbox commit
            try:
                async with client:
                    for topic_filter in sorted(filters):
                        await client.subscribe(topic_filter, qos=1)
                    log.info(
                        "uplink sensor %s / sensor uplinks %s: %d sensor",
                        "tersambung kembali" if lost else "berlangganan",
                        "reconnected" if lost else "subscribed",
                        len(lora) + len(by_topic),
                    )
                    attempt, lost = 0, False
                    async for message in client.messages:
                        payload = message.payload
                        raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
                        json_sensor = by_topic.get(str(message.topic))
                        if json_sensor is not None:
                            self._json_message(json_sensor, raw)
                        else:
                            self._uplink(lora, raw)
                        if message.qos > 0:
                            client._client.ack(message.mid, message.qos)  # noqa: SLF001
            except aiomqtt.MqttError as exc:
                if not lost:
                    log.warning("uplink sensor terputus / sensor uplinks lost: %s", exc)
                lost = True
                attempt += 1
                await asyncio.sleep(backoff(attempt))

    def _uplink(self, by_eui: dict[str, FillSensorReader], payload: bytes) -> None:
        try:
            sample = decode_em310_uplink(payload)
        except FillDecodeError as exc:
            log.warning("uplink ditolak / uplink rejected (%s): %r", exc.reason, payload[:200])
            self.stats.uplinks_rejected += 1
            return
        target = by_eui.get((sample.device_eui or "").lower())
        if target is None:
            log.warning("uplink perangkat tak dikenal / unknown device %s", sample.device_eui)
            self.stats.uplinks_rejected += 1
            return
        target.add(sample, throttle=False)

    def _json_message(self, sensor: FillSensorReader, payload: bytes) -> None:
        try:
            sample = decode_json_reading(payload)
        except FillDecodeError as exc:
            log.warning(
                "pesan sensor ditolak / sensor message rejected (%s): %r", exc.reason, payload[:200]
            )
            self.stats.uplinks_rejected += 1
            return
        sensor.add(sample, throttle=False)

    # ---- health -------------------------------------------------------------------------------

    def health(self) -> GatewayHealth:
        oldest = self.outbox.oldest_age()
        return GatewayHealth(
            gateway_id=self.settings.gateway_id,
            bank_code=self.settings.bank_code,
            install=self.outbox.install,
            boot=self.boot,
            at=datetime.now(UTC),
            uptime_s=int(time.monotonic() - self.started),
            outbox_depth=len(self.outbox),
            outbox_oldest_age_s=int(oldest.total_seconds()) if oldest else None,
            outbox_dropped=self.outbox.dropped,
            outbox_refused=sum(self.outbox.refused().values()),
            mqtt_reconnects=self.stats.mqtt_reconnects,
            deposits_stored=self.stats.deposits_stored,
            scales=[r.health() for r in self.readers.values()],
            sensors=[r.health() for r in self.sensors.values()],
        )

    async def _publish_health(self, publisher: mqtt.Publisher) -> None:
        topic = self.topics.gateway_health(self.settings.bank_code, self.settings.gateway_id)
        health = self.health().model_dump_json()
        reason = await publisher.publish(topic, health, qos=1, retain=True)
        self._telemetry_refused(topic, reason)

    async def health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            self.check_outbox()
            publisher = self._publisher
            if publisher is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._publish_health(publisher)

    def check_outbox(self) -> None:
        """Expire old rows; 'outbox dropping' is raised while rows are being dropped (by size or
        age) and cleared after an interval without new drops. Never silent."""
        expired = self.outbox.expire()
        dropped = self.outbox.dropped
        new = dropped - self._dropped_reported
        self._dropped_reported = dropped
        self.alert(
            "outbox_dropped",
            "outbox",
            new > 0,
            value=dropped,
            message=f"{new} pesan dibuang / outbox rows dropped ({expired} by age); total {dropped}"
            if new
            else f"tidak ada lagi yang dibuang / no more drops; total {dropped}",
        )
        self._check_refused()  # refused rows the bounds dropped (counted above) are gone too

    async def run(self) -> None:
        """Until SIGTERM (systemd's stop: a clean return, exit status 0) or a task fails."""
        me = asyncio.current_task()
        loop = asyncio.get_running_loop()
        terminated = False

        def terminate() -> None:
            nonlocal terminated
            terminated = True
            if me is not None:
                me.cancel()

        loop.add_signal_handler(signal.SIGTERM, terminate)
        log.info(
            "gateway %s mulai / starting: install %s, boot %s, id berikut / next id %s",
            self.settings.gateway_id,
            self.outbox.install,
            self.boot,
            self.event_id(self.outbox.last_seq + 1),
        )
        try:
            async with asyncio.TaskGroup() as tg:
                for reader in self.readers.values():
                    tg.create_task(reader.run(), name=f"scale-{reader.cfg.id}")
                for sensor in self.sensors.values():
                    if not sensor.cfg.over_mqtt:
                        tg.create_task(sensor.run(), name=f"sensor-{sensor.cfg.id}")
                if any(s.cfg.over_mqtt for s in self.sensors.values()):
                    tg.create_task(self.lns_loop(), name="lns")
                tg.create_task(self.mqtt_loop(), name="mqtt")
                tg.create_task(self.health_loop(), name="health")
                if self.settings.http_port:
                    tg.create_task(self._serve_http(), name="http")
        except asyncio.CancelledError:
            if not terminated:
                raise  # cancelled by our caller (Ctrl-C, a test): theirs to handle
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            log.info("gateway berhenti / stopping: %s, outbox %d", self.stats, len(self.outbox))
            self.outbox.close()

    async def _serve_http(self) -> None:
        # Imported here: FastAPI and uvicorn cost ~15 MB, and a site may run without the endpoint.
        from gateway.local_api import serve

        await serve(self)


class Live:
    """Wakes whatever streams the gateway's live state (the attendant page's Server-Sent
    Events) when a reading, a deposit or the broker link changes; :meth:`stop` ends the streams
    at shutdown."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.version = 0
        self.stopped = False

    def notify(self) -> None:
        self.version += 1
        self._event.set()
        self._event = asyncio.Event()

    def stop(self) -> None:
        self.stopped = True
        self.notify()

    async def wait(self, seen: int, timeout: float) -> None:
        """Until a change after ``version`` ``seen`` (at once if there was one already), a
        stop, or ``timeout`` seconds."""
        if self.stopped or self.version != seen:
            return
        event = self._event
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()


def _reason(reason: ReasonCode) -> str:
    """A PUBACK's reason code for a log line: ``0x87 Not authorized``."""
    return f"0x{reason.value:02x} {reason.getName()}"


async def run(settings: GatewaySettings) -> None:
    await Gateway(settings).run()
