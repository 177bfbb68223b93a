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

An ingester that takes deposits also hears the broker's own refusals (wastebank/broker_events.py:
a client that tried another identity's client id): it counts them, logs them and raises one
``session_takeover`` alert per username and client id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import BaseModel, Field, ValidationError

from ingest.clash import Clash, ClashWatch
from ingest.metrics import IngestMetrics, MetricsSettings, serve_metrics, stored_reason_of
from wastebank import mqtt
from wastebank.broker_events import REFUSED_TOPIC, Refusal
from wastebank.config import (
    InfluxSettings,
    MqttSettings,
    WastebankSettings,
    default_ledger_url,
)
from wastebank.influx import (
    Influx,
    InfluxError,
    InfluxWriter,
    alert_line,
    deposit_line,
    ensure_schema,
    fill_line,
    health_lines,
    make_writer,
)
from wastebank.messages import (
    DepositEvent,
    FillReading,
    GatewayAlert,
    GatewayHealth,
    PayloadTooLarge,
    Topics,
    check_size,
)
from wastebank.money_rules import MoneyRules
from wastebank.mqtt import backoff

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from wastebank.ledger import DepositConflict

log = logging.getLogger("wastebank.ingest")

CLOCK_AHEAD_TOLERANCE = timedelta(minutes=2)
"""A device timestamp further in the future than this is a wrong clock (late ones may be a
backlog delivered after an outage, so only the future is flagged)."""
MAX_LINES_PER_WRITE = 5000
"""InfluxDB's advice for one write request; a 413 halves it for that batch."""


Kind = Literal["deposit", "fill", "health", "alert"]
KINDS: tuple[Kind, ...] = ("deposit", "fill", "health", "alert")


class ReconcileSettings(BaseModel):
    """The daily comparison of the ledger with InfluxDB (wastebank/reconcile.py), run by an
    ingester that takes deposits. ``WASTEBANK_RECONCILE__*``; see docs/operations.md, "Ledger
    and InfluxDB agree"."""

    interval_s: float = Field(
        default=86_400, ge=0, description="seconds between runs; 0: no reconciliation here"
    )
    days: int = Field(
        default=2, ge=1, le=366, description="local days compared, today included (2: yesterday)"
    )
    first_delay_s: float = Field(
        default=60, ge=0, description="the first run, this long after the ingester starts"
    )
    settle_s: float = Field(
        default=30,
        ge=0,
        description="a drift is compared again after this long (a deposit between its ledger "
        "commit and its point is not drift)",
    )


class IngestSettings(WastebankSettings):
    broker_user: ClassVar[str | None] = "ingest"
    mqtt: MqttSettings = MqttSettings()
    influx: InfluxSettings = InfluxSettings()
    ledger_url: str = Field(default_factory=default_ledger_url)
    client_id: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.@-]{1,64}$",
        description="this instance's MQTT session: '{username}@{client_id}'; unset: "
        "'{host}.{n}', n the lowest number no other ingester on this host holds (one "
        "persistent session per instance, kept across restarts)",
    )
    shared_group: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="subscribe as $share/<group>/...: ingesters of one group split the stream",
    )
    metrics: MetricsSettings = MetricsSettings()
    batch_size: int = Field(default=2000, ge=1, le=50_000)
    batch_max_age_s: float = Field(default=0.2, gt=0, le=60)
    kinds: tuple[Kind, ...] = Field(
        default=KINDS,
        min_length=1,
        description="message kinds to subscribe to; without 'deposit' the ledger (SQLAlchemy) "
        "is loaded only if a dead letter has to be stored. With 'deposit' also the broker's "
        "refusal events (session_takeover alerts in the ledger)",
    )
    reconcile: ReconcileSettings = ReconcileSettings()
    money: MoneyRules = Field(
        default_factory=MoneyRules,
        description="the money rules (wastebank/money_rules.py): a scale deposit heavier than "
        "its scale's limit is an 'over_limit' dead letter, never credited unseen",
    )


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
    alerts: int = 0
    clock_ahead: int = 0
    dead_lettered: int = 0
    points_written: int = 0
    write_retries: int = 0
    points_expired: int = 0
    batches: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Rejected(Exception):
    """A message that cannot be applied; the text says why (it becomes the dead letter's error)."""


