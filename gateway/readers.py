"""The gateway's serial devices: a scale, a TPS fill sensor.

Each reads its own port (reopening it when a USB adapter is unplugged and comes back) and turns
the bytes into candidates: the loads its session confirms (:class:`DepositCandidate`), the
readings its fill filter gives (:class:`FillCandidate`), and the conditions an alert is about
(:class:`Condition`). A reader stores nothing and knows nothing of the gateway around it: the app
(:mod:`gateway.app`) hands what it returns to the recorder (:mod:`gateway.recorder`).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import serial

from gateway.fill_sensor import (
    DistanceSample,
    FillEstimate,
    FillProcessor,
    MaxBotixDecoder,
    Mode2Decoder,
)
from gateway.kiosk import AttendantSession, DepositCandidate, KioskSession
from gateway.reconnect import reconnecting
from gateway.scale_protocol import (
    AutoDetector,
    FrameError,
    KioskFrame,
    ScaleDecoder,
    ScaleStatus,
    WeightReading,
    decoder_for,
)
from gateway.scale_state import (
    BAD_FRAMES_KEPT,
    STALE_REJECTS,
    STATE_TEXT,
    WORKING,
    FaultChange,
    FaultWatch,
    fault_of,
)
from gateway.settings import ScaleSettings, SensorSettings
from gateway.weighing import StabilityDetector, WeighState
from wastebank.errors import Conflict
from wastebank.messages import AlertCode, ScaleHealth, ScaleState, SensorHealth

log = logging.getLogger("wastebank.gateway")

PORT_ERRORS = (serial.SerialException, OSError)
"""A port that went away while open (the adapter unplugged)."""
OPEN_ERRORS = (*PORT_ERRORS, ValueError)
"""A port that cannot be opened now (pyserial says ValueError for some bad line settings)."""
READ_SIZE = 4096


@dataclass(frozen=True)
class Condition:
    """What an alert is about, as it is now: ``active`` or not. Reported each time it is seen;
    the recorder raises the alert once when it starts and clears it once when it ends."""

    code: AlertCode
    subject: str
    active: bool
    message: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class FillCandidate:
    """A fill sensor's filtered reading, not yet numbered or stored."""

    estimate: FillEstimate
    measured_at: datetime
    stamped_here: bool = True
    """``measured_at`` is this gateway's clock (not a network server's ``received_at``)."""


class ScaleNotWeighing(Conflict):
    """A scale that cannot weigh now is not armed: its protocol is not known (``undetected``)
    or nothing readable came from it lately (``stale``): nothing it would weigh can be trusted,
    and the attendant would wait on a load that is never taken."""

    def __init__(self, scale_id: str, state: ScaleState) -> None:
        said_id, said_en = STATE_TEXT[state].split(" / ")
        super().__init__(
            f"timbangan {scale_id} belum bisa menimbang: {said_id.lower()} / scale {scale_id} "
            f"cannot weigh now: {said_en.lower()}"
        )


@dataclass(frozen=True)
class BadFrame:
    """A rejected frame kept for inspection: why, when (wall clock), its bytes."""

    reason: str
    at: datetime
    raw: bytes


@dataclass
class ScaleStats:
    bytes_read: int = 0
    frames_parsed: int = 0
    frames_rejected: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)


