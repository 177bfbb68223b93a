"""The gateway process: serial scale -> deposit events -> SQLite outbox -> MQTT (QoS 1).

Two tasks in one TaskGroup: the serial side turns bytes into readings and kiosk frames, feeds the
kiosk session and stores each resulting deposit in the outbox; the MQTT side keeps a connection
(with a retained "online" status and an "offline" will), drains the outbox oldest first and deletes
a row only once the broker acknowledged it. Either side reconnects on its own with capped,
jittered backoff, logging once on loss and once on recovery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiomqtt
import serial
from pydantic import Field, ValidationError

from gateway.kiosk import DepositCandidate, KioskSession
from gateway.outbox import Outbox
from gateway.scale_protocol import FrameError, KioskFrame, LineFramer, WeightReading, parse_line
from wastebank import __version__, mqtt
from wastebank.config import RUN_DIR, MqttSettings, WastebankSettings
from wastebank.messages import CODE_PATTERN, DepositEvent, GatewayStatus, Topics
from wastebank.mqtt import backoff

log = logging.getLogger("wastebank.gateway")

DRAIN_BATCH = 50


class GatewaySettings(WastebankSettings):
    mqtt: MqttSettings = MqttSettings()
    gateway_id: str = Field(default="gw-01", pattern=CODE_PATTERN)
    bank_code: str = Field(pattern=CODE_PATTERN)
    scale_id: str = Field(default="scale-01", pattern=CODE_PATTERN)
    serial_port: Path = Field(description="e.g. /dev/serial/by-id/usb-... or a simulator's link")
    baudrate: int = Field(default=9600, ge=300, le=921_600)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    outbox_path: Path = RUN_DIR / "gateway" / "outbox.db"
    outbox_max_rows: int = Field(default=100_000, ge=100)
    min_net_g: int = Field(default=50, ge=1)


@dataclass
class GatewayStats:
    bytes_read: int = 0
    lines: int = 0
    frames_bad: int = 0
    deposits_stored: int = 0
    deposits_invalid: int = 0
    published: int = 0


class Gateway:
    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.outbox = Outbox(settings.outbox_path, max_rows=settings.outbox_max_rows)
        self.session = KioskSession(min_net_g=settings.min_net_g)
        self.framer = LineFramer()
        self.stats = GatewayStats()
        self.bad_frames: list[tuple[str, bytes]] = []  # the latest bad frames, for inspection
        self._wake = asyncio.Event()
        self.connected = asyncio.Event()

    # ---- serial side --------------------------------------------------------------------------

    def feed(self, data: bytes, now: float | None = None) -> list[int]:
        """Feed raw serial bytes; return the sequence numbers of deposits stored in the outbox."""
        now = time.monotonic() if now is None else now
        self.stats.bytes_read += len(data)
        stored: list[int] = []
        for item in self.framer.feed(data):
            if isinstance(item, FrameError):
                self._bad(item)
                continue
            self.stats.lines += 1
            try:
                parsed = parse_line(item)
            except FrameError as exc:
                self._bad(exc)
                continue
            candidate: DepositCandidate | None
            if isinstance(parsed, WeightReading):
                candidate = self.session.on_reading(parsed, now)
            elif isinstance(parsed, KioskFrame):
                candidate = self.session.on_frame(parsed, now)
            if candidate is not None:
                seq = self._store(candidate)
                if seq is not None:
                    stored.append(seq)
        if stored:
            self._wake.set()
        return stored

    def _bad(self, exc: FrameError) -> None:
        self.stats.frames_bad += 1
        self.bad_frames = [*self.bad_frames[-99:], (exc.reason, exc.raw)]
        log.debug("bingkai rusak / bad frame (%s): %r", exc.reason, exc.raw)

    def _store(self, c: DepositCandidate) -> int | None:
        s = self.settings
        measured_at = datetime.now(UTC)

        def build(seq: int) -> tuple[str, bytes]:
            ev = DepositEvent(
                event_id=f"{s.gateway_id}-{seq}",
                gateway_id=s.gateway_id,
                seq=seq,
                bank_code=s.bank_code,
                scale_id=s.scale_id,
                card_uid=c.card_uid,
                category_code=c.category_code,
                net_g=c.net_g,
                tare_g=c.tare_g,
                stable=c.stable,
                protocol=c.protocol,
                measured_at=measured_at,
                raw_frames=list(c.raw_frames),
            )
            return self.topics.deposit(s.bank_code, s.gateway_id), ev.model_dump_json().encode()

        try:
            seq = self.outbox.add(build)
        except ValidationError as exc:
            # The kiosk sent something our schema refuses (e.g. a malformed category key).
            self.stats.deposits_invalid += 1
            log.warning("setoran tidak sah / invalid deposit %s: %s", c, exc.errors()[0]["msg"])
            return None
        self.stats.deposits_stored += 1
        log.info(
            "setoran / deposit %s-%d: kartu %s, %s, %d g",
            s.gateway_id,
            seq,
            c.card_uid,
            c.category_code,
            c.net_g,
        )
        return seq

    async def serial_loop(self) -> None:
        loop = asyncio.get_running_loop()
        attempt, lost = 0, False
        while True:
            try:
                port = serial.Serial(
                    str(self.settings.serial_port),
                    baudrate=self.settings.baudrate,
                    bytesize=self.settings.bytesize,
                    parity=self.settings.parity,
                    stopbits=self.settings.stopbits,
                    timeout=0,
                )
            except (serial.SerialException, OSError) as exc:
                if not lost:
                    log.warning("timbangan tidak terhubung / scale not connected: %s", exc)
                lost = True
                attempt += 1
                await asyncio.sleep(backoff(attempt))
                continue
            if lost or attempt == 0:
                log.info("timbangan terhubung / scale connected on %s", self.settings.serial_port)
            attempt, lost = 0, False
            self.framer = LineFramer()  # the first line after opening may be partial
            try:
                await self._read_port(loop, port)
            except (serial.SerialException, OSError) as exc:
                log.warning("timbangan terputus / scale disconnected: %s", exc)
                lost = True
            finally:
                with contextlib.suppress(OSError, serial.SerialException):
                    port.close()

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

    # ---- MQTT side ----------------------------------------------------------------------------

    def _status(self, state: Literal["online", "offline"]) -> bytes:
        return (
            GatewayStatus(
                state=state,
                device_id=self.settings.gateway_id,
                at=datetime.now(UTC),
                version=__version__,
            )
            .model_dump_json()
            .encode()
        )

    async def mqtt_loop(self) -> None:
        s = self.settings
        status_topic = self.topics.gateway_status(s.bank_code, s.gateway_id)
        will_payload = GatewayStatus(state="offline", device_id=s.gateway_id).model_dump_json()
        attempt, lost = 0, False
        while True:
            client = mqtt.client(
                s.mqtt,
                identifier=f"gateway-{s.gateway_id}",
                will=aiomqtt.Will(status_topic, will_payload, qos=1, retain=True),
            )
            try:
                async with client:
                    log.info(
                        "%s / connected to the broker %s:%d",
                        "terhubung kembali" if lost else "terhubung",
                        s.mqtt.host,
                        s.mqtt.port,
                    )
                    attempt, lost = 0, False
                    await client.publish(status_topic, self._status("online"), qos=1, retain=True)
                    self.connected.set()
                    try:
                        await self._drain(client)
                    finally:
                        self.connected.clear()
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

    async def _drain(self, client: aiomqtt.Client) -> None:
        while True:
            self._wake.clear()
            rows = self.outbox.peek(DRAIN_BATCH)
            if not rows:
                await self._idle(client)
                continue
            for row in rows:
                await client.publish(row.topic, row.payload, qos=1)
                self.outbox.remove(row.id)
                self.stats.published += 1

    async def _idle(self, client: aiomqtt.Client) -> None:
        """Wait for new rows; raise MqttError if the connection drops meanwhile.

        We subscribe to nothing, so the message iterator only ever ends, with MqttError, when the
        connection is lost: watching it notices a dead broker while idle, not at the next deposit.
        """
        wake = asyncio.ensure_future(self._wake.wait())
        lost = asyncio.ensure_future(anext(client.messages))
        try:
            await asyncio.wait((wake, lost), return_when=asyncio.FIRST_COMPLETED)
        finally:
            wake.cancel()
            lost.cancel()
        if lost.done() and not lost.cancelled():
            lost.result()

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self.serial_loop(), name="serial")
                tg.create_task(self.mqtt_loop(), name="mqtt")
        finally:
            log.info("gateway berhenti / stopping: %s, outbox %d", self.stats, len(self.outbox))
            self.outbox.close()


async def run(settings: GatewaySettings) -> None:
    await Gateway(settings).run()
