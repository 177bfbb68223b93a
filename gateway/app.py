"""The gateway process at a waste bank: scales -> deposit events -> SQLite outbox -> MQTT (QoS 1).

One TaskGroup holds: a reader per scale and per serial TPS sensor (its own port, protocol and
line settings; it reopens its port on its own when a USB adapter is unplugged and comes back),
the sensors that arrive over MQTT (:mod:`gateway.lns`), the link to the broker
(:mod:`gateway.uplink`), and a health loop (retained telemetry, outbox expiry, alerts raised once
and cleared once): the one place that decides when a health report goes out, every
``health_interval_s`` and at once when something the fleet must see changed (:class:`Faults`).
What the readers return goes to the recorder (:mod:`gateway.recorder`).

Whatever else runs beside them (the local endpoint: :mod:`gateway.http`) is handed to
:meth:`Gateway.run` by :mod:`gateway.run`; nothing here imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import aiomqtt

from gateway.alert_store import as_message
from gateway.attendant_store import AttendantDb
from gateway.clock import ClockWatch
from gateway.fill_sensor import DistanceSample
from gateway.live import Live
from gateway.lns import SensorUplinks
from gateway.outbox import Outbox
from gateway.readers import Condition, FillSensorReader, ScaleReader, SerialDevice
from gateway.recorder import GatewayStats, Recorder
from gateway.scale_state import WORKING
from gateway.settings import GatewaySettings
from gateway.uplink import Uplink
from wastebank import __version__, mqtt
from wastebank.messages import (
    ALERTS_ACTIVE_MAX,
    ActiveAlert,
    GatewayHealth,
    ScaleState,
    Topics,
    new_install,
)
from wastebank.structs import checked

log = logging.getLogger("wastebank.gateway")


@dataclass(frozen=True)
class Faults:
    """The part of a health report the fleet must hear of at once when it changes."""

    scales: tuple[tuple[str, ScaleState | None], ...]
    """Each scale's state, ok and unsettled as one (:data:`gateway.scale_state.WORKING`)."""
    sensors: tuple[tuple[str, bool | None, datetime | None], ...]
    """Each sensor's port (open, closed, None: over MQTT) and its no-target run's start."""
    clock: bool | None
    alerts: frozenset[tuple[str, str]]

    @classmethod
    def of(
        cls,
        scales: Iterable[tuple[str, ScaleState]],
        sensors: Iterable[tuple[str, bool | None, datetime | None]],
        clock: bool | None,
        alerts: frozenset[tuple[str, str]],
    ) -> Faults:
        """From each scale's (id, state), each sensor's (id, port, no-target run's start), the
        clock's synchronization and the active alerts' (code, subject)."""
        return cls(
            tuple((scale_id, "ok" if state in WORKING else state) for scale_id, state in scales),
            tuple(sensors),
            clock,
            alerts,
        )

    def news_since(self, told: Faults) -> bool:
        """Whether a fleet told ``told`` must hear of this at once: a scale's state, an alert
        raised or cleared, a sensor's port, the clock's synchronization; and the end of a
        no-target run it was told of (a run's start is not news: only a long one is a fault,
        and the periodic report shows how long it has lasted)."""
        if (self.scales, self.clock, self.alerts) != (told.scales, told.clock, told.alerts):
            return True
        for (_, port, run), (_, told_port, told_run) in zip(
            self.sensors, told.sensors, strict=True
        ):
            if port != told_port or (told_run is not None and run != told_run):
                return True
        return False


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
        self.attendant_db = AttendantDb(self.outbox)
        self.live = Live()
        self.stats = GatewayStats()
        self.clock = ClockWatch(settings.clock, memory=self.outbox)
        self.clock.check()  # before the first event is stamped
        self.health_due = asyncio.Event()
        """Set when the fleet must hear of something at once (:meth:`note_health`) or the link
        to the broker is back: :meth:`health_loop` publishes a report soon."""
        self._told: Faults | None = None
        self._told_via: mqtt.Publisher | None = None
        """The connection the latest report went out on: a new one gets a report at once."""
        self.recorder = Recorder(
            settings,
            self.outbox,
            self.attendant_db,
            live=self.live,
            stats=self.stats,
            clock=self.clock,
        )
        self.calibration = self.recorder.calibration
        self.readers = {cfg.id: ScaleReader(cfg) for cfg in settings.scales}
        self.sensors = {cfg.id: FillSensorReader(cfg) for cfg in settings.sensors}
        self.uplink = Uplink(
            settings,
            self.outbox,
            self.recorder,
            self.attendant_db,
            boot=self.boot,
            live=self.live,
            stats=self.stats,
            health_due=self.health_due,
        )
        for device in (*self.readers.values(), *self.sensors.values()):
            device.on_change = self.note_health
        self.recorder.alerts.on_change = self.note_health
        self.connected = self.uplink.connected
        self.started = time.monotonic()
        self._dropped_reported = self.outbox.dropped
        self._release_refused()
        self._clear_unknown_subjects()

    def _release_refused(self) -> None:
        """Rows an earlier run kept because the broker refused them: tried now (the site file or
        the credentials may have been fixed before this start); the alert that run raised is
        cleared once they are accepted."""
        refused = sum(self.outbox.refused().values())
        if refused:
            self.outbox.release_refused()
            self.recorder.assume_raised("publish_refused", "outbox")
            log.warning(
                "%d pesan yang ditolak broker dicoba lagi / %d rows the broker refused are "
                "tried again",
                refused,
                refused,
            )

    def _clear_unknown_subjects(self) -> None:
        """An alert an earlier run left raised about a scale or sensor the site file no longer
        has: nothing will ever end it, so it is cleared now, once."""
        known = {*self.readers, *self.sensors, "outbox"}
        for alert in self.recorder.alerts.active():
            if alert.subject not in known:
                message = (
                    f"{alert.subject} tidak ada lagi di berkas situs / no longer in the site file"
                )
                self.recorder.report(Condition(alert.code, alert.subject, False, message))

    def event_id(self, seq: int) -> str:
        return self.recorder.event_id(seq)

    # ---- what the readers give ----------------------------------------------------------------

    def feed(self, reader: ScaleReader, data: bytes, now: float | None = None) -> list[int]:
        """Bytes from a scale's port: its deposits stored, its conditions reported; the numbers
        of the deposits stored."""
        stored: list[int] = []
        for item in reader.process(data, now):
            if isinstance(item, Condition):
                self.recorder.report(item)
            elif (seq := self.recorder.store_deposit(reader, item)) is not None:
                stored.append(seq)
        self.live.notify()
        return stored

    def feed_sensor(self, sensor: FillSensorReader, data: bytes) -> None:
        """Bytes from a serial fill sensor's port: the readings due, stored."""
        for candidate in sensor.process(data):
            self.recorder.store_fill(sensor, candidate)

    def sample(self, sensor: FillSensorReader, sample: DistanceSample) -> None:
        """A sample that came over MQTT: each is a reading."""
        candidate = sensor.add(sample, throttle=False)
        if candidate is not None:
            self.recorder.store_fill(sensor, candidate)

    async def _read(self, device: SerialDevice, take: Callable[[bytes], object]) -> None:
        async with contextlib.aclosing(device.stream()) as stream:
            async for item in stream:
                if isinstance(item, Condition):
                    self.recorder.report(item)
                else:
                    take(item)

    async def read_scale(self, reader: ScaleReader) -> None:
        await self._read(reader, lambda data: self.feed(reader, data))

    async def read_sensor(self, sensor: FillSensorReader) -> None:
        await self._read(sensor, lambda data: self.feed_sensor(sensor, data))

    async def sensor_uplinks(self) -> None:
        uplinks = SensorUplinks(
            self.settings, self.sensors.values(), install=self.outbox.install, stats=self.stats
        )
        async with contextlib.aclosing(uplinks.samples()) as samples:
            async for sensor, sample in samples:
                self.sample(sensor, sample)

    # ---- health -------------------------------------------------------------------------------

    def health(self) -> GatewayHealth:
        oldest = self.outbox.oldest_age()
        alerts, left_out = self.alerts_active()
        return checked(
            GatewayHealth(
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
                version=__version__,
                clock=self.clock.health(),
                alerts_active=alerts,
                alerts_left_out=left_out,
            )
        )

    def alerts_active(self) -> tuple[list[ActiveAlert], int]:
        """The alerts raised and not cleared, at most a health report's worth, the most urgent
        first (gateway.alert_store.URGENCY), and how many were left out."""
        listed, left_out = self.recorder.alerts.most_urgent(ALERTS_ACTIVE_MAX)
        return [as_message(a) for a in listed], left_out

    async def clock_loop(self) -> None:
        """Probe the clock every ``check_interval_s`` (off the loop: chrony's probe is a
        command); the reading is taken on the loop (it may write the outbox file)."""
        while True:
            await asyncio.sleep(self.settings.clock.check_interval_s)
            self.clock.update(await asyncio.to_thread(self.clock.probe_now))
            self.note_health()

    def faults(self) -> Faults:
        """What the fleet must hear of at once, as it is now: from the readers' plain values,
        not their health models (cheap enough for every change a reader signals)."""
        return Faults.of(
            ((r.cfg.id, r.state()) for r in self.readers.values()),
            ((s.cfg.id, s.port_open, s.no_target_since) for s in self.sensors.values()),
            self.clock.last.synchronized,
            self.recorder.alerts.keys(),
        )

    def note_health(self) -> None:
        """Something may have changed: wake the health loop if the fleet must hear of it."""
        if self._told is None or self.faults().news_since(self._told):
            self.health_due.set()

    async def health_loop(self) -> None:
        """Publish the health report (retained) every ``health_interval_s``, with the outbox's
        expiry, and soon after :attr:`health_due` is set: at once, or once ``health_min_gap_s``
        has passed since the last report, so a burst of changes is one or two reports. A change
        undone within the gap is not reported; one while the link is down goes out once it is
        back (the link's return sets :attr:`health_due`)."""
        loop = asyncio.get_running_loop()
        s = self.settings
        next_tick = loop.time() + s.health_interval_s
        sent_at = -math.inf
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(next_tick):
                    await self.health_due.wait()
            tick = loop.time() >= next_tick
            if tick:
                next_tick = loop.time() + s.health_interval_s
                self.check_outbox()
                self.recorder.release_held()
            if (gap := sent_at + s.health_min_gap_s - loop.time()) > 0:
                await asyncio.sleep(gap)  # what changes meanwhile goes out in this one report
            self.health_due.clear()
            publisher = self.uplink.publisher
            if publisher is None:
                continue
            report = self.health()
            faults = self.faults()  # the same loop turn as the report: what it says
            told = self._told if publisher is self._told_via else None
            if not tick and told is not None and not faults.news_since(told):
                continue  # undone within the gap
            with contextlib.suppress(aiomqtt.MqttError):
                await self.uplink.publish_health(publisher, report)
                self._told, self._told_via = faults, publisher
            # Even if it failed (it may have arrived): the next report is built a gap of at
            # least a second later, so its uptime_s is larger (the ingester keeps the larger).
            sent_at = loop.time()

    def check_outbox(self) -> None:
        """Expire old rows; 'outbox dropping' is raised while rows are being dropped (by size or
        age) and cleared after an interval without new drops. Never silent."""
        expired = self.outbox.expire()
        dropped = self.outbox.dropped
        new = dropped - self._dropped_reported
        self._dropped_reported = dropped
        self.recorder.report(
            Condition(
                "outbox_dropped",
                "outbox",
                new > 0,
                value=dropped,
                message=f"{new} pesan dibuang / outbox rows dropped ({expired} by age); total "
                f"{dropped}"
                if new
                else f"tidak ada lagi yang dibuang / no more drops; total {dropped}",
            )
        )
        self.uplink.check_refused()  # refused rows the bounds dropped (counted above) are gone too

    # ---- the process --------------------------------------------------------------------------

    async def run(self, beside: Mapping[str, Callable[[], Awaitable[None]]] | None = None) -> None:
        """Until SIGTERM (systemd's stop: a clean return, exit status 0) or a task fails.

        ``beside``: more tasks for the same TaskGroup, by name (the local endpoint).
        """
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
                self._start(tg, beside or {})
        except asyncio.CancelledError:
            if not terminated:
                raise  # cancelled by our caller (Ctrl-C, a test): theirs to handle
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGTERM)
            log.info("gateway berhenti / stopping: %s, outbox %d", self.stats, len(self.outbox))
            self.outbox.close()

    def _start(
        self, tg: asyncio.TaskGroup, beside: Mapping[str, Callable[[], Awaitable[None]]]
    ) -> None:
        for reader in self.readers.values():
            tg.create_task(self.read_scale(reader), name=f"scale-{reader.cfg.id}")
        for sensor in self.sensors.values():
            if not sensor.cfg.over_mqtt:
                tg.create_task(self.read_sensor(sensor), name=f"sensor-{sensor.cfg.id}")
        if any(s.cfg.over_mqtt for s in self.sensors.values()):
            tg.create_task(self.sensor_uplinks(), name="lns")
        tg.create_task(self.uplink.run(), name="mqtt")
        tg.create_task(self.health_loop(), name="health")
        if self.settings.clock.probe != "none":
            tg.create_task(self.clock_loop(), name="clock")
        for name, task in beside.items():
            tg.create_task(_awaited(task), name=name)


async def _awaited(task: Callable[[], Awaitable[None]]) -> None:
    await task()
