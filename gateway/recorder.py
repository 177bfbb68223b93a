"""What the gateway writes into its outbox, and the one way to arm an attendant scale.

A reader's candidates become events here: a deposit (with its attendant journal entry, in the
same transaction), a fill reading, an alert raised or cleared. Each gets the next number of its
own sequence inside the outbox's transaction (:meth:`gateway.outbox.Outbox.transaction`), so an
event exists with its number or not at all. :attr:`Recorder.stored` wakes the drain.

Both HTTP surfaces (the local API's ``/scales/{id}/arm`` for `wastebank attend`, the attendant
page's ``record``) arm a scale through :meth:`Recorder.arm`: what the page knew then (who, the
member's name, the price) is kept for the deposit's journal entry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from dataclasses import replace as with_fields
from datetime import UTC, datetime
from typing import Literal

from gateway.alert_store import AlertStore, FlapGuard, Raised
from gateway.attendant_store import AttendantDb, MemberEntry, PriceEntry
from gateway.clock import ClockWatch
from gateway.kiosk import AttendantSession, DepositCandidate
from gateway.live import Live
from gateway.outbox import CalibrationLog, Outbox, write_transaction
from gateway.readers import Condition, FillCandidate, FillSensorReader, ScaleReader
from gateway.settings import GatewaySettings, ScaleSettings
from wastebank import structs
from wastebank.errors import Conflict, Invalid
from wastebank.messages import (
    AlertCode,
    DepositEvent,
    GatewayAlert,
    Topics,
    alert_event_id,
    device_event_id,
    encode_set,
)
from wastebank.structs import checked, encode_json, replace

log = logging.getLogger("wastebank.gateway")


class KioskScale(Conflict):
    """Only an attendant scale can be armed: a kiosk scale takes a card and keys."""

    def __init__(self, scale_id: str) -> None:
        super().__init__(f"{scale_id} memakai kios / is a kiosk scale (card + keys)")


class ScaleDisconnected(Conflict):
    """A scale whose port is gone cannot be armed (nor checked): nothing it would weigh can be
    seen, and the attendant would wait on a load that is never taken."""

    def __init__(self, scale_id: str) -> None:
        super().__init__(
            f"timbangan {scale_id} tidak terhubung, periksa kabelnya / scale {scale_id} is not "
            "connected: check its cable"
        )


class UnknownMember(Invalid):
    def __init__(self, member_no: str) -> None:
        super().__init__(f"nasabah {member_no} tidak dikenal / unknown member")


class UnknownCategory(Invalid):
    def __init__(self, category_code: str) -> None:
        super().__init__(f"jenis {category_code} tidak ada / unknown category")


@dataclass(frozen=True)
class ArmContext:
    """What the attendant page knew when it armed a scale: kept with the deposit's journal entry."""

    attendant: str
    member_name: str | None
    price_per_kg_idr: int | None


@dataclass
class GatewayStats:
    deposits_stored: int = 0
    deposits_invalid: int = 0
    published: int = 0
    refusals: int = 0  # PUBACKs with a failure reason code, outbox rows and telemetry alike
    mqtt_reconnects: int = 0
    alerts_raised: int = 0
    uplinks_rejected: int = 0