@dataclass
class _Item:
    """One message of a batch on its way through."""

    topic: str
    payload: bytes
    mid: int = 0
    qos: int = 0
    connection: int = 0
    parsed: DepositEvent | FillReading | GatewayHealth | GatewayAlert | Refusal | None = None
    error: str | None = None
    lines: list[str] = field(default_factory=list)


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

    def classify(
        self, topic: str, payload: bytes
    ) -> DepositEvent | FillReading | GatewayHealth | GatewayAlert | Refusal:
        """The validated message; raises :class:`Rejected` with the reason."""
        if topic == REFUSED_TOPIC:  # the broker's own (no prefix: it knows none)
            return _validate(Refusal, payload)
        parts = self.topics.parse(topic)
        if parts is None:
            raise Rejected(f"topic not understood: {topic}")
        if parts.device_type == "gateway" and parts.kind in ("deposit", "health", "alert"):
            msg: DepositEvent | GatewayHealth | GatewayAlert
            if parts.kind == "deposit":
                msg = _validate(DepositEvent, payload)
            elif parts.kind == "health":
                msg = _validate(GatewayHealth, payload)
            else:
                msg = _validate(GatewayAlert, payload)
            if (msg.bank_code, msg.gateway_id) != (parts.site, parts.device_id):
                raise Rejected(
                    f"identity mismatch: topic bank={parts.site} gateway={parts.device_id}, "
                    f"payload bank={msg.bank_code} gateway={msg.gateway_id}"
                )
            return msg
        if parts.device_type == "fill_sensor" and parts.kind == "fill":
            reading = _validate(FillReading, payload)
            if (reading.tps_code, reading.sensor_id) != (parts.site, parts.device_id):
                raise Rejected(
                    f"identity mismatch: topic tps={parts.site} sensor={parts.device_id}, "
                    f"payload tps={reading.tps_code} sensor={reading.sensor_id}"
                )
            return reading
        raise Rejected(f"no handler for {parts.device_type}/{parts.kind}")

    async def process(self, topic: str, payload: bytes) -> list[str]:
        """Apply one message; return its InfluxDB lines. Raises :class:`Rejected` (nothing is
        written then). Used for replaying dead letters."""
        item = _Item(topic, payload)
        await self._apply([item], dead_letter=False)
        if item.error is not None:
            raise Rejected(item.error)
        return item.lines

    async def handle(self, topic: str, payload: bytes) -> list[str]:
        """Apply one message; a message that cannot be applied becomes a dead letter ([])."""
        item = _Item(topic, payload)
        await self._apply([item], dead_letter=True)
        return item.lines

    # ---- a batch --------------------------------------------------------------------------------

    async def _apply(self, items: Sequence[_Item], *, dead_letter: bool) -> None:
        """Validate, apply deposits (one transaction), build lines; failures set ``item.error``."""
        self.stats.received += len(items)
        self.metrics.messages_received(i.topic for i in items)
        self._now = datetime.now(UTC)  # one clock reading per batch (clock-ahead check)
        deposits: list[_Item] = []
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
            else:
                item.lines = self._lines(item.parsed)
        invalid = [i for i in items if i.error is not None]
        if deposits or (invalid and dead_letter):
            await self._ledger_retrying(deposits, invalid, dead_letter)
        if self._clashes_found:
            found, self._clashes_found = self._clashes_found, []
            await self._say_clashes(found)
        if refusals:
            await self._say_refusals(refusals)
        for item in items:
            if item.error is not None and dead_letter:
                self.stats.dead_lettered += 1
                self.metrics.dead_letter(item.error)
                log.warning("pesan ditolak / dead letter on %s: %s", item.topic, item.error)

    async def _ledger_retrying(
        self, deposits: list[_Item], invalid: list[_Item], dead_letter: bool
    ) -> None:
        """The batch's ledger transaction, tried again while the database cannot take it (down,
        locked past the busy timeout, a deadlock or serialization failure): the transaction
        rolled back, so trying again applies each deposit once. Like an unavailable InfluxDB,
        this holds the batch unacknowledged (backpressure). Any other error is a bug: raised."""
        from sqlalchemy.exc import OperationalError

        attempt = 0
        while True:
            try:
                await asyncio.to_thread(self._ledger_batch, deposits, invalid, dead_letter)
            except OperationalError as exc:
                attempt += 1
                if attempt == 1:
                    log.warning("buku besar tidak tersedia / ledger unavailable, retrying: %s", exc)
                for item in deposits:  # set again on the next try
                    item.error, item.lines = None, []
                await asyncio.sleep(backoff(attempt))
                continue
            if attempt:
                log.info("buku besar menerima lagi / ledger accepting writes again")
            return

    def _ledger_batch(self, deposits: list[_Item], invalid: list[_Item], dead_letter: bool) -> None:
        """The batch's deposits in one transaction, then (if ``dead_letter``) one transaction of
        dead letters for everything rejected: invalid messages and deposits the ledger refused."""
        from sqlalchemy.orm import Session

        from wastebank import ledger

        failed = list(invalid)
        conflicts: dict[int, ledger.DepositConflict] = {}  # id(item) -> the ledger's finding
        with Session(self.engine) as session:
            events = [i.parsed for i in deposits if isinstance(i.parsed, DepositEvent)]
            results = (
                ledger.apply_deposits(session, events, rules=self.settings.money) if events else []
            )
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
                    )
                ]
            if failed and dead_letter:
                self._store_dead_letters(session, failed, conflicts)

    def _store_dead_letters(
        self, session: Session, failed: list[_Item], conflicts: dict[int, DepositConflict]
    ) -> None:
        """One transaction: the dead letters of a batch, and for each conflict an alert to the
        admins (raised once per event id). A conflicting message the broker delivers again,
        byte for byte, while its first copy waits to be resolved is not stored twice."""
        from sqlalchemy import select

        from wastebank import alerts, ledger

        pending = (
            {
                (d.event_id, bytes(d.payload))
                for d in session.scalars(
                    select(ledger.DeadLetter).where(
                        ledger.DeadLetter.event_id.in_([c.event_id for c in conflicts.values()]),
                        ledger.DeadLetter.reason == ledger.DeadLetterReason.CONFLICT,
                        ledger.DeadLetter.resolved_at.is_(None),
                    )
                )
            }
            if conflicts
            else set()
        )
        rows: list[tuple[_Item, ledger.NewDeadLetter]] = []
        for item in failed:
            error = item.error or "rejected"
            conflict = conflicts.get(id(item))
            event_id = conflict.event_id if conflict else _event_id_of(item.parsed)
            if conflict is not None and (event_id, item.payload) in pending:
                log.info("konflik yang sama dikirim ulang / the same conflict again: %s", event_id)
                continue
            pending.add((event_id, item.payload))
            row = ledger.NewDeadLetter(
                item.topic, item.payload, error, stored_reason_of(error), event_id
            )
            rows.append((item, row))
        added = ledger.add_dead_letters(session, [r for _, r in rows], commit=False)
        session.flush()
        for (item, _), stored in zip(rows, added, strict=True):
            conflict = conflicts.get(id(item))
            if conflict is None:
                continue
            log.warning(
                "konflik setoran / deposit conflict %s (dead letter %d): %s",
                conflict.event_id,
                stored.id,
                "; ".join(conflict.differences),
            )
            alerts.raise_alert(
                session,
                alerts.AlertCode.DEPOSIT_CONFLICT,
                conflict.event_id,
                f"Setoran {conflict.event_id} datang lagi dengan isi lain; buku besar tidak "
                f"berubah. Periksa: wastebank deadletter show {stored.id} / deposit "
                f"{conflict.event_id} came again with other content; the ledger is unchanged.",
                {"dead_letter_id": stored.id, "differences": conflict.differences},
            )
        session.commit()

    async def _say_clashes(self, found: list[Clash]) -> None:
        """Log, count and raise (once, in the ledger) each gateway clash found. An alert that
        cannot be stored now is said again when the clash is heard again."""
        from sqlalchemy.orm import Session

        from wastebank import alerts

        def store() -> None:
            with Session(self.engine) as session:
                for clash in found:
                    alerts.raise_alert(
                        session,
                        alerts.AlertCode.GATEWAY_CLASH,
                        clash.gateway_id,
                        clash.message(),
                        {"bank": clash.bank_code, "kind": clash.kind, "ids": list(clash.ids)},
                    )
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

        from wastebank import alerts

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
                for r in refusals:
                    alerts.raise_alert(
                        session,
                        alerts.AlertCode.SESSION_TAKEOVER,
                        f"{r.username} -> {r.client_id}",
                        f"Broker menolak {r.describe()}. Periksa perangkat atau proses itu dan "
                        f"kata sandinya (docs/operations.md, Broker identities) / check that "
                        f"device or process and its password.",
                        {
                            "reason": r.reason,
                            "username": r.username,
                            "client_id": r.client_id,
                            "owner": r.owner,
                            "address": r.address,
                            "at": r.at.isoformat(),
                            "count": r.count,
                        },
                    )
                session.commit()

        try:
            await asyncio.to_thread(store)
        except Exception:  # the ledger is down: the stream must go on
            log.exception("peringatan tidak tersimpan / alert not stored")

    def _lines(self, msg: FillReading | GatewayHealth | GatewayAlert) -> list[str]:
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

        await asyncio.to_thread(write)
        self.stats.dead_lettered += 1
        self.metrics.dead_letter(error)
        log.warning("pesan ditolak / dead letter on %s: %s", topic, error)

    # ---- InfluxDB ------------------------------------------------------------------------------

    async def write_items(self, items: Sequence[_Item]) -> None:
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
        attempt = 0
        while True:
            try:
                await self.writer.write(lines)
                self.metrics.points_written(lines)
                if attempt:
                    log.info("InfluxDB menerima lagi / accepting writes again")
                return
            except InfluxError as exc:
                if exc.beyond_retention:
                    # Older than the raw retention policy (a gateway offline for months): InfluxDB
                    # stored the rest of the batch; these points would expire anyway. The ledger
                    # has the deposits. Counted, not dead-lettered (a replay could never succeed).
                    self.stats.points_expired += exc.dropped or 0
                    log.warning("titik di luar retensi / points beyond retention: %s", exc)
                    return
                if not exc.retryable:
                    raise
                if attempt == 0:
                    log.warning("InfluxDB tidak tersedia / unavailable, retrying: %s", exc)
                attempt += 1
                self.stats.write_retries += 1
                self.metrics.write_retry()
                retry_after = getattr(exc, "retry_after_s", None)
                await asyncio.sleep(retry_after if retry_after else backoff(attempt))

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
                _Item(topic.decode(errors="replace"), payload, mid, qos, conn)
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


