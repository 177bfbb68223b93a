"""The ingester: MQTT (QoS 1, persistent session) -> ledger + InfluxDB, each message applied once.

Messages are taken in batches (by size and age). For a batch: every payload is validated against
the shared schema and its topic; all its deposits are applied to the ledger in one transaction
(each exactly once by its event id; rejected ones, like invalid payloads, become dead letters in
that same transaction); all its points are written to InfluxDB; only then is every message of the
batch acknowledged to the broker (paho's manual acknowledgement). If the ingester
dies before that, the broker redelivers the batch to the same persistent session; the ledger
ignores events it has already applied and InfluxDB keeps one point per (measurement, tags, time),
so a redelivery changes nothing. Work in flight is bounded by the batch size and by the broker's
in-flight window: an ingester that cannot write makes the broker hold the messages (backpressure)
instead of growing a queue. A message that cannot be applied never stops the consumer.

Several ingesters can share the load through an MQTT shared subscription (``shared_group``).

An ingester that takes health reports also hears the devices' retained statuses and keeps each
device's latest health report and status in the ledger (wastebank/fleet/: the fleet page).

An ingester that takes deposits also hears the broker's own refusals (wastebank/broker_events.py:
a client that tried another identity's client id): it counts them, logs them and raises one
``session_takeover`` alert per username and client id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ingest.clash import Clash, ClashWatch
from ingest.items import Cleared, Item, Parsed, Rejected, validate
from ingest.metrics import IngestMetrics, stored_reason_of
from ingest.settings import IngestSettings
from wastebank.broker_events import REFUSED_TOPIC, Refusal
from wastebank.influx import (
    CLOCK_AHEAD_TOLERANCE,
    Influx,
    InfluxError,
    InfluxWriter,
    alert_line,
    deposit_line,
    fill_line,
    health_lines,
    retry_wait,
)
from wastebank.messages import (
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    GatewayStatus,
    TopicParts,
    Topics,
)
from wastebank.mqtt import retrying

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from ingest.paho_inbox import Inbox

log = logging.getLogger("wastebank.ingest")

MAX_LINES_PER_WRITE = 5000
"""InfluxDB's advice for one write request; a 413 halves it for that batch."""


@dataclass
class Stats:
    received: int = 0
    deposits_applied: int = 0
    deposits_duplicate: int = 0
    deposits_conflict: int = 0
    deposits_over_limit: int = 0
    gateway_clashes: int = 0
    broker_refusals: int = 0
    fill_readings: int = 0
    health_reports: int = 0
    statuses: int = 0
    reports_unstored: int = 0
    reports_late: int = 0
    retained_cleared: int = 0
    alerts: int = 0
    clock_ahead: int = 0
    dead_lettered: int = 0
    points_written: int = 0
    write_retries: int = 0
    points_expired: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


_REPORTS = (GatewayHealth, GatewayStatus)
"""What the ingester keeps the latest of per device, for the fleet (wastebank/fleet/)."""


def _own_reading(parts: TopicParts, payload: bytes) -> FillReading:
    reading = validate(FillReading, payload)
    if (reading.tps_code, reading.sensor_id) != (parts.site, parts.device_id):
        raise Rejected(
            f"identity mismatch: topic tps={parts.site} sensor={parts.device_id}, "
            f"payload tps={reading.tps_code} sensor={reading.sensor_id}"
        )
    return reading


def _own_status(parts: TopicParts, payload: bytes) -> GatewayStatus:
    status = validate(GatewayStatus, payload)
    if status.device_id != parts.device_id:
        raise Rejected(
            f"identity mismatch: topic device={parts.device_id}, payload device={status.device_id}"
        )
    return status