class SerialDevice(abc.ABC):
    """A device on a serial port: opens it, reads it on the event loop, and when the adapter goes
    away keeps reopening the same (by-id) path; logs once on loss, once on recovery, and reports
    a ``scale_offline`` condition each time."""

    kind_id, kind_en = "perangkat", "device"  # for log lines: Bahasa Indonesia, then English

    def __init__(self, device_id: str, port: Path, **line: int | str) -> None:
        self.device_id = device_id
        self.port = port
        self.line = line
        self.connected = False
        self.reconnects = 0
        self.on_change: Callable[[], None] = lambda: None
        """Called when the port opens or closes, a scale's state changes (but between ok and
        unsettled) or a sensor's no-target run ends: the gateway reports its health at once."""

    @abc.abstractmethod
    def reset(self) -> None:
        """Forget any partial frame: the first bytes after (re)opening may be mid-frame.
        Called when the port opens and when it closes."""

    @abc.abstractmethod
    def note_state(self) -> None:
        """Called when the device may have changed state (connected or not)."""

    async def stream(self) -> AsyncGenerator[bytes | Condition]:
        """What the port gives, as it comes, until cancelled: the bytes read, and a
        ``scale_offline`` condition when the port goes away (active) and when it is back."""
        id_, en, name = self.kind_id, self.kind_en, self.device_id
        lost = False
        while True:
            try:
                port = self._open()
            except OPEN_ERRORS as exc:
                if not lost:
                    log.warning("%s tidak terhubung / %s not connected: %s: %s", id_, en, name, exc)
                    yield self._offline(True, str(exc))
                    lost = True
                port = await self._reopen()
            log.info("%s terhubung / %s connected: %s on %s", id_, en, name, self.port)
            if lost:
                self.reconnects += 1
            yield self._offline(False, "connected")
            lost = False
            try:
                async with contextlib.aclosing(self._read(port)) as chunks:
                    async for data in chunks:
                        yield data
            except PORT_ERRORS as exc:
                log.warning("%s terputus / %s disconnected: %s: %s", id_, en, name, exc)
                yield self._offline(True, str(exc))
                lost = True

    def _open(self) -> serial.Serial:
        # exclusive: a second process on the same port (the service started twice, a stale
        # gateway whose link now points at a reused /dev/pts or ttyUSB number) would take half
        # the bytes of each, tearing frames apart; locked, the second cannot open it ("Could not
        # exclusively lock port"), says so (scale_offline) and retries until the first lets go.
        return serial.Serial(str(self.port), timeout=0, exclusive=True, **self.line)  # type: ignore[arg-type]

    async def _reopen(self) -> serial.Serial:
        async for attempt in reconnecting(OPEN_ERRORS):
            with attempt:
                return self._open()
        raise AssertionError("reconnecting() retries until the port opens")

    async def _read(self, port: serial.Serial) -> AsyncGenerator[bytes]:
        """Read ``port`` when the event loop says it is readable; closed at the end."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        fd = port.fileno()
        self.reset()
        self.connected = True
        self.note_state()
        self.on_change()
        loop.add_reader(fd, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                data = port.read(READ_SIZE)
                if data:
                    yield data
        finally:
            loop.remove_reader(fd)
            self.connected = False
            self.reset()
            self.note_state()
            self.on_change()
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    def _offline(self, offline: bool, detail: str) -> Condition:
        state = "tidak tersedia / unavailable" if offline else "tersedia lagi / available again"
        return Condition(
            "scale_offline",
            self.device_id,
            offline,
            message=f"{self.kind_id} {self.device_id}: {state} ({detail})",
        )


class ScaleReader(SerialDevice):
    """Reads one scale's port and turns its frames into deposit candidates."""

    kind_id, kind_en = "timbangan", "scale"

    def __init__(self, cfg: ScaleSettings) -> None:
        super().__init__(
            cfg.id,
            cfg.port,
            baudrate=cfg.baudrate,
            bytesize=cfg.bytesize,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
        )
        self.cfg = cfg
        self.stats = ScaleStats()
        self.last: WeightReading | None = None
        self.bad_frames: deque[BadFrame] = deque(maxlen=BAD_FRAMES_KEPT)
        """The latest rejects, for inspection (``GET /scales/{id}/frames``)."""
        self.parsed_at = time.monotonic()
        """When the latest frame was parsed (or the port opened): the staleness clock."""
        self.reject_run = 0
        """Frames rejected since the latest parsed one."""
        self._redetections = 0
        self._undecided_counted = 0
        self.session: KioskSession | AttendantSession
        if cfg.flow == "kiosk":
            self.session = KioskSession(min_net_g=cfg.min_net_g, zero_band_g=cfg.zero_band_g)
        else:
            self.session = AttendantSession(min_net_g=cfg.min_net_g, zero_band_g=cfg.zero_band_g)
        self.decoder: ScaleDecoder | AutoDetector = decoder_for(
            cfg.protocol, unit=cfg.unit, label=cfg.id
        )
        self.weigh = WeighState(
            stability=StabilityDetector(
                window_s=cfg.stability_window_s, tolerance_g=cfg.stability_tolerance_g
            ),
            zero_band_g=cfg.zero_band_g,
        )
        self.status_by_kind: dict[str, int] = {}
        """Status frames by kind (overload, underload, error, busy), counted as parsed frames."""
        self.faults = FaultWatch()
        self.zero_drifting = False
        self.last_card: tuple[str, float] | None = None
        """(uid, monotonic time) of the last card tapped on an attendant scale's reader."""
        self._state: ScaleState = self.state()
        self.state_since = datetime.now(UTC)
        """When :attr:`_state` began (wall clock, for health reports)."""

    def reset(self) -> None:
        """Also forget the last reading: what the scale showed before its port went away is not
        what it weighs now (shown, calibrated against or made settled by later readings)."""
        self.decoder.reset()
        self.last = None
        self.weigh.stability.reset()
        self.parsed_at = time.monotonic()
        self.reject_run = 0

    def shown(self) -> tuple[int | None, bool | None]:
        """The weight the scale shows now and whether it is settled, as ``/scales``, the health
        report and the page say them: no weight and not settled while disconnected; no weight
        after a status line and while a fault holds the weighing; (None, None) before the first
        line."""
        if not self.connected or self.stale():
            return None, False
        last = self.last
        return (None, None) if last is None else (last.grams, last.status == "stable")

    # ---- state ------------------------------------------------------------------------------

    def stale(self) -> bool:
        """Nothing readable lately: no frame parsed for the scale's ``stale_after_s``
        (:data:`STALE_S`; 0: never by silence), or the latest :data:`STALE_REJECTS` frames all
        rejected (docs/protocol.md §1.8)."""
        after = self.cfg.stale_after_s
        silent = after > 0 and time.monotonic() - self.parsed_at > after
        return silent or self.reject_run >= STALE_REJECTS

    def require_weighing(self) -> None:
        """:class:`ScaleNotWeighing` unless the scale can weigh now (arming, a calibration
        check): its protocol known and its frames fresh."""
        state = self.state()
        if state in ("undetected", "stale"):
            raise ScaleNotWeighing(self.cfg.id, state)

    def state(self) -> ScaleState:
        """What the scale is doing now, the most serious first: disconnected; undetected (its
        protocol is ``auto`` and not decided yet, or a decision no longer fits); stale (nothing
        readable lately: :meth:`stale`; no weight shown, none armed); a fault (overload, underload,
        indicator_error: debounced, :mod:`gateway.scale_state`, from its alert's raising to its
        clearing, and no weight is taken meanwhile); zero_drift (the idle zero moved past
        ``zero_drift_alert_g``); then ok (a stable weight) or unsettled (moving, a status
        frame, or no weight yet)."""
        if not self.connected:
            return "disconnected"
        if isinstance(self.decoder, AutoDetector) and self.decoder.protocol is None:
            return "undetected"
        if self.stale():
            return "stale"
        fault = self.faults.active()
        if fault is not None:
            return fault
        if self.zero_drifting:
            return "zero_drift"
        last = self.last
        return "ok" if last is not None and last.status == "stable" else "unsettled"

    def note_state(self) -> None:
        """Keep :attr:`state_since`; log a change, except between ok and unsettled (every load
        makes those)."""
        state = self.state()
        if state == self._state:
            return
        was, self._state = self._state, state
        self.state_since = datetime.now(UTC)
        if not {was, state} <= WORKING:
            log.info(
                "timbangan / scale %s: keadaan / state %s (sebelumnya / was %s)",
                self.cfg.id,
                state,
                was,
            )
            self.on_change()

    def process(self, data: bytes, now: float | None = None) -> list[DepositCandidate | Condition]:
        """Decode raw bytes from the port: the deposits its session confirmed and the conditions
        seen (zero drift, a fault starting or ending), in the order they came."""
        now = time.monotonic() if now is None else now
        self.stats.bytes_read += len(data)
        out: list[DepositCandidate | Condition] = []
        items = self.decoder.feed(data)
        replayed = self._detection()
        for index, item in enumerate(items):
            if index < replayed:
                continue  # read before the decision: counted as undetected, never weighed
            if isinstance(item, FrameError):
                self._count_reject(item.reason, item.raw)
                continue
            self.parsed_at, self.reject_run = time.monotonic(), 0
            self.stats.frames_parsed += 1
            if isinstance(item, ScaleStatus):
                candidate = self._status(item, now, out)
            elif isinstance(item, WeightReading):
                candidate = self._weight(item, now, out)
            else:
                candidate = self._kiosk_frame(item, now)
            if candidate is not None:
                out.append(candidate)
        self.note_state()
        return out

    def _detection(self) -> int:
        """An ``auto`` scale's detector since the last call: frames seen while undecided are
        counted as rejected (``undetected``); a decision forgotten drops the weight shown. The
        number of items at the head of the last feed that were read before a decision."""
        detector = self.decoder
        if not isinstance(detector, AutoDetector):
            return 0
        if (undecided := detector.frames_undecided - self._undecided_counted) > 0:
            self._undecided_counted = detector.frames_undecided
            self.stats.frames_rejected += undecided
            reasons = self.stats.rejected_by_reason
            reasons["undetected"] = reasons.get("undetected", 0) + undecided
        if detector.redetections != self._redetections:
            self._redetections = detector.redetections
            self.last = None
            self.weigh.stability.reset()
        if detector.replayed:  # just decided: the stream reads, freshness starts now
            self.parsed_at, self.reject_run = time.monotonic(), 0
        return detector.replayed

    def _status(
        self, item: ScaleStatus, now: float, out: list[DepositCandidate | Condition]
    ) -> DepositCandidate | None:
        # Overload, underload, a device error: no weight, and the last weight is stale (a
        # confirm now must not use it). A flagless scale's stability starts afresh: readings
        # from before the fault must not make the first one after it "stable".
        self.status_by_kind[item.kind] = self.status_by_kind.get(item.kind, 0) + 1
        out.extend(
            self._fault_condition(c) for c in self.faults.update(fault_of(item), now, item.code)
        )
        self.weigh.stability.reset()
        marker = WeightReading("overload", "gross", None, item.raw, item.protocol)
        self.last = marker
        return self.session.on_reading(marker, now)

    def _fault_condition(self, change: FaultChange) -> Condition:
        text, subject = STATE_TEXT[change.fault], self.cfg.id
        said = f" ({change.code})" if change.code else ""
        if change.active:
            message = f"timbangan {subject}: {text}{said}"
        else:
            message = f"timbangan {subject}: selesai / ended: {text}"
        return Condition(change.fault, subject, change.active, message)

    def _weight(
        self, item: WeightReading, now: float, out: list[DepositCandidate | Condition]
    ) -> DepositCandidate | None:
        out.extend(self._fault_condition(c) for c in self.faults.update(None, now))
        weighing = self.weigh.update(item, now)
        if weighing is None:  # a tare frame: it set the tare
            return None
        reading = replace(weighing.reading, grams=weighing.net_g)
        zero = self._zero_condition()
        if zero is not None:
            out.append(zero)
        if self.faults.holds(now):
            # A fault shows, or a fault line came less than FAULT_CLEAR_S ago: this weight is
            # neither shown nor weighed; the session sees the fault's line again (a kiosk's OK
            # now is refused as on it). The flagless stability window keeps running, so the
            # first line after the hold can be the deposit.
            return None if self.last is None else self.session.on_reading(self.last, now)
        self.last = reading
        candidate = self.session.on_reading(reading, now)
        return None if candidate is None else replace(candidate, tare_g=weighing.tare_g)

    def _kiosk_frame(self, item: KioskFrame, now: float) -> DepositCandidate | None:
        if isinstance(self.session, KioskSession):
            return self.session.on_frame(item, now)
        if item.kind == "CARD":  # a card reader next to an attendant scale
            self.last_card = (item.value, now)
            return None
        # keys frames on a scale configured for the attendant flow
        self.stats.frames_parsed -= 1
        self._count_reject("kiosk_frame_on_attendant_scale", item.raw)
        return None

    def _count_reject(self, reason: str, raw: bytes) -> None:
        self.stats.frames_rejected += 1
        reasons = self.stats.rejected_by_reason
        reasons[reason] = reasons.get(reason, 0) + 1
        self.reject_run += 1
        self.bad_frames.append(BadFrame(reason, datetime.now(UTC), raw))
        log.debug("bingkai rusak / bad frame on %s (%s): %r", self.cfg.id, reason, raw)

    def _zero_condition(self) -> Condition | None:
        """Active when the idle zero has drifted past the limit; cleared at half of it."""
        if self.weigh.zero_g is None:
            return None
        drift, limit, subject = self.weigh.drift_g, self.cfg.zero_drift_alert_g, self.cfg.id
        if abs(drift) > limit:
            self.zero_drifting = True
            message = f"nol timbangan bergeser / zero drift {drift:+d} g on {subject}"
            return Condition("zero_drift", subject, True, message, drift, limit)
        if abs(drift) <= limit // 2:
            self.zero_drifting = False
            message = f"nol timbangan kembali / zero back to {drift:+d} g on {subject}"
            return Condition("zero_drift", subject, False, message, drift, limit)
        return None

    @property
    def protocol(self) -> str:
        """The protocol in use: the configured one, or what auto-detection decided."""
        return self.decoder.protocol or self.cfg.protocol

    def state_now(self) -> tuple[ScaleState, datetime]:
        """The state and since when (wall clock)."""
        self.note_state()
        return self._state, self.state_since

    def health(self) -> ScaleHealth:
        state, since = self.state_now()
        grams, stable = self.shown()
        return ScaleHealth(
            scale_id=self.cfg.id,
            protocol=self.protocol,
            connected=self.connected,
            frames_parsed=self.stats.frames_parsed,
            frames_rejected=self.stats.frames_rejected,
            reconnects=self.reconnects,
            last_g=grams,
            stable=stable,
            zero_drift_g=self.weigh.drift_g if self.weigh.zero_g is not None else None,
            state=state,
            state_since=since,
        )