Received = tuple[bytes, bytes, int, int, int]
"""A message as the inbox keeps it: topic, payload, packet id, QoS, connection number."""


class Inbox:
    """Messages from paho's network thread to the event loop, taken in batches.

    paho runs its own thread (``loop_start``): it reads the socket, answers pings, reconnects,
    and calls ``put`` for each PUBLISH, which only appends to a deque. The event loop is woken
    (``call_soon_threadsafe``) only when it waits for more messages than there are: once per
    batch, never once per message — the per-message hop into asyncio is what capped aiomqtt.

    Each message carries the number of the connection it came on. After a disconnect its packet
    id means nothing (a new session may give that id to another message), so ``ack`` skips it:
    the broker redelivers it, and the ledger and InfluxDB make the second application a no-op.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, limit: int) -> None:
        self._loop = loop
        self._items: deque[Received] = deque()
        self.limit = limit
        self.room = threading.Event()  # clear while ``limit`` messages wait: paho stops reading
        self.room.set()
        self._event = asyncio.Event()
        self._want = 0  # wake the loop when this many are queued; 0: it is not waiting
        self._lock = threading.Lock()  # connection number vs. acks
        self._connection = 0
        self.client: _Client | None = None
        self.closing = False

    # paho's thread

    def put(self, topic: bytes, payload: bytes, mid: int, qos: int) -> None:
        self._items.append((topic, payload, mid, qos, self._connection))
        if len(self._items) >= self.limit:
            self.room.clear()
        want = self._want
        if want and len(self._items) >= want:
            self._want = 0
            self._loop.call_soon_threadsafe(self._event.set)

    def connection_lost(self) -> None:
        with self._lock:
            self._connection += 1

    # the event loop

    def waiting(self) -> int:
        return len(self._items)

    async def take(self, size: int, max_age_s: float) -> tuple[list[Received], float]:
        """Up to ``size`` messages: waits for the first, then at most ``max_age_s`` for more.
        Returns them with the loop time the first one was taken."""
        await self._until(1, None)
        first = self._loop.time()
        deadline = first + max_age_s
        batch: list[Received] = []
        while True:
            items = self._items
            while items and len(batch) < size:
                batch.append(items.popleft())
            if len(items) < self.limit:
                self.room.set()
            remaining = deadline - self._loop.time()
            if len(batch) >= size or remaining <= 0:
                return batch, first
            await self._until(size - len(batch), remaining)

    async def _until(self, count: int, timeout: float | None) -> None:
        if len(self._items) >= count:
            return
        self._event.clear()
        self._want = count
        # put() appends before it reads _want: whatever it appended before _want was set is
        # seen here, whatever it appends after sees _want. No message can slip between.
        if len(self._items) >= count:
            self._want = 0
            return
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            pass
        finally:
            self._want = 0

    def ack(self, messages: Iterable[tuple[int, int, int]]) -> int:
        """Acknowledge (mid, qos, connection) messages of the current connection; return how
        many came on an earlier one (left for the broker to redeliver)."""
        stale = 0
        with self._lock:
            client = self.client
            mids = []
            for mid, qos, connection in messages:
                if qos == 0:
                    continue
                if connection != self._connection or client is None:
                    stale += 1
                elif qos == 1:
                    mids.append(mid)
                else:
                    client.ack(mid, qos)
            if client is not None:
                client.ack_many(mids)
        return stale


M = TypeVar("M", DepositEvent, FillReading, GatewayHealth, GatewayAlert, Refusal)
T = TypeVar("T")


def _event_id_of(msg: object) -> str | None:
    return msg.event_id if isinstance(msg, DepositEvent) else None


def _validate(model: type[M], payload: bytes) -> M:
    """The payload as ``model``. Over the payload limit (``messages.MAX_PAYLOAD_BYTES``) it is
    refused unread (``oversized: ...``); a schema violation is ``invalid <Model>: ...``."""
    try:
        check_size(payload)
    except PayloadTooLarge as exc:
        raise Rejected(str(exc)) from None
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'payload'}: {e['msg']}" for e in exc.errors()
        )
        raise Rejected(f"invalid {model.__name__}: {errors}") from None


async def run(settings: IngestSettings, *, ready: asyncio.Event | None = None) -> None:
    # A telemetry-only ingester never loads SQLAlchemy unless it must store a dead letter: about
    # a third of its memory (bench/ingest.py). One that takes deposits opens the ledger now, so a
    # wrong ledger URL stops it at start, not at the first deposit.
    engine = None
    if "deposit" in settings.kinds:
        from wastebank import ledger

        engine = ledger.make_engine(settings.ledger_url)
    influx = Influx(settings.influx)
    writer = await _retrying(lambda: make_writer(settings.influx), "InfluxDB")
    ingester = Ingester(settings, engine, influx, writer)
    metrics_server = (
        asyncio.create_task(
            serve_metrics(ingester.metrics, settings.metrics.host, settings.metrics.port),
            name="metrics",
        )
        if settings.metrics.port is not None
        else None
    )
    inbox = Inbox(asyncio.get_running_loop(), limit=2 * settings.batch_size)
    client: _Client | None = None
    reconciler: asyncio.Task[None] | None = None
    try:
        await _retrying(lambda: _ensure_schema(influx, settings.influx), "InfluxDB schema")
        client = _connect(settings, ingester.subscriptions(), inbox, ready)
        reconciler = _start_reconciliation(settings, ingester)
        await ingester.consume(inbox)
    finally:
        if reconciler is not None:
            reconciler.cancel()
        if client is not None:
            # Messages taken and not acknowledged come again on the next session.
            inbox.closing = True
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        if metrics_server is not None:
            metrics_server.cancel()
        if reconciler is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reconciler
        log.info("ingest berhenti / stopping: %s", ingester.stats.as_dict())
        await writer.aclose()
        await influx.aclose()
        ingester.close()


def _start_reconciliation(
    settings: IngestSettings, ingester: Ingester
) -> asyncio.Task[None] | None:
    """The daily ledger-vs-InfluxDB comparison (wastebank/reconcile.py), in an ingester that
    takes deposits and whose ``reconcile.interval_s`` is not 0. Imported here: a telemetry-only
    ingester never loads it (nor SQLAlchemy)."""
    options = settings.reconcile
    if "deposit" not in settings.kinds or options.interval_s <= 0:
        return None
    from wastebank import reconcile

    return asyncio.create_task(
        reconcile.run_daily(
            ingester.engine,
            ingester.influx,
            interval_s=options.interval_s,
            days=options.days,
            first_delay_s=options.first_delay_s,
            settle_s=options.settle_s,
        ),
        name="reconcile",
    )


_PUBACK = struct.Struct("!BBH")  # fixed header, remaining length 2, packet id
_TOPIC_LENGTH = struct.Struct("!H")  # also the packet id


class _Client(paho.Client):
    """paho, with the ingester's read path: whole packets parsed straight from 64 KiB reads.

    paho reads each packet with three or more ``recv`` calls (command byte, length bytes, body),
    handles one packet per wake-up of its loop, and builds an MQTTMessage for each PUBLISH (with
    an MQTTMessageInfo holding a threading.Condition) to match against per-topic callbacks. At
    tens of thousands of messages a second that was most of the ingester's time (py-spy), and
    on a threaded loop every system call also hands the GIL back and forth with the thread doing
    the work. Here, with MQTT 3.1.1 and an inbox, ``loop_read`` reads the socket 64 KiB at a
    time, puts each QoS 0/1 PUBLISH into the inbox as (topic, payload, packet id, QoS), and
    hands every other packet (CONNACK, SUBACK, PINGRESP, QoS 2...) to paho's own handler as
    paho's reader would. Manual acknowledgement is on, so paho would send nothing for a
    PUBLISH either. Without an inbox, or with MQTT 5, paho reads as usual.
    """

    READ_SIZE = 65536

    room: threading.Event | None = None
    """Set while the consumer can take more; while clear, the socket is left unread."""
    inbox: Inbox | None = None
    """Where PUBLISHes go, straight from the packet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._partial = b""  # the start of a packet whose rest is still in the socket

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        inbox = self.inbox
        if inbox is None or self._protocol != paho.MQTTv311:
            return super().loop_read(max_packets)
        if self._sock is None:
            return MQTTErrorCode.MQTT_ERR_NO_CONN
        room = self.room
        if room is not None and not room.is_set() and not room.wait(1.0):
            # The consumer is behind: leave the rest in the socket, so TCP pushes back on the
            # broker, which keeps it (Mosquitto 2.0.11 let a slow consumer's unacknowledged
            # messages grow past max_inflight_messages: 100,000 in an inbox was measured).
            # Waiting here keeps paho's loop from spinning on a readable socket; it still sends
            # keepalives between waits.
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        try:
            data = self._sock_recv(self.READ_SIZE)
        except BlockingIOError:
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except OSError as err:
            self._easy_log(paho.MQTT_LOG_ERR, "failed to receive on socket: %s", err)
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        if not data:
            return self._loop_rc_handle(MQTTErrorCode.MQTT_ERR_CONN_LOST)
        buf = self._partial + data if self._partial else data
        end, rc = _parse_packets(self, inbox, buf)
        self._partial = buf[end:]
        with self._msgtime_mutex:
            self._last_bytes_received = time.monotonic()
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return self._loop_rc_handle(rc)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def handle_packet(self, header: int, body: bytes) -> MQTTErrorCode:
        """A whole packet other than a QoS 0/1 PUBLISH, through paho's own handler."""
        self._in_packet = {
            "command": header,
            "have_remaining": 1,
            "remaining_count": [],
            "remaining_mult": 1,
            "remaining_length": len(body),
            "packet": bytearray(body),
            "to_process": 0,
            "pos": 0,
        }
        try:
            return self._packet_handle()
        except MalformedPacket as exc:
            self._easy_log(paho.MQTT_LOG_DEBUG, "Received malformed packet: %s", exc)
            return MQTTErrorCode.MQTT_ERR_PROTOCOL
        finally:
            self._in_packet = {
                "command": 0,
                "have_remaining": 0,
                "remaining_count": [],
                "remaining_mult": 1,
                "remaining_length": 0,
                "packet": bytearray(b""),
                "to_process": 0,
                "pos": 0,
            }

    def _sock_close(self) -> None:
        self._partial = b""  # the next connection starts with none of these bytes
        super()._sock_close()

    def ack_many(self, mids: Sequence[int]) -> None:
        """PUBACK each of ``mids`` (QoS 1 messages of this connection) in one write.

        paho's ``ack`` queues a packet and wakes its thread through a socket pair per message;
        a batch of 5,000 is one queued write of 5,000 PUBACKs here.
        """
        if mids:
            blob = b"".join([_PUBACK.pack(paho.PUBACK, 2, mid) for mid in mids])
            self._packet_queue(paho.PUBACK, blob, 0, 1)