class Ingester:
    def __init__(
        self,
        settings: IngestSettings,
        engine: Engine | None,
        influx: Influx,
        writer: InfluxWriter | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self.influx = influx
        self.writer: InfluxWriter | Influx = writer or influx
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.stats = Stats()
        self.metrics = IngestMetrics()
        self._clock_warned: set[str] = set()
        self._now = datetime.now(UTC)
        self.clashes = ClashWatch()
        self._clashes_found: list[Clash] = []

    @property
    def engine(self) -> Engine:
        """The ledger, opened on first use when the ingester was started without it."""
        if self._engine is None:
            from wastebank import ledger

            self._engine = ledger.make_engine(self.settings.ledger_url)
        return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # ---- one message: validation and identity -------------------------------------------------

    def classify(self, topic: str, payload: bytes) -> Parsed:
        """The validated message; raises :class:`Rejected` with the reason."""
        if topic == REFUSED_TOPIC:  # the broker's own (no prefix: it knows none)
            return validate(Refusal, payload)
        parts = self.topics.parse(topic)
        if parts is None:
            raise Rejected(f"topic not understood: {topic}")
        if not payload and (
            parts.kind == "status" or (parts.device_type == "gateway" and parts.kind == "health")
        ):
            return Cleared(topic)
        if parts.device_type == "gateway" and parts.kind in ("deposit", "health", "alert"):
            msg: DepositEvent | GatewayHealth | GatewayAlert
            if parts.kind == "deposit":
                msg = validate(DepositEvent, payload)
            elif parts.kind == "health":
                msg = validate(GatewayHealth, payload)
            else:
                msg = validate(GatewayAlert, payload)
            if (msg.bank_code, msg.gateway_id) != (parts.site, parts.device_id):
                raise Rejected(
                    f"identity mismatch: topic bank={parts.site} gateway={parts.device_id}, "
                    f"payload bank={msg.bank_code} gateway={msg.gateway_id}"
                )
            return msg
        if parts.device_type == "fill_sensor" and parts.kind == "fill":
            return _own_reading(parts, payload)
        if parts.kind == "status":
            return _own_status(parts, payload)
        raise Rejected(f"no handler for {parts.device_type}/{parts.kind}")

    async def process(self, topic: str, payload: bytes) -> list[str]:
        """Apply one message; return its InfluxDB lines. Raises :class:`Rejected` (nothing is
        written then). Used for replaying dead letters."""
        item = Item(topic, payload)
        await self._apply([item], dead_letter=False)
        if item.error is not None:
            raise Rejected(item.error)
        return item.lines

    async def handle(self, topic: str, payload: bytes) -> list[str]:
        """Apply one message; a message that cannot be applied becomes a dead letter ([])."""
        item = Item(topic, payload)
        await self._apply([item], dead_letter=True)
        return item.lines

    # ---- a batch --------------------------------------------------------------------------------

    async def _apply(self, items: Sequence[Item], *, dead_letter: bool) -> None:
        """Validate, apply deposits (one transaction), build lines; failures set ``item.error``."""
        self.stats.received += len(items)
        self.metrics.messages_received(i.topic for i in items)
        self._now = datetime.now(UTC)  # one clock reading per batch (clock-ahead check)
        deposits, refusals = self._sort(items)
        invalid = [i for i in items if i.error is not None]
        if deposits or (invalid and dead_letter):
            await self._ledger_retrying(deposits, invalid, dead_letter)
        if self._clashes_found:
            found, self._clashes_found = self._clashes_found, []
            await self._say_clashes(found)
        if refusals:
            await self._say_refusals(refusals)
        await self._keep_reports([i for i in items if isinstance(i.parsed, _REPORTS)])
        for item in items:
            if item.error is not None and dead_letter:
                self.stats.dead_lettered += 1
                self.metrics.dead_letter(item.error)
                log.warning("pesan ditolak / dead letter on %s: %s", item.topic, item.error)

    def _sort(self, items: Sequence[Item]) -> tuple[list[Item], list[Refusal]]:
        """Classify each item: the deposits and the broker's refusals are returned for the
        ledger; the others get their lines now; the rejected their ``error``."""
        deposits: list[Item] = []
        refusals: list[Refusal] = []
        for item in items:
            try:
                item.parsed = self.classify(item.topic, item.payload)
            except Rejected as exc:
                item.error = str(exc)
                continue
            if isinstance(item.parsed, DepositEvent):
                deposits.append(item)
            elif isinstance(item.parsed, Refusal):
                refusals.append(item.parsed)  # the ledger only: no point in InfluxDB
            elif isinstance(item.parsed, Cleared):
                self.stats.retained_cleared += 1
                # Retained or not, it cannot be told: the broker passes a delete on to the
                # subscribers it has as an ordinary empty message.
                log.info("laporan kosong / empty report (a retained one cleared): %s", item.topic)
            else:
                item.lines = self._lines(item.parsed)
        return deposits, refusals

    async def _ledger_retrying(
        self, deposits: list[Item], invalid: list[Item], dead_letter: bool
    ) -> None:
        """The batch's ledger transaction, tried again while the database cannot take it (down,
        locked past the busy timeout, a deadlock or serialization failure): the transaction
        rolled back, so trying again applies each deposit once. Like an unavailable InfluxDB,
        this holds the batch unacknowledged (backpressure). Any other error is a bug: raised."""
        from sqlalchemy.exc import OperationalError

        # No attempt limit and no deadline: a ledger that is down for an hour holds the stream
        # for an hour (the broker keeps it), and every held deposit is applied once it is back.
        async for attempt in retrying(on=OperationalError):
            with attempt:
                try:
                    await asyncio.to_thread(self._ledger_batch, deposits, invalid, dead_letter)
                except OperationalError as exc:
                    if attempt.num == 1:
                        log.warning(
                            "buku besar tidak tersedia / ledger unavailable, retrying: %s", exc
                        )
                    for item in deposits:  # set again on the next try
                        item.error, item.lines = None, []
                    raise
                if attempt.num > 1:
                    log.info("buku besar menerima lagi / ledger accepting writes again")

    def _ledger_batch(self, deposits: list[Item], invalid: list[Item], dead_letter: bool) -> None:
        """The batch's deposits in one transaction, then (if ``dead_letter``) one transaction of
        dead letters for everything rejected: invalid messages and deposits the ledger refused."""
        from sqlalchemy.orm import Session

        from ingest import ledger_writes
        from wastebank import ledger

        failed = list(invalid)
        conflicts: dict[int, ledger.DepositConflict] = {}  # id(item) -> the ledger's finding
        with Session(self.engine) as session:
            events = [i.parsed for i in deposits if isinstance(i.parsed, DepositEvent)]
            results = (
                ledger.apply_deposits(session, events, rules=self.settings.money) if events else []
            )
            ledger_writes.queue_sms_receipts(session, results)  # with them, or not at all
            session.commit()  # the batch's deposits: the ledger commits nothing itself
            for item, result in zip(deposits, results, strict=True):
                if isinstance(result, ledger.DepositConflict):
                    item.error = f"conflict: {result}"
                    conflicts[id(item)] = result
                    failed.append(item)
                    self.stats.deposits_conflict += 1
                    self.metrics.deposit("conflict")
                    continue
                if isinstance(result, ledger.DepositOverLimit):
                    # Not credited, kept: an operator applies it (`deadletter resolve --apply`)
                    # or replays it after raising the limit, or discards it.
                    item.error = f"over limit: {result}"
                    failed.append(item)
                    self.stats.deposits_over_limit += 1
                    continue
                if isinstance(result, ledger.DepositRejected):
                    item.error = f"deposit rejected: {result}"
                    failed.append(item)
                    continue
                if result.outcome is ledger.Outcome.APPLIED:
                    self.stats.deposits_applied += 1
                else:
                    self.stats.deposits_duplicate += 1
                self.metrics.deposit(result.outcome)
                assert result.measured_at is not None
                item.lines = [
                    deposit_line(
                        event_id=result.event_id,
                        bank=result.bank_code,
                        kecamatan=result.kecamatan,
                        category=result.category_code,
                        net_g=result.net_g,
                        amount_idr=result.amount_idr,
                        gateway=result.gateway_id,
                        measured_at=result.measured_at,
                        clock_ahead_s=self._clock_ahead(result.gateway_id, result.measured_at),
                        clock_synced=result.clock_synced,
                    )
                ]
            if failed and dead_letter:
                ledger_writes.store_dead_letters(session, failed, conflicts)
                session.commit()

    async def _say_clashes(self, found: list[Clash]) -> None:
        """Log, count and raise (once, in the ledger) each gateway clash found. An alert that
        cannot be stored now is said again when the clash is heard again."""
        from sqlalchemy.orm import Session

        from ingest import ledger_writes

        def store() -> None:
            with Session(self.engine) as session:
                ledger_writes.raise_clash_alerts(session, found)
                session.commit()

        for clash in found:
            self.stats.gateway_clashes += 1
            log.warning("gateway ganda / gateway clash: %s", clash.message())
        try:
            await asyncio.to_thread(store)
        except Exception:  # the ledger is down: the stream must go on
            log.exception("peringatan tidak tersimpan / alert not stored")
            for clash in found:
                self.clashes.forget(clash.gateway_id)

    async def _say_refusals(self, refusals: list[Refusal]) -> None:
        """Count, log and raise (once per username and client id while it is active) each
        refusal the broker reported. An alert that cannot be stored now is raised by the next
        event of that pair (the plugin sends one every 10 s while the attempts go on)."""
        from sqlalchemy.orm import Session

        from ingest import ledger_writes

        for refusal in refusals:
            self.stats.broker_refusals += refusal.count
            self.metrics.refused(refusal.reason, refusal.count)
            if refusal.unreported:
                self.metrics.refused("unreported", refusal.unreported)
            log.warning(
                "broker menolak sesi / broker refused a session: %s%s",
                refusal.describe(),
                f" (+{refusal.unreported} lainnya / others)" if refusal.unreported else "",
            )

        def store() -> None:
            with Session(self.engine) as session:
                ledger_writes.raise_refusal_alerts(session, refusals)
                session.commit()

        try:
            await asyncio.to_thread(store)
        except Exception:  # the ledger is down: the stream must go on
            log.exception("peringatan tidak tersimpan / alert not stored")

    async def _keep_reports(self, items: list[Item]) -> None:
        """Keep each device's latest health report and status in the ledger (the fleet).

        Not held like a deposit when the ledger cannot take them: the next report (every
        health interval) replaces them, and a lost "offline" is made up for by the fleet's
        silence rule; so they are counted and logged, and the stream goes on."""
        if not items:
            return
        from sqlalchemy.orm import Session

        from wastebank import fleet

        heard: list[fleet.Heard] = []
        for item in items:
            parts = self.topics.parse(item.topic)
            assert parts is not None  # classified
            assert isinstance(item.parsed, GatewayHealth | GatewayStatus)
            device: fleet.DeviceType = (
                "gateway" if parts.device_type == "gateway" else "fill_sensor"
            )
            heard.append(
                fleet.Heard(device, parts.site, parts.device_id, item.parsed, item.payload)
            )

        def store() -> fleet.Kept:
            with Session(self.engine) as session:
                kept = fleet.keep_latest(session, heard, self._now)
                session.commit()
            return kept

        try:
            kept = await asyncio.to_thread(store)
            self.stats.reports_late += kept.late
        except Exception:  # the ledger is down: the stream must go on
            self.stats.reports_unstored += len(heard)
            log.exception(
                "laporan perangkat tidak tersimpan / %d device reports not stored", len(heard)
            )

    def _lines(self, msg: FillReading | GatewayHealth | GatewayStatus | GatewayAlert) -> list[str]:
        if isinstance(msg, GatewayStatus):
            self.stats.statuses += 1
            return []  # presence: kept in the ledger only (_keep_reports)
        if isinstance(msg, FillReading):
            self.stats.fill_readings += 1
            ahead = self._clock_ahead(msg.sensor_id, msg.measured_at)
            return [fill_line(msg, clock_ahead_s=ahead)]
        if isinstance(msg, GatewayHealth):
            self.stats.health_reports += 1
            if msg.install is not None:
                # Health reports, not deposits: they are live (never a backlog from the outbox),
                # so two installs or boots interleaving in them are two processes at once.
                found = self.clashes.heard(
                    msg.gateway_id, msg.bank_code, msg.install, msg.boot, time.monotonic()
                )
                self._clashes_found.extend(found)
            return health_lines(msg)
        self.stats.alerts += 1
        return [alert_line(msg)]

    def _clock_ahead(self, device: str, measured_at: datetime) -> int | None:
        """Seconds the device's timestamp is in the future, when that is beyond tolerance.

        The point keeps the device's time (a redelivery must land on the same point), carries
        this as a field, is counted, and the device is named in the log once.
        """
        ahead = measured_at - self._now
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

    async def dead_letter(self, topic: str, payload: bytes, error: str) -> None:
        def write() -> None:
            from sqlalchemy.orm import Session

            from wastebank import ledger

            with Session(self.engine) as session:
                row = ledger.NewDeadLetter(topic, payload, error, stored_reason_of(error))
                ledger.add_dead_letters(session, [row])
                session.commit()

        await asyncio.to_thread(write)
        self.stats.dead_lettered += 1
        self.metrics.dead_letter(error)
        log.warning("pesan ditolak / dead letter on %s: %s", topic, error)

    # ---- InfluxDB ------------------------------------------------------------------------------

    async def write_items(self, items: Sequence[Item]) -> None:
        """Write every item's lines; retry what is retryable (never drop it), split what is too
        large, and dead-letter a message whose points InfluxDB refuses for good."""
        lines = [line for i in items for line in i.lines]
        try:
            await self._write_lines(lines)
        except InfluxError:
            # Permanent (4xx): find the culprits one message at a time; the rest is written.
            for item in items:
                try:
                    await self._write_lines(item.lines)
                except InfluxError as exc:
                    await self.dead_letter(item.topic, item.payload, f"InfluxDB refused: {exc}")
                    self.stats.points_written -= len(item.lines)
        self.stats.points_written += len(lines)

    async def _write_lines(self, lines: list[str]) -> None:
        step = MAX_LINES_PER_WRITE
        start = 0
        while start < len(lines):
            chunk = lines[start : start + step]
            try:
                await self._write_retrying(chunk)
            except InfluxError as exc:
                if getattr(exc, "too_large", False) or exc.server_status == 413:
                    if step == 1:
                        raise
                    step = max(1, step // 2)  # too large: halve and try again
                    continue
                raise
            start += len(chunk)

    async def _write_retrying(self, lines: list[str]) -> None:
        """Write ``lines`` until InfluxDB takes them. A retryable failure (no answer, 5xx, 429,
        a login or database it refuses until an operator fixes it) is tried again with no
        attempt limit and no deadline: the batch stays unacknowledged and the broker keeps the
        rest (backpressure), so nothing is dropped however long InfluxDB is away; a server's
        ``Retry-After`` is the wait when it sends one. Anything else is raised at once."""
        async for attempt in retrying(on=retry_wait):
            with attempt:
                try:
                    await self.writer.write(lines)
                except InfluxError as exc:
                    if exc.beyond_retention:
                        self._points_expired(exc)
                        return
                    if exc.retryable:
                        self._write_failed(exc, attempt.num)
                    raise
                self.metrics.points_written(lines)
                if attempt.num > 1:
                    log.info("InfluxDB menerima lagi / accepting writes again")

    def _points_expired(self, exc: InfluxError) -> None:
        # Older than the raw retention policy (a gateway offline for months): InfluxDB stored
        # the rest of the batch; these points would expire anyway. The ledger has the deposits.
        # Counted, not dead-lettered (a replay could never succeed).
        self.stats.points_expired += exc.dropped or 0
        log.warning("titik di luar retensi / points beyond retention: %s", exc)

    def _write_failed(self, exc: InfluxError, attempt: int) -> None:
        if attempt == 1:
            log.warning("InfluxDB tidak tersedia / unavailable, retrying: %s", exc)
        self.stats.write_retries += 1
        self.metrics.write_retry()

    # ---- the consumer loop ----------------------------------------------------------------------

    def subscriptions(self) -> list[tuple[str, int]]:
        """(topic filter, QoS) to subscribe to.

        The broker's refusal events at QoS 0: they are in the broker's log anyway, and a
        session that is not connected keeps none of them, so the sessions of retired ingesters
        (a renamed host, every test's) never pile them up; attempts that go on are reported
        again every 10 s."""
        by_kind = {
            "deposit": self.topics.deposit_filter,
            "fill": self.topics.fill_filter,
            "health": self.topics.health_filter,
            "alert": self.topics.alert_filter,
        }
        subs = [(by_kind[k], 1) for k in dict.fromkeys(self.settings.kinds)]
        if "health" in self.settings.kinds:  # presence, for the fleet with the health reports
            subs.append((self.topics.gateway_status("+", "+"), 1))
            subs.append((self.topics.sensor_status("+", "+"), 1))
        if "deposit" in self.settings.kinds:
            subs.append((REFUSED_TOPIC, 0))
        group = self.settings.shared_group
        return [(f"$share/{group}/{f}", qos) for f, qos in subs] if group else subs

    async def consume(self, inbox: Inbox) -> None:
        """Take batches from ``inbox`` for ever: apply, write, then acknowledge each batch."""
        size, age = self.settings.batch_size, self.settings.batch_max_age_s
        while True:
            batch, first_received = await inbox.take(size, age)
            self.metrics.inflight_messages.set(len(batch) + inbox.waiting())
            items = [
                Item(topic.decode(errors="replace"), payload, mid, qos, conn)
                for topic, payload, mid, qos, conn in batch
            ]
            await self._apply(items, dead_letter=True)
            await self.write_items(items)
            self.stats.batches += 1
            self.metrics.processed(
                i.parsed.measured_at
                for i in items
                if isinstance(i.parsed, DepositEvent | FillReading)
            )
            stale = inbox.ack((i.mid, i.qos, i.connection) for i in items)
            self.metrics.inflight_messages.set(inbox.waiting())
            if stale:
                log.info(
                    "%d pesan dari sambungan lama, dikirim ulang broker / "
                    "from a lost connection, the broker redelivers them",
                    stale,
                )
            self.metrics.batch_acked(first_received)