class FillSensorReader(SerialDevice):
    """A TPS fill sensor: raw distance samples -> filtered readings.

    Serial sensors (JSN-SR04T mode 2, MaxBotix) are read from their port and give one reading
    per ``report_interval_s``; samples that come over MQTT (EM310-UDL uplinks, sensors' own
    JSON: :mod:`gateway.lns`) are each a reading.
    """

    kind_id, kind_en = "sensor TPS", "TPS sensor"

    def __init__(self, cfg: SensorSettings) -> None:
        super().__init__(cfg.id, cfg.port or Path("/dev/null"), baudrate=cfg.baudrate)
        self.cfg = cfg
        self.processor = FillProcessor(cfg.fill_config())
        self.decoder: Mode2Decoder | MaxBotixDecoder = (
            Mode2Decoder()
            if cfg.kind == "jsn_sr04t"
            else MaxBotixDecoder(four_digit_unit=cfg.maxbotix_unit, model=cfg.maxbotix_model)
        )
        self.readings = 0
        self.no_target_since: datetime | None = None
        self._last_report = -float("inf")

    def reset(self) -> None:
        self.decoder.reset()

    def note_state(self) -> None:
        """A sensor's health is its counters: no state to keep."""

    def process(self, data: bytes) -> list[FillCandidate]:
        """Decode raw bytes from the port: the readings due (one per ``report_interval_s``)."""
        samples = self.decoder.feed(data)
        self._note_no_target()
        due = (self.add(sample, throttle=True) for sample in samples)
        return [candidate for candidate in due if candidate is not None]

    def _note_no_target(self) -> None:
        """When the sensor's unbroken run of no-target frames began (None: its latest frame
        was a distance): the fleet warns of a sensor that has seen nothing for a while."""
        run = self.decoder.no_target_run if isinstance(self.decoder, MaxBotixDecoder) else 0
        if run == 0 and self.no_target_since is not None:
            self.no_target_since = None
            self.on_change()  # the end of a run the fleet may have been told of
        elif run and self.no_target_since is None:
            self.no_target_since = datetime.now(UTC)

    def add(self, sample: DistanceSample, *, throttle: bool) -> FillCandidate | None:
        """One sample into the filter; the reading it completes, if one is due."""
        estimate = self.processor.add(sample, temperature_c=self.cfg.ambient_c)
        if estimate is None:
            return None
        now = time.monotonic()
        if throttle and now - self._last_report < self.cfg.report_interval_s:
            return None
        self._last_report = now
        self.readings += 1
        if sample.received_at is not None:  # the network server's clock, not ours
            return FillCandidate(estimate, sample.received_at, stamped_here=False)
        return FillCandidate(estimate, datetime.now(UTC))

    @property
    def port_open(self) -> bool | None:
        """Its serial port open or not; None for a sensor that reports over MQTT."""
        return None if self.cfg.over_mqtt else self.connected

    def health(self) -> SensorHealth:
        return SensorHealth(
            sensor_id=self.cfg.id,
            tps_code=self.cfg.tps_code,
            kind=self.cfg.kind,
            connected=self.port_open,
            samples_accepted=self.processor.accepted,
            samples_rejected=sum(self.processor.rejects.values())
            + sum(self.decoder.rejects.values()),
            readings=self.readings,
            no_target=self.decoder.rejects["no_target"],
            no_target_since=self.no_target_since,
        )