def _parse_packets(client: _Client, inbox: Inbox, buf: bytes) -> tuple[int, MQTTErrorCode]:
    """Handle every whole packet at the start of ``buf``; return where the first incomplete one
    starts (its bytes wait for the next read) and paho's result code for the first failure."""
    pos, size = 0, len(buf)
    put = inbox.put
    while pos + 2 <= size:
        header = buf[pos]
        # Remaining length: 1 to 4 bytes, 7 bits each, least significant first (MQTT 2.2.3).
        length, shift, at = 0, 0, pos + 1
        while True:
            if at >= size:
                return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
            byte = buf[at]
            length |= (byte & 0x7F) << shift
            at += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21:
                return pos, MQTTErrorCode.MQTT_ERR_PROTOCOL
        end = at + length
        if end > size:
            return pos, MQTTErrorCode.MQTT_ERR_SUCCESS
        qos = (header & 0x06) >> 1
        if header & 0xF0 == paho.PUBLISH and qos < 2:
            (topic_length,) = _TOPIC_LENGTH.unpack_from(buf, at)
            start = at + 2 + topic_length
            if qos:
                (mid,) = _TOPIC_LENGTH.unpack_from(buf, start)
                put(buf[at + 2 : start], buf[start + 2 : end], mid, qos)
            else:
                put(buf[at + 2 : start], buf[start:end], 0, 0)
        else:
            rc = client.handle_packet(header, buf[at:end])
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                return end, rc
        pos = end
    return pos, MQTTErrorCode.MQTT_ERR_SUCCESS