class Recorder:
    def __init__(
        self,
        settings: GatewaySettings,
        outbox: Outbox,
        db: AttendantDb,
        *,
        live: Live,
        stats: GatewayStats,
        clock: ClockWatch,
    ) -> None:
        self.settings = settings
        self.clock = clock
        """Whether this boot's clock has been synchronized: each event says so."""
        self.topics = Topics(settings.mqtt.topic_prefix)
        self.outbox = outbox
        self.db = db
        self.calibration = CalibrationLog(outbox)
        self.live = live
        self.stats = stats
        self.stored = asyncio.Event()
        """Set whenever an event was stored: the drain waits on it."""
        self.last_event_id: dict[str, str] = {}
        """The latest deposit stored from each scale (its journal entry)."""
        self._armed: dict[str, ArmContext] = {}
        self.alerts = AlertStore(outbox.connection)
        """The alerts raised and not cleared, this run's and earlier runs'."""
        self.flaps: FlapGuard[Condition] = FlapGuard()

    def event_id(self, seq: int) -> str:
        """The id of this gateway's event number ``seq``: unique for the city's life (see
        gateway/outbox.py, "Install identity")."""
        return device_event_id(self.settings.gateway_id, self.outbox.install, seq)

    def calibration_version(self, cfg: ScaleSettings) -> str | None:
        """The scale's last recorded calibration check, else the site file's version."""
        latest = self.calibration.latest(cfg.id)
        return latest.version if latest else cfg.calibration_version

    # ---- arming an attendant scale ----------------------------------------------------------

    def require_known(self, member_no: str, category_code: str) -> None:
        """:class:`UnknownMember` / :class:`UnknownCategory` when the synced directory and price
        list do not have them (before a first sync, anything goes: the ledger checks)."""
        d = self.db.directory
        if d.member(member_no) is None and d.synced_at("members") is not None:
            raise UnknownMember(member_no)
        if d.price(category_code) is None and d.synced_at("prices") is not None:
            raise UnknownCategory(category_code)

    def arm(self, reader: ScaleReader, member_no: str, category_code: str, attendant: str) -> None:
        """The next settled load on ``reader`` is ``member_no``'s deposit of ``category_code``,
        recorded by ``attendant`` (:class:`KioskScale` on a kiosk scale, :class:`ScaleDisconnected`
        on one whose port is gone, ``ScaleNotWeighing`` on one undetected or stale)."""
        if not isinstance(reader.session, AttendantSession):
            raise KioskScale(reader.cfg.id)
        if not reader.connected:
            raise ScaleDisconnected(reader.cfg.id)
        reader.require_weighing()
        reader.session.arm(member_no, category_code, time.monotonic())
        directory = self.db.directory
        member, price = directory.member(member_no), directory.price(category_code)
        self._armed[reader.cfg.id] = ArmContext(
            attendant=attendant,
            member_name=member.name if member else None,
            price_per_kg_idr=price.price_idr if price else None,
        )
        log.info(
            "petugas / attendant %s armed %s: %s %s",
            attendant,
            reader.cfg.id,
            member_no,
            category_code,
        )
        self.live.notify()

    def cancel(self, reader: ScaleReader, attendant: str) -> None:
        """Disarm an attendant scale (a kiosk scale has nothing to cancel here)."""
        if not isinstance(reader.session, AttendantSession):
            return
        reader.session.cancel()
        self._armed.pop(reader.cfg.id, None)
        log.info("petugas / attendant %s cancelled %s", attendant, reader.cfg.id)
        self.live.notify()

    # ---- events into the outbox ---------------------------------------------------------------

    def store_deposit(self, reader: ScaleReader, c: DepositCandidate) -> int | None:
        """The deposit event and its journal entry, in one transaction; its number, or None when
        the candidate is not a valid event (counted and logged, nothing stored)."""
        measured_at = datetime.now(UTC)
        calibration = self.calibration_version(reader.cfg)
        context = self._armed.pop(reader.cfg.id, None)
        s = self.settings
        clock_synced = self.clock.stamp()
        try:
            with self.outbox.transaction() as write:
                seq = write.next_seq("deposit")
                event = checked(
                    DepositEvent(
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
                        clock_synced=clock_synced,
                    )
                )
                topic = self.topics.deposit(s.bank_code, s.gateway_id)
                row_id = write.put(topic, encode_json(event))
                self._journal(event, row_id, c, context)
        except structs.Invalid as exc:
            # The scale or attendant sent something our schema refuses (e.g. a bad category key).
            self.stats.deposits_invalid += 1
            log.warning("setoran tidak sah / invalid deposit %s: %s", c, exc)
            return None
        self.stats.deposits_stored += 1
        self.last_event_id[reader.cfg.id] = event.event_id
        self.stored.set()
        self.live.notify()
        log.info(
            "setoran / deposit %s: %s, %s, %d g",
            event.event_id,
            c.card_uid or c.member_no,
            c.category_code,
            c.net_g,
        )
        return seq

    def _journal(
        self, event: DepositEvent, row_id: int, c: DepositCandidate, context: ArmContext | None
    ) -> None:
        """The deposit's journal entry, with what the attendant page knew when it armed the
        scale, else what the directory knows now."""
        member, price = self._directory_entries(c)
        if context is not None:
            member_name = context.member_name or (member.name if member else None)
            price_per_kg = context.price_per_kg_idr
        else:
            member_name = member.name if member else None
            price_per_kg = price.price_idr if price else None
        self.db.journal.add(
            event_id=event.event_id,
            outbox_id=row_id,
            scale_id=event.scale_id,
            member_no=c.member_no or (member.member_no if member else None),
            member_name=member_name,
            card_uid=c.card_uid,
            category_code=c.category_code,
            net_g=c.net_g,
            price_per_kg_idr=price_per_kg,
            attendant=context.attendant if context else None,
            recorded_at=event.measured_at,
        )

    def _directory_entries(
        self, c: DepositCandidate
    ) -> tuple[MemberEntry | None, PriceEntry | None]:
        directory = self.db.directory
        if c.member_no is not None:
            member = directory.member(c.member_no)
        elif c.card_uid is not None:
            member = directory.by_card(c.card_uid)
        else:
            member = None
        return member, directory.price(c.category_code)

    def store_fill(self, sensor: FillSensorReader, c: FillCandidate) -> int:
        """A fill reading, numbered in the sensor's own sequence."""
        cfg = sensor.cfg
        with self.outbox.transaction() as write:
            seq = write.next_seq(f"fill:{cfg.id}")
            reading = c.estimate.to_reading(
                sensor_id=cfg.id,
                tps_code=cfg.tps_code,
                seq=seq,
                install=self.outbox.install,
                measured_at=c.measured_at,
            )
            if c.stamped_here:
                reading = replace(reading, clock_synced=self.clock.stamp())
            topic = self.topics.fill(cfg.tps_code, cfg.id)
            write.put(topic, encode_set(reading))
        self.stored.set()
        return seq

    # ---- alerts -------------------------------------------------------------------------------

    def report(self, condition: Condition, now: float | None = None) -> None:
        """Raise an alert once when its condition starts, clear it once when it ends; through
        the outbox, with the alert's state kept beside it (:mod:`gateway.alert_store`), so a
        restart neither raises a still-active alert again nor forgets to clear one. A flapping
        alert's clear is held (:class:`gateway.alert_store.FlapGuard`, :meth:`release_held`).
        ``now``: monotonic."""
        key = (condition.code, condition.subject)
        now = time.monotonic() if now is None else now
        if self.flaps.admit(key, condition.active, key in self.alerts, now, condition):
            self._record(condition)

    def release_held(self, now: float | None = None) -> None:
        """Clear the flapping alerts whose condition has been over long enough, saying how many
        transitions were held (the health loop calls this at each tick)."""
        for condition, held in self.flaps.due(time.monotonic() if now is None else now):
            said = f"{held} perubahan ditahan (berkedip) / {held} transitions held (flapping); "
            self._record(with_fields(condition, message=said + condition.message))

    def _record(self, condition: Condition) -> None:
        key = (condition.code, condition.subject)
        s = self.settings
        at = datetime.now(UTC)
        state: Literal["raised", "cleared"] = "raised" if condition.active else "cleared"
        raised = Raised(condition.code, condition.subject, at, condition.value)
        with self.outbox.transaction() as write:
            seq = write.next_seq("alert")
            alert = checked(
                GatewayAlert(
                    alert_id=alert_event_id(s.gateway_id, self.outbox.install, seq),
                    gateway_id=s.gateway_id,
                    install=self.outbox.install,
                    seq=seq,
                    bank_code=s.bank_code,
                    code=condition.code,
                    state=state,
                    subject=condition.subject,
                    value=condition.value,
                    threshold=condition.threshold,
                    at=at,
                    message=condition.message[:300],
                )
            )
            topic = self.topics.gateway_alert(s.bank_code, s.gateway_id)
            write.put(topic, encode_json(alert))
            if condition.active:
                self.alerts.raised(self.outbox.connection, raised)
            else:
                self.alerts.cleared(self.outbox.connection, *key)
        if condition.active:
            self.alerts.commit_raised(raised)
            self.stats.alerts_raised += 1
        else:
            self.alerts.commit_cleared(*key)
        log.log(
            logging.WARNING if condition.active else logging.INFO,
            "peringatan / alert %s %s: %s",
            condition.code,
            state,
            condition.message,
        )
        self.live.notify()
        self.stored.set()

    def alert_active(self, code: str, subject: str) -> bool:
        return (code, subject) in self.alerts

    def assume_raised(self, code: AlertCode, subject: str) -> None:
        """An alert an earlier run raised and did not clear (a file from before the alerts
        were kept): cleared once its condition ends."""
        if (code, subject) in self.alerts:
            return
        raised = Raised(code, subject, datetime.now(UTC), None)
        with write_transaction(self.outbox.connection) as db:
            self.alerts.raised(db, raised)
        self.alerts.commit_raised(raised)
