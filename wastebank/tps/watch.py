"""``wastebank tps watch``: fill readings from the broker (a persistent session, QoS 1, each
acknowledged after its effect is committed), alerts per reading and for silent sensors, pickups
from each sensor's recent readings, the transitions published (see the package's doc)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, ClassVar, Literal

import aiomqtt
from msgspec import Meta, field
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from wastebank import ledger, mqtt
from wastebank.config import InfluxSettings, MqttSettings, WastebankSettings, default_ledger_url
from wastebank.influx import Influx, InfluxError
from wastebank.messages import FillReading, PayloadTooLarge, Topics, TpsAlert, check_size
from wastebank.structs import Invalid, decode_json, encode_json
from wastebank.tps.alerting import apply_offline, apply_reading, mark_published, unpublished
from wastebank.tps.analytics import PickupUpdate, PickupWindow, Reading
from wastebank.tps.pickup_journal import record_pickups
from wastebank.tps.readings import SeriesKey, last_seen, prime_windows
from wastebank.tps.registry import city_tps

log = logging.getLogger("wastebank.tps")


class TpsWatchSettings(WastebankSettings, kw_only=True):
    """Settings of ``wastebank tps watch``."""

    broker_user: ClassVar[str | None] = "tps"
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    influx: InfluxSettings = field(default_factory=InfluxSettings)
    ledger_url: str = field(default_factory=default_ledger_url)
    client_id: Annotated[
        str,
        Meta(
            pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
            description="its persistent MQTT session: '{username}@{client_id}'",
        ),
    ] = "tps-watch"
    check_interval_s: Annotated[
        float, Meta(gt=0, le=3600, description="seconds between offline checks")
    ] = 60.0


class TpsWatcher:
    """Subscribes to fill readings (persistent session, QoS 1), evaluates alerts per reading
    and offline sensors every ``check_interval_s``, records transitions in the ledger and
    publishes them; keeps a :class:`PickupWindow` per sensor (``windows``, primed from InfluxDB
    on start) and records the pickups it finds in the journal with the reading's alert effects.
    ``processed`` counts acknowledged readings (the tests await it)."""

    def __init__(self, settings: TpsWatchSettings, engine: Engine) -> None:
        self.settings = settings
        self.engine = engine
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.seen: dict[SeriesKey, datetime] = {}
        self.windows: dict[SeriesKey, PickupWindow] = {}
        self.processed = 0
        self.published = 0
        self.too_late = 0  # readings older than their sensor's window: not used for pickups
        self._unprimed = False  # InfluxDB could not be read on start
        self._client: aiomqtt.Client | None = None
        self._lock = asyncio.Lock()  # one ledger step + publish at a time

    async def seed_last_seen(self) -> None:
        """Each sensor's last time (offline alerts) and its pickup window: the readings of the
        ``WINDOW`` before it, run through the rule once (pickups confirmed by readings the
        watcher missed are recorded; those recorded before are not again)."""
        influx = Influx(self.settings.influx)
        try:
            last = await last_seen(influx)
            for key, at in last.items():
                self.seen[key] = max(at, self.seen.get(key, at))
            primed = await prime_windows(influx, last)
        except InfluxError as exc:
            log.warning("InfluxDB: waktu terakhir sensor tak terbaca / last seen unknown: %s", exc)
            self._unprimed = True  # every window may miss earlier readings
            return
        finally:
            await influx.aclose()
        for key, window in primed.items():
            mine = self.windows.setdefault(key, PickupWindow(truncated=True))
            for r in window:
                mine.add(r)
        await asyncio.to_thread(self._record_primed)

    def _record_primed(self) -> None:
        with self._session() as session:
            registry = {t.code: t for t in city_tps(session)}
            new = 0
            for (code, sensor), window in sorted(self.windows.items()):
                t = registry.get(code)
                if t is not None:
                    new += record_pickups(session, t.id, sensor, window.pickups())
            session.commit()
        if new:
            log.info("pengangkutan dari InfluxDB / pickups found on start: %d", new)

    def _pickup_update(self, reading: FillReading) -> PickupUpdate | None:
        """Put ``reading`` in its sensor's window; the journal update it implies."""
        key = (reading.tps_code, reading.sensor_id)
        window = self.windows.setdefault(key, PickupWindow(truncated=self._unprimed))
        at = reading.measured_at.astimezone(UTC)
        update = window.update(Reading(at, float(reading.fillingLevel)))
        if update is None:
            self.too_late += 1
            log.warning(
                "bacaan lebih tua dari jendela / reading older than the window, not used for "
                "pickups (wastebank tps rebuild-pickups): %s/%s at %s",
                reading.tps_code,
                reading.sensor_id,
                at.isoformat(),
            )
        return update

    def _session(self) -> Session:
        return Session(self.engine)

    def _apply(self, reading: FillReading, pickups: PickupUpdate | None) -> list[TpsAlert]:
        with self._session() as session, session.begin():
            return apply_reading(session, reading, pickups)

    def _offline(self, now: datetime) -> list[TpsAlert]:
        with self._session() as session, session.begin():
            return apply_offline(session, dict(self.seen), now)

    def _unpublished(self) -> list[tuple[TpsAlert, int]]:
        with self._session() as session:
            return unpublished(session)

    def _mark(self, alert_id: int, state: Literal["raised", "cleared"]) -> None:
        with self._session() as session, session.begin():
            mark_published(session, alert_id, state)

    async def _publish(self, client: aiomqtt.Client, messages: Sequence[TpsAlert]) -> None:
        for m in messages:
            payload = encode_json(m)
            await client.publish(
                self.topics.tps_alert_state(m.tps_code, m.sensor_id, m.code),
                payload,
                qos=1,
                retain=True,
            )
            await client.publish(self.topics.tps_alert_event(m.tps_code), payload, qos=1)
            await asyncio.to_thread(self._mark, m.alert_id, m.state)
            self.published += 1
            log.info("peringatan TPS / TPS alert %s %s: %s", m.code, m.state, m.message)

    async def check_offline(self, now: datetime | None = None) -> list[TpsAlert]:
        async with self._lock:
            made = await asyncio.to_thread(self._offline, now or datetime.now(UTC))
            if self._client is not None:
                with contextlib.suppress(aiomqtt.MqttError):
                    await self._publish(self._client, made)
        return made

    async def _offline_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_interval_s)
            await self.check_offline()

    async def _on_message(self, client: aiomqtt.Client, message: aiomqtt.Message) -> None:
        payload = message.payload
        raw = bytes(payload) if isinstance(payload, bytes | bytearray) else b""
        try:
            check_size(raw)
            reading = decode_json(raw, FillReading)
        except (Invalid, PayloadTooLarge) as exc:
            log.warning("bacaan ditolak / reading refused on %s: %s", message.topic, exc)
            reading = None
        if reading is not None:
            key = (reading.tps_code, reading.sensor_id)
            at = reading.measured_at.astimezone(UTC)
            self.seen[key] = max(at, self.seen.get(key, at))
            async with self._lock:
                update = self._pickup_update(reading)
                made = await asyncio.to_thread(self._apply, reading, update)
                await self._publish(client, made)
        if message.qos > 0:
            client._client.ack(message.mid, message.qos)  # noqa: SLF001 - after the commit
        self.processed += 1

    async def run(self, ready: asyncio.Event | None = None) -> None:
        await self.seed_last_seen()
        s = self.settings
        attempt, lost = 0, False
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._offline_loop(), name="tps-watch.offline")
            while True:
                client = mqtt.client(s.mqtt, identifier=s.client_id, persistent=True)
                client._client.manual_ack_set(True)  # noqa: SLF001 - ack after the ledger
                try:
                    async with client:
                        await client.subscribe(self.topics.fill_filter, qos=1)
                        self._client = client
                        async with self._lock:
                            left = await asyncio.to_thread(self._unpublished)
                            for m, _id in left:
                                await self._publish(client, [m])
                        log.info(
                            "pemantau TPS %s / TPS watcher %s to %s",
                            "tersambung kembali" if lost else "berlangganan",
                            "reconnected" if lost else "subscribed",
                            self.topics.fill_filter,
                        )
                        attempt, lost = 0, False
                        if ready is not None:
                            ready.set()
                        async for message in client.messages:
                            await self._on_message(client, message)
                except aiomqtt.MqttError as exc:
                    self._client = None
                    if not lost:
                        log.warning("broker terputus / broker lost: %s", exc)
                    lost = True
                    attempt += 1
                    await asyncio.sleep(mqtt.backoff(attempt))


async def run(settings: TpsWatchSettings, *, ready: asyncio.Event | None = None) -> None:
    engine = ledger.make_engine(settings.ledger_url)
    try:
        await TpsWatcher(settings, engine).run(ready)
    finally:
        engine.dispose()
