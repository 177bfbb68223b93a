"""The gateway process at a waste bank: scales -> deposit events -> SQLite outbox -> MQTT (QoS 1).

One TaskGroup holds: a reader per scale and per serial TPS sensor (its own port, protocol and
line settings; it reopens its port on its own when a USB adapter is unplugged and comes back),
the sensors that arrive over MQTT (:mod:`gateway.lns`), the link to the broker
(:mod:`gateway.uplink`), and a health loop (retained telemetry, outbox expiry, alerts raised once
and cleared once). What the readers return goes to the recorder (:mod:`gateway.recorder`).

Whatever else runs beside them (the local endpoint: :mod:`gateway.http`) is handed to
:meth:`Gateway.run` by :mod:`gateway.run`; nothing here imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping
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
from gateway.settings import GatewaySettings
from gateway.uplink import Uplink
from wastebank import __version__
from wastebank.messages import (
    ALERTS_ACTIVE_MAX,
    ActiveAlert,
    GatewayHealth,
    Topics,
    new_install,
)

log = logging.getLogger("wastebank.gateway")


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
        self.clock = ClockWatch(settings.clock)
        self.clock.check()  # before the first event is stamped
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
            health=self.health,
        )
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
            version=__version__,
            clock=self.clock.health(),
            alerts_active=self.alerts_active(),
        )

    def alerts_active(self) -> list[ActiveAlert]:
        """The alerts raised and not cleared, oldest first (at most a health report's worth)."""
        return [as_message(a) for a in self.recorder.alerts.active()[:ALERTS_ACTIVE_MAX]]

    async def clock_loop(self) -> None:
        """Probe the clock every ``check_interval_s`` (chrony's probe, a command, off the loop)."""
        chrony = self.clock.probe == "chrony"
        while True:
            await asyncio.sleep(self.settings.clock.check_interval_s)
            if chrony:
                await asyncio.to_thread(self.clock.check)
            else:
                self.clock.check()

    async def health_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_interval_s)
            self.check_outbox()
            publisher = self.uplink.publisher
            if publisher is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self.uplink.publish_health(publisher)

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
        if self.clock.probe != "none":
            tg.create_task(self.clock_loop(), name="clock")
        for name, task in beside.items():
            tg.create_task(_awaited(task), name=name)


async def _awaited(task: Callable[[], Awaitable[None]]) -> None:
    await task()