def _connect(
    settings: IngestSettings,
    subscriptions: list[tuple[str, int]],
    inbox: Inbox,
    ready: asyncio.Event | None,
) -> _Client:
    """A paho client on its own network thread, feeding ``inbox``; it reconnects by itself.

    MQTT 3.1.1, persistent session, QoS 1, manual acknowledgement. The inbox is bounded by
    the client: past ``2 * batch_size`` waiting messages paho stops reading the socket until the
    consumer catches up, so TCP pushes back on the broker, which keeps the rest in the session:
    backpressure instead of a growing queue. (The broker's own window, max_inflight_messages,
    did not hold under load with Mosquitto 2.0.11; MQTT 5's Receive Maximum says the same from
    the client side, but Mosquitto delivered a third as fast to such a v5 session: both measured
    with bench/ingest.py.)
    """
    loop = asyncio.get_running_loop()
    mqtt_settings = settings.mqtt
    client_id = mqtt.client_id(
        mqtt_settings.username, settings.client_id or mqtt.instance_name("ingest")
    )
    client = _Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=paho.MQTTv311,
        clean_session=False,
        manual_ack=True,
    )
    if mqtt_settings.username:
        password = mqtt_settings.password.get_secret_value() if mqtt_settings.password else None
        client.username_pw_set(mqtt_settings.username, password)
    client.reconnect_delay_set(1, int(mqtt.BACKOFF_CAP_S))
    state = {"connected_once": False, "lost": False, "refused": False}

    def on_connect(c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            if not state["refused"]:
                log.error("broker menolak / broker refused the connection: %s", reason)
            state["refused"] = True
            return
        if state["lost"]:
            log.info("terhubung kembali / reconnected to the broker")
        elif not state["connected_once"]:
            log.info(
                "ingest terhubung / connected to %s:%d as %s",
                mqtt_settings.host,
                mqtt_settings.port,
                client_id,
            )
        state.update(connected_once=True, lost=False, refused=False)
        c.subscribe(subscriptions)

    def on_subscribe(
        _c: paho.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object
    ) -> None:
        failed = [str(code) for code in codes if code.is_failure]
        if failed:
            log.error("langganan ditolak / subscription refused: %s", ", ".join(failed))
            return
        log.info("berlangganan / subscribed to %s", ", ".join(f for f, _ in subscriptions))
        if ready is not None:
            loop.call_soon_threadsafe(ready.set)

    def on_disconnect(
        _c: paho.Client, _u: object, _f: object, reason: ReasonCode, _p: object
    ) -> None:
        inbox.connection_lost()
        if not state["lost"] and state["connected_once"] and not inbox.closing:
            log.warning("broker terputus / broker connection lost: %s", reason)
        state["lost"] = True

    def on_message(_c: paho.Client, _u: object, message: paho.MQTTMessage) -> None:
        # Only what _Client.handle_publish leaves to paho (QoS 2) comes this way.
        inbox.put(message._topic, bytes(message.payload), message.mid, message.qos)  # noqa: SLF001

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_disconnect = on_disconnect
    client.on_message = on_message
    client.room = inbox.room
    client.inbox = inbox
    inbox.client = client
    client.connect_async(
        mqtt_settings.host,
        mqtt_settings.port,
        keepalive=mqtt_settings.keepalive_s,
    )
    client.loop_start()
    return client


async def _ensure_schema(influx: Influx, settings: InfluxSettings) -> None:
    """1.x: database, retention policies and downsampling queries; 2.x/3.x: the database only
    where the server supports creating it (their retention is set up on the server)."""
    if not await ensure_schema(influx, settings):
        log.info("InfluxDB 2.x/3.x: retensi diatur di server / retention is set on the server")


async def _retrying(make: Callable[[], Awaitable[T]], what: str) -> T:
    """Wait for a service at start: retry retryable failures with backoff, logging once."""
    attempt = 0
    while True:
        try:
            return await make()
        except InfluxError as exc:
            if not exc.retryable:
                raise
            attempt += 1
            if attempt == 1:
                log.warning("menunggu / waiting for %s: %s", what, exc)
            await asyncio.sleep(backoff(attempt))
